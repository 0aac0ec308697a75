//! Metadata blocks: the unit of the inode, directory, fragment, export and
//! id tables.
//!
//! ```text
//! ┌──────────┬──────────────────────────────────────┐
//! │ u16 size │ ≤ 8 KiB of table bytes, compressed    │  bit 15 of size set:
//! └──────────┴──────────────────────────────────────┘  stored uncompressed
//! ```
//!
//! A table is a stream cut into 8 KiB pieces; a record may straddle two
//! blocks. A reference to a record is `(block start relative to the table)
//! << 16 | offset inside the uncompressed block`.
use std::io;

use super::compressor::BlockCompressor;

pub(crate) const METADATA_SIZE: usize = 8192;
const UNCOMPRESSED: u16 = 0x8000;

pub(crate) struct MetadataWriter {
    /// Finished blocks, each with its size header.
    pub(crate) out: Vec<u8>,
    current: Vec<u8>,
}

impl MetadataWriter {
    pub(crate) fn new() -> Self {
        MetadataWriter {
            out: Vec::new(),
            current: Vec::with_capacity(METADATA_SIZE),
        }
    }

    /// Where the next byte goes: (block start, offset in that block).
    pub(crate) fn position(&self) -> (u32, u16) {
        (self.out.len() as u32, self.current.len() as u16)
    }

    /// The reference format inodes and the superblock use.
    pub(crate) fn reference(&self) -> u64 {
        let (block, offset) = self.position();
        ((block as u64) << 16) | offset as u64
    }

    pub(crate) fn write(
        &mut self,
        compressor: &mut BlockCompressor,
        mut data: &[u8],
    ) -> io::Result<()> {
        while !data.is_empty() {
            let room = METADATA_SIZE - self.current.len();
            let take = room.min(data.len());
            self.current.extend_from_slice(&data[..take]);
            data = &data[take..];
            // Flushing as soon as a block is full keeps `position()` inside
            // the block the next byte really lands in.
            if self.current.len() == METADATA_SIZE {
                self.flush(compressor)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, compressor: &mut BlockCompressor) -> io::Result<()> {
        if self.current.is_empty() {
            return Ok(());
        }
        let compressed = compressor.compress(&self.current)?;
        if compressed.len() < self.current.len() {
            self.out
                .extend_from_slice(&(compressed.len() as u16).to_le_bytes());
            self.out.extend_from_slice(&compressed);
        } else {
            self.out
                .extend_from_slice(&(self.current.len() as u16 | UNCOMPRESSED).to_le_bytes());
            self.out.extend_from_slice(&self.current);
        }
        self.current.clear();
        Ok(())
    }

    /// Flushes the last, partial block and returns the table's bytes.
    pub(crate) fn finish(mut self, compressor: &mut BlockCompressor) -> io::Result<Vec<u8>> {
        self.flush(compressor)?;
        Ok(self.out)
    }
}

/// A lookup table (fragments, export, ids): its records in metadata blocks,
/// followed by the array of u64 block addresses the superblock points at.
/// Returns the bytes to write at `start` and the address of the array.
pub(crate) fn indexed_table(
    compressor: &mut BlockCompressor,
    records: &[u8],
    start: u64,
) -> io::Result<(Vec<u8>, u64)> {
    let mut bytes = Vec::new();
    let mut index = Vec::new();
    for chunk in records.chunks(METADATA_SIZE) {
        index.push(start + bytes.len() as u64);
        let mut writer = MetadataWriter::new();
        writer.write(compressor, chunk)?;
        bytes.extend_from_slice(&writer.finish(compressor)?);
    }
    let index_start = start + bytes.len() as u64;
    for address in index {
        bytes.extend_from_slice(&address.to_le_bytes());
    }
    Ok((bytes, index_start))
}
