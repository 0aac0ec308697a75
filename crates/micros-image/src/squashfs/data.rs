//! The data area: every regular file's blocks and the fragment blocks,
//! compressed on all cores and written in one fixed order.
//!
//! ```text
//!  reader thread            N compressor threads         writer (caller)
//!  files in tree order ──►  block → crc32, sparse?,  ──► reorders by sequence
//!  cut into blocks;         compress, keep the           number, writes at the
//!  small files packed       smaller of compressed        next offset, rewinds
//!  into fragment blocks     and raw                      over a duplicate file
//! ```
//!
//! Every piece of work carries a sequence number given by the single reader,
//! and the writer handles pieces strictly in that order, so the bytes do not
//! depend on which thread finished first. A semaphore caps the pieces in
//! flight, so memory stays at a few blocks per thread however large the tree.
//!
//! Duplicate files are found by length and a hash, then confirmed by
//! comparing the bytes of both sources: a hash collision can cost time, never
//! a wrong file. Files smaller than a block are checked by the reader before
//! they take room in a fragment; larger ones after their blocks are written,
//! by rewinding over them (the image is truncated to its final size at the
//! end, so no stale bytes survive).
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::Hasher;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use super::compressor::{BlockCompressor, SquashfsCompressor};
use crate::error::{Error, Result};
use crate::tree::{Content, Entry, TreePath};

/// Bit 24 of a block or fragment size: stored uncompressed.
pub(crate) const UNCOMPRESSED_BLOCK: u32 = 1 << 24;

/// A regular file to store.
pub(crate) struct Input<'a> {
    pub(crate) path: &'a TreePath,
    pub(crate) entry: &'a Entry,
    pub(crate) content: &'a Content,
}

/// Where a file's bytes ended up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placed {
    pub(crate) start: u64,
    /// One size per block (0 = sparse, bit 24 = uncompressed).
    pub(crate) blocks: Vec<u32>,
    /// (fragment index, offset in the fragment) for files below a block.
    pub(crate) fragment: Option<(u32, u32)>,
    pub(crate) sparse: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FragmentEntry {
    pub(crate) start: u64,
    pub(crate) size: u32,
}

pub(crate) struct DataArea {
    pub(crate) files: Vec<Placed>,
    pub(crate) fragments: Vec<FragmentEntry>,
    /// The first byte after the data area.
    pub(crate) end: u64,
}

enum Work {
    Block { file: usize, data: Vec<u8> },
    Fragment { index: u32, data: Vec<u8> },
    Small { file: usize, placement: Small },
    FileEnd { file: usize },
}

#[derive(Clone, Copy)]
enum Small {
    Empty,
    InFragment { index: u32, offset: u32 },
    SameAs(usize),
}

enum Stored {
    Sparse,
    Raw(Vec<u8>),
    Compressed(Vec<u8>),
}

enum Done {
    Block {
        file: usize,
        stored: Stored,
        length: u32,
        crc: u32,
    },
    Fragment {
        index: u32,
        stored: Stored,
    },
    Small {
        file: usize,
        placement: Small,
    },
    FileEnd {
        file: usize,
    },
}

pub(crate) struct Settings<'a> {
    pub(crate) compressor: SquashfsCompressor,
    pub(crate) block_size: u32,
    pub(crate) threads: usize,
    pub(crate) dest: &'a Path,
}

/// Writes the data area of `inputs` into `out` starting at `start`.
pub(crate) fn write_data(
    inputs: &[Input<'_>],
    settings: &Settings<'_>,
    out: &File,
    start: u64,
) -> Result<DataArea> {
    let threads = settings.threads.max(1);
    let in_flight = Semaphore::new(threads * 4 + 4);
    let (work_sender, work_receiver) = mpsc::sync_channel::<(u64, Work)>(threads * 2);
    let work_receiver = Mutex::new(work_receiver);
    let (done_sender, done_receiver) = mpsc::channel::<(u64, io::Result<Done>)>();

    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let result = read_inputs(inputs, settings.block_size, &in_flight, work_sender);
            if result.is_err() {
                in_flight.close();
            }
            result
        });
        let mut workers = Vec::new();
        for _ in 0..threads {
            let done_sender = done_sender.clone();
            let work_receiver = &work_receiver;
            workers.push(scope.spawn(move || {
                let mut writer_gone = false;
                let mut compressor =
                    match BlockCompressor::new(settings.compressor, settings.block_size) {
                        Ok(compressor) => Some(compressor),
                        Err(err) => {
                            // The writer stops at this error and closes the
                            // semaphore; this worker only drains from now on.
                            let _ = done_sender.send((u64::MAX, Err(err)));
                            writer_gone = true;
                            None
                        }
                    };
                loop {
                    // Hold the lock only while taking one piece of work.
                    let next = work_receiver
                        .lock()
                        .map_err(|_| ())
                        .and_then(|receiver| receiver.recv().map_err(|_| ()));
                    let Ok((sequence, work)) = next else { return };
                    // Once the writer has stopped, keep draining so a reader
                    // blocked on a full channel can see the close and exit.
                    let Some(compressor) = compressor.as_mut().filter(|_| !writer_gone) else {
                        continue;
                    };
                    let done = process(compressor, work);
                    writer_gone = done_sender.send((sequence, done)).is_err();
                }
            }));
        }
        drop(done_sender);

        let written = write_in_order(inputs, settings, out, start, &done_receiver, &in_flight);
        // Whatever happened, let the reader and workers run dry and stop.
        in_flight.close();
        drop(done_receiver);
        let read = reader.join().unwrap_or_else(|_| {
            Err(Error::Output {
                path: settings.dest.to_owned(),
                source: io::Error::other("the squashfs reader thread panicked"),
            })
        });
        for worker in workers {
            let _ = worker.join();
        }
        // A read error explains a short stream better than the writer can.
        read?;
        written
    })
}

fn read_inputs(
    inputs: &[Input<'_>],
    block_size: u32,
    in_flight: &Semaphore,
    sender: mpsc::SyncSender<(u64, Work)>,
) -> Result<()> {
    let block_size = block_size as usize;
    let mut sequence = 0u64;
    let mut send = |work: Work| -> bool {
        if !in_flight.acquire() {
            return false;
        }
        let ok = sender.send((sequence, work)).is_ok();
        sequence += 1;
        ok
    };
    let mut small_seen: HashMap<(u64, u32), Vec<usize>> = HashMap::new();
    let mut fragment = Vec::with_capacity(block_size);
    let mut fragment_index = 0u32;

    for (id, input) in inputs.iter().enumerate() {
        let content_error = |source: io::Error| Error::Content {
            path: input.path.clone(),
            origin: input.entry.origin.to_string(),
            source,
        };
        let length = input.content.len();
        if length == 0 {
            if !send(Work::Small {
                file: id,
                placement: Small::Empty,
            }) {
                return Ok(());
            }
            continue;
        }
        let mut reader = input.content.reader().map_err(content_error)?;
        if length < block_size as u64 {
            let mut data = Vec::with_capacity(length as usize);
            reader
                .take(length + 1)
                .read_to_end(&mut data)
                .map_err(content_error)?;
            check_length(length, data.len() as u64).map_err(content_error)?;
            let key = (length, crc32fast::hash(&data));
            let mut placement = None;
            for &candidate in small_seen.get(&key).into_iter().flatten() {
                let earlier =
                    inputs[candidate]
                        .content
                        .read()
                        .map_err(|source| Error::Content {
                            path: inputs[candidate].path.clone(),
                            origin: inputs[candidate].entry.origin.to_string(),
                            source,
                        })?;
                if earlier == data {
                    placement = Some(Small::SameAs(candidate));
                    break;
                }
            }
            let placement = match placement {
                Some(placement) => placement,
                None => {
                    if fragment.len() + data.len() > block_size {
                        let full = std::mem::replace(&mut fragment, Vec::with_capacity(block_size));
                        if !send(Work::Fragment {
                            index: fragment_index,
                            data: full,
                        }) {
                            return Ok(());
                        }
                        fragment_index += 1;
                    }
                    let placement = Small::InFragment {
                        index: fragment_index,
                        offset: fragment.len() as u32,
                    };
                    fragment.extend_from_slice(&data);
                    small_seen.entry(key).or_default().push(id);
                    placement
                }
            };
            if !send(Work::Small {
                file: id,
                placement,
            }) {
                return Ok(());
            }
            continue;
        }
        let mut total = 0u64;
        loop {
            let mut block = Vec::with_capacity(block_size);
            let read = (&mut reader)
                .take(block_size as u64)
                .read_to_end(&mut block)
                .map_err(content_error)?;
            if read == 0 {
                break;
            }
            total += read as u64;
            if total > length {
                break;
            }
            if !send(Work::Block {
                file: id,
                data: block,
            }) {
                return Ok(());
            }
        }
        check_length(length, total).map_err(content_error)?;
        if !send(Work::FileEnd { file: id }) {
            return Ok(());
        }
    }
    if !fragment.is_empty() {
        send(Work::Fragment {
            index: fragment_index,
            data: fragment,
        });
    }
    Ok(())
}

fn check_length(expected: u64, found: u64) -> io::Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("expected {expected} bytes, found {found}: the source changed"),
        ))
    }
}

fn process(compressor: &mut BlockCompressor, work: Work) -> io::Result<Done> {
    Ok(match work {
        Work::Block { file, data } => {
            let crc = crc32fast::hash(&data);
            let length = data.len() as u32;
            // A block of zeros costs nothing on disk: the kernel and
            // unsquashfs read size 0 as a hole, as mksquashfs writes it.
            let stored = if data.iter().all(|&byte| byte == 0) {
                Stored::Sparse
            } else {
                store(compressor, data)?
            };
            Done::Block {
                file,
                stored,
                length,
                crc,
            }
        }
        Work::Fragment { index, data } => Done::Fragment {
            index,
            stored: store(compressor, data)?,
        },
        Work::Small { file, placement } => Done::Small { file, placement },
        Work::FileEnd { file } => Done::FileEnd { file },
    })
}

fn store(compressor: &mut BlockCompressor, data: Vec<u8>) -> io::Result<Stored> {
    let compressed = compressor.compress(&data)?;
    Ok(if compressed.len() < data.len() {
        Stored::Compressed(compressed)
    } else {
        Stored::Raw(data)
    })
}

/// The state of the large file whose blocks are being written.
struct Current {
    file: usize,
    placed: Placed,
    hash: std::collections::hash_map::DefaultHasher,
}

fn write_in_order(
    inputs: &[Input<'_>],
    settings: &Settings<'_>,
    out: &File,
    start: u64,
    receiver: &mpsc::Receiver<(u64, io::Result<Done>)>,
    in_flight: &Semaphore,
) -> Result<DataArea> {
    let output = |source: io::Error| Error::Output {
        path: settings.dest.to_owned(),
        source,
    };
    let mut files: Vec<Placed> = vec![Placed::default(); inputs.len()];
    let mut fragments: Vec<FragmentEntry> = Vec::new();
    let mut position = start;
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut current: Option<Current> = None;
    let mut large_seen: HashMap<(u64, u64), Vec<usize>> = HashMap::new();

    while let Ok((sequence, done)) = receiver.recv() {
        let done = done.map_err(|err| Error::Compress {
            path: settings.dest.to_owned(),
            compressor: settings.compressor.name(),
            message: err.to_string(),
        })?;
        pending.insert(sequence, done);
        while let Some(done) = pending.remove(&next) {
            next += 1;
            in_flight.release();
            match done {
                Done::Block {
                    file,
                    stored,
                    length,
                    crc,
                } => {
                    let state = current.get_or_insert_with(|| Current {
                        file,
                        placed: Placed {
                            start: position,
                            ..Placed::default()
                        },
                        hash: Default::default(),
                    });
                    state.hash.write_u32(crc);
                    let size = match stored {
                        Stored::Sparse => {
                            state.placed.sparse += length as u64;
                            0
                        }
                        Stored::Raw(bytes) => {
                            out.write_all_at(&bytes, position).map_err(output)?;
                            position += bytes.len() as u64;
                            bytes.len() as u32 | UNCOMPRESSED_BLOCK
                        }
                        Stored::Compressed(bytes) => {
                            out.write_all_at(&bytes, position).map_err(output)?;
                            position += bytes.len() as u64;
                            bytes.len() as u32
                        }
                    };
                    state.placed.blocks.push(size);
                }
                Done::FileEnd { file } => {
                    let Some(state) = current.take().filter(|state| state.file == file) else {
                        continue;
                    };
                    let key = (inputs[file].content.len(), state.hash.finish());
                    let mut duplicate = None;
                    for &candidate in large_seen.get(&key).into_iter().flatten() {
                        if same_content(&inputs[candidate], &inputs[file])? {
                            duplicate = Some(candidate);
                            break;
                        }
                    }
                    match duplicate {
                        Some(candidate) => {
                            // Rewind: the next writes reuse this file's bytes.
                            position = state.placed.start;
                            files[file] = files[candidate].clone();
                        }
                        None => {
                            large_seen.entry(key).or_default().push(file);
                            files[file] = state.placed;
                        }
                    }
                }
                Done::Fragment { index, stored } => {
                    let (bytes, size) = match &stored {
                        Stored::Raw(bytes) => (bytes, bytes.len() as u32 | UNCOMPRESSED_BLOCK),
                        Stored::Compressed(bytes) => (bytes, bytes.len() as u32),
                        Stored::Sparse => unreachable!("fragments are never sparse"),
                    };
                    out.write_all_at(bytes, position).map_err(output)?;
                    debug_assert_eq!(fragments.len(), index as usize);
                    fragments.push(FragmentEntry {
                        start: position,
                        size,
                    });
                    position += bytes.len() as u64;
                }
                Done::Small { file, placement } => {
                    files[file] = match placement {
                        Small::Empty => Placed::default(),
                        Small::InFragment { index, offset } => Placed {
                            fragment: Some((index, offset)),
                            ..Placed::default()
                        },
                        Small::SameAs(candidate) => files[candidate].clone(),
                    };
                }
            }
        }
    }
    if !pending.is_empty() || current.is_some() {
        // The stream stopped early: the reader's error says why.
        return Err(output(io::Error::other("the data stream ended early")));
    }
    Ok(DataArea {
        files,
        fragments,
        end: position,
    })
}

/// Compares two files' bytes, the final word on a duplicate.
fn same_content(a: &Input<'_>, b: &Input<'_>) -> Result<bool> {
    let open = |input: &Input<'_>| {
        input.content.reader().map_err(|source| Error::Content {
            path: input.path.clone(),
            origin: input.entry.origin.to_string(),
            source,
        })
    };
    let (mut left, mut right) = (open(a)?, open(b)?);
    let mut left_buffer = vec![0u8; 64 * 1024];
    let mut right_buffer = vec![0u8; 64 * 1024];
    loop {
        let read = fill(&mut left, &mut left_buffer).map_err(|source| Error::Content {
            path: a.path.clone(),
            origin: a.entry.origin.to_string(),
            source,
        })?;
        let other = fill(&mut right, &mut right_buffer[..read.max(1)]).map_err(|source| {
            Error::Content {
                path: b.path.clone(),
                origin: b.entry.origin.to_string(),
                source,
            }
        })?;
        if read != other || left_buffer[..read] != right_buffer[..read] {
            return Ok(false);
        }
        if read == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buffer` is full or the source ends.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Counts pieces of work in flight; `close` wakes and stops every waiter so
/// an error on one side never leaves the other blocked.
struct Semaphore {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Semaphore {
    fn new(permits: usize) -> Self {
        Semaphore {
            state: Mutex::new((permits, false)),
            changed: Condvar::new(),
        }
    }

    /// Takes a permit; false once closed.
    fn acquire(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        loop {
            if state.1 {
                return false;
            }
            if state.0 > 0 {
                state.0 -= 1;
                return true;
            }
            state = match self.changed.wait(state) {
                Ok(state) => state,
                Err(_) => return false,
            };
        }
    }

    fn release(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0 += 1;
        }
        self.changed.notify_one();
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.1 = true;
        }
        self.changed.notify_all();
    }
}
