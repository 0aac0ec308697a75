//! tar archives (POSIX ustar, with pax extended headers where ustar runs
//! out), for OCI image layers.
//!
//! ```text
//! [pax header 'x': "NN path=…\n" records]   only when a value does not fit
//! [ustar header, 512 bytes]                 name/prefix, octal fields, "ustar\000"
//! [data, padded to 512]
//! … one group per tree entry (the root itself is not archived, as in OCI
//! layers), then two zero blocks
//! ```
//!
//! Determinism: entries in tree order, the entry's own mtime, numeric ids
//! with empty user and group names, and pax header names derived from the
//! entry name. The first name of a hard-link group carries the data; later
//! names are type `1` links to it.
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use crate::atomic::atomic_write;
use crate::compress::{Compression, Counting};
use crate::cpio::copy_content;
use crate::error::{Error, Result};
use crate::tree::{Content, Entry, Kind, Tree, TreePath};

const FORMAT: &str = "tar";
const BLOCK: usize = 512;
/// Largest value of a 12-byte octal field (11 digits).
const MAX_OCTAL_12: u64 = 0o77777777777;
/// Largest value of an 8-byte octal field (7 digits).
const MAX_OCTAL_8: u64 = 0o7777777;

/// Writes `tree` as a (compressed) tar archive at `dest`, atomically.
pub fn write_tar(tree: &Tree, dest: &Path, compression: Compression) -> Result<u64> {
    compression
        .validate()
        .map_err(|message| Error::InvalidOption {
            format: FORMAT,
            path: dest.to_owned(),
            message,
        })?;
    check(tree)?;
    atomic_write(dest, |file| {
        let counting = Counting {
            inner: io::BufWriter::new(file),
            count: 0,
        };
        let mut encoder = compression.encoder(counting).map_err(Error::output(dest))?;
        write_entries(tree, &mut encoder, dest)?;
        let mut counting = encoder.finish().map_err(Error::output(dest))?;
        counting.flush().map_err(Error::output(dest))?;
        Ok(counting.count)
    })
}

/// Writes `tree` as an uncompressed tar stream to any writer.
pub fn write_tar_to(tree: &Tree, out: &mut impl Write) -> Result<()> {
    check(tree)?;
    write_entries(tree, out, Path::new("<stream>"))
}

fn check(tree: &Tree) -> Result<()> {
    for (path, entry) in tree.iter() {
        match &entry.kind {
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                for (what, value) in [
                    ("the device major number", major),
                    ("the device minor number", minor),
                ] {
                    if *value as u64 > MAX_OCTAL_8 {
                        return Err(Error::TooLarge {
                            format: FORMAT,
                            path: path.clone(),
                            what,
                            value: *value as u64,
                            max: MAX_OCTAL_8,
                        });
                    }
                }
            }
            Kind::Hardlink(target)
                if !matches!(tree.get(target).map(|e| &e.kind), Some(Kind::File(_))) =>
            {
                return Err(crate::tree::TreeError::DanglingHardlink {
                    path: path.clone(),
                    origin: entry.origin.to_string(),
                    target: target.clone(),
                }
                .into());
            }
            _ => {}
        }
    }
    Ok(())
}

fn write_entries(tree: &Tree, out: &mut impl Write, dest: &Path) -> Result<()> {
    // The first name (in write order) of each hard-link group, by leader.
    let mut first_names: HashMap<&TreePath, &TreePath> = HashMap::new();
    for (path, entry) in tree.iter() {
        let leader = match &entry.kind {
            Kind::Hardlink(target) => target,
            Kind::File(_) => path,
            _ => continue,
        };
        first_names.entry(leader).or_insert(path);
    }
    for (path, entry) in tree.iter().filter(|(path, _)| !path.is_root()) {
        let (leader, node): (&TreePath, &Entry) = match &entry.kind {
            Kind::Hardlink(target) => (target, tree.get(target).unwrap_or(entry)),
            _ => (path, entry),
        };
        let mut name = path.components().join("/");
        let mut link = String::new();
        let mut content: Option<&Content> = None;
        let (flag, rdev) = match &node.kind {
            Kind::Directory => {
                name.push('/');
                (b'5', (0, 0))
            }
            Kind::File(file_content) => match first_names.get(leader) {
                Some(&first) if first != path => {
                    link = first.components().join("/");
                    (b'1', (0, 0))
                }
                _ => {
                    content = Some(file_content);
                    (b'0', (0, 0))
                }
            },
            Kind::Symlink(target) => {
                link = target.clone();
                (b'2', (0, 0))
            }
            Kind::CharDevice { major, minor } => (b'3', (*major, *minor)),
            Kind::BlockDevice { major, minor } => (b'4', (*major, *minor)),
            Kind::Fifo => (b'6', (0, 0)),
            Kind::Hardlink(_) => unreachable!("a hard link's leader is a file"),
        };
        let size = content.map_or(0, Content::len);
        let mut header = [0u8; BLOCK];
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        match split_name(&name) {
            Some((prefix, short)) => {
                header[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
                header[..short.len()].copy_from_slice(short.as_bytes());
            }
            None => {
                pax.push(("path".into(), name.clone().into_bytes()));
                let cut = floor_char_boundary(&name, 100);
                header[..cut].copy_from_slice(&name.as_bytes()[..cut]);
            }
        }
        if link.len() > 100 {
            pax.push(("linkpath".into(), link.clone().into_bytes()));
        }
        let cut = floor_char_boundary(&link, 100);
        header[157..157 + cut].copy_from_slice(&link.as_bytes()[..cut]);
        octal(&mut header[100..108], (node.mode & 0o7777) as u64);
        for (range, key, value) in [
            (108..116, "uid", node.uid as u64),
            (116..124, "gid", node.gid as u64),
        ] {
            if value > MAX_OCTAL_8 {
                pax.push((key.into(), value.to_string().into_bytes()));
            }
            octal(&mut header[range], value.min(MAX_OCTAL_8));
        }
        if size > MAX_OCTAL_12 {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        octal(&mut header[124..136], size.min(MAX_OCTAL_12));
        if entry.mtime > MAX_OCTAL_12 {
            pax.push(("mtime".into(), entry.mtime.to_string().into_bytes()));
        }
        octal(&mut header[136..148], entry.mtime.min(MAX_OCTAL_12));
        header[156] = flag;
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        octal(&mut header[329..337], rdev.0 as u64);
        octal(&mut header[337..345], rdev.1 as u64);
        for (key, value) in &node.xattrs {
            pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
        }

        if !pax.is_empty() {
            write_pax(out, &name, entry.mtime, &pax).map_err(Error::output(dest))?;
        }
        checksum(&mut header);
        out.write_all(&header).map_err(Error::output(dest))?;
        if let Some(file_content) = content {
            copy_content(path, entry, file_content, out, dest)?;
            pad(out, size).map_err(Error::output(dest))?;
        }
    }
    out.write_all(&[0u8; 2 * BLOCK])
        .map_err(Error::output(dest))?;
    Ok(())
}

/// Splits a name into ustar's prefix (≤ 155) and name (≤ 100) at a `/`.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    // The split slash is dropped; a directory's trailing one is not a split.
    let body = name.trim_end_matches('/');
    body.char_indices()
        .filter(|&(index, c)| c == '/' && index <= 155)
        .map(|(index, _)| (&name[..index], &name[index + 1..]))
        .find(|(prefix, rest)| prefix.len() <= 155 && rest.len() <= 100 && !rest.is_empty())
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

fn write_pax(
    out: &mut impl Write,
    name: &str,
    mtime: u64,
    records: &[(String, Vec<u8>)],
) -> io::Result<()> {
    let mut body = Vec::new();
    for (key, value) in records {
        // "LEN key=value\n", where LEN counts its own digits too.
        let rest = key.len() + value.len() + 3;
        let mut length = rest + rest.to_string().len();
        if length.to_string().len() != rest.to_string().len() {
            length = rest + length.to_string().len();
        }
        body.extend_from_slice(format!("{length} {key}=").as_bytes());
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    let mut header = [0u8; BLOCK];
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let pax_name = format!("PaxHeaders/{base}");
    let cut = floor_char_boundary(&pax_name, 100);
    header[..cut].copy_from_slice(&pax_name.as_bytes()[..cut]);
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], body.len() as u64);
    octal(&mut header[136..148], mtime.min(MAX_OCTAL_12));
    header[156] = b'x';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    checksum(&mut header);
    out.write_all(&header)?;
    out.write_all(&body)?;
    pad(out, body.len() as u64)
}

/// Zero-padded octal, NUL-terminated, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn checksum(header: &mut [u8; BLOCK]) {
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&byte| byte as u32).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    out.write_all(&[0u8; BLOCK][..padding as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_a_slash_or_need_pax() {
        assert_eq!(split_name("etc/passwd"), Some(("", "etc/passwd")));
        let long = format!("{}/{}", "a".repeat(120), "b".repeat(90));
        let (prefix, name) = split_name(&long).unwrap();
        assert_eq!((prefix.len(), name.len()), (120, 90));
        assert_eq!(split_name(&"c".repeat(101)), None);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut out = Vec::new();
        write_pax(&mut out, "x", 0, &[("path".into(), vec![b'a'; 93])]).unwrap();
        // 3 + 1 + 4 + 1 + 93 + 1 = 103 bytes: "103 path=aaa…\n".
        assert_eq!(&out[BLOCK..BLOCK + 9], b"103 path=");
        assert_eq!(out[BLOCK + 102], b'\n');
    }
}
