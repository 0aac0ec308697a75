//! What a build tells about its root filesystem: where the bytes go (file
//! contents by the package or MicrOS module that put them there, largest
//! first), and the files that grant privileges or reach hardware
//! (setuid/setgid files and device nodes), which packages otherwise bring
//! in without a word.
use std::collections::BTreeMap;

use micros_image::{Content, Kind, Tree, TreePath};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Share {
    /// A package name, or what MicrOS generated (`MicrOS: users.users`).
    pub source: String,
    /// Bytes of file contents in the root (before compression).
    pub bytes: u64,
    pub files: u64,
}

/// Groups the tree's files by who put them there. `packages` are the
/// names of the packages unpacked into the tree; any other origin is
/// something MicrOS generated from the configuration.
pub fn by_source(tree: &Tree, packages: &[&str]) -> Vec<Share> {
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (_, entry) in tree.iter() {
        let Kind::File(content) = &entry.kind else {
            continue;
        };
        let total = totals.entry(source(&entry.origin, packages)).or_default();
        total.0 += content.len();
        total.1 += 1;
    }
    let mut shares: Vec<Share> = totals
        .into_iter()
        .map(|(source, (bytes, files))| Share {
            source,
            bytes,
            files,
        })
        .collect();
    shares.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.source.cmp(&b.source)));
    shares
}

/// Who put an entry into the tree, as the reports name it: the package,
/// or what MicrOS generated it from.
fn source(origin: &str, packages: &[&str]) -> String {
    if packages.contains(&origin) {
        origin.to_owned()
    } else if origin.starts_with("kernel module ") {
        "kernel modules".to_owned()
    } else if origin.starts_with("firmware for ") {
        "firmware (hardware.firmware)".to_owned()
    } else {
        match origin.split(' ').next().unwrap_or(origin) {
            "micros" => "MicrOS: generated files".to_owned(),
            option => format!("MicrOS: {option}"),
        }
    }
}

/// `12.3 MB`-style sizes (powers of 1000, as the build's summary prints).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The report as text: the `limit` largest sources with their share of
/// the total, then how many more there are.
pub fn table(shares: &[Share], limit: usize) -> String {
    let total: u64 = shares.iter().map(|s| s.bytes).sum();
    let mut text = format!(
        "root filesystem by package, before compression ({} in {} files):\n",
        human(total),
        shares.iter().map(|s| s.files).sum::<u64>()
    );
    for share in shares.iter().take(limit) {
        let percent = if total == 0 {
            0.0
        } else {
            share.bytes as f64 * 100.0 / total as f64
        };
        text.push_str(&format!(
            "  {:>9}  {percent:5.1} %  {}\n",
            human(share.bytes),
            share.source
        ));
    }
    if shares.len() > limit {
        let rest: u64 = shares[limit..].iter().map(|s| s.bytes).sum();
        text.push_str(&format!(
            "  {:>9}           … {} more\n",
            human(rest),
            shares.len() - limit
        ));
    }
    text
}

/// What makes a [`SpecialFile`] special.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// A regular file with the setuid bit, the setgid bit or both: it runs
    /// with its owner's or group's rights, whoever starts it.
    Privileged {
        setuid: bool,
        setgid: bool,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// A setuid/setgid file or a device node in the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialFile {
    pub path: String,
    pub special: Special,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The owner's and group's names in the image's `/etc/passwd` and
    /// `/etc/group`, when they name them.
    pub user: Option<String>,
    pub group: Option<String>,
    /// The package, or what MicrOS generated it from (as in [`Share`]).
    pub source: String,
}

impl SpecialFile {
    /// `setuid`, `setgid`, `setuid and setgid`, `character device` or
    /// `block device`.
    pub fn kind(&self) -> &'static str {
        match self.special {
            Special::Privileged {
                setuid: true,
                setgid: true,
            } => "setuid and setgid",
            Special::Privileged { setuid: true, .. } => "setuid",
            Special::Privileged { .. } => "setgid",
            Special::CharDevice { .. } => "character device",
            Special::BlockDevice { .. } => "block device",
        }
    }

    pub fn is_device(&self) -> bool {
        !matches!(self.special, Special::Privileged { .. })
    }

    /// The entry of `manifest.json`'s `specialFiles`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "path": self.path,
            "kind": self.kind(),
            "mode": format!("{:04o}", self.mode),
            "owner": self.uid,
            "group": self.gid,
            "source": self.source,
        });
        if let Special::CharDevice { major, minor } | Special::BlockDevice { major, minor } =
            self.special
        {
            json["major"] = major.into();
            json["minor"] = minor.into();
        }
        json
    }

    fn user_name(&self) -> String {
        self.user.clone().unwrap_or_else(|| self.uid.to_string())
    }

    fn group_name(&self) -> String {
        self.group.clone().unwrap_or_else(|| self.gid.to_string())
    }
}

/// The tree's setuid/setgid regular files and device nodes, sorted by path.
/// A hard link counts with its target's mode and owner, which it shares.
/// Setgid directories (Debian's `/var/mail`) only pass their group on to
/// new files and are not listed; neither are fifos.
pub fn special_files(tree: &Tree, packages: &[&str]) -> Vec<SpecialFile> {
    let users = names(tree, "/etc/passwd");
    let groups = names(tree, "/etc/group");
    let mut found: Vec<SpecialFile> = tree
        .iter()
        .filter_map(|(path, entry)| {
            let inode = match &entry.kind {
                Kind::Hardlink(target) => tree.get(target).unwrap_or(entry),
                _ => entry,
            };
            let special = match inode.kind {
                Kind::File(_) if inode.mode & 0o6000 != 0 => Special::Privileged {
                    setuid: inode.mode & 0o4000 != 0,
                    setgid: inode.mode & 0o2000 != 0,
                },
                Kind::CharDevice { major, minor } => Special::CharDevice { major, minor },
                Kind::BlockDevice { major, minor } => Special::BlockDevice { major, minor },
                _ => return None,
            };
            Some(SpecialFile {
                path: path.to_string(),
                special,
                mode: inode.mode & 0o7777,
                uid: inode.uid,
                gid: inode.gid,
                user: users.get(&inode.uid).cloned(),
                group: groups.get(&inode.gid).cloned(),
                source: source(&entry.origin, packages),
            })
        })
        .collect();
    // The tree sorts by components ("/usr/bin/x" before "/usr-x"); a
    // reader of the list expects plain path order.
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// id → name from a `name:x:id:…` database in the tree. Only a generated
/// one (bytes in memory) is read: the report does no I/O, and the image's
/// `/etc/passwd` and `/etc/group` are always generated.
fn names(tree: &Tree, path: &str) -> BTreeMap<u32, String> {
    let Some(Kind::File(Content::Bytes(bytes))) = TreePath::parse(path)
        .ok()
        .and_then(|path| tree.get(&path))
        .map(|entry| &entry.kind)
    else {
        return BTreeMap::new();
    };
    let mut names = BTreeMap::new();
    for line in String::from_utf8_lossy(bytes).lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if let [name, _, id, ..] = fields[..] {
            if let Ok(id) = id.parse() {
                // The first name for an id wins, as getpwuid's does.
                names.entry(id).or_insert_with(|| name.to_owned());
            }
        }
    }
    names
}

/// The setuid/setgid files and the device nodes as text, one section each
/// and only when there are any:
///
/// ```text
/// setuid/setgid files (1):
///   /usr/bin/passwd (setuid root, 4755, from passwd)
/// device nodes (1):
///   /dev/null (character device 1:3, 0666 root:root, from makedev)
/// ```
pub fn special_table(files: &[SpecialFile]) -> String {
    let mut text = String::new();
    let (devices, privileged): (Vec<&SpecialFile>, Vec<&SpecialFile>) =
        files.iter().partition(|file| file.is_device());
    if !privileged.is_empty() {
        text.push_str(&format!("setuid/setgid files ({}):\n", privileged.len()));
        for file in privileged {
            let Special::Privileged { setuid, setgid } = file.special else {
                continue;
            };
            let mut rights = Vec::new();
            if setuid {
                rights.push(format!("setuid {}", file.user_name()));
            }
            if setgid {
                rights.push(format!("setgid {}", file.group_name()));
            }
            text.push_str(&format!(
                "  {} ({}, {:04o}, from {})\n",
                file.path,
                rights.join(", "),
                file.mode,
                file.source
            ));
        }
    }
    if !devices.is_empty() {
        text.push_str(&format!("device nodes ({}):\n", devices.len()));
        for file in devices {
            let (Special::CharDevice { major, minor } | Special::BlockDevice { major, minor }) =
                file.special
            else {
                continue;
            };
            text.push_str(&format!(
                "  {} ({} {major}:{minor}, {:04o} {}:{}, from {})\n",
                file.path,
                file.kind(),
                file.mode,
                file.user_name(),
                file.group_name(),
                file.source
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use micros_image::{Content, Entry, TreePath};

    #[test]
    fn files_are_grouped_by_package_largest_first() {
        let mut tree = Tree::new();
        let mut add = |path: &str, size: usize, origin: &str| {
            tree.insert(
                TreePath::parse(path).unwrap(),
                Entry::file(Content::bytes(vec![0u8; size]), 0o644, origin),
            )
            .unwrap();
        };
        add("/usr/lib/libc.so.6", 2000, "libc6");
        add("/usr/lib/libm.so.6", 1000, "libc6");
        add("/usr/bin/busybox", 2500, "busybox-static");
        add("/etc/passwd", 100, "micros");
        add("/etc/motd", 10, "environment.etc");
        add("/usr/lib/modules/6.12/dummy.ko", 400, "kernel module dummy");
        tree.insert(
            TreePath::parse("/usr/bin/sh").unwrap(),
            Entry::symlink("busybox", "busybox (applet link)"),
        )
        .unwrap();
        let shares = by_source(&tree, &["libc6", "busybox-static"]);
        let order: Vec<(&str, u64, u64)> = shares
            .iter()
            .map(|s| (s.source.as_str(), s.bytes, s.files))
            .collect();
        assert_eq!(
            order,
            [
                ("libc6", 3000, 2),
                ("busybox-static", 2500, 1),
                ("kernel modules", 400, 1),
                ("MicrOS: generated files", 100, 1),
                ("MicrOS: environment.etc", 10, 1),
            ]
        );
        let text = table(&shares, 2);
        assert!(text
            .starts_with("root filesystem by package, before compression (6.0 kB in 6 files):\n"));
        assert!(text.contains("     3.0 kB   49.9 %  libc6\n"), "{text}");
        assert!(text.ends_with("… 3 more\n"), "{text}");
    }

    #[test]
    fn setuid_setgid_files_and_device_nodes_are_listed_by_path() {
        let mut tree = Tree::new();
        let mut add = |path: &str, entry: Entry| {
            tree.insert(TreePath::parse(path).unwrap(), entry).unwrap();
        };
        let file = |mode| Entry::file(Content::bytes(vec![0u8; 10]), mode, "passwd");
        add("/usr/bin/passwd", file(0o4755));
        add("/usr/bin/chage", file(0o2755).owned(0, 42));
        add("/usr/bin/both", file(0o6755).owned(0, 42));
        // Another name of passwd's inode: as setuid as the first.
        add(
            "/usr/bin/passwd-link",
            Entry::new(
                Kind::Hardlink(TreePath::parse("/usr/bin/passwd").unwrap()),
                0o644,
                "passwd",
            ),
        );
        add("/usr/bin/ordinary", file(0o755));
        add(
            "/var/mail",
            Entry::directory(0o2775, "base-files").owned(0, 8),
        );
        add(
            "/dev/null",
            Entry::new(Kind::CharDevice { major: 1, minor: 3 }, 0o666, "makedev"),
        );
        add(
            "/dev/sda",
            Entry::new(Kind::BlockDevice { major: 8, minor: 0 }, 0o660, "makedev").owned(0, 6),
        );
        add("/run/initctl", Entry::new(Kind::Fifo, 0o600, "makedev"));
        add(
            "/usr/local/bin/mine",
            Entry::file(Content::bytes("#!/bin/sh\n"), 0o4750, "environment.files")
                .owned(1000, 1000),
        );
        add(
            "/etc/passwd",
            Entry::file(
                Content::bytes("root:x:0:0::/root:/bin/sh\n"),
                0o644,
                "users.users",
            ),
        );
        add(
            "/etc/group",
            Entry::file(
                Content::bytes("root:x:0:\ndisk:x:6:\nshadow:x:42:\n"),
                0o644,
                "users.groups",
            ),
        );

        let files = special_files(&tree, &["passwd", "makedev", "base-files"]);
        let listed: Vec<(&str, &str, u32, &str)> = files
            .iter()
            .map(|f| (f.path.as_str(), f.kind(), f.mode, f.source.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("/dev/null", "character device", 0o666, "makedev"),
                ("/dev/sda", "block device", 0o660, "makedev"),
                ("/usr/bin/both", "setuid and setgid", 0o6755, "passwd"),
                ("/usr/bin/chage", "setgid", 0o2755, "passwd"),
                ("/usr/bin/passwd", "setuid", 0o4755, "passwd"),
                ("/usr/bin/passwd-link", "setuid", 0o4755, "passwd"),
                (
                    "/usr/local/bin/mine",
                    "setuid",
                    0o4750,
                    "MicrOS: environment.files"
                ),
            ]
        );

        assert_eq!(
            special_table(&files),
            "setuid/setgid files (5):
  /usr/bin/both (setuid root, setgid shadow, 6755, from passwd)
  /usr/bin/chage (setgid shadow, 2755, from passwd)
  /usr/bin/passwd (setuid root, 4755, from passwd)
  /usr/bin/passwd-link (setuid root, 4755, from passwd)
  /usr/local/bin/mine (setuid 1000, 4750, from MicrOS: environment.files)
device nodes (2):
  /dev/null (character device 1:3, 0666 root:root, from makedev)
  /dev/sda (block device 8:0, 0660 root:disk, from makedev)
"
        );
        assert_eq!(
            files[0].to_json(),
            serde_json::json!({"path": "/dev/null", "kind": "character device", "mode": "0666", "owner": 0, "group": 0, "source": "makedev", "major": 1, "minor": 3})
        );
        assert_eq!(
            files[3].to_json(),
            serde_json::json!({"path": "/usr/bin/chage", "kind": "setgid", "mode": "2755", "owner": 0, "group": 42, "source": "passwd"})
        );

        // Nothing special, nothing said.
        let mut plain = Tree::new();
        plain
            .insert(TreePath::parse("/usr/bin/sh").unwrap(), file(0o755))
            .unwrap();
        assert!(special_files(&plain, &["passwd"]).is_empty());
        assert_eq!(special_table(&[]), "");
    }
}
