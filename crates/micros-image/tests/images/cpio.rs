//! initrd archives checked with GNU cpio (and the compressors' own tools).
use std::process::{Command, Stdio};

use micros_image::{write_cpio, Compression, Content, Entry, Error, Kind, Tree};

use crate::common::{assert_same_tree, fixture, is_root, p, Compare, EPOCH};

/// The archive, decompressed by the tool a user would use.
fn decompress(path: &std::path::Path, compression: Compression) -> Vec<u8> {
    let tool = match compression {
        Compression::None => return std::fs::read(path).unwrap(),
        Compression::Gzip { .. } => "gzip",
        Compression::Xz { .. } => "xz",
        Compression::Zstd { .. } => "zstd",
    };
    let output = Command::new(tool).arg("-dc").arg(path).output().unwrap();
    assert!(output.status.success(), "{tool} -dc failed");
    output.stdout
}

fn cpio(args: &[&str], input: &[u8], dir: &std::path::Path) -> String {
    use std::io::Write;
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpio is installed (tools/test.sh)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "cpio {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn cpio_lists_and_extracts_the_tree_with_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture(dir.path());
    for compression in [
        Compression::None,
        Compression::Gzip { level: 9 },
        Compression::Xz { level: 6 },
        Compression::Zstd { level: 19 },
    ] {
        let archive = dir.path().join(format!("initrd.{}", compression.name()));
        let written = write_cpio(&tree, &archive, compression).unwrap();
        assert_eq!(written, std::fs::metadata(&archive).unwrap().len());
        let bytes = decompress(&archive, compression);

        let listing = cpio(&["-itv", "--quiet"], &bytes, dir.path());
        let line = |name: &str| {
            listing
                .lines()
                .find(|line| line.ends_with(&format!(" {name}")))
                .unwrap_or_else(|| panic!("no {name} in\n{listing}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line("dev/console")[..6],
            ["crw-------", "1", "root", "root", "5,", "1"]
        );
        assert_eq!(
            line("dev/nvme-high")[..6],
            ["brw-rw----", "1", "root", "root", "259,", "300000"]
        );
        assert_eq!(line("run/initctl")[0], "prw-------");
        assert_eq!(line("bin/busybox")[..2], ["-rwxr-xr-x", "3"]);
        assert_eq!(line("opt/setuid")[0], "-rwsr-xr-x");
        assert_eq!(line("usr/lib/libc.so.6 -> libc-2.36.so")[0], "lrwxrwxrwx");
        assert_eq!(
            listing.lines().count(),
            tree.len(),
            "one line per entry, root as `.`"
        );

        let out = dir.path().join(format!("extracted-{}", compression.name()));
        std::fs::create_dir(&out).unwrap();
        cpio(
            &["-idm", "--quiet", "--no-absolute-filenames"],
            &bytes,
            &out,
        );
        assert_same_tree(
            &tree,
            &out,
            Compare {
                owners: is_root(),
                modes: true,
                devices: is_root(),
                links: true,
                // cpio creates a directory's children after setting its mtime.
                mtimes: false,
            },
        );
        let passwd = std::fs::metadata(out.join("etc/passwd")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&passwd) as u64, EPOCH);
    }
}

#[test]
fn the_console_device_needs_no_root_and_bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = Tree::new();
    tree.insert(
        p("/dev/console"),
        Entry::new(Kind::CharDevice { major: 5, minor: 1 }, 0o600, "init"),
    )
    .unwrap();
    tree.insert(
        p("/init"),
        Entry::file(Content::bytes("#!/bin/sh\n"), 0o755, "init"),
    )
    .unwrap();
    tree.normalize(EPOCH).unwrap();
    let archive = dir.path().join("initrd.img");
    write_cpio(&tree, &archive, Compression::None).unwrap();
    let listing = cpio(
        &["-itv", "--quiet"],
        &std::fs::read(&archive).unwrap(),
        dir.path(),
    );
    assert!(
        listing.contains("crw-------   1 root     root       5,   1"),
        "{listing}"
    );

    let before = std::fs::read(&archive).unwrap();
    let mut bad = tree.clone();
    bad.insert(
        p("/big"),
        Entry::file(
            Content::Extent {
                file: std::sync::Arc::new(dir.path().join("huge")),
                offset: 0,
                length: 5 << 30,
            },
            0o644,
            "pkg",
        ),
    )
    .unwrap();
    let error = write_cpio(&bad, &archive, Compression::None).unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error}");
    assert!(
        error.to_string().starts_with(
            "/big: the file size is 5368709120, more than cpio newc allows (4294967295)"
        ),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        before,
        "the good archive stays"
    );
}
