//! Extended attributes (file capabilities, SELinux labels, user.*).
//!
//! ```text
//! xattr data      metadata blocks: per distinct set, its entries
//!                   u16 prefix (0 user., 1 trusted., 2 security.)
//!                   u16 name length, name without prefix
//!                   u32 value length, value
//! xattr ids       metadata blocks: per set, u64 reference into the data
//!                   (block << 16 | offset), u32 entry count, u32 byte size
//! header          u64 start of the data, u32 set count, u32 unused,
//!                 then u64 addresses of the id metadata blocks
//!                 ← the superblock's xattr_id_table_start points here
//! ```
//!
//! Identical sets are stored once; an inode carrying a set is written in its
//! extended form with the set's index.
use std::collections::HashMap;

use super::compressor::BlockCompressor;
use super::metadata::{indexed_table, MetadataWriter};
use crate::error::{Error, Result};
use crate::tree::{Entry, TreePath};

const FORMAT: &str = "squashfs";
/// The only namespaces squashfs can store (mksquashfs skips the rest too).
const PREFIXES: [(&str, u16); 3] = [("user.", 0), ("trusted.", 1), ("security.", 2)];

type Set = Vec<(u16, Vec<u8>, Vec<u8>)>;

#[derive(Default)]
pub(crate) struct XattrPlan {
    sets: Vec<Set>,
    index_of: HashMap<Set, u32>,
}

impl XattrPlan {
    /// Registers an entry's attributes; returns its set index, if it has any.
    pub(crate) fn add(&mut self, path: &TreePath, entry: &Entry) -> Result<Option<u32>> {
        if entry.xattrs.is_empty() {
            return Ok(None);
        }
        let mut set = Set::new();
        for (key, value) in &entry.xattrs {
            let (name, prefix) = PREFIXES
                .iter()
                .find_map(|(prefix, id)| key.strip_prefix(prefix).map(|name| (name, *id)))
                .ok_or_else(|| Error::Unsupported {
                    format: FORMAT,
                    path: path.clone(),
                    what: format!(
                        "the extended attribute `{key}` (only user., trusted. and security.)"
                    ),
                })?;
            if name.is_empty() || name.len() > u16::MAX as usize || value.len() > u32::MAX as usize
            {
                return Err(Error::Unsupported {
                    format: FORMAT,
                    path: path.clone(),
                    what: format!("the extended attribute `{key}` (empty or oversized)"),
                });
            }
            set.push((prefix, name.as_bytes().to_vec(), value.clone()));
        }
        if let Some(&index) = self.index_of.get(&set) {
            return Ok(Some(index));
        }
        let index = self.sets.len() as u32;
        self.index_of.insert(set.clone(), index);
        self.sets.push(set);
        Ok(Some(index))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The whole xattr table, to be written at `start`; returns its bytes
    /// and the address for the superblock.
    pub(crate) fn table(
        &self,
        compressor: &mut BlockCompressor,
        start: u64,
    ) -> std::io::Result<(Vec<u8>, u64)> {
        let mut data = MetadataWriter::new();
        let mut ids = Vec::with_capacity(self.sets.len() * 16);
        for set in &self.sets {
            let reference = data.reference();
            let mut bytes = Vec::new();
            for (prefix, name, value) in set {
                bytes.extend_from_slice(&prefix.to_le_bytes());
                bytes.extend_from_slice(&(name.len() as u16).to_le_bytes());
                bytes.extend_from_slice(name);
                bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
                bytes.extend_from_slice(value);
            }
            data.write(compressor, &bytes)?;
            ids.extend_from_slice(&reference.to_le_bytes());
            ids.extend_from_slice(&(set.len() as u32).to_le_bytes());
            ids.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
        let mut out = data.finish(compressor)?;
        let (id_blocks, _) = indexed_table(compressor, &ids, start + out.len() as u64)?;
        // `indexed_table` appends the block addresses after the blocks; the
        // header (data start, count) must sit between the two.
        let blocks_length =
            id_blocks.len() - ids.len().div_ceil(super::metadata::METADATA_SIZE) * 8;
        out.extend_from_slice(&id_blocks[..blocks_length]);
        let header_start = start + out.len() as u64;
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&(self.sets.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&id_blocks[blocks_length..]);
        Ok((out, header_start))
    }
}
