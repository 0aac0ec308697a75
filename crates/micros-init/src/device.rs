//! Naming a block device (`/dev/vda`, `LABEL=…`, `PARTUUID=…`) and finding
//! it: partition UUIDs are read from the partition tables themselves (MBR
//! disk signature + partition number, or the GPT entry's GUID), since the
//! kernel does not publish them in sysfs.
use alloc::{borrow::ToOwned, format, string::String, vec::Vec};
use core::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Path(String),
    Label(String),
    /// Lowercase, as written by MicrOS: `1234abcd-02` (MBR) or a GUID.
    PartUuid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidDevice {
    Empty,
    NotAPath(String),
    BadPartUuid(String),
}

impl core::fmt::Display for InvalidDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InvalidDevice::Empty => write!(f, "no device given"),
            InvalidDevice::NotAPath(text) => write!(
                f,
                "`{text}` is not a device (expected /dev/..., LABEL=... or PARTUUID=...)"
            ),
            InvalidDevice::BadPartUuid(text) => write!(
                f,
                "`{text}` is not a partition UUID (expected xxxxxxxx-nn or a GUID)"
            ),
        }
    }
}

impl DeviceSpec {
    pub fn parse(text: &str) -> Result<DeviceSpec, InvalidDevice> {
        if text.is_empty() {
            return Err(InvalidDevice::Empty);
        }
        if let Some(label) = text.strip_prefix("LABEL=") {
            return if label.is_empty() {
                Err(InvalidDevice::Empty)
            } else {
                Ok(DeviceSpec::Label(label.to_owned()))
            };
        }
        if let Some(uuid) = text.strip_prefix("PARTUUID=") {
            let uuid = uuid.to_ascii_lowercase();
            let mbr = uuid.len() == 11
                && uuid.as_bytes()[8] == b'-'
                && uuid
                    .chars()
                    .filter(|&c| c != '-')
                    .all(|c| c.is_ascii_hexdigit());
            let gpt = uuid.len() == 36
                && uuid.split('-').map(str::len).eq([8, 4, 4, 4, 12])
                && uuid
                    .chars()
                    .filter(|&c| c != '-')
                    .all(|c| c.is_ascii_hexdigit());
            return if mbr || gpt {
                Ok(DeviceSpec::PartUuid(uuid))
            } else {
                Err(InvalidDevice::BadPartUuid(text.to_owned()))
            };
        }
        if text.starts_with("/dev/") {
            return Ok(DeviceSpec::Path(text.to_owned()));
        }
        Err(InvalidDevice::NotAPath(text.to_owned()))
    }
}

impl core::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceSpec::Path(path) => write!(f, "{path}"),
            DeviceSpec::Label(label) => write!(f, "LABEL={label}"),
            DeviceSpec::PartUuid(uuid) => write!(f, "PARTUUID={uuid}"),
        }
    }
}

/// The partition UUIDs of a disk, from its first sectors: for an MBR disk
/// `<disk signature>-<partition number>`, for GPT each entry's GUID.
/// Returns (partition number, UUID) pairs; empty for no known table.
pub fn partition_uuids(first_sectors: &[u8], sector: usize) -> Vec<(u32, String)> {
    if first_sectors.len() < 512 || first_sectors[510..512] != [0x55, 0xaa] {
        return Vec::new();
    }
    // A GPT disk's MBR has an 0xEE entry: alone (protective) or beside
    // others (hybrid, as on a Raspberry Pi A/B card, whose boot ROM reads
    // only the MBR); then the GPT is the table, as Linux and U-Boot read it.
    let protective = (0..4).any(|i| first_sectors[446 + i * 16 + 4] == 0xee);
    // Every number below comes from the disk: arithmetic is checked, and
    // what lies outside the bytes read is simply not there.
    let header = first_sectors.get(sector..).and_then(|h| h.get(..92));
    if let Some(header) = header.filter(|h| protective && &h[0..8] == b"EFI PART") {
        let number = |range: core::ops::Range<usize>| {
            header[range]
                .iter()
                .rev()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b))
        };
        let (entries_lba, count, size) = (number(72..80), number(80..84), number(84..88));
        let mut uuids = Vec::new();
        if size >= 128 {
            for index in 0..count.min(128) {
                let start = entries_lba
                    .checked_mul(sector as u64)
                    .and_then(|s| s.checked_add(index.checked_mul(size)?))
                    .and_then(|s| usize::try_from(s).ok());
                let Some(entry) = start.and_then(|s| first_sectors.get(s..s.checked_add(128)?))
                else {
                    break;
                };
                if entry[0..16].iter().all(|&b| b == 0) {
                    continue; // Unused entry (no type GUID).
                }
                uuids.push((index as u32 + 1, guid(&entry[16..32])));
            }
        }
        return uuids;
    }
    let signature = u32::from_le_bytes(first_sectors[440..444].try_into().expect("4 bytes"));
    (0..4)
        .filter(|i| first_sectors[446 + i * 16 + 4] != 0)
        .map(|i| (i as u32 + 1, format!("{signature:08x}-{:02x}", i + 1)))
        .collect()
}

/// A GUID as text: the first three fields are little-endian on disk.
fn guid(bytes: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")),
        u16::from_le_bytes(bytes[4..6].try_into().expect("2 bytes")),
        u16::from_le_bytes(bytes[6..8].try_into().expect("2 bytes")),
        bytes[8],
        bytes[9],
        bytes[10..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            DeviceSpec::parse("/dev/vda").unwrap(),
            DeviceSpec::Path("/dev/vda".into())
        );
        assert_eq!(
            DeviceSpec::parse("LABEL=root").unwrap(),
            DeviceSpec::Label("root".into())
        );
        assert_eq!(
            DeviceSpec::parse("PARTUUID=1234ABCD-02").unwrap(),
            DeviceSpec::PartUuid("1234abcd-02".into())
        );
        assert!(DeviceSpec::parse("PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477de4").is_ok());
        assert!(matches!(
            DeviceSpec::parse("PARTUUID=xyz"),
            Err(InvalidDevice::BadPartUuid(_))
        ));
        assert!(matches!(
            DeviceSpec::parse("vda"),
            Err(InvalidDevice::NotAPath(_))
        ));
        assert_eq!(
            DeviceSpec::parse("PARTUUID=1234abcd-02")
                .unwrap()
                .to_string(),
            "PARTUUID=1234abcd-02"
        );
    }

    #[test]
    fn mbr_partuuids() {
        let mut disk = vec![0u8; 512];
        disk[440..444].copy_from_slice(&0x1234abcdu32.to_le_bytes());
        disk[446 + 4] = 0x0c; // FAT32
        disk[446 + 16 + 4] = 0x83; // Linux
        disk[510] = 0x55;
        disk[511] = 0xaa;
        assert_eq!(
            partition_uuids(&disk, 512),
            [(1, "1234abcd-01".to_owned()), (2, "1234abcd-02".to_owned())]
        );
        disk[511] = 0;
        assert!(partition_uuids(&disk, 512).is_empty());
    }

    #[test]
    fn hostile_gpt_headers_are_empty_not_a_panic() {
        let mut disk = vec![0u8; 512 * 3];
        disk[446 + 4] = 0xee;
        disk[510] = 0x55;
        disk[511] = 0xaa;
        disk[512..520].copy_from_slice(b"EFI PART");
        for (lba, count, size) in [
            (u64::MAX, 4u32, 128u32),
            (2, u32::MAX, u32::MAX),
            (u64::MAX / 512 + 1, 1, 128),
            (2, 4, 0),
            (2, 4, 7),
        ] {
            disk[512 + 72..512 + 80].copy_from_slice(&lba.to_le_bytes());
            disk[512 + 80..512 + 84].copy_from_slice(&count.to_le_bytes());
            disk[512 + 84..512 + 88].copy_from_slice(&size.to_le_bytes());
            let _ = partition_uuids(&disk, 512);
        }
        // Sector sizes from sysfs that make no sense either.
        for sector in [0, 1, 100, 4096, usize::MAX] {
            let _ = partition_uuids(&disk, sector);
        }
    }

    #[test]
    fn gpt_partuuids() {
        gpt_partuuids_with_mbr_entries(&[0xee]);
        // A hybrid MBR (the Pi's A/B card): the FAT first, then 0xEE.
        gpt_partuuids_with_mbr_entries(&[0x0c, 0xee]);
    }

    fn gpt_partuuids_with_mbr_entries(kinds: &[u8]) {
        let mut disk = vec![0u8; 512 * 3];
        for (i, kind) in kinds.iter().enumerate() {
            disk[446 + i * 16 + 4] = *kind;
        }
        disk[510] = 0x55;
        disk[511] = 0xaa;
        let header = &mut disk[512..1024];
        header[0..8].copy_from_slice(b"EFI PART");
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&4u32.to_le_bytes());
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        let entry = &mut disk[1024..1024 + 128];
        entry[0] = 1; // any non-zero type GUID
        entry[16..32].copy_from_slice(&[
            0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
            0x7d, 0xe4,
        ]);
        assert_eq!(
            partition_uuids(&disk, 512),
            [(1, "0fc63daf-8483-4772-8e79-3d69d8477de4".to_owned())]
        );
    }

    /// The fuzz target's property (fuzz/fuzz_targets/partitions.rs), run on
    /// every test run: a valid GPT disk with random bytes changed, and
    /// random lengths and sector sizes, gives a list of partitions a table
    /// can hold, never a panic.
    #[test]
    fn mutated_partition_tables_never_panic() {
        let mut disk = vec![0u8; 512 * 4];
        disk[446 + 4] = 0xee;
        disk[510] = 0x55;
        disk[511] = 0xaa;
        disk[512..520].copy_from_slice(b"EFI PART");
        disk[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        disk[512 + 80..512 + 84].copy_from_slice(&4u32.to_le_bytes());
        disk[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        disk[1024] = 1;
        // xorshift64: the same cases on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bytes = disk.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() % bytes.len() as u64) as usize;
                // Header fields (LBA, count, size) get whole random words.
                if next() % 2 == 0 && at + 8 <= bytes.len() {
                    bytes[at..at + 8].copy_from_slice(&next().to_le_bytes());
                } else {
                    bytes[at] = next() as u8;
                }
            }
            bytes.truncate((next() % (bytes.len() as u64 + 1)) as usize);
            let sector = [512, 4096, 0, 1, (next() % 70_000) as usize][(next() % 5) as usize];
            for (number, _) in partition_uuids(&bytes, sector) {
                assert!((1..=128).contains(&number), "partition {number}");
            }
        }
    }
}

/// The filesystem label in a device's first 64 KiB, for ext2/3/4 and FAT.
pub fn label_of(first_bytes: &[u8]) -> Option<String> {
    let text = |bytes: &[u8]| {
        let label = String::from_utf8_lossy(bytes)
            .trim_end_matches(['\0', ' '])
            .to_owned();
        (!label.is_empty()).then_some(label)
    };
    // ext2/3/4: superblock at 1024, magic 0xEF53 at offset 56, label at 120.
    if first_bytes.len() >= 1024 + 136 && first_bytes[1024 + 56..1024 + 58] == [0x53, 0xef] {
        return text(&first_bytes[1024 + 120..1024 + 136]);
    }
    // FAT32: "FAT32   " at 0x52, volume label at 0x47; FAT12/16 at 0x2b.
    if first_bytes.len() >= 512 && first_bytes[510..512] == [0x55, 0xaa] {
        if &first_bytes[0x52..0x5a] == b"FAT32   " {
            return text(&first_bytes[0x47..0x52]).filter(|l| l != "NO NAME");
        }
        if &first_bytes[0x36..0x39] == b"FAT" {
            return text(&first_bytes[0x2b..0x36]).filter(|l| l != "NO NAME");
        }
    }
    None
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn ext4_and_fat_labels() {
        let mut ext = vec![0u8; 4096];
        ext[1024 + 56] = 0x53;
        ext[1024 + 57] = 0xef;
        ext[1024 + 120..1024 + 124].copy_from_slice(b"data");
        assert_eq!(label_of(&ext).as_deref(), Some("data"));
        let mut fat = vec![0u8; 512];
        fat[510] = 0x55;
        fat[511] = 0xaa;
        fat[0x52..0x5a].copy_from_slice(b"FAT32   ");
        fat[0x47..0x52].copy_from_slice(b"BOOT       ");
        assert_eq!(label_of(&fat).as_deref(), Some("BOOT"));
        assert_eq!(label_of(&[0u8; 100]), None);
    }
}

/// A block device as sysfs lists it (`/sys/class/block/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    pub name: String,
    /// A partition rather than a whole disk.
    pub partition: bool,
    /// Its size in 512-byte sectors (sysfs `size`), when sysfs says: 0 for
    /// an empty card reader or a CD drive without a disc.
    pub sectors: Option<u64>,
}

/// Reads `devices` in turn with `read` until it finds what it looks for.
///
/// Reads block, and a slow device can take long to answer: so a device
/// that holds no sectors is never read (there is nothing there to find),
/// and once `now()` reaches `deadline` no further device is read, even in
/// the middle of the list, so that one scan cannot hold the boot past
/// `micros.rootwait`.
pub fn scan<'a, T>(
    devices: impl IntoIterator<Item = &'a BlockDevice>,
    deadline: Duration,
    mut now: impl FnMut() -> Duration,
    mut read: impl FnMut(&BlockDevice) -> Option<T>,
) -> Option<T> {
    for device in devices {
        if device.sectors == Some(0) {
            continue;
        }
        if now() >= deadline {
            return None;
        }
        if let Some(found) = read(device) {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod scan_tests {
    use super::*;
    use std::cell::Cell;

    fn device(name: &str, sectors: Option<u64>) -> BlockDevice {
        BlockDevice {
            name: name.to_owned(),
            partition: false,
            sectors,
        }
    }

    #[test]
    fn a_device_without_sectors_is_never_read() {
        let devices = [
            device("sr0", Some(0)),
            device("vda", Some(2048)),
            device("vdb", None),
        ];
        let mut read = Vec::new();
        let found = scan(
            &devices,
            Duration::from_secs(10),
            || Duration::ZERO,
            |d| {
                read.push(d.name.clone());
                (d.name == "vdb").then(|| d.name.clone())
            },
        );
        assert_eq!(found.as_deref(), Some("vdb"));
        // A size sysfs does not give is no reason to skip a device.
        assert_eq!(read, ["vda", "vdb"]);
    }

    #[test]
    fn a_scan_reads_no_further_device_once_the_deadline_passes() {
        let devices = [
            device("sda", Some(2048)),
            device("sdb", Some(2048)),
            device("sdc", Some(2048)),
        ];
        let clock = Cell::new(Duration::from_secs(1));
        let mut read = Vec::new();
        let found = scan(
            &devices,
            Duration::from_secs(10),
            || clock.get(),
            |d| {
                read.push(d.name.clone());
                // sda is slow: its read ends past the deadline.
                clock.set(clock.get() + Duration::from_secs(30));
                None::<()>
            },
        );
        assert_eq!(found, None);
        assert_eq!(read, ["sda"]);
    }
}
