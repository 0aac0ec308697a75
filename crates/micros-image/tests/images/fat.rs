//! FAT32 volumes checked with dosfstools' `fsck.fat` and read back with mtools.
use std::process::Command;

use micros_image::{write_fat32, Content, Entry, Error, FatOptions, Kind, Tree};

use crate::common::{assert_same_tree, p, pseudo_random, run, Compare, EPOCH};

pub fn boot_tree() -> Tree {
    let mut tree = Tree::new();
    let mut add = |path: &str, content: Vec<u8>| {
        tree.insert(
            p(path),
            Entry::file(Content::bytes(content), 0o644, "firmware"),
        )
        .unwrap()
    };
    add("/config.txt", b"arm_64bit=1\nkernel=kernel8.img\n".to_vec());
    add(
        "/cmdline.txt",
        b"console=serial0,115200 root=PARTUUID=abc-02\n".to_vec(),
    );
    add("/kernel8.img", pseudo_random(3_000_000, 3));
    add("/START4.ELF", pseudo_random(20_000, 4));
    add("/bcm2710-rpi-3-b.dtb", pseudo_random(30_000, 5));
    add("/bcm2710-rpi-3-b-plus.dtb", pseudo_random(30_000, 6));
    add("/résumé des modifications.txt", b"unicode\n".to_vec());
    add("/empty", Vec::new());
    add("/a/b/c/d/deep.txt", b"deep\n".to_vec());
    for index in 0..300 {
        add(
            &format!("/overlays/overlay-number-{index:03}.dtbo"),
            format!("overlay {index}\n").into_bytes(),
        );
    }
    tree.normalize(EPOCH).unwrap();
    tree
}

fn mtools(tool: &str) -> Command {
    let mut command = Command::new(tool);
    // Our geometry is 255 heads × 63 sectors; mtools must not second-guess it.
    command.env("MTOOLS_SKIP_CHECK", "1");
    command
}

#[test]
fn fsck_fat_finds_nothing_and_mtools_reads_every_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let tree = boot_tree();
    let image = dir.path().join("boot.vfat");
    let options = FatOptions {
        size: 64 << 20,
        label: Some("BOOT".into()),
        hidden_sectors: 2048,
    };
    let summary = write_fat32(&tree, &image, &options).unwrap();
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 << 20);
    assert!(summary.free_clusters < summary.clusters);

    let fsck = run(Command::new("fsck.fat").arg("-n").arg("-v").arg(&image));
    assert!(fsck.contains("2 FATs, 32 bit entries"), "{fsck}");
    for problem in ["differ", "wrong", "Dirty", "Warning", "Unable", "error"] {
        assert!(
            !fsck.contains(problem),
            "fsck.fat reports a problem:\n{fsck}"
        );
    }
    assert!(fsck.contains("315 files"), "{fsck}");

    let info = run(mtools("minfo").arg("-i").arg(&image).arg("::"));
    assert!(info.contains("disk label=\"BOOT       \""), "{info}");
    assert!(
        info.contains(&format!("serial number: {:08X}", summary.volume_id)),
        "{info}"
    );
    let config = run(mtools("mtype").arg("-i").arg(&image).arg("::/config.txt"));
    assert_eq!(config, "arm_64bit=1\nkernel=kernel8.img\n");
    let listing = run(mtools("mdir").arg("-i").arg(&image).arg("::/"));
    assert!(listing.contains("bcm2710-rpi-3-b-plus.dtb"), "{listing}");

    let out = dir.path().join("extracted");
    std::fs::create_dir(&out).unwrap();
    run(mtools("mcopy")
        .arg("-s")
        .arg("-n")
        .arg("-i")
        .arg(&image)
        .arg("::/*")
        .arg(&out));
    let mut expected = tree.clone();
    // FAT keeps no owners or modes; compare names, structure and bytes.
    expected.normalize(EPOCH).unwrap();
    assert_same_tree(
        &expected,
        &out,
        Compare {
            owners: false,
            modes: false,
            devices: false,
            links: false,
            mtimes: false,
        },
    );
}

#[test]
fn what_fat_cannot_hold_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("boot.vfat");
    let options = FatOptions {
        size: 40 << 20,
        label: None,
        hidden_sectors: 0,
    };
    let attempt = |tree: &Tree, options: &FatOptions| {
        let error = write_fat32(tree, &image, options).unwrap_err();
        assert!(!image.exists(), "nothing written for: {error}");
        error
    };
    let mut symlink = Tree::new();
    symlink
        .insert(p("/overlays/x"), Entry::symlink("y", "firmware"))
        .unwrap();
    let error = attempt(&symlink, &options);
    assert_eq!(
        error.to_string(),
        "/overlays/x: FAT32 cannot hold a symlink"
    );

    let mut long = Tree::new();
    long.insert(
        p(&format!("/{}", "l".repeat(256))),
        Entry::file(Content::bytes(""), 0o644, "t"),
    )
    .unwrap();
    assert!(matches!(
        attempt(&long, &options),
        Error::NameTooLong { max: 255, .. }
    ));

    let mut case = Tree::new();
    case.insert(p("/README"), Entry::file(Content::bytes(""), 0o644, "t"))
        .unwrap();
    case.insert(p("/readme"), Entry::file(Content::bytes(""), 0o644, "t"))
        .unwrap();
    let error = attempt(&case, &options);
    assert!(
        error.to_string().contains("differs only in case"),
        "{error}"
    );

    let mut full = Tree::new();
    full.insert(
        p("/kernel.img"),
        Entry::file(Content::bytes(vec![1u8; 41 << 20]), 0o644, "t"),
    )
    .unwrap();
    let error = attempt(&full, &options);
    assert!(
        error.to_string().contains("/kernel.img does not fit"),
        "{error}"
    );

    let small = FatOptions {
        size: 8 << 20,
        ..options.clone()
    };
    let error = attempt(&Tree::new(), &small);
    assert!(
        error.to_string().contains("fewer than FAT32's minimum"),
        "{error}"
    );

    let mut device = Tree::new();
    device
        .insert(
            p("/dev/console"),
            Entry::new(Kind::CharDevice { major: 5, minor: 1 }, 0o600, "init"),
        )
        .unwrap();
    assert!(matches!(
        attempt(&device, &options),
        Error::Unsupported { .. }
    ));
}
