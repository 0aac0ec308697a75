//! FAT names: the 8.3 short name every entry has, and the long-file-name
//! (VFAT) entries that carry the real name when 8.3 cannot.
//!
//! ```text
//! LFN entry (32 bytes), stored last-part-first before the short entry:
//!  0 ord (| 0x40 on the last part)   1 5 UTF-16 chars   11 attr 0x0F
//! 12 type 0   13 checksum of the short name   14 6 UTF-16 chars
//! 26 cluster 0   28 2 UTF-16 chars       (after the name: 0x0000, 0xFFFF…)
//! ```
use std::collections::BTreeSet;

const SHORT_SPECIALS: &[u8] = b"!#$%&'()-@^_`{}~";
const LONG_FORBIDDEN: &[char] = &['"', '*', '/', ':', '<', '>', '?', '\\', '|'];
pub(crate) const MAX_LONG: usize = 255;

/// The name as stored: an 11-byte short name and, when needed, the UTF-16
/// long name.
pub(crate) struct FatName {
    pub(crate) short: [u8; 11],
    pub(crate) long: Option<Vec<u16>>,
}

/// Why a name cannot be stored, for the caller's error.
pub(crate) enum NameError {
    TooLong(usize),
    Invalid(String),
}

fn short_char_ok(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || SHORT_SPECIALS.contains(&byte)
}

/// `name` split as a valid upper-case 8.3 name, if it is one.
fn as_short(name: &str) -> Option<[u8; 11]> {
    let (base, extension) = match name.rsplit_once('.') {
        Some((base, extension)) => (base, extension),
        None => (name, ""),
    };
    if base.is_empty()
        || base.len() > 8
        || extension.len() > 3
        || name.ends_with('.')
        || !base.bytes().chain(extension.bytes()).all(short_char_ok)
    {
        return None;
    }
    Some(pad_short(base.as_bytes(), extension.as_bytes()))
}

fn pad_short(base: &[u8], extension: &[u8]) -> [u8; 11] {
    let mut short = [b' '; 11];
    short[..base.len()].copy_from_slice(base);
    short[8..8 + extension.len()].copy_from_slice(extension);
    short
}

/// Chooses the stored form of `name`, unique among `used` short names of
/// the same directory (which it extends).
pub(crate) fn fat_name(name: &str, used: &mut BTreeSet<[u8; 11]>) -> Result<FatName, NameError> {
    let long: Vec<u16> = name.encode_utf16().collect();
    if long.len() > MAX_LONG {
        return Err(NameError::TooLong(long.len()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| LONG_FORBIDDEN.contains(c) || (*c as u32) < 0x20)
    {
        return Err(NameError::Invalid(format!("it contains {bad:?}")));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(NameError::Invalid(
            "FAT drops trailing dots and spaces".into(),
        ));
    }
    if let Some(short) = as_short(name) {
        if used.insert(short) {
            return Ok(FatName { short, long: None });
        }
    }
    // Lower or mixed case that fits 8.3 keeps its upper-case form as alias,
    // as Linux does; anything else gets a numbered alias.
    if let Some(short) = as_short(&name.to_ascii_uppercase()) {
        if used.insert(short) {
            return Ok(FatName {
                short,
                long: Some(long),
            });
        }
    }
    let upper = name.to_ascii_uppercase();
    let clean = |part: &str| -> Vec<u8> {
        part.bytes()
            .filter(|&byte| byte != b' ' && byte != b'.')
            .map(|byte| if short_char_ok(byte) { byte } else { b'_' })
            .collect()
    };
    let trimmed = upper.trim_start_matches('.');
    let (base, extension) = match trimmed.rsplit_once('.') {
        Some((base, extension)) if !base.is_empty() => (clean(base), clean(extension)),
        _ => (clean(trimmed), Vec::new()),
    };
    let extension = &extension[..extension.len().min(3)];
    for number in 1u32..1_000_000 {
        let tail = format!("~{number}");
        let keep = (8 - tail.len()).min(base.len());
        let mut alias = base[..keep].to_vec();
        if alias.is_empty() {
            alias.push(b'_');
        }
        alias.extend_from_slice(tail.as_bytes());
        let short = pad_short(&alias, extension);
        if used.insert(short) {
            return Ok(FatName {
                short,
                long: Some(long),
            });
        }
    }
    Err(NameError::Invalid(
        "no free short alias is left in this directory".into(),
    ))
}

/// The checksum LFN entries carry of their short name.
pub(crate) fn checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &byte| sum.rotate_right(1).wrapping_add(byte))
}

/// The LFN entries for `long`, in on-disk order (last part first).
pub(crate) fn long_entries(long: &[u16], short: &[u8; 11]) -> Vec<[u8; 32]> {
    let sum = checksum(short);
    let parts = long.len().div_ceil(13);
    let mut units: Vec<u16> = long.to_vec();
    if !units.len().is_multiple_of(13) {
        units.push(0);
    }
    units.resize(parts * 13, 0xFFFF);
    let mut entries = Vec::with_capacity(parts);
    for part in (0..parts).rev() {
        let mut entry = [0u8; 32];
        entry[0] = (part as u8 + 1) | if part + 1 == parts { 0x40 } else { 0 };
        entry[11] = 0x0F;
        entry[13] = sum;
        let chunk = &units[part * 13..part * 13 + 13];
        let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (unit, offset) in chunk.iter().zip(offsets) {
            entry[offset..offset + 2].copy_from_slice(&unit.to_le_bytes());
        }
        entries.push(entry);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(name: &str, used: &mut BTreeSet<[u8; 11]>) -> (String, bool) {
        let Ok(name) = fat_name(name, used) else {
            panic!("{name} refused")
        };
        (
            String::from_utf8_lossy(&name.short).into_owned(),
            name.long.is_some(),
        )
    }

    #[test]
    fn short_names_and_aliases() {
        let mut used = BTreeSet::new();
        assert_eq!(
            stored("KERNEL.IMG", &mut used),
            ("KERNEL  IMG".into(), false)
        );
        assert_eq!(
            stored("config.txt", &mut used),
            ("CONFIG  TXT".into(), true)
        );
        assert_eq!(
            stored("Config.txt", &mut used),
            ("CONFIG~1TXT".into(), true)
        );
        assert_eq!(
            stored("bcm2710-rpi-3-b-plus.dtb", &mut used),
            ("BCM271~1DTB".into(), true)
        );
        assert_eq!(
            stored("bcm2710-rpi-3-b.dtb", &mut used),
            ("BCM271~2DTB".into(), true)
        );
        assert_eq!(stored(".hidden", &mut used), ("HIDDEN~1   ".into(), true));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut used = BTreeSet::new();
        assert!(matches!(
            fat_name("a:b", &mut used),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(
            fat_name("dots.", &mut used),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(
            fat_name(&"x".repeat(256), &mut used),
            Err(NameError::TooLong(256))
        ));
    }

    #[test]
    fn checksum_matches_the_spec_example() {
        // Worked by hand from the Microsoft FAT spec's rotate-and-add.
        let short = *b"CONFIG  TXT";
        let mut sum = 0u8;
        for byte in short {
            sum = (if sum & 1 != 0 { 0x80 } else { 0 }) + (sum >> 1);
            sum = sum.wrapping_add(byte);
        }
        assert_eq!(checksum(&short), sum);
        let entries = long_entries(&"config.txt".encode_utf16().collect::<Vec<_>>(), &short);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0][0], 0x41);
        assert_eq!(&entries[0][1..3], &[b'c', 0]);
        // The name ends in a NUL, then 0xFFFF padding.
        assert_eq!(&entries[0][22..24], &[b't', 0]);
        assert_eq!(&entries[0][24..26], &[0, 0]);
        assert_eq!(&entries[0][28..30], &[0xFF, 0xFF]);
    }
}
