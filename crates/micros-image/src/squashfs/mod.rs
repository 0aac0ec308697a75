//! squashfs 4.0, the read-only root filesystem the kernel mounts.
//!
//! ```text
//! offset 0 ┌──────────────────────────────┐
//!          │ superblock (96 bytes)        │ magic "hsqs", counts, table offsets
//!          │ compressor options (if any)  │ one uncompressed metadata block
//!          ├──────────────────────────────┤
//!          │ data area                    │ file blocks and fragment blocks,
//!          │                              │ in tree order (data.rs)
//!          ├──────────────────────────────┤
//!          │ inode table                  │ metadata blocks (inodes.rs)
//!          │ directory table              │ metadata blocks (inodes.rs)
//!          │ fragment table + its index   │ 16-byte entries: start, size
//!          │ export table + its index     │ inode number → inode reference
//!          │ id table + its index         │ the distinct uids and gids
//!          │ xattr table (if any)         │ xattrs.rs
//!          ├──────────────────────────────┤ ← bytes_used
//!          │ zero padding to 4 KiB        │ so the image suits a block device
//!          └──────────────────────────────┘
//! ```
//!
//! The tables must come in exactly this order: the kernel checks each
//! table's index lies before the next table's start. Files smaller than a
//! block are packed into fragment blocks; a larger file's tail stays a short
//! block of its own (mksquashfs' default). Byte order is little-endian.
mod compressor;
mod data;
mod inodes;
mod metadata;
mod xattrs;

use std::os::unix::fs::FileExt;
use std::path::Path;

use compressor::BlockCompressor;
pub use compressor::SquashfsCompressor;
use data::{Input, Settings};
use inodes::Layout;
use metadata::indexed_table;

use crate::atomic::atomic_write;
use crate::error::{Error, Result};
use crate::tree::{Kind, Tree};

const FORMAT: &str = "squashfs";
const MAGIC: u32 = 0x7371_7368;
const SUPERBLOCK_SIZE: u64 = 96;
const NO_TABLE: u64 = u64::MAX;
const PADDING: u64 = 4096;

// Superblock flags (squashfs_fs.h).
const FLAG_DUPLICATES: u16 = 1 << 6;
const FLAG_EXPORTABLE: u16 = 1 << 7;
const FLAG_NO_XATTRS: u16 = 1 << 9;
const FLAG_COMPRESSOR_OPTIONS: u16 = 1 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquashfsOptions {
    pub compressor: SquashfsCompressor,
    /// A power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// Compressor threads; 0 means one per core.
    pub threads: usize,
}

impl Default for SquashfsOptions {
    fn default() -> Self {
        SquashfsOptions {
            compressor: SquashfsCompressor::Xz,
            block_size: 128 * 1024,
            threads: 0,
        }
    }
}

/// What was written, for logs and the build manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquashfsSummary {
    /// The image size, padding included.
    pub bytes: u64,
    pub inodes: u32,
    pub fragments: u32,
}

/// Writes `tree` as a squashfs image at `dest`, atomically.
pub fn write_squashfs(
    tree: &Tree,
    dest: &Path,
    options: &SquashfsOptions,
) -> Result<SquashfsSummary> {
    let invalid = |message: String| Error::InvalidOption {
        format: FORMAT,
        path: dest.to_owned(),
        message,
    };
    let block_size = options.block_size;
    if !block_size.is_power_of_two() || !(4096..=1 << 20).contains(&block_size) {
        return Err(invalid(format!(
            "block size {block_size} is not a power of two from 4096 to 1048576"
        )));
    }
    options.compressor.validate().map_err(invalid)?;
    let layout = Layout::new(tree)?;
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    atomic_write(dest, |file| {
        let output = Error::output(dest);
        let compressor_options = options.compressor.options();
        let data_start = SUPERBLOCK_SIZE
            + compressor_options
                .as_ref()
                .map_or(0, |bytes| 2 + bytes.len() as u64);
        let inputs: Vec<Input<'_>> = layout
            .files
            .iter()
            .map(|&node| {
                let node = &layout.nodes[node];
                let Kind::File(content) = &node.entry.kind else {
                    unreachable!("Layout::files holds regular files only")
                };
                Input {
                    path: node.path,
                    entry: node.entry,
                    content,
                }
            })
            .collect();
        let settings = Settings {
            compressor: options.compressor,
            block_size,
            threads,
            dest,
        };
        let data = data::write_data(&inputs, &settings, file, data_start)?;

        let mut compressor =
            BlockCompressor::new(options.compressor, block_size).map_err(Error::output(dest))?;
        let tables = inodes::write_tables(&layout, &data, block_size, &mut compressor)
            .map_err(Error::output(dest))?;

        let mut position = data.end;
        let put = |bytes: &[u8], position: &mut u64| -> Result<u64> {
            let start = *position;
            file.write_all_at(bytes, start)
                .map_err(Error::output(dest))?;
            *position += bytes.len() as u64;
            Ok(start)
        };
        let inode_table_start = put(&tables.inode_table, &mut position)?;
        let directory_table_start = put(&tables.directory_table, &mut position)?;

        let mut records = Vec::with_capacity(data.fragments.len() * 16);
        for fragment in &data.fragments {
            records.extend_from_slice(&fragment.start.to_le_bytes());
            records.extend_from_slice(&fragment.size.to_le_bytes());
            records.extend_from_slice(&0u32.to_le_bytes());
        }
        let (bytes, fragment_table_start) =
            indexed_table(&mut compressor, &records, position).map_err(Error::output(dest))?;
        put(&bytes, &mut position)?;

        let records: Vec<u8> = tables.export.iter().flat_map(|r| r.to_le_bytes()).collect();
        let (bytes, export_table_start) =
            indexed_table(&mut compressor, &records, position).map_err(Error::output(dest))?;
        put(&bytes, &mut position)?;

        let records: Vec<u8> = layout.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        let (bytes, id_table_start) =
            indexed_table(&mut compressor, &records, position).map_err(Error::output(dest))?;
        put(&bytes, &mut position)?;

        let mut xattr_table_start = NO_TABLE;
        if !layout.xattrs.is_empty() {
            let (bytes, start) = layout
                .xattrs
                .table(&mut compressor, position)
                .map_err(Error::output(dest))?;
            put(&bytes, &mut position)?;
            xattr_table_start = start;
        }

        let bytes_used = position;
        let padded = bytes_used.div_ceil(PADDING) * PADDING;
        // Also drops anything a rewound duplicate left past the end.
        file.set_len(padded).map_err(output)?;

        let mut flags = FLAG_DUPLICATES | FLAG_EXPORTABLE;
        if layout.xattrs.is_empty() {
            flags |= FLAG_NO_XATTRS;
        }
        if compressor_options.is_some() {
            flags |= FLAG_COMPRESSOR_OPTIONS;
        }
        let root_mtime = tree
            .get(&crate::tree::TreePath::root())
            .map_or(0, |root| root.mtime.min(u32::MAX as u64) as u32);
        let mut superblock = Vec::with_capacity(SUPERBLOCK_SIZE as usize + 16);
        superblock.extend_from_slice(&MAGIC.to_le_bytes());
        superblock.extend_from_slice(&layout.inode_count.to_le_bytes());
        superblock.extend_from_slice(&root_mtime.to_le_bytes());
        superblock.extend_from_slice(&block_size.to_le_bytes());
        superblock.extend_from_slice(&(data.fragments.len() as u32).to_le_bytes());
        superblock.extend_from_slice(&options.compressor.id().to_le_bytes());
        superblock.extend_from_slice(&(block_size.trailing_zeros() as u16).to_le_bytes());
        superblock.extend_from_slice(&flags.to_le_bytes());
        superblock.extend_from_slice(&(layout.ids.len() as u16).to_le_bytes());
        superblock.extend_from_slice(&4u16.to_le_bytes());
        superblock.extend_from_slice(&0u16.to_le_bytes());
        for value in [
            tables.root,
            bytes_used,
            id_table_start,
            xattr_table_start,
            inode_table_start,
            directory_table_start,
            fragment_table_start,
            export_table_start,
        ] {
            superblock.extend_from_slice(&value.to_le_bytes());
        }
        debug_assert_eq!(superblock.len() as u64, SUPERBLOCK_SIZE);
        if let Some(bytes) = &compressor_options {
            superblock.extend_from_slice(&(bytes.len() as u16 | 0x8000).to_le_bytes());
            superblock.extend_from_slice(bytes);
        }
        file.write_all_at(&superblock, 0)
            .map_err(Error::output(dest))?;
        Ok(SquashfsSummary {
            bytes: padded,
            inodes: layout.inode_count,
            fragments: data.fragments.len() as u32,
        })
    })
}
