//! The fixture tree every format is checked with, the reference tools'
//! plumbing, and a tree comparison that treats hard-link groups as groups.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use micros_image::host::tree_from_directory;
use micros_image::{Content, Entry, Kind, Tree, TreePath};

pub const EPOCH: u64 = 1_700_000_000;

pub fn p(path: &str) -> TreePath {
    TreePath::parse(path).unwrap()
}

/// Deterministic bytes that compress about as well as machine code.
pub fn pseudo_random(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|index| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Every fourth byte repeats, so the data is not incompressible.
            if index % 4 == 0 {
                b'x'
            } else {
                state as u8
            }
        })
        .collect()
}

/// A tree with one of everything: hard links (one named before its file),
/// devices, a fifo, symlinks, setuid and sticky modes, owners, an empty
/// file, sparse blocks, duplicate large and small files, a 255-byte name, a
/// directory whose listing spans several metadata blocks, and contents both
/// in memory and in an extent of a file under `scratch`.
pub fn fixture(scratch: &Path) -> Tree {
    let blob = scratch.join("package-data.bin");
    let mut data = pseudo_random(700_000, 1);
    // Two 128 KiB runs of zeros: sparse blocks for squashfs.
    data[131_072..393_216].fill(0);
    std::fs::write(&blob, &data).unwrap();
    let blob = Arc::new(blob);
    let extent = |offset: u64, length: u64| Content::Extent {
        file: blob.clone(),
        offset,
        length,
    };

    let mut tree = Tree::new();
    let mut add = |path: &str, entry: Entry| tree.insert(p(path), entry).unwrap();
    add(
        "/bin/busybox",
        Entry::file(extent(0, 300_001), 0o755, "busybox"),
    );
    add(
        "/bin/sh",
        Entry::new(Kind::Hardlink(p("/bin/busybox")), 0o755, "busybox"),
    );
    add(
        "/bin/ls",
        Entry::new(Kind::Hardlink(p("/bin/busybox")), 0o755, "busybox"),
    );
    add(
        "/a/early-link",
        Entry::new(Kind::Hardlink(p("/z/target")), 0o644, "t"),
    );
    add(
        "/z/target",
        Entry::file(Content::bytes("linked before it exists\n"), 0o644, "t"),
    );
    add(
        "/dev/console",
        Entry::new(Kind::CharDevice { major: 5, minor: 1 }, 0o600, "init"),
    );
    add(
        "/dev/sda",
        Entry::new(Kind::BlockDevice { major: 8, minor: 0 }, 0o660, "init").owned(0, 6),
    );
    add(
        "/dev/nvme-high",
        Entry::new(
            Kind::BlockDevice {
                major: 259,
                minor: 300_000,
            },
            0o660,
            "init",
        ),
    );
    add("/run/initctl", Entry::new(Kind::Fifo, 0o600, "init"));
    add(
        "/etc/passwd",
        Entry::file(
            Content::bytes("root:x:0:0:root:/root:/bin/sh\n"),
            0o644,
            "users",
        ),
    );
    add(
        "/etc/shadow",
        Entry::file(
            Content::bytes("root:*:19000:0:99999:7:::\n"),
            0o640,
            "users",
        )
        .owned(0, 42),
    );
    add(
        "/home/user",
        Entry::directory(0o700, "users").owned(1000, 1000),
    );
    add(
        "/home/user/.profile",
        Entry::file(Content::bytes("export PS1='$ '\n"), 0o644, "users").owned(1000, 1000),
    );
    add(
        "/usr/lib/libc.so.6",
        Entry::symlink("libc-2.36.so", "libc6"),
    );
    add(
        "/usr/lib/libc-2.36.so",
        Entry::file(extent(1, 699_999), 0o755, "libc6"),
    );
    add(
        "/usr/share/big-1",
        Entry::file(Content::bytes(pseudo_random(200_000, 7)), 0o644, "t"),
    );
    add(
        "/usr/share/big-2",
        Entry::file(Content::bytes(pseudo_random(200_000, 7)), 0o644, "t"),
    );
    add(
        "/usr/share/small-1",
        Entry::file(Content::bytes("same small\n"), 0o644, "t"),
    );
    add(
        "/usr/share/small-2",
        Entry::file(Content::bytes("same small\n"), 0o644, "t"),
    );
    add(
        "/usr/share/empty",
        Entry::file(Content::bytes(""), 0o644, "t"),
    );
    add(
        "/srv/zeros",
        Entry::file(Content::bytes(vec![0u8; 300_000]), 0o644, "t"),
    );
    add(
        "/opt/setuid",
        Entry::file(Content::bytes("#!/bin/sh\n"), 0o4755, "t"),
    );
    add("/tmp", Entry::directory(0o1777, "t"));
    add(
        "/usr/bin/absolute-link",
        Entry::symlink("/bin/busybox", "t"),
    );
    add(
        &format!("/long/{}", "n".repeat(255)),
        Entry::file(Content::bytes("long name\n"), 0o644, "t"),
    );
    for index in 0..700 {
        add(
            &format!("/usr/share/many/a-file-with-a-longish-name-{index:04}"),
            Entry::file(Content::bytes(format!("file {index}\n")), 0o644, "many"),
        );
    }
    // Extended attributes: a file capability (binary), a user attribute on
    // a directory, and the same set twice (stored once by squashfs).
    let capability = vec![
        1, 0, 0, 2, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    for path in ["/usr/bin/ping", "/usr/bin/ping6"] {
        let mut ping = Entry::file(Content::bytes("ping\n"), 0o755, "iputils");
        ping.xattrs
            .insert("security.capability".into(), capability.clone());
        ping.xattrs
            .insert("user.origin".into(), b"iputils-ping".to_vec());
        tree.insert(p(path), ping).unwrap();
    }
    if let Some(home) = tree.get_mut(&p("/home/user")) {
        home.xattrs.insert("user.quota".into(), b"10G".to_vec());
    }
    tree.normalize(EPOCH).unwrap();
    tree
}

/// Checks every extended attribute of `tree` on the extracted or mounted
/// copy in `dir`, read back with attr's `getfattr`.
pub fn assert_xattrs(tree: &Tree, dir: &Path) {
    for (path, entry) in tree.iter().filter(|(_, e)| !e.xattrs.is_empty()) {
        let host = dir.join(path.components().join("/"));
        let dump = run(Command::new("getfattr")
            .args([
                "--absolute-names",
                "--no-dereference",
                "-d",
                "-m",
                "-",
                "-e",
                "hex",
            ])
            .arg(&host));
        let mut found = BTreeMap::new();
        for line in dump.lines() {
            if let Some((key, value)) = line.split_once("=0x") {
                let bytes = (0..value.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&value[i..i + 2], 16).unwrap())
                    .collect::<Vec<u8>>();
                found.insert(key.to_owned(), bytes);
            }
        }
        assert_eq!(found, entry.xattrs, "{path}: extended attributes differ");
    }
}

/// Runs a command, fails the test with its output if it fails, returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|err| {
        panic!("cannot run {command:?}: {err} (see tools/test.sh for packages)")
    });
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Device nodes can only be extracted by root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[derive(Clone, Copy)]
pub struct Compare {
    pub owners: bool,
    pub modes: bool,
    pub devices: bool,
    pub links: bool,
    pub mtimes: bool,
}

/// What one path looks like, hard links resolved to their group.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Directory,
    File {
        bytes: Vec<u8>,
        group: Vec<TreePath>,
    },
    Symlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

fn shapes(tree: &Tree, compare: Compare) -> BTreeMap<TreePath, (Shape, u32, u32, u32, u64)> {
    let mut groups: BTreeMap<TreePath, Vec<TreePath>> = BTreeMap::new();
    for (path, entry) in tree.iter() {
        match &entry.kind {
            Kind::File(_) => groups.entry(path.clone()).or_default().push(path.clone()),
            Kind::Hardlink(target) => groups.entry(target.clone()).or_default().push(path.clone()),
            _ => {}
        }
    }
    let mut result = BTreeMap::new();
    for (path, entry) in tree.iter() {
        let (leader, node) = match &entry.kind {
            Kind::Hardlink(target) => (target.clone(), tree.get(target).unwrap()),
            _ => (path.clone(), entry),
        };
        let shape = match &node.kind {
            Kind::Directory => Shape::Directory,
            Kind::File(content) => {
                let mut group = groups[&leader].clone();
                group.sort();
                Shape::File {
                    bytes: content.read().unwrap(),
                    group: if compare.links { group } else { Vec::new() },
                }
            }
            Kind::Symlink(target) => Shape::Symlink(target.clone()),
            Kind::CharDevice { major, minor } => Shape::Char(*major, *minor),
            Kind::BlockDevice { major, minor } => Shape::Block(*major, *minor),
            Kind::Fifo => Shape::Fifo,
            Kind::Hardlink(_) => unreachable!(),
        };
        let mode = if compare.modes { node.mode & 0o7777 } else { 0 };
        let (uid, gid) = if compare.owners {
            (node.uid, node.gid)
        } else {
            (0, 0)
        };
        let mtime = if compare.mtimes && !path.is_root() {
            node.mtime
        } else {
            0
        };
        result.insert(path.clone(), (shape, mode, uid, gid, mtime));
    }
    result
}

/// Compares what a tool extracted into `dir` with the tree that was written.
pub fn assert_same_tree(expected: &Tree, dir: &Path, compare: Compare) {
    let mut expected = expected.clone();
    if !compare.devices {
        let devices: Vec<TreePath> = expected
            .iter()
            .filter(|(_, e)| matches!(e.kind, Kind::CharDevice { .. } | Kind::BlockDevice { .. }))
            .map(|(path, _)| path.clone())
            .collect();
        for path in devices {
            expected.remove(&path);
        }
    }
    let found = tree_from_directory(dir, "extracted").unwrap();
    let expected = shapes(&expected, compare);
    let found = shapes(&found, compare);
    let missing: Vec<_> = expected
        .keys()
        .filter(|p| !found.contains_key(*p))
        .collect();
    let extra: Vec<_> = found
        .keys()
        .filter(|p| !expected.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    for (path, want) in &expected {
        let got = &found[path];
        if want != got {
            let short = |s: &(Shape, u32, u32, u32, u64)| match &s.0 {
                Shape::File { bytes, group } => format!(
                    "file of {} bytes, links {group:?}, mode {:o}, {}:{}, mtime {}",
                    bytes.len(),
                    s.1,
                    s.2,
                    s.3,
                    s.4
                ),
                other => format!("{other:?}, mode {:o}, {}:{}, mtime {}", s.1, s.2, s.3, s.4),
            };
            panic!(
                "{path} differs:\n  wrote     {}\n  extracted {}",
                short(want),
                short(got)
            );
        }
    }
}
