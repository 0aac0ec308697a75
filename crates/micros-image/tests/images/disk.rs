//! Partitioned disk images checked with util-linux' `sfdisk` and gdisk's `sgdisk`.
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use micros_image::{
    write_disk, write_fat32, write_squashfs, DiskLayout, Error, FatOptions, PartitionSpec,
    PartitionTable, PartitionType, SquashfsOptions,
};

use crate::common::{fixture, run};
use crate::fat::boot_tree;

fn images(dir: &Path) -> (PathBuf, PathBuf) {
    let boot = dir.join("boot.vfat");
    write_fat32(
        &boot_tree(),
        &boot,
        &FatOptions {
            size: 48 << 20,
            label: Some("BOOT".into()),
            hidden_sectors: 2048,
        },
    )
    .unwrap();
    let root = dir.join("root.squashfs");
    write_squashfs(&fixture(dir), &root, &SquashfsOptions::default()).unwrap();
    (boot, root)
}

fn layout(table: PartitionTable, boot: &Path, root: &Path) -> DiskLayout {
    DiskLayout {
        table,
        partitions: vec![
            PartitionSpec {
                name: "boot".into(),
                kind: PartitionType::FAT32,
                size: Some(64 << 20),
                content: Some(boot.to_owned()),
                bootable: true,
            },
            PartitionSpec {
                name: "root".into(),
                kind: PartitionType::LINUX,
                size: None,
                content: Some(root.to_owned()),
                bootable: false,
            },
            PartitionSpec {
                name: "data".into(),
                kind: PartitionType::LINUX,
                size: Some(8 << 20),
                content: None,
                bootable: false,
            },
        ],
        size: None,
        seed: b"config and lock hash".to_vec(),
    }
}

fn read_at(path: &Path, offset: u64, length: u64) -> Vec<u8> {
    let mut file = std::fs::File::open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = vec![0u8; length as usize];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

fn dump_value<'a>(dump: &'a str, key: &str) -> &'a str {
    dump.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in\n{dump}"))
}

#[test]
fn partition_uuids_are_known_before_the_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root) = images(dir.path());
    for table in [PartitionTable::Mbr, PartitionTable::Gpt] {
        let mut layout = layout(table, &boot, &root);
        for spec in &mut layout.partitions {
            spec.size = Some(spec.size.unwrap_or(8 << 20));
        }
        let preview = micros_image::partition_uuids(&layout).unwrap();
        let summary = write_disk(&dir.path().join("disk.img"), &layout).unwrap();
        assert_eq!(preview, summary.partition_uuids, "{table:?}");
    }
    // Without explicit sizes the layout depends on the contents.
    let layout = layout(PartitionTable::Mbr, &boot, &root);
    assert!(micros_image::partition_uuids(&layout)
        .unwrap_err()
        .to_string()
        .contains("explicit size"));
}

#[test]
fn the_minimum_size_is_what_an_unsized_disk_gets() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root) = images(dir.path());
    for table in [PartitionTable::Mbr, PartitionTable::Gpt] {
        let mut layout = layout(table, &boot, &root);
        // A partition that is not a MiB multiple pushes the next one to the
        // next MiB boundary: a plain sum of the sizes would fall short.
        layout.partitions[2].size = Some((8 << 20) + 512);
        let minimum = micros_image::minimum_size(&layout).unwrap();
        let summary = write_disk(&dir.path().join("disk.img"), &layout).unwrap();
        assert_eq!(minimum, summary.bytes, "{table:?}");
        let sum: u64 = (1 << 20)
            + (64 << 20)
            + std::fs::metadata(&root).unwrap().len().div_ceil(1 << 20) * (1 << 20)
            + (8 << 20)
            + 512;
        assert!(minimum > sum, "{table:?}: {minimum} vs {sum}");
        assert_eq!(minimum % (1 << 20), 0, "{table:?}");
        // A disk of exactly that size holds the layout.
        layout.size = Some(minimum);
        write_disk(&dir.path().join("disk.img"), &layout).unwrap();
    }
}

#[test]
fn mbr_disk_as_the_raspberry_pi_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root) = images(dir.path());
    let disk = dir.path().join("sd.img");
    let summary = write_disk(&disk, &layout(PartitionTable::Mbr, &boot, &root)).unwrap();
    assert_eq!(summary.offsets[0], 1 << 20);
    assert!(summary.offsets.iter().all(|offset| offset % (1 << 20) == 0));

    let dump = run(Command::new("sfdisk").arg("--dump").arg(&disk));
    assert_eq!(dump_value(&dump, "label"), "dos");
    let signature = &summary.partition_uuids[0][..8];
    assert_eq!(dump_value(&dump, "label-id"), format!("0x{signature}"));
    let root_size = std::fs::metadata(&root).unwrap().len().div_ceil(1 << 20) * (1 << 20) / 512;
    let d = disk.display();
    assert!(
        dump.contains(&format!(
            "{d}1 : start=        2048, size=      131072, type=c, bootable"
        )),
        "{dump}"
    );
    assert!(
        dump.contains(&format!(
            "{d}2 : start=      133120, size={root_size:>12}, type=83"
        )),
        "{dump}"
    );
    assert!(
        dump.contains(&format!(
            "{d}3 : start={:>12}, size=       16384, type=83",
            summary.offsets[2] / 512
        )),
        "{dump}"
    );

    // The partitions hold the images byte for byte.
    let boot_bytes = std::fs::read(&boot).unwrap();
    assert_eq!(
        read_at(&disk, summary.offsets[0], boot_bytes.len() as u64),
        boot_bytes
    );
    let root_bytes = std::fs::read(&root).unwrap();
    assert_eq!(
        read_at(&disk, summary.offsets[1], root_bytes.len() as u64),
        root_bytes
    );
}

#[test]
fn gpt_disk_passes_sgdisk_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root) = images(dir.path());
    let disk = dir.path().join("disk.img");
    let summary = write_disk(&disk, &layout(PartitionTable::Gpt, &boot, &root)).unwrap();

    let verify = run(Command::new("sgdisk").arg("-v").arg(&disk));
    assert!(verify.contains("No problems found."), "{verify}");

    let dump = run(Command::new("sfdisk").arg("--dump").arg(&disk));
    assert_eq!(dump_value(&dump, "label"), "gpt");
    assert_eq!(dump_value(&dump, "first-lba"), "34");
    assert_eq!(
        dump_value(&dump, "last-lba"),
        (summary.bytes / 512 - 34).to_string()
    );
    let d = disk.display();
    assert!(
        dump.contains(&format!(
            "{d}1 : start=        2048, size=      131072, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid={}, name=\"boot\", attrs=\"LegacyBIOSBootable\"",
            summary.partition_uuids[0].to_uppercase()
        )),
        "{dump}"
    );
    assert!(
        dump.contains("type=0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
        "{dump}"
    );
    assert!(dump.contains("name=\"data\""), "{dump}");
    let root_bytes = std::fs::read(&root).unwrap();
    assert_eq!(
        read_at(&disk, summary.offsets[1], root_bytes.len() as u64),
        root_bytes
    );

    // Identifiers come from the seed and layout, never from chance.
    let again = dir.path().join("again.img");
    assert_eq!(
        write_disk(&again, &layout(PartitionTable::Gpt, &boot, &root)).unwrap(),
        summary
    );
    let mut other = layout(PartitionTable::Gpt, &boot, &root);
    other.seed = b"another system".to_vec();
    let other_summary = write_disk(&again, &other).unwrap();
    assert_ne!(other_summary.partition_uuids, summary.partition_uuids);
}

#[test]
fn a_hybrid_gpt_disk_shows_its_first_partition_to_mbr_readers_too() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root) = images(dir.path());
    let plain = dir.path().join("plain.img");
    let hybrid = dir.path().join("hybrid.img");
    let gpt = write_disk(&plain, &layout(PartitionTable::Gpt, &boot, &root)).unwrap();
    let summary = write_disk(&hybrid, &layout(PartitionTable::GptHybrid, &boot, &root)).unwrap();
    assert_eq!(summary, gpt, "the same GPT partitions and identifiers");

    let verify = run(Command::new("sgdisk").arg("-v").arg(&hybrid));
    assert!(verify.contains("No problems found."), "{verify}");
    let dump = |disk: &Path| {
        run(Command::new("sfdisk").arg("--dump").arg(disk)).replace(&disk.display().to_string(), "")
    };
    assert_eq!(
        dump(&hybrid),
        dump(&plain),
        "GPT readers see the same table"
    );
    // The MBR: the boot partition (FAT32, bootable) for firmware that
    // reads only an MBR, then 0xEE from LBA 1 to just before it.
    let mbr = read_at(&hybrid, 0, 512);
    let entry = |i: usize| &mbr[446 + 16 * i..462 + 16 * i];
    let word = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().unwrap());
    assert_eq!((entry(0)[0], entry(0)[4]), (0x80, 0x0c));
    assert_eq!(
        (word(&entry(0)[8..12]), word(&entry(0)[12..16])),
        (2048, 131072)
    );
    assert_eq!((entry(1)[0], entry(1)[4]), (0, 0xee));
    assert_eq!((word(&entry(1)[8..12]), word(&entry(1)[12..16])), (1, 2047));
    assert!(entry(2).iter().chain(entry(3)).all(|&b| b == 0));
    assert_eq!(&mbr[510..], &[0x55, 0xaa]);
    assert_eq!(read_at(&hybrid, 512, 512), read_at(&plain, 512, 512));
}

#[test]
fn a_partition_too_small_for_its_content_fails_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root) = images(dir.path());
    let disk = dir.path().join("sd.img");
    let mut bad = layout(PartitionTable::Mbr, &boot, &root);
    bad.partitions[0].size = Some(32 << 20);
    let error = write_disk(&disk, &bad).unwrap_err();
    assert!(matches!(error, Error::Partition { .. }), "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "partition `boot`: its content {} is 50331648 bytes, larger than the partition's 33554432",
            boot.display()
        )),
        "{error}"
    );
    assert!(!disk.exists());

    let mut small_disk = layout(PartitionTable::Gpt, &boot, &root);
    small_disk.size = Some(64 << 20);
    let error = write_disk(&disk, &small_disk).unwrap_err();
    assert!(
        error.to_string().contains("but the disk is 67108864"),
        "{error}"
    );
    assert!(!disk.exists());

    let mut five = layout(PartitionTable::Mbr, &boot, &root);
    five.partitions.extend(five.partitions.clone());
    let error = write_disk(&disk, &five).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("6 partitions, but the partition table holds 4"),
        "{error}"
    );
    assert!(!disk.exists());
}
