//! FAT32 for boot partitions (the Raspberry Pi firmware reads only FAT).
//!
//! ```text
//! sector 0      boot sector: BPB, volume id (from a hash of the content),
//!               label, "FAT32   ", 0x55AA
//! sector 1      FSInfo: free cluster count, next free cluster
//! sectors 6, 7  backup copies of sectors 0 and 1
//! sector 32     FAT #1: one u32 per cluster (next cluster, 0x0FFFFFFF = end)
//!   + fat size  FAT #2: identical copy
//!   + fat size  data area: cluster 2 = root directory, then every
//!               directory and file in tree order, each in one contiguous run
//! ```
//!
//! Every timestamp is the entry's (normalised) mtime in UTC, so the image
//! depends on the tree alone. FAT has no owners, modes (beyond read-only),
//! symlinks or device nodes: a tree holding those is refused, naming the
//! path. Hard links become copies.
mod names;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::atomic::atomic_write;
use crate::error::{Error, Result};
use crate::tree::{Content, Entry, Kind, Tree, TreePath};
use names::{fat_name, long_entries, NameError};

const FORMAT: &str = "FAT32";
const SECTOR: u64 = 512;
const RESERVED_SECTORS: u32 = 32;
const FATS: u32 = 2;
/// Below this many clusters a volume is FAT16 by definition.
const MIN_CLUSTERS: u32 = 65525;
const MAX_CLUSTERS: u32 = 0x0FFF_FFF5;
const END_OF_CHAIN: u32 = 0x0FFF_FFFF;
const ATTR_READ_ONLY: u8 = 0x01;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// The volume size in bytes: a multiple of 512, large enough for FAT32's
    /// 65525 clusters (about 33 MiB with 512-byte clusters).
    pub size: u64,
    /// Up to 11 characters: A–Z, 0–9, space and `_-`.
    pub label: Option<String>,
    /// The partition's first LBA, recorded in the BPB as "hidden sectors".
    pub hidden_sectors: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatSummary {
    pub bytes: u64,
    pub volume_id: u32,
    pub cluster_size: u32,
    pub clusters: u32,
    pub free_clusters: u32,
}

struct Geometry {
    total_sectors: u32,
    sectors_per_cluster: u32,
    fat_sectors: u32,
    clusters: u32,
}

impl Geometry {
    fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster as u64 * SECTOR
    }

    fn cluster_offset(&self, cluster: u32) -> u64 {
        let data_start = RESERVED_SECTORS as u64 + FATS as u64 * self.fat_sectors as u64;
        (data_start + (cluster as u64 - 2) * self.sectors_per_cluster as u64) * SECTOR
    }
}

fn geometry(size: u64, dest: &Path) -> Result<Geometry> {
    let invalid = |message: String| Error::InvalidOption {
        format: FORMAT,
        path: dest.to_owned(),
        message,
    };
    if !size.is_multiple_of(SECTOR) {
        return Err(invalid(format!("size {size} is not a multiple of 512")));
    }
    let total_sectors = u32::try_from(size / SECTOR)
        .map_err(|_| invalid(format!("size {size} is more than FAT32's 2 TiB")))?;
    // mkfs.fat's defaults for FAT32.
    let sectors_per_cluster = match size {
        s if s < 260 << 20 => 1,
        s if s < 8 << 30 => 8,
        s if s < 16 << 30 => 16,
        s if s < 32 << 30 => 32,
        _ => 64,
    };
    // The FAT size formula from Microsoft's FAT specification: slightly
    // generous, never too small.
    let available = (total_sectors as u64).saturating_sub(RESERVED_SECTORS as u64);
    let per_fat_sector = (256 * sectors_per_cluster as u64 + FATS as u64) / 2;
    let fat_sectors = available.div_ceil(per_fat_sector) as u32;
    let data_sectors = available.saturating_sub(FATS as u64 * fat_sectors as u64);
    let clusters = (data_sectors / sectors_per_cluster as u64) as u32;
    if clusters < MIN_CLUSTERS {
        return Err(invalid(format!(
            "size {size} gives {clusters} clusters, fewer than FAT32's minimum of {MIN_CLUSTERS}; use at least 34 MiB"
        )));
    }
    if clusters > MAX_CLUSTERS {
        return Err(invalid(format!("size {size} gives too many clusters")));
    }
    Ok(Geometry {
        total_sectors,
        sectors_per_cluster,
        fat_sectors,
        clusters,
    })
}

/// A directory or file with its clusters.
struct Node<'a> {
    path: &'a TreePath,
    entry: &'a Entry,
    content: Option<&'a Content>,
    children: Vec<usize>,
    parent: usize,
    /// Directory entries this node's listing needs (for directories).
    listing: Vec<[u8; 32]>,
    first_cluster: u32,
    cluster_count: u32,
    short: [u8; 11],
    long: Option<Vec<u16>>,
}

/// Writes `tree` as a FAT32 volume at `dest`, atomically.
pub fn write_fat32(tree: &Tree, dest: &Path, options: &FatOptions) -> Result<FatSummary> {
    let geometry = geometry(options.size, dest)?;
    let label = volume_label(options.label.as_deref(), dest)?;
    let mut nodes = plan_nodes(tree)?;
    allocate(&mut nodes, &geometry, label.is_some(), dest)?;
    let used: u32 = nodes.iter().map(|node| node.cluster_count).sum();
    for index in 0..nodes.len() {
        if nodes[index].content.is_none() {
            nodes[index].listing = listing(&nodes, index, label.as_ref());
        }
    }

    atomic_write(dest, |file| {
        let output = Error::output(dest);
        file.set_len(options.size).map_err(output)?;
        let mut hash = Sha256::new();
        let mut fat = vec![0u32; geometry.clusters as usize + 2];
        fat[0] = 0x0FFF_FFF8;
        fat[1] = END_OF_CHAIN;
        for node in &nodes {
            for offset in 0..node.cluster_count {
                let cluster = node.first_cluster + offset;
                fat[cluster as usize] = if offset + 1 == node.cluster_count {
                    END_OF_CHAIN
                } else {
                    cluster + 1
                };
            }
            let at = if node.cluster_count > 0 {
                geometry.cluster_offset(node.first_cluster)
            } else {
                0
            };
            hash.update(node.path.to_string().as_bytes());
            match node.content {
                None => {
                    let bytes: Vec<u8> = node.listing.concat();
                    hash.update(&bytes);
                    file.write_all_at(&bytes, at).map_err(Error::output(dest))?;
                }
                Some(content) => {
                    write_content(file, at, node, content, &mut hash, dest)?;
                }
            }
        }
        let mut fat_bytes = Vec::with_capacity(fat.len() * 4);
        for value in &fat {
            fat_bytes.extend_from_slice(&value.to_le_bytes());
        }
        hash.update(&fat_bytes);
        for copy in 0..FATS as u64 {
            let at = (RESERVED_SECTORS as u64 + copy * geometry.fat_sectors as u64) * SECTOR;
            file.write_all_at(&fat_bytes, at)
                .map_err(Error::output(dest))?;
        }

        let digest = hash.finalize();
        let volume_id = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let free = geometry.clusters - used;
        let boot = boot_sector(&geometry, options.hidden_sectors, volume_id, label.as_ref());
        let info = fsinfo(free, used + 2);
        for base in [0u64, 6] {
            file.write_all_at(&boot, base * SECTOR)
                .map_err(Error::output(dest))?;
            file.write_all_at(&info, (base + 1) * SECTOR)
                .map_err(Error::output(dest))?;
        }
        Ok(FatSummary {
            bytes: options.size,
            volume_id,
            cluster_size: geometry.cluster_bytes() as u32,
            clusters: geometry.clusters,
            free_clusters: free,
        })
    })
}

fn volume_label(label: Option<&str>, dest: &Path) -> Result<Option<[u8; 11]>> {
    let Some(label) = label else { return Ok(None) };
    if label.is_empty()
        || label.len() > 11
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b" _-".contains(&b))
    {
        return Err(Error::InvalidOption {
            format: FORMAT,
            path: dest.to_owned(),
            message: format!(
                "volume label {label:?} must be 1–11 characters of A–Z, 0–9, space, `_` or `-`"
            ),
        });
    }
    let mut bytes = [b' '; 11];
    bytes[..label.len()].copy_from_slice(label.as_bytes());
    Ok(Some(bytes))
}

/// The arena of directories and files, with every name checked.
fn plan_nodes(tree: &Tree) -> Result<Vec<Node<'_>>> {
    let mut nodes: Vec<Node<'_>> = Vec::with_capacity(tree.len());
    let mut open_dirs: Vec<usize> = Vec::new();
    let mut used_names: Vec<BTreeSet<[u8; 11]>> = Vec::new();
    let mut folded_names: Vec<BTreeSet<String>> = Vec::new();
    for (path, entry) in tree.iter() {
        let content = match &entry.kind {
            Kind::Directory => None,
            Kind::File(content) => Some(content),
            Kind::Hardlink(target) => match tree.get(target).map(|e| &e.kind) {
                Some(Kind::File(content)) => Some(content),
                _ => {
                    return Err(crate::tree::TreeError::DanglingHardlink {
                        path: path.clone(),
                        origin: entry.origin.to_string(),
                        target: target.clone(),
                    }
                    .into())
                }
            },
            other => {
                return Err(Error::Unsupported {
                    format: FORMAT,
                    path: path.clone(),
                    what: other.describe().to_owned(),
                })
            }
        };
        if let Some(content) = content {
            if content.len() > u32::MAX as u64 {
                return Err(Error::TooLarge {
                    format: FORMAT,
                    path: path.clone(),
                    what: "the file size",
                    value: content.len(),
                    max: u32::MAX as u64,
                });
            }
        }
        let index = nodes.len();
        let (mut parent, mut short, mut long) = (0, [b' '; 11], None);
        if !path.is_root() {
            open_dirs.truncate(path.depth());
            parent = *open_dirs.last().ok_or_else(|| Error::Unsupported {
                format: FORMAT,
                path: path.clone(),
                what: "an entry whose parent directory is missing".into(),
            })?;
            if !folded_names[parent].insert(path.name().to_lowercase()) {
                return Err(Error::InvalidName {
                    format: FORMAT,
                    path: path.clone(),
                    reason: "another name in this directory differs only in case".into(),
                });
            }
            let name = fat_name(path.name(), &mut used_names[parent]).map_err(|err| match err {
                NameError::TooLong(length) => Error::NameTooLong {
                    format: FORMAT,
                    path: path.clone(),
                    length,
                    max: names::MAX_LONG,
                },
                NameError::Invalid(reason) => Error::InvalidName {
                    format: FORMAT,
                    path: path.clone(),
                    reason,
                },
            })?;
            short = name.short;
            long = name.long;
            nodes[parent].children.push(index);
        }
        if content.is_none() {
            open_dirs.push(index);
        }
        used_names.push(BTreeSet::new());
        folded_names.push(BTreeSet::new());
        nodes.push(Node {
            path,
            entry,
            content,
            children: Vec::new(),
            parent,
            listing: Vec::new(),
            first_cluster: 0,
            cluster_count: 0,
            short,
            long,
        });
    }
    Ok(nodes)
}

/// Directory entries in a listing: `.`/`..`, the label, LFN parts, short entries.
fn entry_count(nodes: &[Node<'_>], index: usize, label: bool) -> u64 {
    let node = &nodes[index];
    let mut count = if node.path.is_root() { label as u64 } else { 2 };
    for &child in &node.children {
        let long = nodes[child]
            .long
            .as_ref()
            .map_or(0, |l| l.len().div_ceil(13));
        count += 1 + long as u64;
    }
    count
}

/// Gives every directory and file one contiguous run of clusters, root first.
fn allocate(nodes: &mut [Node<'_>], geometry: &Geometry, label: bool, dest: &Path) -> Result<()> {
    let cluster = geometry.cluster_bytes();
    let mut next = 2u64;
    for index in 0..nodes.len() {
        let bytes = match nodes[index].content {
            Some(content) => content.len(),
            // A directory always owns at least one cluster.
            None => (entry_count(nodes, index, label) * 32).max(1),
        };
        let count = bytes.div_ceil(cluster);
        if next + count > geometry.clusters as u64 + 2 {
            return Err(Error::ImageTooSmall {
                path: dest.to_owned(),
                message: format!(
                    "{} does not fit: the FAT32 volume has {} clusters of {cluster} bytes",
                    nodes[index].path, geometry.clusters
                ),
            });
        }
        nodes[index].first_cluster = if count == 0 { 0 } else { next as u32 };
        nodes[index].cluster_count = count as u32;
        next += count;
    }
    Ok(())
}

fn listing(nodes: &[Node<'_>], index: usize, label: Option<&[u8; 11]>) -> Vec<[u8; 32]> {
    let node = &nodes[index];
    let mut entries = Vec::new();
    let (date, time) = dos_datetime(node.entry.mtime);
    if node.path.is_root() {
        if let Some(label) = label {
            entries.push(short_entry(label, ATTR_VOLUME_ID, 0, 0, date, time));
        }
    } else {
        entries.push(short_entry(
            b".          ",
            ATTR_DIRECTORY,
            node.first_cluster,
            0,
            date,
            time,
        ));
        // `..` of a first-level directory points at cluster 0, meaning root.
        let parent = &nodes[node.parent];
        let parent_cluster = if parent.path.is_root() {
            0
        } else {
            parent.first_cluster
        };
        let (date, time) = dos_datetime(parent.entry.mtime);
        entries.push(short_entry(
            b"..         ",
            ATTR_DIRECTORY,
            parent_cluster,
            0,
            date,
            time,
        ));
    }
    for &child in &node.children {
        let child = &nodes[child];
        if let Some(long) = &child.long {
            entries.extend(long_entries(long, &child.short));
        }
        let mut attributes = match child.content {
            None => ATTR_DIRECTORY,
            Some(_) => ATTR_ARCHIVE,
        };
        if child.entry.mode & 0o222 == 0 {
            attributes |= ATTR_READ_ONLY;
        }
        let size = child.content.map_or(0, |content| content.len() as u32);
        let (date, time) = dos_datetime(child.entry.mtime);
        entries.push(short_entry(
            &child.short,
            attributes,
            child.first_cluster,
            size,
            date,
            time,
        ));
    }
    entries
}

fn short_entry(
    name: &[u8; 11],
    attributes: u8,
    cluster: u32,
    size: u32,
    date: u16,
    time: u16,
) -> [u8; 32] {
    let mut entry = [0u8; 32];
    entry[..11].copy_from_slice(name);
    entry[11] = attributes;
    entry[14..16].copy_from_slice(&time.to_le_bytes());
    entry[16..18].copy_from_slice(&date.to_le_bytes());
    entry[18..20].copy_from_slice(&date.to_le_bytes());
    entry[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    entry[22..24].copy_from_slice(&time.to_le_bytes());
    entry[24..26].copy_from_slice(&date.to_le_bytes());
    entry[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    entry[28..32].copy_from_slice(&size.to_le_bytes());
    entry
}

/// Seconds since the epoch as a DOS (date, time), UTC, clamped to the
/// range FAT can express (1980–2107).
fn dos_datetime(seconds: u64) -> (u16, u16) {
    const MIN: u64 = 315_532_800; // 1980-01-01
    const MAX: u64 = 4_354_819_198; // 2107-12-31 23:59:58
    let seconds = seconds.clamp(MIN, MAX);
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = (((year - 1980) as u16) << 9) | ((month as u16) << 5) | day as u16;
    let time = ((of_day / 3600) as u16) << 11
        | (((of_day / 60) % 60) as u16) << 5
        | ((of_day % 60) / 2) as u16;
    (date, time)
}

fn write_content(
    file: &File,
    mut at: u64,
    node: &Node<'_>,
    content: &Content,
    hash: &mut Sha256,
    dest: &Path,
) -> Result<()> {
    let content_error = |source: io::Error| Error::Content {
        path: node.path.clone(),
        origin: node.entry.origin.to_string(),
        source,
    };
    let mut reader = content.reader().map_err(content_error)?;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut copied = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(content_error(err)),
        };
        copied += read as u64;
        if copied > content.len() {
            break;
        }
        hash.update(&buffer[..read]);
        file.write_all_at(&buffer[..read], at)
            .map_err(Error::output(dest))?;
        at += read as u64;
    }
    if copied != content.len() {
        return Err(content_error(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "expected {} bytes, found {copied}: the source changed",
                content.len()
            ),
        )));
    }
    Ok(())
}

fn boot_sector(
    geometry: &Geometry,
    hidden: u32,
    volume_id: u32,
    label: Option<&[u8; 11]>,
) -> [u8; 512] {
    let mut sector = [0u8; 512];
    sector[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    sector[3..11].copy_from_slice(b"MICROS  ");
    sector[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    sector[13] = geometry.sectors_per_cluster as u8;
    sector[14..16].copy_from_slice(&(RESERVED_SECTORS as u16).to_le_bytes());
    sector[16] = FATS as u8;
    sector[21] = 0xF8; // fixed disk
    sector[24..26].copy_from_slice(&63u16.to_le_bytes());
    sector[26..28].copy_from_slice(&255u16.to_le_bytes());
    sector[28..32].copy_from_slice(&hidden.to_le_bytes());
    sector[32..36].copy_from_slice(&geometry.total_sectors.to_le_bytes());
    sector[36..40].copy_from_slice(&geometry.fat_sectors.to_le_bytes());
    sector[44..48].copy_from_slice(&2u32.to_le_bytes()); // root cluster
    sector[48..50].copy_from_slice(&1u16.to_le_bytes()); // FSInfo sector
    sector[50..52].copy_from_slice(&6u16.to_le_bytes()); // backup boot sector
    sector[64] = 0x80;
    sector[66] = 0x29;
    sector[67..71].copy_from_slice(&volume_id.to_le_bytes());
    sector[71..82].copy_from_slice(label.unwrap_or(b"NO NAME    "));
    sector[82..90].copy_from_slice(b"FAT32   ");
    // Not bootable on a PC: the jump lands on an endless loop.
    sector[90..92].copy_from_slice(&[0xEB, 0xFE]);
    sector[510..512].copy_from_slice(&[0x55, 0xAA]);
    sector
}

fn fsinfo(free: u32, next_free: u32) -> [u8; 512] {
    let mut sector = [0u8; 512];
    sector[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    sector[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    sector[488..492].copy_from_slice(&free.to_le_bytes());
    sector[492..496].copy_from_slice(&next_free.to_le_bytes());
    sector[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
    sector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_dates() {
        // 2024-02-29 13:45:30 UTC
        let (date, time) = dos_datetime(1_709_214_330);
        assert_eq!(date, (44 << 9) | (2 << 5) | 29);
        assert_eq!(time, (13 << 11) | (45 << 5) | 15);
        // Before 1980 clamps to 1980-01-01 00:00.
        assert_eq!(dos_datetime(0), ((1 << 5) | 1, 0));
    }

    #[test]
    fn too_small_for_fat32_is_an_option_error() {
        let error = geometry(16 << 20, Path::new("boot.img")).err().unwrap();
        assert!(
            error.to_string().contains("fewer than FAT32's minimum"),
            "{error}"
        );
    }
}
