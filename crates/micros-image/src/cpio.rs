//! cpio `newc` archives, the format the Linux kernel unpacks as an initramfs.
//!
//! ```text
//! ┌──────────────────────────────── one entry ─────────────────────────────┐
//! │ "070701" ino mode uid gid nlink mtime filesize devmajor devminor       │
//! │          rdevmajor rdevminor namesize check   (13 × 8 hex digits)      │
//! │ name NUL, padded so header+name is a multiple of 4                     │
//! │ file data, padded to a multiple of 4                                   │
//! └────────────────────────────────────────────────────────────────────────┘
//! … one entry per tree node, parents first, then "TRAILER!!!"
//! ```
//!
//! Device nodes are just headers with `rdevmajor`/`rdevminor`, so writing
//! `/dev/console` needs no root. Hard links share one `ino` and carry
//! `nlink`; as GNU cpio and the kernel's `maybe_link()` expect, only the last
//! name of a group carries the data, the earlier ones have size 0. newc has
//! no extended attributes, so an initrd carries none.
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use crate::atomic::atomic_write;
use crate::compress::{Compression, Counting};
use crate::error::{Error, Result};
use crate::tree::{Content, Entry, Kind, Tree, TreePath};

const FORMAT: &str = "cpio newc";
/// newc stores sizes and ids in 8 hex digits.
const MAX_FIELD: u64 = u32::MAX as u64;
/// The kernel's initramfs unpacker refuses names of PATH_MAX or more.
const MAX_NAME: usize = 4095;

/// Writes `tree` as a compressed newc archive at `dest`, atomically.
/// Returns the number of bytes written.
pub fn write_cpio(tree: &Tree, dest: &Path, compression: Compression) -> Result<u64> {
    compression
        .validate()
        .map_err(|message| Error::InvalidOption {
            format: FORMAT,
            path: dest.to_owned(),
            message,
        })?;
    let plan = plan(tree)?;
    atomic_write(dest, |file| {
        let counting = Counting {
            inner: io::BufWriter::new(file),
            count: 0,
        };
        let mut encoder = compression.encoder(counting).map_err(Error::output(dest))?;
        write_entries(tree, &plan, &mut encoder, dest)?;
        let mut counting = encoder.finish().map_err(Error::output(dest))?;
        counting.flush().map_err(Error::output(dest))?;
        Ok(counting.count)
    })
}

/// Writes `tree` as an uncompressed newc archive to any writer.
pub fn write_cpio_to(tree: &Tree, out: &mut impl Write) -> Result<()> {
    let plan = plan(tree)?;
    write_entries(tree, &plan, out, Path::new("<stream>"))
}

/// What the write pass needs to know about hard links, computed (and every
/// limit checked) before the first byte is written.
struct Plan {
    /// Inode number of each path, shared by a hard link group.
    inodes: BTreeMap<TreePath, u32>,
    /// Per group leader (the regular file): how many names it has.
    links: BTreeMap<TreePath, u32>,
    /// The last name of each group in write order: it carries the data.
    carrier: BTreeMap<TreePath, TreePath>,
}

fn plan(tree: &Tree) -> Result<Plan> {
    let mut links: BTreeMap<TreePath, u32> = BTreeMap::new();
    let mut carrier = BTreeMap::new();
    for (path, entry) in tree.iter() {
        let name = archive_name(path);
        if name.len() > MAX_NAME {
            return Err(Error::NameTooLong {
                format: FORMAT,
                path: path.clone(),
                length: name.len(),
                max: MAX_NAME,
            });
        }
        for (what, value) in [("the uid", entry.uid as u64), ("the gid", entry.gid as u64)] {
            check_field(path, what, value)?;
        }
        match &entry.kind {
            Kind::File(content) => {
                check_field(path, "the file size", content.len())?;
                *links.entry(path.clone()).or_insert(0) += 1;
                carrier.insert(path.clone(), path.clone());
            }
            Kind::Hardlink(target) => {
                if !matches!(tree.get(target).map(|e| &e.kind), Some(Kind::File(_))) {
                    return Err(crate::tree::TreeError::DanglingHardlink {
                        path: path.clone(),
                        origin: entry.origin.to_string(),
                        target: target.clone(),
                    }
                    .into());
                }
                *links.entry(target.clone()).or_insert(0) += 1;
            }
            _ => {}
        }
    }
    // Iteration is in write order, so the last name seen wins.
    for (path, entry) in tree.iter() {
        if let Kind::Hardlink(target) = &entry.kind {
            carrier.insert(target.clone(), path.clone());
        }
    }
    let mut inodes = BTreeMap::new();
    let mut next = 1u32;
    for (path, entry) in tree.iter() {
        let leader = match &entry.kind {
            Kind::Hardlink(target) => target,
            _ => path,
        };
        if let Some(&ino) = inodes.get(leader) {
            inodes.insert(path.clone(), ino);
        } else {
            inodes.insert(leader.clone(), next);
            inodes.insert(path.clone(), next);
            next += 1;
        }
    }
    Ok(Plan {
        inodes,
        links,
        carrier,
    })
}

fn check_field(path: &TreePath, what: &'static str, value: u64) -> Result<()> {
    if value > MAX_FIELD {
        return Err(Error::TooLarge {
            format: FORMAT,
            path: path.clone(),
            what,
            value,
            max: MAX_FIELD,
        });
    }
    Ok(())
}

/// `.` for the root (so the archive sets the root's mode), else the path
/// without its leading `/`, as `find . | cpio` would write it minus `./`.
fn archive_name(path: &TreePath) -> String {
    if path.is_root() {
        ".".to_owned()
    } else {
        path.components().join("/")
    }
}

struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u64,
    size: u64,
    rdev: (u32, u32),
}

fn write_entries(tree: &Tree, plan: &Plan, out: &mut impl Write, dest: &Path) -> Result<()> {
    let mut offset = 0u64;
    let subdirs = subdirectory_counts(tree);
    for (path, entry) in tree.iter() {
        // A hard link takes its metadata from the file it names.
        let (leader, node): (&TreePath, &Entry) = match &entry.kind {
            Kind::Hardlink(target) => (target, tree.get(target).unwrap_or(entry)),
            _ => (path, entry),
        };
        let mut data: Option<&Content> = None;
        let mut symlink: Option<&[u8]> = None;
        let mut nlink = 1;
        let mut rdev = (0, 0);
        match &node.kind {
            Kind::Directory => nlink = 2 + subdirs.get(path).copied().unwrap_or(0),
            Kind::File(content) => {
                nlink = plan.links.get(leader).copied().unwrap_or(1);
                if plan.carrier.get(leader) == Some(path) {
                    data = Some(content);
                }
            }
            Kind::Symlink(target) => symlink = Some(target.as_bytes()),
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                rdev = (*major, *minor)
            }
            Kind::Fifo | Kind::Hardlink(_) => {}
        }
        let size = data
            .map(Content::len)
            .or(symlink.map(|s| s.len() as u64))
            .unwrap_or(0);
        let header = Header {
            ino: plan.inodes.get(path).copied().unwrap_or(0),
            mode: node.st_mode(),
            uid: node.uid,
            gid: node.gid,
            nlink,
            mtime: entry.mtime,
            size,
            rdev,
        };
        offset += write_header(out, &header, &archive_name(path)).map_err(Error::output(dest))?;
        if let Some(target) = symlink {
            out.write_all(target).map_err(Error::output(dest))?;
        }
        if let Some(content) = data {
            let copied = copy_content(path, entry, content, out, dest)?;
            debug_assert_eq!(copied, size);
        }
        offset += size;
        offset += pad(out, offset).map_err(Error::output(dest))?;
    }
    let trailer = Header {
        ino: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        nlink: 1,
        mtime: 0,
        size: 0,
        rdev: (0, 0),
    };
    write_header(out, &trailer, "TRAILER!!!").map_err(Error::output(dest))?;
    Ok(())
}

pub(crate) fn subdirectory_counts(tree: &Tree) -> BTreeMap<TreePath, u32> {
    let mut counts = BTreeMap::new();
    for (path, entry) in tree.iter() {
        if entry.is_dir() {
            if let Some(parent) = path.parent() {
                *counts.entry(parent).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Copies a file's content into an archive, naming the tree path if the
/// source cannot be read and checking it still has the length the header
/// promised.
pub(crate) fn copy_content(
    path: &TreePath,
    entry: &Entry,
    content: &Content,
    out: &mut impl Write,
    dest: &Path,
) -> Result<u64> {
    let content_error = |source: io::Error| Error::Content {
        path: path.clone(),
        origin: entry.origin.to_string(),
        source,
    };
    let mut reader = content.reader().map_err(content_error)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(content_error(err)),
        };
        out.write_all(&buffer[..read])
            .map_err(Error::output(dest))?;
        copied += read as u64;
    }
    if copied != content.len() {
        return Err(content_error(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("expected {} bytes, found {copied}", content.len()),
        )));
    }
    Ok(copied)
}

/// Writes one header and its padded name; returns the bytes written.
fn write_header(out: &mut impl Write, header: &Header, name: &str) -> io::Result<u64> {
    let fields = [
        header.ino,
        header.mode,
        header.uid,
        header.gid,
        header.nlink,
        // newc has 32 bits of mtime; the build epoch fits until 2106.
        header.mtime.min(MAX_FIELD) as u32,
        header.size as u32,
        0,
        0,
        header.rdev.0,
        header.rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    let mut bytes = Vec::with_capacity(110 + name.len() + 4);
    bytes.extend_from_slice(b"070701");
    for field in fields {
        bytes.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0);
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
    out.write_all(&bytes)?;
    Ok(bytes.len() as u64)
}

fn pad(out: &mut impl Write, offset: u64) -> io::Result<u64> {
    let padding = (4 - offset % 4) % 4;
    out.write_all(&[0u8; 3][..padding as usize])?;
    Ok(padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> TreePath {
        TreePath::parse(path).unwrap()
    }

    #[test]
    fn console_device_header_is_exact() {
        let mut tree = Tree::new();
        tree.insert(
            p("/dev/console"),
            Entry::new(Kind::CharDevice { major: 5, minor: 1 }, 0o600, "init"),
        )
        .unwrap();
        tree.normalize(0).unwrap();
        let mut out = Vec::new();
        write_cpio_to(&tree, &mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        // ino 3, mode 020600, nlink 1, rdev 5:1, namesize 12.
        let fields = [3, 0o020600, 0, 0, 1, 0, 0, 0, 0, 5, 1, 12, 0];
        let expected: String = fields.iter().map(|f| format!("{f:08X}")).collect();
        let expected = format!("070701{expected}dev/console");
        assert!(text.contains(&expected), "{text}");
        assert!(text.contains("TRAILER!!!"));
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn hard_links_carry_data_once_on_the_last_name() {
        let mut tree = Tree::new();
        tree.insert(p("/a"), Entry::file(Content::bytes("data"), 0o644, "t"))
            .unwrap();
        tree.insert(p("/b"), Entry::new(Kind::Hardlink(p("/a")), 0o644, "t"))
            .unwrap();
        let plan = plan(&tree).unwrap();
        assert_eq!(plan.carrier[&p("/a")], p("/b"));
        assert_eq!(plan.links[&p("/a")], 2);
        assert_eq!(plan.inodes[&p("/a")], plan.inodes[&p("/b")]);
    }

    #[test]
    fn overlong_names_fail_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = Tree::new();
        let long = format!("/{}", vec!["x".repeat(200); 25].join("/"));
        tree.insert(p(&long), Entry::file(Content::bytes(""), 0o644, "t"))
            .unwrap();
        let dest = dir.path().join("initrd");
        let error = write_cpio(&tree, &dest, Compression::None).unwrap_err();
        assert!(matches!(error, Error::NameTooLong { .. }), "{error}");
        assert!(!dest.exists());
    }
}
