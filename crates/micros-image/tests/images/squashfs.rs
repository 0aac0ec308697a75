//! squashfs images checked with squashfs-tools' `unsquashfs`.
use std::collections::HashMap;
use std::process::Command;

use micros_image::{
    write_squashfs, Content, Entry, Error, SquashfsCompressor, SquashfsOptions, Tree,
};

use crate::common::{
    assert_same_tree, assert_xattrs, fixture, is_root, p, pseudo_random, run, Compare, EPOCH,
};

fn options(compressor: SquashfsCompressor, block_size: u32) -> SquashfsOptions {
    SquashfsOptions {
        compressor,
        block_size,
        threads: 0,
    }
}

fn extract_and_compare(tree: &Tree, image: &std::path::Path) {
    let out = image.with_extension("extracted");
    run(Command::new("unsquashfs")
        .arg("-no-progress")
        .arg("-d")
        .arg(&out)
        .arg(image));
    assert_same_tree(
        tree,
        &out,
        Compare {
            owners: is_root(),
            modes: true,
            devices: is_root(),
            links: true,
            mtimes: true,
        },
    );
    if is_root() {
        // security.* attributes are only restored by root.
        assert_xattrs(tree, &out);
    }
}

#[test]
fn unsquashfs_extracts_exactly_the_tree_with_every_compressor() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture(dir.path());
    for (name, compressor, block_size) in [
        ("xz", SquashfsCompressor::Xz, 128 * 1024),
        ("zstd", SquashfsCompressor::Zstd { level: 15 }, 128 * 1024),
        ("zstd3", SquashfsCompressor::Zstd { level: 3 }, 64 * 1024),
        ("gzip", SquashfsCompressor::Gzip { level: 9 }, 4096),
        ("gzip6", SquashfsCompressor::Gzip { level: 6 }, 1 << 20),
    ] {
        let image = dir.path().join(format!("{name}.squashfs"));
        let summary = write_squashfs(&tree, &image, &options(compressor, block_size)).unwrap();
        assert_eq!(std::fs::metadata(&image).unwrap().len(), summary.bytes);
        assert_eq!(summary.bytes % 4096, 0, "padded for block devices");

        let stat = run(Command::new("unsquashfs").arg("-s").arg(&image));
        let compression = name.trim_end_matches(char::is_numeric);
        assert!(
            stat.contains(&format!("Compression {compression}")),
            "{stat}"
        );
        assert!(stat.contains(&format!("Block size {block_size}")), "{stat}");
        assert!(
            stat.contains(&format!("Number of inodes {}", summary.inodes)),
            "{stat}"
        );
        // One inode per entry, except the three hard links.
        assert_eq!(summary.inodes as usize, tree.len() - 3);
        if name == "zstd3" {
            assert!(stat.contains("compression-level 3"), "{stat}");
        }
        extract_and_compare(&tree, &image);
    }
}

#[test]
fn listing_shows_owners_modes_devices_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture(dir.path());
    let image = dir.path().join("root.squashfs");
    write_squashfs(&tree, &image, &SquashfsOptions::default()).unwrap();
    let listing = run(Command::new("unsquashfs").arg("-lln").arg(&image));
    let line = |suffix: &str| {
        listing
            .lines()
            .find(|line| line.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in\n{listing}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("squashfs-root/dev/console")[..4],
        ["crw-------", "0/0", "5,", "1"]
    );
    assert_eq!(
        line("squashfs-root/dev/sda")[..4],
        ["brw-rw----", "0/6", "8,", "0"]
    );
    // unsquashfs -lln prints minors above 255 oddly (it shows the same for
    // mksquashfs' image of a 259:300000 node); extraction decodes it right.
    assert_eq!(
        line("squashfs-root/dev/nvme-high")[..3],
        ["brw-rw----", "0/0", "4796675,224"]
    );
    assert_eq!(
        line("squashfs-root/run/initctl")[..2],
        ["prw-------", "0/0"]
    );
    assert_eq!(
        line("squashfs-root/home/user")[..2],
        ["drwx------", "1000/1000"]
    );
    assert_eq!(
        line("squashfs-root/etc/shadow")[..2],
        ["-rw-r-----", "0/42"]
    );
    assert_eq!(line("squashfs-root/opt/setuid")[0], "-rwsr-xr-x");
    assert_eq!(line("squashfs-root/tmp")[0], "drwxrwxrwt");
    assert_eq!(
        line("squashfs-root/usr/lib/libc.so.6 -> libc-2.36.so")[..2],
        ["lrwxrwxrwx", "0/0"]
    );
    // The date column is the build epoch (2023-11-14 22:13 UTC).
    assert!(line("squashfs-root/etc/passwd")[3].starts_with("2023-11-1"));
    let stat = run(Command::new("unsquashfs").arg("-s").arg(&image));
    assert!(stat.contains("Number of ids 4"), "0, 6, 42, 1000:\n{stat}");
    // Two files share one set, the directory has another.
    assert!(stat.contains("Number of xattr ids 2"), "{stat}");
}

#[test]
fn duplicates_are_stored_once_but_only_when_the_bytes_match() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture(dir.path());
    let deduplicated = dir.path().join("dedup.squashfs");
    write_squashfs(&tree, &deduplicated, &SquashfsOptions::default()).unwrap();
    let mut different = tree.clone();
    different
        .replace(
            p("/usr/share/big-2"),
            Entry::file(Content::bytes(pseudo_random(200_000, 8)), 0o644, "t"),
        )
        .unwrap();
    different.normalize(EPOCH).unwrap();
    let distinct = dir.path().join("distinct.squashfs");
    write_squashfs(&different, &distinct, &SquashfsOptions::default()).unwrap();
    let size = |path: &std::path::Path| std::fs::metadata(path).unwrap().len();
    assert!(
        size(&distinct) > size(&deduplicated) + 100_000,
        "the duplicate costs nothing: {} vs {}",
        size(&deduplicated),
        size(&distinct)
    );
    extract_and_compare(&different, &distinct);
}

/// Two equally long byte strings with the same CRC32, found by a birthday
/// search: the writer's duplicate index uses that hash, so only a byte
/// comparison can tell these apart.
fn crc_collision(length: usize) -> (Vec<u8>, Vec<u8>) {
    let fixed = pseudo_random(length - 8, 99);
    let mut prefix = crc32fast::Hasher::new();
    prefix.update(&fixed);
    let mut seen: HashMap<u32, u64> = HashMap::new();
    // Scrambled suffixes: consecutive counters differ in too few bits for
    // a CRC to ever collide (it detects every short burst).
    let suffix = |counter: u64| {
        let mut z = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    };
    // A birthday search over 32 bits succeeds within a few 2^16 tries.
    for counter in 0u64..1 << 22 {
        let mut hasher = prefix.clone();
        hasher.update(&suffix(counter));
        let crc = hasher.finalize();
        if let Some(&earlier) = seen.get(&crc) {
            let make = |c: u64| [fixed.clone(), suffix(c).to_vec()].concat();
            return (make(earlier), make(counter));
        }
        seen.insert(crc, counter);
    }
    panic!("no CRC32 collision in 2^22 tries")
}

#[test]
fn a_hash_collision_is_not_taken_for_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = Tree::new();
    for (length, name) in [(100, "small"), (4096, "block")] {
        let (one, two) = crc_collision(length);
        assert_ne!(one, two);
        assert_eq!(crc32fast::hash(&one), crc32fast::hash(&two));
        tree.insert(
            p(&format!("/{name}-1")),
            Entry::file(Content::bytes(one), 0o644, "t"),
        )
        .unwrap();
        tree.insert(
            p(&format!("/{name}-2")),
            Entry::file(Content::bytes(two), 0o644, "t"),
        )
        .unwrap();
    }
    tree.normalize(EPOCH).unwrap();
    let image = dir.path().join("collide.squashfs");
    // 4 KiB blocks: the 4096-byte pair goes through the block path, the
    // 100-byte pair through the fragment path.
    write_squashfs(
        &tree,
        &image,
        &options(SquashfsCompressor::Zstd { level: 3 }, 4096),
    )
    .unwrap();
    extract_and_compare(&tree, &image);
}

#[test]
fn bad_input_fails_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("bad.squashfs");
    let attempt = |tree: &Tree, options: &SquashfsOptions| {
        let error = write_squashfs(tree, &image, options).unwrap_err();
        assert!(!image.exists(), "nothing written for: {error}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no temp file left"
        );
        error
    };
    let mut long = Tree::new();
    long.insert(
        p(&format!("/etc/{}", "x".repeat(257))),
        Entry::file(Content::bytes(""), 0o644, "pkg"),
    )
    .unwrap();
    let error = attempt(&long, &SquashfsOptions::default());
    assert!(
        matches!(error, Error::NameTooLong { max: 256, .. }),
        "{error}"
    );
    assert!(error.to_string().starts_with("/etc/xxx"), "{error}");

    let mut device = Tree::new();
    device
        .insert(
            p("/dev/odd"),
            Entry::new(
                micros_image::Kind::CharDevice {
                    major: 5000,
                    minor: 0,
                },
                0o600,
                "m",
            ),
        )
        .unwrap();
    let error = attempt(&device, &SquashfsOptions::default());
    assert!(
        error
            .to_string()
            .contains("/dev/odd: the device major number is 5000"),
        "{error}"
    );

    let error = attempt(&Tree::new(), &options(SquashfsCompressor::Xz, 3000));
    assert!(error.to_string().contains("block size 3000"), "{error}");
    let error = attempt(
        &Tree::new(),
        &options(SquashfsCompressor::Zstd { level: 0 }, 4096),
    );
    assert!(error.to_string().contains("zstd level 0"), "{error}");

    // A source that cannot be read fails mid-write: still no output.
    let mut missing = Tree::new();
    missing
        .insert(
            p("/lib/module.ko"),
            Entry::file(
                Content::Extent {
                    file: std::sync::Arc::new(dir.path().join("vanished.deb")),
                    offset: 0,
                    length: 1 << 20,
                },
                0o644,
                "linux-image",
            ),
        )
        .unwrap();
    let error = attempt(&missing, &SquashfsOptions::default());
    assert!(
        error
            .to_string()
            .starts_with("/lib/module.ko (from linux-image)"),
        "{error}"
    );
}

#[test]
fn an_empty_tree_is_a_valid_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("empty.squashfs");
    let mut tree = Tree::new();
    tree.normalize(EPOCH).unwrap();
    write_squashfs(&tree, &image, &SquashfsOptions::default()).unwrap();
    extract_and_compare(&tree, &image);
}

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The Linux kernel itself reads the image: mounted through a loop device,
/// every path is looked up (through the directory index for the 700-entry
/// directory), stat'ed and read, and compared with the tree. Needs root and
/// loop devices, as CI has; it fails, saying so, where they are missing.
#[test]
fn kernel_loop_mount_reads_the_image_needs_root() {
    assert!(
        is_root(),
        "this test mounts a loop device: run it as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture(dir.path());
    for (name, compressor) in [
        ("xz", SquashfsCompressor::Xz),
        ("zstd", SquashfsCompressor::Zstd { level: 15 }),
        ("gzip", SquashfsCompressor::Gzip { level: 9 }),
    ] {
        let image = dir.path().join(format!("{name}.squashfs"));
        write_squashfs(&tree, &image, &options(compressor, 128 * 1024)).unwrap();
        let mount_point = dir.path().join(format!("mnt-{name}"));
        std::fs::create_dir(&mount_point).unwrap();
        let output = Command::new("mount")
            .args(["-t", "squashfs", "-o", "loop,ro"])
            .arg(&image)
            .arg(&mount_point)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the kernel refused the {name} image (or loop devices are missing): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mounted = Mounted(mount_point.clone());
        assert_same_tree(
            &tree,
            &mounted.0,
            Compare {
                owners: true,
                modes: true,
                devices: true,
                links: true,
                mtimes: true,
            },
        );
        assert_xattrs(&tree, &mounted.0);
        // A lookup by name deep in the indexed directory, without a listing first.
        let late = mounted
            .0
            .join("usr/share/many/a-file-with-a-longish-name-0699");
        assert_eq!(std::fs::read(late).unwrap(), b"file 699\n");
    }
}

#[test]
fn the_thread_count_does_not_change_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture(dir.path());
    let mut images = Vec::new();
    for threads in [1, 3, 8] {
        let image = dir.path().join(format!("threads-{threads}.squashfs"));
        let options = SquashfsOptions {
            compressor: SquashfsCompressor::Zstd { level: 3 },
            block_size: 16 * 1024,
            threads,
        };
        write_squashfs(&tree, &image, &options).unwrap();
        images.push(std::fs::read(&image).unwrap());
    }
    assert!(images.windows(2).all(|pair| pair[0] == pair[1]));
}
