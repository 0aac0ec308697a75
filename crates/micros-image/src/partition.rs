//! Partition tables: MBR (the Raspberry Pi firmware reads only this) and
//! GPT, with every identifier derived from a hash of the layout.
//!
//! ```text
//! MBR                                   GPT
//! LBA 0  boot code, disk signature,     LBA 0      protective MBR (one 0xEE entry)
//!        4 × 16-byte entries, 0x55AA    LBA 1      header: GUID, CRC32s, LBAs
//!                                       LBA 2–33   128 × 128-byte entries
//!                                       …          partitions
//!                                       last-32…   backup entries
//!                                       last LBA   backup header
//! ```
use sha2::{Digest, Sha256};

pub(crate) const SECTOR: u64 = 512;
/// GPT entries: 128 of 128 bytes, 32 sectors.
pub(crate) const GPT_ENTRIES: usize = 128;
const GPT_ENTRY_SIZE: usize = 128;
pub(crate) const GPT_ENTRY_SECTORS: u64 = (GPT_ENTRIES * GPT_ENTRY_SIZE) as u64 / SECTOR;
pub(crate) const GPT_NAME_UNITS: usize = 36;

/// A GUID in its textual byte order (`12345678-9abc-…` → `12 34 56 78 9a …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// `0FC63DAF-8483-4772-8E79-3D69D8477DE4`, for the constants below:
    /// evaluated at compile time, a malformed literal fails the build. Not
    /// for text from outside (it has no error to return).
    pub(crate) const fn literal(text: &str) -> Guid {
        let text = text.as_bytes();
        let mut bytes = [0u8; 16];
        let mut index = 0;
        let mut position = 0;
        while position < text.len() {
            if text[position] == b'-' {
                position += 1;
                continue;
            }
            let high = hex_value(text[position]);
            let low = hex_value(text[position + 1]);
            bytes[index] = high << 4 | low;
            index += 1;
            position += 2;
        }
        assert!(index == 16, "a GUID has 16 bytes");
        Guid(bytes)
    }

    /// A version-8 (RFC 9562, "custom") GUID from a hash of `parts`: stable
    /// for the same inputs, different for different ones.
    pub fn derive(parts: &[&[u8]]) -> Guid {
        let digest = hash(parts);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0F) | 0x80;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Guid(bytes)
    }

    /// GPT stores the first three fields little-endian.
    pub(crate) fn to_disk(self) -> [u8; 16] {
        let b = self.0;
        [
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ]
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                write!(f, "-")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

const fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

pub(crate) fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// What a partition holds, in both tables' vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionType {
    pub mbr: u8,
    pub gpt: Guid,
}

impl PartitionType {
    /// FAT32 with LBA addressing: the Raspberry Pi boot partition.
    pub const FAT32: PartitionType = PartitionType {
        mbr: 0x0C,
        gpt: Guid::literal("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"),
    };
    pub const EFI_SYSTEM: PartitionType = PartitionType {
        mbr: 0xEF,
        gpt: Guid::literal("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
    };
    pub const LINUX: PartitionType = PartitionType {
        mbr: 0x83,
        gpt: Guid::literal("0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
    };
}

/// One partition's place on the disk, in sectors.
pub(crate) struct Placed<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: PartitionType,
    pub(crate) bootable: bool,
    pub(crate) first: u64,
    pub(crate) sectors: u64,
}

/// Cylinder/head/sector of an LBA for a 255-head, 63-sector geometry,
/// saturating at the largest CHS address as partitioning tools do.
fn chs(lba: u64) -> [u8; 3] {
    let cylinder = lba / (255 * 63);
    if cylinder > 1023 {
        return [254, 0xFF, 0xFF];
    }
    let head = (lba / 63) % 255;
    let sector = lba % 63 + 1;
    [
        head as u8,
        (sector as u8 & 0x3F) | ((cylinder >> 2) as u8 & 0xC0),
        cylinder as u8,
    ]
}

fn mbr_entry(status: u8, kind: u8, first: u64, sectors: u64) -> [u8; 16] {
    let mut entry = [0u8; 16];
    entry[0] = status;
    entry[1..4].copy_from_slice(&chs(first));
    entry[4] = kind;
    entry[5..8].copy_from_slice(&chs(first + sectors - 1));
    entry[8..12].copy_from_slice(&(first as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    entry
}

/// Sector 0 of an MBR disk. Limits (4 entries, 32-bit LBAs) are checked by
/// the caller before anything is written.
pub(crate) fn mbr(partitions: &[Placed<'_>], signature: u32) -> [u8; 512] {
    let mut sector = [0u8; 512];
    sector[440..444].copy_from_slice(&signature.to_le_bytes());
    for (index, partition) in partitions.iter().enumerate() {
        let status = if partition.bootable { 0x80 } else { 0 };
        let entry = mbr_entry(
            status,
            partition.kind.mbr,
            partition.first,
            partition.sectors,
        );
        sector[446 + index * 16..446 + index * 16 + 16].copy_from_slice(&entry);
    }
    sector[510..512].copy_from_slice(&[0x55, 0xAA]);
    sector
}

/// The GPT structures of a disk of `total` sectors: (LBA, bytes) pairs for
/// the protective MBR, both headers and both entry arrays. A `hybrid` MBR
/// lists the first partition first and protects only the sectors before
/// it (from LBA 1, which is what Linux and U-Boot look for).
pub(crate) fn gpt(
    partitions: &[Placed<'_>],
    total: u64,
    disk: Guid,
    unique: &[Guid],
    hybrid: bool,
) -> Vec<(u64, Vec<u8>)> {
    let last = total - 1;
    let mut entries = vec![0u8; GPT_ENTRIES * GPT_ENTRY_SIZE];
    for (index, partition) in partitions.iter().enumerate() {
        let entry = &mut entries[index * GPT_ENTRY_SIZE..(index + 1) * GPT_ENTRY_SIZE];
        entry[0..16].copy_from_slice(&partition.kind.gpt.to_disk());
        entry[16..32].copy_from_slice(&unique[index].to_disk());
        entry[32..40].copy_from_slice(&partition.first.to_le_bytes());
        entry[40..48].copy_from_slice(&(partition.first + partition.sectors - 1).to_le_bytes());
        // Bit 2: legacy BIOS bootable.
        let attributes: u64 = if partition.bootable { 1 << 2 } else { 0 };
        entry[48..56].copy_from_slice(&attributes.to_le_bytes());
        for (unit_index, unit) in partition
            .name
            .encode_utf16()
            .take(GPT_NAME_UNITS)
            .enumerate()
        {
            entry[56 + unit_index * 2..58 + unit_index * 2].copy_from_slice(&unit.to_le_bytes());
        }
    }
    let entries_crc = crc32fast::hash(&entries);
    let header = |current: u64, backup: u64, entries_lba: u64| -> Vec<u8> {
        let mut header = vec![0u8; SECTOR as usize];
        header[0..8].copy_from_slice(b"EFI PART");
        header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        header[12..16].copy_from_slice(&92u32.to_le_bytes());
        header[24..32].copy_from_slice(&current.to_le_bytes());
        header[32..40].copy_from_slice(&backup.to_le_bytes());
        header[40..48].copy_from_slice(&(2 + GPT_ENTRY_SECTORS).to_le_bytes());
        header[48..56].copy_from_slice(&(last - 1 - GPT_ENTRY_SECTORS).to_le_bytes());
        header[56..72].copy_from_slice(&disk.to_disk());
        header[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        header[80..84].copy_from_slice(&(GPT_ENTRIES as u32).to_le_bytes());
        header[84..88].copy_from_slice(&(GPT_ENTRY_SIZE as u32).to_le_bytes());
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&header[..92]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    };
    let mut protective = [0u8; 512];
    let mut entry = [0u8; 16];
    entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    entry[4] = 0xEE;
    entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    entry[8..12].copy_from_slice(&1u32.to_le_bytes());
    entry[12..16].copy_from_slice(&((total - 1).min(u32::MAX as u64) as u32).to_le_bytes());
    match partitions.first().filter(|_| hybrid) {
        Some(first) => {
            let status = if first.bootable { 0x80 } else { 0 };
            protective[446..462].copy_from_slice(&mbr_entry(
                status,
                first.kind.mbr,
                first.first,
                first.sectors,
            ));
            protective[462..478].copy_from_slice(&mbr_entry(0, 0xEE, 1, first.first - 1));
        }
        None => protective[446..462].copy_from_slice(&entry),
    }
    protective[510..512].copy_from_slice(&[0x55, 0xAA]);
    let backup_entries = last - GPT_ENTRY_SECTORS;
    vec![
        (0, protective.to_vec()),
        (1, header(1, last, 2)),
        (2, entries.clone()),
        (backup_entries, entries),
        (last, header(last, 1, backup_entries)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_print_parse_and_store_mixed_endian() {
        let guid = PartitionType::LINUX.gpt;
        assert_eq!(guid.to_string(), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(&guid.to_disk()[..4], &[0xAF, 0x3D, 0xC6, 0x0F]);
        let derived = Guid::derive(&[b"disk", b"seed"]);
        assert_eq!(derived, Guid::derive(&[b"disk", b"seed"]));
        assert_ne!(derived, Guid::derive(&[b"disks", b"eed"]));
        assert_eq!(derived.0[6] >> 4, 8, "version 8");
        assert_eq!(derived.0[8] >> 6, 0b10, "RFC variant");
    }

    #[test]
    fn chs_saturates_past_1024_cylinders() {
        assert_eq!(chs(2048), [32, 33, 0]);
        assert_eq!(chs(100_000_000), [254, 0xFF, 0xFF]);
    }
}
