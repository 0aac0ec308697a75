//! tar archives checked with GNU tar.
use std::process::Command;

use micros_image::{write_tar, Compression, Content, Entry};

use crate::common::{assert_same_tree, assert_xattrs, fixture, is_root, p, run, Compare, EPOCH};

#[test]
fn gnu_tar_lists_and_extracts_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = fixture(dir.path());
    // Longer than ustar's prefix+name: needs a pax header.
    let deep = format!("/deep/{}/{}", "d".repeat(150), "f".repeat(120));
    tree.insert(p(&deep), Entry::file(Content::bytes("deep\n"), 0o644, "t"))
        .unwrap();
    tree.insert(
        p("/big-owner"),
        Entry::file(Content::bytes("x"), 0o644, "t").owned(3_000_000, 3_000_001),
    )
    .unwrap();
    tree.normalize(EPOCH).unwrap();
    for compression in [
        Compression::None,
        Compression::Gzip { level: 6 },
        Compression::Zstd { level: 3 },
    ] {
        let archive = dir.path().join(format!("layer.tar.{}", compression.name()));
        write_tar(&tree, &archive, compression).unwrap();
        let decompress = match compression {
            Compression::Gzip { .. } => "--gzip",
            Compression::Zstd { .. } => "--zstd",
            _ => "--no-auto-compress",
        };
        let listing = run(Command::new("tar")
            .arg(decompress)
            .arg("-tvf")
            .arg(&archive)
            .arg("--numeric-owner"));
        let console = listing
            .lines()
            .find(|l| l.ends_with(" dev/console"))
            .unwrap_or_default();
        assert_eq!(
            console.split_whitespace().collect::<Vec<_>>(),
            [
                "crw-------",
                "0/0",
                "5,1",
                "2023-11-14",
                "22:13",
                "dev/console"
            ]
        );
        assert!(listing.contains("bin/sh link to bin/busybox"), "{listing}");
        assert!(
            listing.contains("z/target link to a/early-link"),
            "{listing}"
        );
        assert!(listing.contains(&deep[1..]), "pax path kept:\n{listing}");
        assert!(
            listing.contains("3000000/3000001"),
            "pax uid/gid:\n{listing}"
        );
        assert_eq!(listing.lines().count(), tree.len() - 1, "all but the root");

        let out = dir.path().join(format!("extracted-{}", compression.name()));
        std::fs::create_dir(&out).unwrap();
        run(Command::new("tar")
            .arg(decompress)
            .arg("-xpf")
            .arg(&archive)
            .args(["--xattrs", "--xattrs-include=*"])
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&out));
        let mut expected = tree.clone();
        // The root is not archived; it is whatever the extraction dir is.
        let found_root = std::fs::metadata(&out).unwrap();
        if let Some(root) = expected.get_mut(&p("/")) {
            root.mode = std::os::unix::fs::PermissionsExt::mode(&found_root.permissions()) & 0o7777;
        }
        assert_same_tree(
            &expected,
            &out,
            Compare {
                owners: is_root(),
                modes: true,
                devices: is_root(),
                links: true,
                mtimes: false,
            },
        );
        if is_root() {
            assert_xattrs(&tree, &out);
        }
    }
}
