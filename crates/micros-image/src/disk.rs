//! Raw disk images: a partition table and partition contents (already
//! written images: a FAT boot volume, a squashfs root) at 1 MiB-aligned
//! offsets.
//!
//! ```text
//! 0        1 MiB            1 MiB-aligned        …          end
//! ├─ table ─┼─ partition 1 ──┼─ partition 2 ──────┼─ … ─┼─ (GPT backup, last 33 sectors)
//! ```
//!
//! Everything is checked first — at most 4 MBR partitions, every content
//! fits its partition, every partition fits the disk, LBAs fit the table —
//! and only then is the image created. Zero runs of the contents are not
//! written, so the image stays sparse on disk.
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::atomic::atomic_write;
use crate::error::{Error, Result};
use crate::partition::{
    self, Guid, PartitionType, Placed, GPT_ENTRY_SECTORS, GPT_NAME_UNITS, SECTOR,
};

const ALIGNMENT: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTable {
    Mbr,
    Gpt,
    /// GPT whose MBR lists the first partition too (a "hybrid MBR"), for
    /// firmware that reads only an MBR, as the Raspberry Pi's boot ROM
    /// does: it finds its FAT there, while U-Boot and Linux read the GPT.
    GptHybrid,
}

impl PartitionTable {
    fn is_gpt(self) -> bool {
        self != PartitionTable::Mbr
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// Used in errors, and as the GPT partition name (at most 36 UTF-16 units).
    pub name: String,
    pub kind: PartitionType,
    /// Bytes; `None` sizes the partition to its content, rounded up to 1 MiB.
    pub size: Option<u64>,
    /// An image file to copy in; `None` leaves the partition zeroed.
    pub content: Option<PathBuf>,
    pub bootable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLayout {
    pub table: PartitionTable,
    pub partitions: Vec<PartitionSpec>,
    /// Total bytes; `None` ends the disk 1 MiB after the last partition.
    pub size: Option<u64>,
    /// Mixed into every derived identifier (disk signature, GUIDs): e.g. a
    /// hash of the config and lock, so two systems' disks differ.
    pub seed: Vec<u8>,
}

/// Where each partition went, for the caller (a `root=PARTUUID=` line) and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSummary {
    pub bytes: u64,
    /// MBR: `xxxxxxxx-NN` PARTUUIDs; GPT: partition GUIDs.
    pub partition_uuids: Vec<String>,
    /// Byte offset of each partition.
    pub offsets: Vec<u64>,
}

/// Writes the disk image `dest`, atomically, after checking the whole layout.
pub fn write_disk(dest: &Path, layout: &DiskLayout) -> Result<DiskSummary> {
    let plan = plan(dest, layout)?;
    atomic_write(dest, |file| {
        file.set_len(plan.bytes).map_err(Error::output(dest))?;
        for (spec, placed) in layout.partitions.iter().zip(&plan.placed) {
            if let Some(content) = &spec.content {
                copy_sparse(
                    content,
                    file,
                    placed.first * SECTOR,
                    placed.sectors * SECTOR,
                    spec,
                    dest,
                )?;
            }
        }
        let total = plan.bytes / SECTOR;
        match layout.table {
            PartitionTable::Mbr => {
                let sector = partition::mbr(&plan.placed, plan.signature);
                file.write_all_at(&sector, 0).map_err(Error::output(dest))?;
            }
            PartitionTable::Gpt | PartitionTable::GptHybrid => {
                let hybrid = layout.table == PartitionTable::GptHybrid;
                for (lba, bytes) in
                    partition::gpt(&plan.placed, total, plan.disk_guid, &plan.guids, hybrid)
                {
                    file.write_all_at(&bytes, lba * SECTOR)
                        .map_err(Error::output(dest))?;
                }
            }
        }
        Ok(DiskSummary {
            bytes: plan.bytes,
            partition_uuids: plan.partition_uuids(layout.table),
            offsets: plan.placed.iter().map(|p| p.first * SECTOR).collect(),
        })
    })
}

/// The partition UUIDs `write_disk` will give `layout`, before any content
/// exists: they depend on the layout (seed, names, kinds, positions, sizes),
/// not on the contents, so a boot partition can name the root's PARTUUID.
/// Every partition needs an explicit size.
pub fn partition_uuids(layout: &DiskLayout) -> Result<Vec<String>> {
    let dest = Path::new("(preview)");
    if let Some(spec) = layout.partitions.iter().find(|p| p.size.is_none()) {
        return Err(Error::Partition {
            partition: spec.name.clone(),
            message: "its PARTUUID can be known in advance only with an explicit size".into(),
        });
    }
    Ok(plan(dest, &sizing_only(layout))?.partition_uuids(layout.table))
}

/// The size `write_disk` gives `layout` when `layout.size` is `None`: the
/// table, every partition at 1 MiB alignment and GPT's backup, rounded up
/// to 1 MiB. A caller that rounds a disk up further (an SD card to a power
/// of two) starts from this, not from its own sum of the partitions.
/// Contents are looked at only for partitions sized by them (they may not
/// exist yet for the others).
pub fn minimum_size(layout: &DiskLayout) -> Result<u64> {
    let unsized_disk = DiskLayout {
        size: None,
        ..sizing_only(layout)
    };
    Ok(plan(Path::new("(preview)"), &unsized_disk)?.bytes)
}

/// `layout` with only the contents that size their partitions: what the
/// previews plan with before the other contents exist.
fn sizing_only(layout: &DiskLayout) -> DiskLayout {
    DiskLayout {
        partitions: layout
            .partitions
            .iter()
            .map(|p| PartitionSpec {
                content: p.content.clone().filter(|_| p.size.is_none()),
                ..p.clone()
            })
            .collect(),
        ..layout.clone()
    }
}

struct Plan<'a> {
    placed: Vec<Placed<'a>>,
    bytes: u64,
    signature: u32,
    disk_guid: Guid,
    guids: Vec<Guid>,
}

impl Plan<'_> {
    /// MBR: `xxxxxxxx-NN`; GPT: the partition GUIDs.
    fn partition_uuids(&self, table: PartitionTable) -> Vec<String> {
        match table {
            PartitionTable::Mbr => (1..=self.placed.len())
                .map(|number| format!("{:08x}-{number:02x}", self.signature))
                .collect(),
            PartitionTable::Gpt | PartitionTable::GptHybrid => self
                .guids
                .iter()
                .map(|g| g.to_string().to_lowercase())
                .collect(),
        }
    }
}

fn plan<'a>(dest: &Path, layout: &'a DiskLayout) -> Result<Plan<'a>> {
    let problem = |spec: &PartitionSpec, message: String| Error::Partition {
        partition: spec.name.clone(),
        message,
    };
    let limit = match layout.table {
        PartitionTable::Mbr => 4,
        PartitionTable::Gpt | PartitionTable::GptHybrid => partition::GPT_ENTRIES,
    };
    if layout.partitions.len() > limit {
        return Err(Error::InvalidOption {
            format: "disk",
            path: dest.to_owned(),
            message: format!(
                "{} partitions, but the partition table holds {limit}",
                layout.partitions.len()
            ),
        });
    }
    let mut placed = Vec::new();
    let mut next = ALIGNMENT;
    // What the layout says, hashed into every identifier.
    let mut description = layout.seed.clone();
    for spec in &layout.partitions {
        if layout.table.is_gpt() && spec.name.encode_utf16().count() > GPT_NAME_UNITS {
            return Err(problem(
                spec,
                format!("the name is longer than GPT's {GPT_NAME_UNITS} characters"),
            ));
        }
        let content_size = match &spec.content {
            Some(path) => std::fs::metadata(path)
                .map_err(|source| Error::Input {
                    path: path.clone(),
                    source,
                })?
                .len(),
            None => 0,
        };
        let size = match spec.size {
            Some(size) if size % SECTOR != 0 || size == 0 => {
                return Err(problem(
                    spec,
                    format!("size {size} is not a positive multiple of 512"),
                ))
            }
            Some(size) => size,
            None => content_size.div_ceil(ALIGNMENT).max(1) * ALIGNMENT,
        };
        if content_size > size {
            return Err(problem(
                spec,
                format!(
                    "its content {} is {content_size} bytes, larger than the partition's {size}",
                    spec.content.as_deref().unwrap_or(Path::new("")).display()
                ),
            ));
        }
        let first = next / SECTOR;
        let sectors = size / SECTOR;
        if layout.table == PartitionTable::Mbr && first + sectors > u32::MAX as u64 {
            return Err(problem(
                spec,
                "it ends past 2 TiB, beyond what MBR can address".into(),
            ));
        }
        description.extend_from_slice(spec.name.as_bytes());
        description.extend_from_slice(&[spec.kind.mbr, 0]);
        description.extend_from_slice(&first.to_le_bytes());
        description.extend_from_slice(&sectors.to_le_bytes());
        placed.push(Placed {
            name: &spec.name,
            kind: spec.kind,
            bootable: spec.bootable,
            first,
            sectors,
        });
        next = (next + size).div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    // GPT keeps its backup entries and header in the last 33 sectors.
    let trailer = match layout.table {
        PartitionTable::Mbr => 0,
        PartitionTable::Gpt | PartitionTable::GptHybrid => (GPT_ENTRY_SECTORS + 1) * SECTOR,
    };
    let needed = placed
        .last()
        .map_or(ALIGNMENT, |p| (p.first + p.sectors) * SECTOR)
        + trailer;
    let bytes = match layout.size {
        Some(size) if size % SECTOR != 0 => {
            return Err(Error::InvalidOption {
                format: "disk",
                path: dest.to_owned(),
                message: format!("disk size {size} is not a multiple of 512"),
            })
        }
        Some(size) if size < needed => {
            return Err(Error::ImageTooSmall {
                path: dest.to_owned(),
                message: format!("the partitions need {needed} bytes but the disk is {size}"),
            })
        }
        Some(size) => size,
        None => needed.div_ceil(ALIGNMENT) * ALIGNMENT,
    };
    if layout.table == PartitionTable::Mbr && bytes / SECTOR > u32::MAX as u64 + 1 {
        return Err(Error::InvalidOption {
            format: "disk",
            path: dest.to_owned(),
            message: "an MBR disk cannot be larger than 2 TiB".into(),
        });
    }
    description.extend_from_slice(&bytes.to_le_bytes());
    let signature_hash = partition::hash(&[b"mbr-signature", &description]);
    let signature = u32::from_le_bytes([
        signature_hash[0],
        signature_hash[1],
        signature_hash[2],
        signature_hash[3],
    ]);
    let disk_guid = Guid::derive(&[b"gpt-disk", &description]);
    let guids = (0..placed.len() as u32)
        .map(|index| Guid::derive(&[b"gpt-partition", &description, &index.to_le_bytes()]))
        .collect();
    Ok(Plan {
        placed,
        bytes,
        signature,
        disk_guid,
        guids,
    })
}

/// Copies `source` to `at`, skipping all-zero chunks (the new file reads
/// as zeros there already), and refusing a source that grew past `room`.
fn copy_sparse(
    source: &Path,
    out: &File,
    at: u64,
    room: u64,
    spec: &PartitionSpec,
    dest: &Path,
) -> Result<()> {
    let input = |source_error: io::Error| Error::Input {
        path: source.to_owned(),
        source: source_error,
    };
    let mut reader = File::open(source).map_err(input)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(input(err)),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        if offset + filled as u64 > room {
            return Err(Error::Partition {
                partition: spec.name.clone(),
                message: format!(
                    "{} grew past the partition's {room} bytes while being copied",
                    source.display()
                ),
            });
        }
        let chunk = &buffer[..filled];
        if chunk.iter().any(|&byte| byte != 0) {
            out.write_all_at(chunk, at + offset)
                .map_err(Error::output(dest))?;
        }
        offset += filled as u64;
    }
}
