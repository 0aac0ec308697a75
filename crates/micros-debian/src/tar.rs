//! A reader for the tar archives inside `.deb` files (ustar with GNU long
//! names and PAX headers, as dpkg-deb writes them). It reads headers only
//! and reports where each file's data is, so that the rootfs tree can point
//! into the (decompressed) archive instead of copying file contents.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Hardlink(String),
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Directory,
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// As stored, usually `./usr/bin/sv`.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The owner's and group's names (ustar `uname`/`gname`, or PAX
    /// `uname`/`gname`), where the archive has them: a package's ids are
    /// those of the machine that built it, its names are what it means
    /// (`root`, `shadow`), so the names are what later gets mapped to this
    /// system's ids. `None` when absent, empty or not UTF-8.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Where the file's data starts, and its length (0 for non-files).
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    #[error("tar header at byte {offset}: {reason}")]
    Header { offset: u64, reason: String },
    #[error("tar entry `{path}` at byte {offset} runs past the end of the archive")]
    Truncated { path: String, offset: u64 },
}

const BLOCK: u64 = 512;

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large values: high bit of the first byte set.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut value: u64 = (field[0] & 0x7f) as u64;
        for &byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(byte as u64)?;
        }
        return Some(value);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// A user or group name field: NUL-terminated (or filling the field).
/// Empty or non-UTF-8 names are no names: a lossily repaired one (`r�ot`)
/// would be a name no system has, and the ids are the better guess then.
fn name(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    match std::str::from_utf8(&field[..end]) {
        Ok(text) if !text.is_empty() => Some(text.to_owned()),
        _ => None,
    }
}

/// PAX records: `<length> <key>=<value>\n`. Values stay bytes: a path is
/// read lossily, a name strictly (see [`name`]).
fn pax(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(length) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if length <= space || length > rest.len() {
            break;
        }
        let record = &rest[space + 1..length];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(equals) = record.iter().position(|&b| b == b'=') {
            records.push((
                String::from_utf8_lossy(&record[..equals]).into_owned(),
                record[equals + 1..].to_vec(),
            ));
        }
        rest = &rest[length..];
    }
    records
}

/// Lists the entries of a tar archive of `length` bytes; `read_at(offset,
/// n)` returns up to `n` bytes at `offset`.
pub fn entries(
    length: u64,
    mut read_at: impl FnMut(u64, usize) -> Vec<u8>,
) -> Result<Vec<Entry>, TarError> {
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut pax_records: Vec<(String, Vec<u8>)> = Vec::new();
    while offset + BLOCK <= length {
        let header = read_at(offset, BLOCK as usize);
        if header.len() < BLOCK as usize {
            return Err(TarError::Header {
                offset,
                reason: "short header".to_owned(),
            });
        }
        if header.iter().all(|&b| b == 0) {
            break; // End of archive.
        }
        let bad = |reason: &str| TarError::Header {
            offset,
            reason: reason.to_owned(),
        };
        let stored_sum = octal(&header[148..156]).ok_or_else(|| bad("checksum is not octal"))?;
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    b' ' as u64
                } else {
                    b as u64
                }
            })
            .sum();
        if sum != stored_sum {
            return Err(bad("checksum mismatch"));
        }
        let mut size = octal(&header[124..136]).ok_or_else(|| bad("size is not a number"))?;
        let typeflag = header[156];
        let data = offset + BLOCK;
        if typeflag == b'x' || typeflag == b'g' || typeflag == b'L' || typeflag == b'K' {
            if size > 1 << 20 || data + size > length {
                return Err(bad("oversized extended header"));
            }
            let content = read_at(data, size as usize);
            match typeflag {
                b'x' => pax_records = pax(&content),
                b'L' => long_name = Some(string(&content)),
                b'K' => long_link = Some(string(&content)),
                _ => {}
            }
            offset = data + size.div_ceil(BLOCK) * BLOCK;
            continue;
        }
        // POSIX ustar (`ustar\0`) and GNU (`ustar `) both have the prefix
        // and the names; a pre-POSIX header has neither.
        let ustar = &header[257..262] == b"ustar";
        let prefix = if ustar {
            string(&header[345..500])
        } else {
            String::new()
        };
        let (mut user, mut group) = if ustar {
            (name(&header[265..297]), name(&header[297..329]))
        } else {
            (None, None)
        };
        let mut path = string(&header[0..100]);
        if !prefix.is_empty() {
            path = format!("{prefix}/{path}");
        }
        let mut link = string(&header[157..257]);
        if let Some(name) = long_name.take() {
            path = name;
        }
        if let Some(name) = long_link.take() {
            link = name;
        }
        for (key, value) in pax_records.drain(..) {
            match key.as_str() {
                "path" => path = String::from_utf8_lossy(&value).into_owned(),
                "linkpath" => link = String::from_utf8_lossy(&value).into_owned(),
                "size" => {
                    size = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|text| text.parse().ok())
                        .ok_or_else(|| bad("PAX size is not a number"))?
                }
                // An empty PAX value removes the header's field (POSIX).
                "uname" => user = name(&value),
                "gname" => group = name(&value),
                _ => {}
            }
        }
        let major = octal(&header[329..337]).unwrap_or(0) as u32;
        let minor = octal(&header[337..345]).unwrap_or(0) as u32;
        let kind = match typeflag {
            b'0' | b'\0' | b'7' => EntryKind::File,
            b'1' => EntryKind::Hardlink(link),
            b'2' => EntryKind::Symlink(link),
            b'3' => EntryKind::CharDevice { major, minor },
            b'4' => EntryKind::BlockDevice { major, minor },
            b'5' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            other => return Err(bad(&format!("unsupported entry type `{}`", other as char))),
        };
        let size = if kind == EntryKind::File { size } else { 0 };
        if data.checked_add(size).is_none_or(|end| end > length) {
            return Err(TarError::Truncated { path, offset });
        }
        entries.push(Entry {
            path,
            kind,
            mode: (octal(&header[100..108]).ok_or_else(|| bad("mode is not octal"))? & 0o7777)
                as u32,
            // Base-256 numbers can exceed 32 bits: 2^32 must not wrap to
            // root.
            uid: octal(&header[108..116])
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("uid is not a 32-bit number"))?,
            gid: octal(&header[116..124])
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("gid is not a 32-bit number"))?,
            user,
            group,
            offset: data,
            size,
        });
        offset = data + size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(entries)
}

/// [`entries`] over bytes in memory.
pub fn entries_of(bytes: &[u8]) -> Result<Vec<Entry>, TarError> {
    entries(bytes.len() as u64, |offset, length| {
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(length).min(bytes.len());
        bytes[start..end].to_vec()
    })
}

/// Builds a small ustar archive (for tests and test fixtures).
pub fn build(entries: &[(&str, char, u32, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, typeflag, mode, data, link) in entries {
        let mut header = [0u8; 512];
        let long = path.len() > 100;
        if long {
            let mut long_header = [0u8; 512];
            long_header[..13].copy_from_slice(b"././@LongLink");
            write_octal(&mut long_header[100..108], 0o644);
            write_octal(&mut long_header[124..136], path.len() as u64 + 1);
            long_header[156] = b'L';
            long_header[257..263].copy_from_slice(b"ustar ");
            checksum(&mut long_header);
            out.extend(long_header);
            let mut name = path.as_bytes().to_vec();
            name.push(0);
            name.resize(name.len().div_ceil(512) * 512, 0);
            out.extend(name);
        }
        let short = &path.as_bytes()[..path.len().min(100)];
        header[..short.len()].copy_from_slice(short);
        write_octal(&mut header[100..108], *mode as u64);
        write_octal(&mut header[108..116], 0);
        write_octal(&mut header[116..124], 0);
        write_octal(
            &mut header[124..136],
            if *typeflag == '0' {
                data.len() as u64
            } else {
                0
            },
        );
        write_octal(&mut header[136..148], 0);
        header[156] = *typeflag as u8;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        checksum(&mut header);
        out.extend(header);
        if *typeflag == '0' {
            out.extend(*data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend([0u8; 1024]);
    out
}

fn write_octal(field: &mut [u8], value: u64) {
    let last = field.len() - 1;
    let text = format!("{value:0last$o}");
    field[..last].copy_from_slice(text.as_bytes());
    field[last] = 0;
}

fn checksum(header: &mut [u8; 512]) {
    header[148..156].fill(b' ');
    let sum: u64 = header.iter().map(|&b| b as u64).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_links_dirs_and_long_names() {
        let long = format!("./usr/share/{}/file", "d".repeat(120));
        let archive = build(&[
            ("./", '5', 0o755, b"", ""),
            ("./usr/bin/sv", '0', 0o755, b"binary", ""),
            ("./usr/sbin/sv", '1', 0o755, b"", "./usr/bin/sv"),
            ("./bin", '2', 0o777, b"", "usr/bin"),
            (&long, '0', 0o644, b"x", ""),
        ]);
        let entries = entries_of(&archive).unwrap();
        assert_eq!(entries.len(), 5);
        let sv = &entries[1];
        assert_eq!(sv.kind, EntryKind::File);
        assert_eq!(
            &archive[sv.offset as usize..(sv.offset + sv.size) as usize],
            b"binary"
        );
        assert_eq!(sv.mode, 0o755);
        assert_eq!(entries[2].kind, EntryKind::Hardlink("./usr/bin/sv".into()));
        assert_eq!(entries[3].kind, EntryKind::Symlink("usr/bin".into()));
        assert_eq!(entries[4].path, long);
    }

    /// Sets a field of the first header and makes its checksum again.
    fn patch(archive: &mut [u8], at: usize, bytes: &[u8]) {
        archive[at..at + bytes.len()].copy_from_slice(bytes);
        let header: &mut [u8; 512] = (&mut archive[..512]).try_into().unwrap();
        checksum(header);
    }

    #[test]
    fn ids_past_32_bits_are_refused_not_wrapped_to_root() {
        // 2^32 in GNU base-256.
        let mut field = [0u8; 8];
        field[0] = 0x80;
        field[3] = 1;
        for (at, what) in [(108, "uid"), (116, "gid")] {
            let mut archive = build(&[("./a", '0', 0o4755, b"x", "")]);
            patch(&mut archive, at, &field);
            let error = entries_of(&archive).unwrap_err().to_string();
            assert!(
                error.contains(&format!("{what} is not a 32-bit number")),
                "{error}"
            );
        }
    }

    #[test]
    fn user_and_group_names_are_kept() {
        let mut archive = build(&[("./usr/bin/chage", '0', 0o2755, b"x", "")]);
        patch(&mut archive, 265, b"www-data\0");
        patch(&mut archive, 297, b"shadow\0");
        let entry = &entries_of(&archive).unwrap()[0];
        assert_eq!(
            (entry.user.as_deref(), entry.group.as_deref()),
            (Some("www-data"), Some("shadow"))
        );
        // A name filling its 32 bytes has no NUL.
        patch(&mut archive, 265, &[b'u'; 32]);
        let entry = &entries_of(&archive).unwrap()[0];
        assert_eq!(entry.user.as_deref(), Some("u".repeat(32).as_str()));
    }

    #[test]
    fn absent_empty_or_garbled_names_are_none() {
        // `build` leaves the names empty.
        let archive = build(&[("./a", '0', 0o644, b"x", "")]);
        let entry = &entries_of(&archive).unwrap()[0];
        assert_eq!(
            (entry.user.as_deref(), entry.group.as_deref()),
            (None, None)
        );
        let mut archive = build(&[("./a", '0', 0o644, b"x", "")]);
        patch(&mut archive, 265, b"r\xffot\0");
        patch(&mut archive, 297, b"\xc3\0");
        let entry = &entries_of(&archive).unwrap()[0];
        assert_eq!(
            (entry.user.as_deref(), entry.group.as_deref()),
            (None, None)
        );
        // A pre-POSIX header has no name fields: bytes there mean nothing.
        let mut archive = build(&[("./a", '0', 0o644, b"x", "")]);
        patch(&mut archive, 265, b"root\0");
        patch(&mut archive, 257, &[0u8; 8]);
        let entry = &entries_of(&archive).unwrap()[0];
        assert_eq!(entry.user, None);
    }

    /// A PAX extended header holding `records`, for the entry after it.
    fn pax_header(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
            // The length counts its own digits.
            let mut length = body.len() + 1;
            while (body.len() + length.to_string().len()) != length {
                length += 1;
            }
            data.extend(length.to_string().as_bytes());
            data.extend(body);
        }
        let mut header = [0u8; 512];
        header[..14].copy_from_slice(b"./PaxHeaders/a");
        write_octal(&mut header[100..108], 0o644);
        write_octal(&mut header[124..136], data.len() as u64);
        header[156] = b'x';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        checksum(&mut header);
        let mut out = header.to_vec();
        out.extend(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn pax_names_override_the_header() {
        let mut entry = build(&[("./a", '0', 0o644, b"x", "")]);
        patch(&mut entry, 265, b"nobody\0");
        patch(&mut entry, 297, b"nogroup\0");
        let mut archive = pax_header(&[("uname", "www-data".as_bytes()), ("gname", "".as_bytes())]);
        archive.extend(&entry);
        let entries = entries_of(&archive).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].user.as_deref(), entries[0].group.as_deref()),
            (Some("www-data"), None),
            "an empty PAX value removes the header's name"
        );
        let mut archive = pax_header(&[("uname", b"\xff\xfe"), ("gname", "shadow".as_bytes())]);
        archive.extend(&entry);
        let entries = entries_of(&archive).unwrap();
        assert_eq!(
            (entries[0].user.as_deref(), entries[0].group.as_deref()),
            (None, Some("shadow"))
        );
    }

    #[test]
    fn damage_is_reported() {
        let mut archive = build(&[("./a", '0', 0o644, b"hello", "")]);
        archive[0] = b'b';
        assert!(matches!(entries_of(&archive), Err(TarError::Header { .. })));
        let archive = build(&[("./a", '0', 0o644, &[7u8; 2000], "")]);
        assert!(matches!(
            entries_of(&archive[..1024]),
            Err(TarError::Truncated { .. })
        ));
    }

    #[test]
    fn pax_records() {
        assert_eq!(
            pax(b"20 path=./some/file\n"),
            [("path".to_owned(), b"./some/file".to_vec())]
        );
        assert!(pax(b"999 path=x\n").is_empty());
    }
}
