//! The inode and directory tables.
//!
//! Inodes are written bottom-up (a directory's inode must know where its
//! listing is, and a listing must know its children's inodes), so inode
//! numbers are given in that same post-order and the root is numbered last.
//!
//! ```text
//! directory listing (in the directory table)
//! ┌─ header: count-1, inode block, base inode number ─┐  a new header when
//! │  entry: offset in block, number - base (i16),     │  256 entries, another
//! │         basic type, name length-1, name           │  inode block, a number
//! │  entry …                                          │  out of i16 range, or
//! └───────────────────────────────────────────────────┘  8 KiB since the last
//!                                                          index point
//! ```
//!
//! A directory whose listing spans metadata blocks gets an extended inode
//! with an index (byte offset, block, first name of each 8 KiB run), which
//! the kernel uses to skip straight to the right block on lookup.
use std::collections::HashMap;

use super::compressor::BlockCompressor;
use super::data::{DataArea, UNCOMPRESSED_BLOCK};
use super::metadata::{MetadataWriter, METADATA_SIZE};
use super::xattrs::XattrPlan;
use crate::error::{Error, Result};
use crate::tree::{Content, Entry, Kind, Tree, TreeError, TreePath};

const FORMAT: &str = "squashfs";
/// Longest name a squashfs directory entry holds (its size field is len-1,
/// and the kernel rejects more).
pub(crate) const MAX_NAME: usize = 256;
/// The kernel refuses symlink targets longer than a page.
const MAX_SYMLINK: usize = 4096;
const NO_XATTR: u32 = 0xFFFF_FFFF;
const NO_FRAGMENT: u32 = 0xFFFF_FFFF;

const DIR: u16 = 1;
const FILE: u16 = 2;
const SYMLINK: u16 = 3;
const BLOCK_DEVICE: u16 = 4;
const CHAR_DEVICE: u16 = 5;
const FIFO: u16 = 6;
const EXTENDED_DIR: u16 = 8;
const EXTENDED_FILE: u16 = 9;
/// Extended symlink, block device, char device and fifo: the basic type
/// plus 7, with an xattr index appended.
const EXTENDED_OFFSET: u16 = 7;

/// The tree as an arena: children by index, in name order.
pub(crate) struct Layout<'a> {
    pub(crate) nodes: Vec<Node<'a>>,
    /// Regular files in tree order; their position is their data id.
    pub(crate) files: Vec<usize>,
    /// Inode number of each node (hard links share their file's number).
    numbers: Vec<u32>,
    /// The node whose inode a node uses (itself, or a hard link's target).
    leaders: Vec<usize>,
    /// Names per hard-link group leader.
    links: HashMap<usize, u32>,
    pub(crate) inode_count: u32,
    pub(crate) ids: Vec<u32>,
    pub(crate) xattrs: XattrPlan,
}

pub(crate) struct Node<'a> {
    pub(crate) path: &'a TreePath,
    pub(crate) entry: &'a Entry,
    children: Vec<usize>,
    /// Index into `Layout::files` for regular files.
    data: Option<usize>,
    /// The node's extended attribute set, if it has one.
    xattr: Option<u32>,
}

impl<'a> Layout<'a> {
    /// Builds the arena and checks every format limit, before any byte is
    /// written.
    pub(crate) fn new(tree: &'a Tree) -> Result<Self> {
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(tree.len());
        let mut index_of: HashMap<&'a TreePath, usize> = HashMap::with_capacity(tree.len());
        let mut open_dirs: Vec<usize> = Vec::new();
        let mut files = Vec::new();
        let mut id_set = std::collections::BTreeSet::new();
        let mut xattrs = XattrPlan::default();
        for (path, entry) in tree.iter() {
            let index = nodes.len();
            if !path.is_root() {
                open_dirs.truncate(path.depth());
                let parent = *open_dirs.last().ok_or_else(|| Error::Unsupported {
                    format: FORMAT,
                    path: path.clone(),
                    what: "an entry whose parent directory is missing".into(),
                })?;
                nodes[parent].children.push(index);
                check_name(path)?;
            }
            let mut data = None;
            match &entry.kind {
                Kind::Directory => open_dirs.push(index),
                Kind::File(_) => {
                    data = Some(files.len());
                    files.push(index);
                }
                Kind::Symlink(target) if target.len() > MAX_SYMLINK => {
                    return Err(Error::TooLarge {
                        format: FORMAT,
                        path: path.clone(),
                        what: "the symlink target length",
                        value: target.len() as u64,
                        max: MAX_SYMLINK as u64,
                    })
                }
                Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                    encode_device(path, *major, *minor)?;
                }
                _ => {}
            }
            let xattr = xattrs.add(path, entry)?;
            id_set.insert(entry.uid);
            id_set.insert(entry.gid);
            index_of.insert(path, index);
            nodes.push(Node {
                path,
                entry,
                children: Vec::new(),
                data,
                xattr,
            });
        }
        if id_set.len() > 65536 {
            return Err(Error::ImageTooSmall {
                path: "/".into(),
                message: format!(
                    "squashfs holds at most 65536 distinct uids and gids, the tree has {}",
                    id_set.len()
                ),
            });
        }

        let mut leaders: Vec<usize> = (0..nodes.len()).collect();
        let mut links: HashMap<usize, u32> = HashMap::new();
        for (index, node) in nodes.iter().enumerate() {
            match &node.entry.kind {
                Kind::Hardlink(target) => {
                    let leader = index_of
                        .get(target)
                        .copied()
                        .filter(|&leader| matches!(nodes[leader].entry.kind, Kind::File(_)))
                        .ok_or_else(|| TreeError::DanglingHardlink {
                            path: node.path.clone(),
                            origin: node.entry.origin.to_string(),
                            target: target.clone(),
                        })?;
                    leaders[index] = leader;
                    *links.entry(leader).or_insert(1) += 1;
                }
                Kind::File(_) => {
                    links.entry(index).or_insert(1);
                }
                _ => {}
            }
        }

        let mut layout = Layout {
            numbers: vec![0; nodes.len()],
            nodes,
            files,
            leaders,
            links,
            inode_count: 0,
            ids: id_set.into_iter().collect(),
            xattrs,
        };
        if !layout.nodes.is_empty() {
            layout.number(0);
        }
        Ok(layout)
    }

    /// Post-order numbering, the order `write_directory` writes inodes in.
    fn number(&mut self, dir: usize) {
        for position in 0..self.nodes[dir].children.len() {
            let child = self.nodes[dir].children[position];
            if self.nodes[child].entry.is_dir() {
                self.number(child);
            } else {
                let leader = self.leaders[child];
                if self.numbers[leader] == 0 {
                    self.inode_count += 1;
                    self.numbers[leader] = self.inode_count;
                }
                self.numbers[child] = self.numbers[leader];
            }
        }
        self.inode_count += 1;
        self.numbers[dir] = self.inode_count;
    }
}

fn check_name(path: &TreePath) -> Result<()> {
    let length = path.name().len();
    if length > MAX_NAME {
        return Err(Error::NameTooLong {
            format: FORMAT,
            path: path.clone(),
            length,
            max: MAX_NAME,
        });
    }
    Ok(())
}

/// The kernel's `new_encode_dev`: 12 bits of major, 20 of minor.
fn encode_device(path: &TreePath, major: u32, minor: u32) -> Result<u32> {
    if major >= 1 << 12 {
        return Err(Error::TooLarge {
            format: FORMAT,
            path: path.clone(),
            what: "the device major number",
            value: major as u64,
            max: (1 << 12) - 1,
        });
    }
    if minor >= 1 << 20 {
        return Err(Error::TooLarge {
            format: FORMAT,
            path: path.clone(),
            what: "the device minor number",
            value: minor as u64,
            max: (1 << 20) - 1,
        });
    }
    Ok((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

pub(crate) struct Tables {
    pub(crate) inode_table: Vec<u8>,
    pub(crate) directory_table: Vec<u8>,
    pub(crate) root: u64,
    /// Inode reference of each inode number - 1 (the NFS export table).
    pub(crate) export: Vec<u64>,
}

pub(crate) fn write_tables(
    layout: &Layout<'_>,
    data: &DataArea,
    block_size: u32,
    compressor: &mut BlockCompressor,
) -> std::io::Result<Tables> {
    let ids: HashMap<u32, u16> = layout
        .ids
        .iter()
        .enumerate()
        .map(|(index, &id)| (id, index as u16))
        .collect();
    let mut writer = TableWriter {
        layout,
        data,
        block_size,
        ids,
        inodes: MetadataWriter::new(),
        directories: MetadataWriter::new(),
        references: vec![None; layout.nodes.len()],
        export: vec![0; layout.inode_count as usize],
    };
    let root = writer.write_directory(compressor, 0, layout.inode_count + 1)?;
    Ok(Tables {
        inode_table: writer.inodes.finish(compressor)?,
        directory_table: writer.directories.finish(compressor)?,
        root,
        export: writer.export,
    })
}

struct TableWriter<'l, 'a> {
    layout: &'l Layout<'a>,
    data: &'l DataArea,
    block_size: u32,
    ids: HashMap<u32, u16>,
    inodes: MetadataWriter,
    directories: MetadataWriter,
    /// Inode reference per leader node, once written.
    references: Vec<Option<u64>>,
    export: Vec<u64>,
}

struct Listed<'a> {
    name: &'a str,
    reference: u64,
    number: u32,
    kind: u16,
}

impl TableWriter<'_, '_> {
    fn write_directory(
        &mut self,
        compressor: &mut BlockCompressor,
        dir: usize,
        parent_number: u32,
    ) -> std::io::Result<u64> {
        let layout = self.layout;
        let number = layout.numbers[dir];
        let mut listed = Vec::with_capacity(layout.nodes[dir].children.len());
        let mut subdirectories = 0u32;
        for &child in &layout.nodes[dir].children {
            let node = &layout.nodes[child];
            let (reference, kind) = if node.entry.is_dir() {
                subdirectories += 1;
                (self.write_directory(compressor, child, number)?, DIR)
            } else {
                let leader = layout.leaders[child];
                let reference = match self.references[leader] {
                    Some(reference) => reference,
                    None => {
                        let reference = self.write_leaf(compressor, leader)?;
                        self.references[leader] = Some(reference);
                        reference
                    }
                };
                (reference, basic_type(&layout.nodes[leader].entry.kind))
            };
            listed.push(Listed {
                name: node.path.name(),
                reference,
                number: layout.numbers[child],
                kind,
            });
        }

        let (listing, index) = build_listing(&listed);
        let (start_block, start_offset) = self.directories.position();
        let mut index_blocks = Vec::with_capacity(index.len());
        let mut written = 0usize;
        for point in &index {
            self.directories
                .write(compressor, &listing[written..point.offset])?;
            written = point.offset;
            index_blocks.push(self.directories.position().0);
        }
        self.directories.write(compressor, &listing[written..])?;

        let node = &layout.nodes[dir];
        let reference = self.inodes.reference();
        let file_size = listing.len() as u32 + 3;
        let nlink = 2 + subdirectories;
        let mut inode = Vec::with_capacity(40);
        if file_size > u16::MAX as u32 || !index.is_empty() || node.xattr.is_some() {
            self.header(&mut inode, EXTENDED_DIR, node.entry, number);
            put32(&mut inode, nlink);
            put32(&mut inode, file_size);
            put32(&mut inode, start_block);
            put32(&mut inode, parent_number);
            put16(&mut inode, index.len() as u16);
            put16(&mut inode, start_offset);
            put32(&mut inode, node.xattr.unwrap_or(NO_XATTR));
            for (point, block) in index.iter().zip(index_blocks) {
                put32(&mut inode, point.offset as u32);
                put32(&mut inode, block);
                put32(&mut inode, point.name.len() as u32 - 1);
                inode.extend_from_slice(point.name.as_bytes());
            }
        } else {
            self.header(&mut inode, DIR, node.entry, number);
            put32(&mut inode, start_block);
            put32(&mut inode, nlink);
            put16(&mut inode, file_size as u16);
            put16(&mut inode, start_offset);
            put32(&mut inode, parent_number);
        }
        self.inodes.write(compressor, &inode)?;
        self.export[number as usize - 1] = reference;
        Ok(reference)
    }

    fn write_leaf(
        &mut self,
        compressor: &mut BlockCompressor,
        leader: usize,
    ) -> std::io::Result<u64> {
        let node = &self.layout.nodes[leader];
        let number = self.layout.numbers[leader];
        let reference = self.inodes.reference();
        let mut inode = Vec::with_capacity(64);
        match &node.entry.kind {
            Kind::File(content) => self.file_inode(&mut inode, leader, content, number),
            Kind::Symlink(target) => {
                self.header(
                    &mut inode,
                    kind_for(SYMLINK, node.xattr),
                    node.entry,
                    number,
                );
                put32(&mut inode, 1);
                put32(&mut inode, target.len() as u32);
                inode.extend_from_slice(target.as_bytes());
            }
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                let kind = kind_for(basic_type(&node.entry.kind), node.xattr);
                self.header(&mut inode, kind, node.entry, number);
                put32(&mut inode, 1);
                // Checked in `Layout::new`.
                put32(
                    &mut inode,
                    encode_device(node.path, *major, *minor).unwrap_or(0),
                );
            }
            Kind::Fifo => {
                self.header(&mut inode, kind_for(FIFO, node.xattr), node.entry, number);
                put32(&mut inode, 1);
            }
            Kind::Directory | Kind::Hardlink(_) => {
                unreachable!("directories and hard links have no leaf inode of their own")
            }
        }
        // Extended symlink, device and fifo inodes end with the xattr index.
        if let (Some(xattr), false) = (node.xattr, matches!(node.entry.kind, Kind::File(_))) {
            put32(&mut inode, xattr);
        }
        self.inodes.write(compressor, &inode)?;
        self.export[number as usize - 1] = reference;
        Ok(reference)
    }

    fn file_inode(&self, inode: &mut Vec<u8>, leader: usize, content: &Content, number: u32) {
        let node = &self.layout.nodes[leader];
        let placed = &self.data.files[node.data.unwrap_or(0)];
        let size = content.len();
        let nlink = self.layout.links.get(&leader).copied().unwrap_or(1);
        let (fragment, offset) = placed.fragment.unwrap_or((NO_FRAGMENT, 0));
        if nlink > 1
            || size > u32::MAX as u64
            || placed.start > u32::MAX as u64
            || placed.sparse > 0
            || node.xattr.is_some()
        {
            self.header(inode, EXTENDED_FILE, node.entry, number);
            put64(inode, placed.start);
            put64(inode, size);
            put64(inode, placed.sparse);
            put32(inode, nlink);
            put32(inode, fragment);
            put32(inode, offset);
            put32(inode, node.xattr.unwrap_or(NO_XATTR));
        } else {
            self.header(inode, FILE, node.entry, number);
            put32(inode, placed.start as u32);
            put32(inode, fragment);
            put32(inode, offset);
            put32(inode, size as u32);
        }
        debug_assert_eq!(
            placed.blocks.len() as u64,
            if placed.fragment.is_some() {
                size / self.block_size as u64
            } else {
                size.div_ceil(self.block_size as u64)
            }
        );
        for &block in &placed.blocks {
            debug_assert!(block & !(UNCOMPRESSED_BLOCK | (UNCOMPRESSED_BLOCK - 1)) == 0);
            put32(inode, block);
        }
    }

    fn header(&self, inode: &mut Vec<u8>, kind: u16, entry: &Entry, number: u32) {
        put16(inode, kind);
        // Permission bits only (mksquashfs' SQUASHFS_MODE): the type is the
        // inode type, and current kernels reject type bits here.
        put16(inode, (entry.mode & 0o7777) as u16);
        put16(inode, self.ids.get(&entry.uid).copied().unwrap_or(0));
        put16(inode, self.ids.get(&entry.gid).copied().unwrap_or(0));
        put32(inode, entry.mtime.min(u32::MAX as u64) as u32);
        put32(inode, number);
    }
}

/// The extended inode type when the node carries extended attributes.
fn kind_for(basic: u16, xattr: Option<u32>) -> u16 {
    match xattr {
        Some(_) => basic + EXTENDED_OFFSET,
        None => basic,
    }
}

fn basic_type(kind: &Kind) -> u16 {
    match kind {
        Kind::Directory => DIR,
        Kind::File(_) | Kind::Hardlink(_) => FILE,
        Kind::Symlink(_) => SYMLINK,
        Kind::BlockDevice { .. } => BLOCK_DEVICE,
        Kind::CharDevice { .. } => CHAR_DEVICE,
        Kind::Fifo => FIFO,
    }
}

struct IndexPoint<'a> {
    /// Byte offset of a header inside the listing.
    offset: usize,
    name: &'a str,
}

/// Encodes a directory listing, with headers split as mksquashfs splits
/// them (see the module docs), and the index points of a long listing.
fn build_listing<'a>(entries: &[Listed<'a>]) -> (Vec<u8>, Vec<IndexPoint<'a>>) {
    let mut listing = Vec::new();
    let mut index = Vec::new();
    let mut header_at: Option<usize> = None;
    let mut count = 0u32;
    let mut header_block = 0u32;
    let mut base = 0u32;
    let mut index_point = 0usize;
    for entry in entries {
        let block = (entry.reference >> 16) as u32;
        let entry_size = 8 + entry.name.len();
        let delta = entry.number as i64 - base as i64;
        let run_too_long = listing.len() + entry_size - index_point > METADATA_SIZE;
        let new_header = match header_at {
            None => true,
            Some(_) => {
                count == 256
                    || block != header_block
                    || !(i16::MIN as i64..=i16::MAX as i64).contains(&delta)
                    || run_too_long
            }
        };
        if new_header {
            if let Some(at) = header_at {
                listing[at..at + 4].copy_from_slice(&(count - 1).to_le_bytes());
                if run_too_long {
                    index.push(IndexPoint {
                        offset: listing.len(),
                        name: entry.name,
                    });
                    index_point = listing.len();
                }
            }
            header_at = Some(listing.len());
            count = 0;
            header_block = block;
            base = entry.number;
            put32(&mut listing, 0);
            put32(&mut listing, block);
            put32(&mut listing, base);
        }
        put16(&mut listing, (entry.reference & 0xffff) as u16);
        put16(
            &mut listing,
            (entry.number as i64 - base as i64) as i16 as u16,
        );
        put16(&mut listing, entry.kind);
        put16(&mut listing, entry.name.len() as u16 - 1);
        listing.extend_from_slice(entry.name.as_bytes());
        count += 1;
    }
    if let Some(at) = header_at {
        listing[at..at + 4].copy_from_slice(&(count - 1).to_le_bytes());
    }
    (listing, index)
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}
