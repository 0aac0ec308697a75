//! systemd's `tmpfiles.d` files, which packages ship for the directories
//! and files their daemons need at run time (`d /run/lighttpd 0750
//! www-data www-data -`): read as data, for MicrOS to make at build time or
//! at boot. The forms `d`, `D`, `f`, `L` and `z` (with `+`, `!` and `-`
//! modifiers) are understood; anything else, a `%` specifier, a path with
//! `..` or a name that is not a plain one is listed as skipped.
use crate::maintscript::{is_valid_name, is_valid_path};

/// What a line makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// `d` and `D`: a directory (for MicrOS both: `/run` starts empty).
    Directory,
    /// `f`, `f+`: a file, with its contents when given.
    File { contents: Option<String> },
    /// `L`, `L+`: a symbolic link to `target`.
    Symlink { target: String },
    /// `z`: an existing path's mode and owner.
    Adjust,
}

/// One understood line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub what: What,
    pub path: String,
    /// Permission bits, when given (`-` leaves the default).
    pub mode: Option<u32>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// What a tmpfiles.d file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub lines: Vec<Line>,
    /// Lines that were not understood, as written.
    pub skipped: Vec<String>,
}

/// Reads a tmpfiles.d file. Never fails: what is not understood is
/// listed in [`Parsed::skipped`].
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for raw in text.lines().take(10_000) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(entry) => parsed.lines.push(entry),
            None => parsed.skipped.push(line.chars().take(200).collect()),
        }
    }
    parsed
}

fn parse_line(line: &str) -> Option<Line> {
    if line.contains('%') {
        return None;
    }
    let fields = fields(line)?;
    let field = |index: usize| {
        fields
            .get(index)
            .map(String::as_str)
            .filter(|f| *f != "-" && !f.is_empty())
    };
    let kind = field(0)?;
    let letter = kind.chars().next()?;
    // `!` boot only, `-` ignore errors, `+` replace: the same for an image.
    if !kind[letter.len_utf8()..].chars().all(|c| "!-+".contains(c)) {
        return None;
    }
    let path = field(1)?;
    if !is_valid_path(path) {
        return None;
    }
    let mode = match field(2) {
        None => None,
        Some(mode) => {
            Some(u32::from_str_radix(mode.trim_start_matches(['~', ':']), 8).ok()? & 0o7777)
        }
    };
    let name = |index: usize| match field(index) {
        None => Some(None),
        Some(name) if is_valid_name(name) => Some(Some(name.to_owned())),
        Some(_) => None,
    };
    let (user, group) = (name(3)?, name(4)?);
    let argument = fields.get(6).cloned();
    let what = match letter {
        'd' | 'D' => What::Directory,
        'f' => What::File { contents: argument },
        'L' => {
            let target = argument.filter(|t| !t.is_empty() && !t.contains('\0'))?;
            What::Symlink { target }
        }
        'z' => What::Adjust,
        _ => return None,
    };
    Some(Line {
        what,
        path: path.to_owned(),
        mode,
        user,
        group,
    })
}

/// Whitespace-separated fields, a field in double quotes keeping its
/// spaces; the seventh (the argument) runs to the end of the line. `None`
/// for an unbalanced quote.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if fields.len() == 6 {
            fields.push(rest.to_owned());
            break;
        }
        let (field, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (rest[..end].to_owned(), &rest[end..])
        };
        fields.push(field);
        rest = after.trim_start();
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debians_forms() {
        let parsed = parse(
            "# lighttpd\nd /run/lighttpd 0750 www-data www-data -\nD! /var/cache/lighttpd/uploads 0750 www-data www-data\nf /var/log/lighttpd/error.log 0640 www-data adm - \nf+ /etc/motd.d/x 0644 - - - hello world\nL /etc/mtab - - - - ../proc/self/mounts\nz /var/log/lighttpd 0750 www-data adm\n",
        );
        assert_eq!(parsed.skipped, Vec::<String>::new());
        let dir = |path: &str, mode, user: &str, group: &str| Line {
            what: What::Directory,
            path: path.into(),
            mode: Some(mode),
            user: Some(user.into()),
            group: Some(group.into()),
        };
        assert_eq!(
            parsed.lines[0],
            dir("/run/lighttpd", 0o750, "www-data", "www-data")
        );
        assert_eq!(
            parsed.lines[1],
            dir("/var/cache/lighttpd/uploads", 0o750, "www-data", "www-data")
        );
        assert_eq!(parsed.lines[2].what, What::File { contents: None });
        assert_eq!(
            parsed.lines[3],
            Line {
                what: What::File {
                    contents: Some("hello world".into())
                },
                path: "/etc/motd.d/x".into(),
                mode: Some(0o644),
                user: None,
                group: None,
            }
        );
        assert_eq!(
            parsed.lines[4].what,
            What::Symlink {
                target: "../proc/self/mounts".into()
            }
        );
        assert_eq!(parsed.lines[5].what, What::Adjust);
    }

    #[test]
    fn forms_not_understood_and_hostile_lines_are_skipped() {
        let text = "x /tmp/foo\nd /run/%u 0700\nd /run/../etc 0755 root root\nd relative 0755\nd /run/a 0755 $(reboot) root\nd /run/b 9999\nd \"/run/unbalanced 0755\nR /var/tmp/*\nL /run/nolink\nd /run/ok\n";
        let parsed = parse(text);
        assert_eq!(parsed.skipped.len(), 9, "{:?}", parsed.skipped);
        assert_eq!(parsed.lines.len(), 1);
        assert_eq!(parsed.lines[0].path, "/run/ok");
        assert_eq!(parsed.lines[0].mode, None);
        // A quoted path keeps its spaces.
        let parsed = parse("d \"/run/with space\" 0755 root root -\n");
        assert_eq!(parsed.lines[0].path, "/run/with space");
    }

    #[test]
    fn hostile_text_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            let line: String = (0..(state % 80))
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    [
                        'd', ' ', '"', '/', '0', '7', '-', 'L', '\u{e9}', '%', 'z', '!', '+',
                    ][(state % 13) as usize]
                })
                .collect();
            let _ = parse(&line);
        }
    }
}
