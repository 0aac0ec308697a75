//! The `ar` archive format `.deb` files use: a `!<arch>\n` magic, then for
//! each member a 60-byte header (name, mtime, owner, group, mode, size,
//! `` `\n ``) and the data, padded to an even length.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Where the member's data starts in the archive.
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArError {
    #[error("not an ar archive (bad magic)")]
    Magic,
    #[error("member header at byte {offset} is malformed: {reason}")]
    Header { offset: u64, reason: &'static str },
    #[error(
        "member `{name}` at byte {offset} claims {size} bytes but the archive ends at {length}"
    )]
    Truncated {
        name: String,
        offset: u64,
        size: u64,
        length: u64,
    },
}

const MAGIC: &[u8] = b"!<arch>\n";
const HEADER: u64 = 60;

/// Lists the members of an archive, given the first bytes of each header
/// through `read_at` (which returns fewer bytes at the end of the input).
pub fn members(
    length: u64,
    mut read_at: impl FnMut(u64, usize) -> Vec<u8>,
) -> Result<Vec<Member>, ArError> {
    if read_at(0, MAGIC.len()) != MAGIC {
        return Err(ArError::Magic);
    }
    let mut members = Vec::new();
    let mut offset = MAGIC.len() as u64;
    while offset < length {
        let header = read_at(offset, HEADER as usize);
        if header.len() < HEADER as usize {
            return Err(ArError::Header {
                offset,
                reason: "shorter than 60 bytes",
            });
        }
        if &header[58..60] != b"`\n" {
            return Err(ArError::Header {
                offset,
                reason: "missing the header terminator",
            });
        }
        let name = std::str::from_utf8(&header[0..16]).map_err(|_| ArError::Header {
            offset,
            reason: "name is not UTF-8",
        })?;
        // GNU ar ends names with `/`.
        let name = name.trim_end().trim_end_matches('/').to_owned();
        let size = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or(ArError::Header {
                offset,
                reason: "size is not a decimal number",
            })?;
        let data = offset + HEADER;
        if data.checked_add(size).is_none_or(|end| end > length) {
            return Err(ArError::Truncated {
                name,
                offset,
                size,
                length,
            });
        }
        members.push(Member {
            name,
            offset: data,
            size,
        });
        offset = data + size + (size % 2);
    }
    Ok(members)
}

/// [`members`] over bytes in memory.
pub fn members_of(bytes: &[u8]) -> Result<Vec<Member>, ArError> {
    members(bytes.len() as u64, |offset, length| {
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(length).min(bytes.len());
        bytes[start..end].to_vec()
    })
}

#[cfg(test)]
pub(crate) fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (name, data) in members {
        out.extend(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend(*data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_members_with_padding() {
        let archive = build(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", b"odd"),
            ("data.tar.zst", b"data"),
        ]);
        let members = members_of(&archive).unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["debian-binary", "control.tar.xz", "data.tar.zst"]);
        let data = &members[2];
        assert_eq!(
            &archive[data.offset as usize..(data.offset + data.size) as usize],
            b"data"
        );
    }

    #[test]
    fn damage_is_reported() {
        assert_eq!(members_of(b"!<arch!\n"), Err(ArError::Magic));
        let archive = build(&[("data.tar.xz", b"0123456789")]);
        assert!(matches!(
            members_of(&archive[..archive.len() - 3]),
            Err(ArError::Truncated { .. })
        ));
        let mut bad = archive.clone();
        bad[8 + 48] = b'x';
        assert!(matches!(members_of(&bad), Err(ArError::Header { .. })));
    }
}
