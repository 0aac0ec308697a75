//! A small ext2 formatter for the data partition, which the disk image ships
//! blank: stage 1 formats it on first boot (there is no `mkfs` in the
//! initrd) and the kernel's ext4 driver mounts it. Pure: [`format`] returns
//! the regions to write, and the caller writes them.
//!
//! The filesystem is what `mke2fs -t ext2 -I 256 -O
//! none,filetype,sparse_super,large_file` makes, minus its randomness and
//! clock: revision 1, 256-byte inodes, no journal, every timestamp 0, the
//! UUID and label given, the directory hash seed derived from the UUID. The
//! same inputs give the same bytes.
//!
//! ```text
//! device (blocks of 4 KiB; 1 KiB below 16 MiB, where block 0 is the
//! │       boot block and the groups start at block 1)
//! ├── bytes 0..1024        zeros (boot block)
//! ├── bytes 1024..2048     the primary superblock
//! └── groups of 8 × block-size blocks (128 MiB; the last one may be shorter)
//!     ├── superblock copy           only in groups 0, 1 and powers of 3, 5, 7
//!     ├── group descriptor table    beside each superblock; 32 bytes a group
//!     ├── block bitmap              1 block
//!     ├── inode bitmap              1 block
//!     ├── inode table               inodes per group × 256 bytes, zeroed
//!     │                             (group 0: inodes 1-10 reserved, 2 is /,
//!     │                             11 is /lost+found)
//!     └── data blocks               group 0 starts with / and /lost+found
//! ```
//!
//! The plan writes every block the filesystem relies on, so the device may
//! hold old bytes anywhere else. Zeroed inode tables are not allocated: a
//! [`Write`] ends with a count of zero bytes.
use alloc::{borrow::ToOwned, string::String, vec, vec::Vec};

/// The smallest device [`format`] accepts.
pub const MIN_SIZE: u64 = 1 << 20;
/// Below this, blocks are 1 KiB, as mke2fs does for small filesystems:
/// 4 KiB blocks would spend a larger share of a tiny device on metadata.
const SMALL_SIZE: u64 = 16 << 20;
/// Below this, one inode per 4 KiB (mke2fs's "small" type); from it on, one
/// per 16 KiB (its default), which keeps the inode tables that stage 1 must
/// zero at 1/64 of the device.
const MANY_INODES_SIZE: u64 = 512 << 20;

const SUPERBLOCK_OFFSET: usize = 1024;
const SUPERBLOCK_SIZE: usize = 1024;
const MAGIC: u16 = 0xEF53;
const INODE_SIZE: u32 = 256;
const DESCRIPTOR_SIZE: u32 = 32;
const ROOT_INODE: u32 = 2;
/// The first inode that is not reserved; mke2fs gives it to lost+found.
const LOST_AND_FOUND_INODE: u32 = 11;
/// A last group with fewer blocks than its metadata plus this is dropped,
/// as mke2fs does: it would hold almost nothing.
const LAST_GROUP_SLACK: u32 = 50;

/// One region of the plan: `bytes` at `offset`, then `zeros` zero bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// Zero bytes that follow `bytes` (inode tables), counted instead of
    /// allocated: a 4 GiB partition has 64 MiB of them.
    pub zeros: u64,
}

impl Write {
    /// The offset just past the region.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64 + self.zeros
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    TooSmall { size: u64 },
    TooLarge { size: u64 },
    LabelTooLong { label: String },
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::TooSmall { size } => write!(
                f,
                "the device is {size} bytes; an ext2 filesystem needs at least {MIN_SIZE} (1 MiB)"
            ),
            FormatError::TooLarge { size } => write!(
                f,
                "the device is {size} bytes; ext2 without 64-bit block numbers holds at most 16 TiB"
            ),
            FormatError::LabelTooLong { label } => write!(
                f,
                "the label `{label}` is {} bytes; an ext2 label holds at most 16",
                label.len()
            ),
        }
    }
}

impl core::error::Error for FormatError {}

/// The regions to write onto a device of `size_bytes` to make an empty ext2
/// filesystem, in order of offset; they do not overlap and stay within the
/// first `size_bytes`.
///
/// The first region is the boot block and the primary superblock, the only
/// one holding the magic [`has_ext_magic`] looks for: a caller that writes
/// it last, after the others are on the disk, never leaves a half-made
/// filesystem that looks complete.
pub fn format(size_bytes: u64, uuid: [u8; 16], label: &str) -> Result<Vec<Write>, FormatError> {
    if label.len() > 16 {
        return Err(FormatError::LabelTooLong {
            label: label.to_owned(),
        });
    }
    let layout = Layout::new(size_bytes)?;
    let block_size = layout.block_size as usize;
    let block_offset = |block: u32| u64::from(block) * u64::from(layout.block_size);

    // Block 0 (or blocks 0-1 with 1 KiB blocks): zeros, then the superblock.
    let mut start = vec![0; block_size.max(SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE)];
    start[SUPERBLOCK_OFFSET..][..SUPERBLOCK_SIZE]
        .copy_from_slice(&superblock(&layout, uuid, label, 0));
    let mut plan = vec![Write {
        offset: 0,
        bytes: start,
        zeros: 0,
    }];

    let descriptors = descriptor_table(&layout);
    for group in 0..layout.groups {
        // Everything from the group's start to the end of its inode table
        // is contiguous: one region per group.
        let mut bytes = Vec::new();
        let mut first_block = layout.group_start(group);
        if layout.has_superblock(group) {
            if group == 0 {
                first_block += 1; // The primary superblock is written above.
            } else {
                bytes.extend_from_slice(&superblock(&layout, uuid, label, group));
                bytes.resize(block_size, 0);
            }
            bytes.extend_from_slice(&descriptors);
        }
        bytes.extend_from_slice(&layout.block_bitmap(group));
        bytes.extend_from_slice(&layout.inode_bitmap(group));
        let table = u64::from(layout.inode_table_blocks) * u64::from(layout.block_size);
        let zeros = if group == 0 {
            let head = reserved_inodes(&layout);
            bytes.extend_from_slice(&head);
            table - head.len() as u64
        } else {
            table
        };
        plan.push(Write {
            offset: block_offset(first_block),
            bytes,
            zeros,
        });
    }

    plan.push(Write {
        offset: block_offset(layout.root_directory_block()),
        bytes: directory_blocks(&layout),
        zeros: 0,
    });
    plan.sort_by_key(|write| write.offset);
    Ok(plan)
}

/// Whether the bytes from a device's start hold an ext2/3/4 superblock.
pub fn has_ext_magic(first_2k: &[u8]) -> bool {
    first_2k.get(SUPERBLOCK_OFFSET + 56..SUPERBLOCK_OFFSET + 58) == Some(&MAGIC.to_le_bytes())
}

/// Whether every byte is zero (a device never written to).
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte == 0)
}

/// A UUID named by `name` (RFC 9562 version 8): the same name gives the same
/// UUID, so a filesystem's UUID can follow from the partition it is on.
pub fn uuid_from_name(name: &[u8]) -> [u8; 16] {
    let mut uuid = fnv1a_128(name).to_be_bytes();
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &byte in bytes {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    hash
}

/// Where everything goes, in blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    block_size: u32,
    blocks_count: u32,
    /// 1 with 1 KiB blocks (block 0 is the boot block), else 0.
    first_data_block: u32,
    blocks_per_group: u32,
    groups: u32,
    inodes_per_group: u32,
    inode_table_blocks: u32,
    descriptor_blocks: u32,
}

impl Layout {
    fn new(size_bytes: u64) -> Result<Layout, FormatError> {
        if size_bytes < MIN_SIZE {
            return Err(FormatError::TooSmall { size: size_bytes });
        }
        let block_size: u32 = if size_bytes < SMALL_SIZE { 1024 } else { 4096 };
        let mut blocks_count = u32::try_from(size_bytes / u64::from(block_size))
            .map_err(|_| FormatError::TooLarge { size: size_bytes })?;
        let bytes_per_inode: u64 = if size_bytes < MANY_INODES_SIZE {
            4096
        } else {
            16384
        };
        let first_data_block = u32::from(block_size == 1024);
        // One bitmap block covers a group, of blocks and of inodes alike.
        let blocks_per_group = 8 * block_size;
        // Whole inode-table blocks, and whole bytes of the inode bitmap.
        let inode_step = (block_size / INODE_SIZE).max(8);
        loop {
            let groups = (blocks_count - first_data_block).div_ceil(blocks_per_group);
            let inodes = u64::from(blocks_count) * u64::from(block_size) / bytes_per_inode;
            let inodes_per_group = inodes
                .div_ceil(u64::from(groups))
                .next_multiple_of(u64::from(inode_step))
                .clamp(16, u64::from(8 * block_size)) as u32;
            let layout = Layout {
                block_size,
                blocks_count,
                first_data_block,
                blocks_per_group,
                groups,
                inodes_per_group,
                inode_table_blocks: inodes_per_group * INODE_SIZE / block_size,
                descriptor_blocks: (groups * DESCRIPTOR_SIZE).div_ceil(block_size),
            };
            let last = groups - 1;
            let last_blocks = layout.group_blocks(last);
            if groups > 1 && last_blocks < layout.overhead(last) + LAST_GROUP_SLACK {
                blocks_count -= last_blocks;
                continue;
            }
            if layout.group_blocks(0) < layout.used_blocks(0) + LAST_GROUP_SLACK {
                return Err(FormatError::TooSmall { size: size_bytes });
            }
            return Ok(layout);
        }
    }

    fn inodes_count(&self) -> u32 {
        self.groups * self.inodes_per_group
    }

    fn group_start(&self, group: u32) -> u32 {
        self.first_data_block + group * self.blocks_per_group
    }

    /// The group's size in blocks: the last group may be shorter.
    fn group_blocks(&self, group: u32) -> u32 {
        (self.blocks_count - self.group_start(group)).min(self.blocks_per_group)
    }

    /// With `sparse_super`, groups 0, 1 and the powers of 3, 5 and 7 hold a
    /// copy of the superblock and the descriptor table.
    fn has_superblock(&self, group: u32) -> bool {
        fn is_power_of(mut number: u32, base: u32) -> bool {
            while number > 1 && number.is_multiple_of(base) {
                number /= base;
            }
            number == 1
        }
        group <= 1 || [3, 5, 7].iter().any(|&base| is_power_of(group, base))
    }

    fn block_bitmap_block(&self, group: u32) -> u32 {
        let copies = if self.has_superblock(group) {
            1 + self.descriptor_blocks
        } else {
            0
        };
        self.group_start(group) + copies
    }

    fn inode_table_block(&self, group: u32) -> u32 {
        self.block_bitmap_block(group) + 2
    }

    /// Blocks the group's own metadata takes, from its start.
    fn overhead(&self, group: u32) -> u32 {
        self.inode_table_block(group) + self.inode_table_blocks - self.group_start(group)
    }

    /// lost+found is made 16 KiB as mke2fs does (so e2fsck can reconnect
    /// files without allocating), within the 12 direct blocks.
    fn lost_and_found_blocks(&self) -> u32 {
        (16384 / self.block_size).min(12)
    }

    fn root_directory_block(&self) -> u32 {
        self.inode_table_block(0) + self.inode_table_blocks
    }

    /// Used blocks, all at the group's start: metadata, and in group 0 the
    /// two directories.
    fn used_blocks(&self, group: u32) -> u32 {
        let directories = if group == 0 {
            1 + self.lost_and_found_blocks()
        } else {
            0
        };
        self.overhead(group) + directories
    }

    fn free_blocks(&self, group: u32) -> u32 {
        self.group_blocks(group) - self.used_blocks(group)
    }

    fn used_inodes(&self, group: u32) -> u32 {
        if group == 0 {
            LOST_AND_FOUND_INODE
        } else {
            0
        }
    }

    fn free_inodes(&self, group: u32) -> u32 {
        self.inodes_per_group - self.used_inodes(group)
    }

    fn block_bitmap(&self, group: u32) -> Vec<u8> {
        let mut bitmap = vec![0; self.block_size as usize];
        set_bits(&mut bitmap, 0..self.used_blocks(group));
        // Bits past the end of a short last group are set, as e2fsck expects.
        set_bits(&mut bitmap, self.group_blocks(group)..8 * self.block_size);
        bitmap
    }

    fn inode_bitmap(&self, group: u32) -> Vec<u8> {
        let mut bitmap = vec![0; self.block_size as usize];
        set_bits(&mut bitmap, 0..self.used_inodes(group));
        set_bits(&mut bitmap, self.inodes_per_group..8 * self.block_size);
        bitmap
    }

    fn free_blocks_count(&self) -> u32 {
        (0..self.groups).map(|group| self.free_blocks(group)).sum()
    }

    fn free_inodes_count(&self) -> u32 {
        (0..self.groups).map(|group| self.free_inodes(group)).sum()
    }
}

fn set_bits(bitmap: &mut [u8], bits: core::ops::Range<u32>) {
    for bit in bits {
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
    }
}

fn put16(buffer: &mut [u8], offset: usize, value: u16) {
    buffer[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

fn put32(buffer: &mut [u8], offset: usize, value: u32) {
    buffer[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// The superblock, as group `group` holds it (only `s_block_group_nr`
/// differs between the copies).
fn superblock(layout: &Layout, uuid: [u8; 16], label: &str, group: u32) -> [u8; SUPERBLOCK_SIZE] {
    let mut block = [0; SUPERBLOCK_SIZE];
    let log_block_size = layout.block_size.trailing_zeros() - 10;
    put32(&mut block, 0, layout.inodes_count());
    put32(&mut block, 4, layout.blocks_count);
    // s_r_blocks_count: 5% for root, as mke2fs, so root's services can
    // still write when users have filled the partition.
    put32(&mut block, 8, layout.blocks_count / 20);
    put32(&mut block, 12, layout.free_blocks_count());
    put32(&mut block, 16, layout.free_inodes_count());
    put32(&mut block, 20, layout.first_data_block);
    put32(&mut block, 24, log_block_size);
    put32(&mut block, 28, log_block_size); // s_log_cluster_size: no bigalloc.
    put32(&mut block, 32, layout.blocks_per_group);
    put32(&mut block, 36, layout.blocks_per_group); // s_clusters_per_group
    put32(&mut block, 40, layout.inodes_per_group);
    // s_mtime, s_wtime (44, 48) and s_mnt_count (52) stay 0.
    put16(&mut block, 54, u16::MAX); // s_max_mnt_count = -1: no forced checks.
    put16(&mut block, 56, MAGIC);
    put16(&mut block, 58, 1); // s_state: clean.
    put16(&mut block, 60, 1); // s_errors: continue.
                              // s_lastcheck, s_checkinterval (64, 68) stay 0; s_creator_os (72) is 0,
                              // Linux.
    put32(&mut block, 76, 1); // s_rev_level: dynamic.
    put32(&mut block, 84, LOST_AND_FOUND_INODE); // s_first_ino
    put16(&mut block, 88, INODE_SIZE as u16);
    put16(&mut block, 90, group as u16); // s_block_group_nr
    put32(&mut block, 96, 0x0002); // incompat: filetype.
    put32(&mut block, 100, 0x0001 | 0x0002); // ro_compat: sparse_super, large_file.
    block[104..120].copy_from_slice(&uuid);
    block[120..120 + label.len()].copy_from_slice(label.as_bytes());
    let mut seed_name = b"ext2 directory hash seed ".to_vec();
    seed_name.extend_from_slice(&uuid);
    block[236..252].copy_from_slice(&fnv1a_128(&seed_name).to_be_bytes());
    block[252] = 1; // s_def_hash_version: half_md4, as mke2fs.
    put32(&mut block, 256, 0x0004 | 0x0008); // s_default_mount_opts: user_xattr, acl.
    put16(&mut block, 348, 32); // s_min_extra_isize
    put16(&mut block, 350, 32); // s_want_extra_isize
                                // s_flags: a fixed hash signedness, so every architecture agrees should
                                // dir_index be turned on later.
    put32(&mut block, 352, 0x0001);
    block
}

/// The group descriptor table, padded to whole blocks.
fn descriptor_table(layout: &Layout) -> Vec<u8> {
    let mut table = vec![0; (layout.descriptor_blocks * layout.block_size) as usize];
    for group in 0..layout.groups {
        let descriptor = &mut table[(group * DESCRIPTOR_SIZE) as usize..];
        let block_bitmap = layout.block_bitmap_block(group);
        put32(descriptor, 0, block_bitmap);
        put32(descriptor, 4, block_bitmap + 1);
        put32(descriptor, 8, layout.inode_table_block(group));
        put16(descriptor, 12, layout.free_blocks(group) as u16);
        put16(descriptor, 14, layout.free_inodes(group) as u16);
        put16(descriptor, 16, if group == 0 { 2 } else { 0 }); // directories
        put16(descriptor, 18, 0x0004); // bg_flags: inode table zeroed.
    }
    table
}

/// Inodes 1 to 11 as they start the inode table: the reserved ones zeroed,
/// the root directory and lost+found.
fn reserved_inodes(layout: &Layout) -> Vec<u8> {
    let size = INODE_SIZE as usize;
    let mut inodes = vec![0; LOST_AND_FOUND_INODE as usize * size];
    let root = layout.root_directory_block();
    let mut put = |number: u32, inode: [u8; INODE_SIZE as usize]| {
        inodes[(number as usize - 1) * size..][..size].copy_from_slice(&inode);
    };
    // `..` of lost+found is the root's third link.
    put(ROOT_INODE, directory_inode(layout, 0o755, 3, root, 1));
    put(
        LOST_AND_FOUND_INODE,
        directory_inode(layout, 0o700, 2, root + 1, layout.lost_and_found_blocks()),
    );
    inodes
}

fn directory_inode(
    layout: &Layout,
    permissions: u16,
    links: u16,
    first_block: u32,
    blocks: u32,
) -> [u8; INODE_SIZE as usize] {
    let mut inode = [0; INODE_SIZE as usize];
    put16(&mut inode, 0, 0o040000 | permissions);
    put32(&mut inode, 4, blocks * layout.block_size); // i_size
    put16(&mut inode, 26, links);
    put32(&mut inode, 28, blocks * layout.block_size / 512); // i_blocks, in sectors
    for index in 0..blocks {
        put32(&mut inode, 40 + 4 * index as usize, first_block + index);
    }
    put16(&mut inode, 128, 32); // i_extra_isize
    inode
}

/// The root directory's block, then lost+found's.
fn directory_blocks(layout: &Layout) -> Vec<u8> {
    let block_size = layout.block_size as usize;
    let mut blocks = vec![0; block_size * (1 + layout.lost_and_found_blocks() as usize)];
    let (root, lost_and_found) = blocks.split_at_mut(block_size);
    let mut at = 0;
    at += directory_entry(&mut root[at..], ROOT_INODE, b".", 12);
    at += directory_entry(&mut root[at..], ROOT_INODE, b"..", 12);
    directory_entry(
        &mut root[at..],
        LOST_AND_FOUND_INODE,
        b"lost+found",
        (block_size - at) as u16,
    );
    directory_entry(lost_and_found, LOST_AND_FOUND_INODE, b".", 12);
    directory_entry(
        &mut lost_and_found[12..],
        ROOT_INODE,
        b"..",
        (block_size - 12) as u16,
    );
    // lost+found's other blocks hold one empty entry spanning the block.
    for block in lost_and_found.chunks_mut(block_size).skip(1) {
        put16(block, 4, block_size as u16);
    }
    blocks
}

/// Writes a directory entry (with the `filetype` feature: every entry here
/// is a directory) and returns its record length.
fn directory_entry(buffer: &mut [u8], inode: u32, name: &[u8], record_length: u16) -> usize {
    put32(buffer, 0, inode);
    put16(buffer, 4, record_length);
    buffer[6] = name.len() as u8;
    buffer[7] = 2; // EXT2_FT_DIR
    buffer[8..8 + name.len()].copy_from_slice(name);
    usize::from(record_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const UUID: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    /// The plan written onto a device that held 0xA5 everywhere.
    fn image(size: u64) -> Vec<u8> {
        let mut device = vec![0xA5; size as usize];
        for write in format(size, UUID, "test").unwrap() {
            let start = write.offset as usize;
            device[start..][..write.bytes.len()].copy_from_slice(&write.bytes);
            let zeros = start + write.bytes.len();
            device[zeros..write.end() as usize].fill(0);
        }
        device
    }

    fn get16(bytes: &[u8], offset: usize) -> u16 {
        u16::from_le_bytes(bytes[offset..offset + 2].try_into().unwrap())
    }

    fn get32(bytes: &[u8], offset: usize) -> u32 {
        u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
    }

    fn count_zero_bits(bitmap: &[u8], bits: u32) -> u32 {
        (0..bits)
            .filter(|&bit| bitmap[(bit / 8) as usize] & (1 << (bit % 8)) == 0)
            .count() as u32
    }

    #[test]
    fn sizes_pick_block_size_and_groups() {
        let one = Layout::new(MIB).unwrap();
        assert_eq!(
            (one.block_size, one.blocks_count, one.groups),
            (1024, 1024, 1)
        );
        assert_eq!(one.first_data_block, 1);
        // 12 MiB of 1 KiB blocks: a full group of 8192 from block 1, then
        // the 4095 left.
        let twelve = Layout::new(12 * MIB).unwrap();
        assert_eq!((twelve.block_size, twelve.groups), (1024, 2));
        assert_eq!(twelve.group_blocks(1), 12 * 1024 - 1 - 8192);
        let small = Layout::new(16 * MIB).unwrap();
        assert_eq!(
            (small.block_size, small.blocks_count, small.groups),
            (4096, 4096, 1)
        );
        assert_eq!(small.first_data_block, 0);
        let big = Layout::new(200 * MIB).unwrap();
        assert_eq!((big.groups, big.group_blocks(1)), (2, 200 * 256 - 32768));
        let gib = Layout::new(1024 * MIB).unwrap();
        assert_eq!((gib.groups, gib.group_blocks(7)), (8, 32768));
        // 16 KiB an inode from 512 MiB: 8192 a 128 MiB group, 2 MiB of table.
        assert_eq!((gib.inodes_per_group, gib.inode_table_blocks), (8192, 512));
        // 4 KiB an inode below 512 MiB: 51200 inodes in two groups.
        assert_eq!(big.inodes_per_group, 25600);
    }

    #[test]
    fn a_last_group_too_short_for_its_metadata_is_dropped() {
        // 128 MiB + 40 blocks: a second group could not even hold its
        // bitmaps and inode table.
        let layout = Layout::new(128 * MIB + 40 * 4096).unwrap();
        assert_eq!((layout.groups, layout.blocks_count), (1, 32768));
        // With room to spare, the partial group stays.
        let layout = Layout::new(128 * MIB + 8 * MIB).unwrap();
        assert_eq!((layout.groups, layout.blocks_count), (2, 34816));
    }

    #[test]
    fn sparse_superblock_groups() {
        let layout = Layout::new(MIB).unwrap();
        let with: Vec<u32> = (0..400).filter(|&g| layout.has_superblock(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343]);
    }

    #[test]
    fn metadata_of_each_group_fits_where_the_descriptors_say() {
        let layout = Layout::new(3 * 1024 * MIB + 136 * MIB + MIB / 2).unwrap();
        assert_eq!(layout.groups, 26);
        assert_eq!(layout.block_bitmap_block(2), 2 * 32768);
        assert_eq!(layout.block_bitmap_block(25), 25 * 32768 + 2);
        for group in 0..layout.groups {
            assert!(layout.used_blocks(group) < layout.group_blocks(group));
            assert!(layout.block_bitmap_block(group) >= layout.group_start(group));
        }
    }

    #[test]
    fn free_counts_match_the_bitmaps() {
        for size in [MIB, 12 * MIB, 20 * MIB, 136 * MIB] {
            let layout = Layout::new(size).unwrap();
            let device = image(size);
            let superblock = &device[1024..2048];
            let descriptors = (layout.first_data_block as usize + 1) * layout.block_size as usize;
            let (mut free_blocks, mut free_inodes) = (0, 0);
            for group in 0..layout.groups as usize {
                let descriptor = &device[descriptors + group * 32..][..32];
                let block =
                    |offset| get32(descriptor, offset) as usize * layout.block_size as usize;
                let blocks =
                    count_zero_bits(&device[block(0)..], layout.group_blocks(group as u32));
                let inodes = count_zero_bits(&device[block(4)..], layout.inodes_per_group);
                assert_eq!(
                    u32::from(get16(descriptor, 12)),
                    blocks,
                    "{size}: group {group}"
                );
                assert_eq!(
                    u32::from(get16(descriptor, 14)),
                    inodes,
                    "{size}: group {group}"
                );
                // The padding past the group's end is all ones.
                assert_eq!(
                    count_zero_bits(&device[block(0)..], 8 * layout.block_size),
                    blocks
                );
                assert_eq!(
                    count_zero_bits(&device[block(4)..], 8 * layout.block_size),
                    inodes
                );
                free_blocks += blocks;
                free_inodes += inodes;
            }
            assert_eq!(get32(superblock, 12), free_blocks, "{size}");
            assert_eq!(get32(superblock, 16), free_inodes, "{size}");
            assert_eq!(get32(superblock, 16), layout.inodes_count() - 11);
        }
    }

    #[test]
    fn the_root_directory_lists_lost_and_found() {
        let device = image(20 * MIB);
        let layout = Layout::new(20 * MIB).unwrap();
        let inode_table = layout.inode_table_block(0) as usize * 4096;
        let root = &device[inode_table + 256..][..256];
        assert_eq!(get16(root, 0), 0o040755);
        assert_eq!(get16(root, 26), 3);
        let block = get32(root, 40) as usize * 4096;
        let entries = &device[block..block + 4096];
        assert_eq!(&entries[24..42], b"\x0b\0\0\0\xe8\x0f\x0a\x02lost+found");
        let lost_and_found = &device[inode_table + 10 * 256..][..256];
        assert_eq!(get16(lost_and_found, 0), 0o040700);
        assert_eq!(get32(lost_and_found, 4), 16384);
        // The other reserved inodes are zero despite the old bytes.
        assert!(is_blank(
            &device[inode_table + 2 * 256..inode_table + 10 * 256]
        ));
    }

    #[test]
    fn the_plan_stays_on_the_device_without_overlaps() {
        for size in [
            MIB,
            12 * MIB + 777,
            200 * MIB,
            3 * 1024 * MIB + 136 * MIB + 4095,
        ] {
            let plan = format(size, UUID, "data").unwrap();
            assert!(plan.windows(2).all(|pair| pair[0].end() <= pair[1].offset));
            assert!(plan.last().unwrap().end() <= size);
            // Only the first region holds the primary superblock.
            assert!(has_ext_magic(&plan[0].bytes));
            assert!(plan[1].offset >= 2048);
        }
    }

    #[test]
    fn backup_superblocks_name_their_group() {
        let device = image(12 * MIB);
        // 1 KiB blocks: group 1 starts at block 8193.
        let backup = &device[8193 * 1024..][..1024];
        assert_eq!(get16(backup, 56), MAGIC);
        assert_eq!(get16(backup, 90), 1);
        let primary = &device[1024..2048];
        assert_eq!(primary[..90], backup[..90]);
        assert_eq!(primary[92..], backup[92..]);
    }

    #[test]
    fn the_superblock_carries_label_uuid_and_policy() {
        let device = image(MIB);
        let superblock = &device[1024..2048];
        assert_eq!(&superblock[104..120], &UUID);
        assert_eq!(&superblock[120..136], b"test\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(get16(superblock, 54), 0xffff);
        assert_eq!(get32(superblock, 68), 0);
        assert_eq!(get16(superblock, 58), 1);
        assert!(!is_blank(&superblock[236..252]));
        assert!(is_blank(&device[..1024]));
    }

    #[test]
    fn labels_hold_sixteen_bytes() {
        assert!(format(MIB, UUID, "sixteen-bytes-ok").is_ok());
        let error = format(MIB, UUID, "seventeen-bytes-x").unwrap_err();
        assert_eq!(
            error,
            FormatError::LabelTooLong {
                label: "seventeen-bytes-x".into()
            }
        );
        assert!(error.to_string().contains("at most 16"));
    }

    #[test]
    fn refuses_devices_too_small_or_too_large() {
        assert_eq!(
            format(MIB - 1, UUID, ""),
            Err(FormatError::TooSmall { size: MIB - 1 })
        );
        assert!(format(0, UUID, "").is_err());
        assert!(matches!(
            format(16 << 40, UUID, ""),
            Err(FormatError::TooLarge { .. })
        ));
        // (The plan itself would hold 1 GiB of bitmaps: check the layout.)
        let largest = Layout::new((16 << 40) - 4096).unwrap();
        assert_eq!((largest.blocks_count, largest.groups), (u32::MAX, 131072));
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let size = 200 * MIB;
        assert_eq!(
            format(size, UUID, "data").unwrap(),
            format(size, UUID, "data").unwrap()
        );
        assert_ne!(
            format(size, UUID, "data").unwrap(),
            format(size, [7; 16], "data").unwrap()
        );
    }

    #[test]
    fn magic_and_blankness() {
        let mut start = vec![0; 2048];
        assert!(is_blank(&start));
        assert!(!has_ext_magic(&start));
        start[1080] = 0x53;
        start[1081] = 0xef;
        assert!(has_ext_magic(&start));
        assert!(!is_blank(&start));
        assert!(!has_ext_magic(&start[..1081]));
    }

    #[test]
    fn uuids_from_names_are_stable_version_8() {
        let uuid = uuid_from_name(b"PARTUUID=1234abcd-03");
        assert_eq!(uuid, uuid_from_name(b"PARTUUID=1234abcd-03"));
        assert_ne!(uuid, uuid_from_name(b"PARTUUID=1234abcd-02"));
        assert_eq!(uuid[6] >> 4, 8);
        assert_eq!(uuid[8] >> 6, 0b10);
    }
}
