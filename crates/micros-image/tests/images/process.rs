//! Properties that need a second process: the same tree written by another
//! process at another time gives the same bytes, and a writer killed halfway
//! leaves the previous image in place.
//!
//! Each test re-runs this test binary, filtered to itself, with an
//! environment variable that makes it play the child's part.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use micros_image::{
    write_cpio, write_disk, write_fat32, write_squashfs, write_tar, Compression, Content,
    DiskLayout, Entry, FatOptions, PartitionSpec, PartitionTable, PartitionType,
    SquashfsCompressor, SquashfsOptions, Tree,
};

use crate::common::{fixture, p, EPOCH};
use crate::fat::boot_tree;

const CHILD_OUT: &str = "MICROS_IMAGE_TEST_CHILD_OUT";
const CHILD_FIFO: &str = "MICROS_IMAGE_TEST_CHILD_FIFO";

fn write_every_format(out: &Path, scratch: &Path) {
    let tree = fixture(scratch);
    for (name, compressor) in [
        ("xz", SquashfsCompressor::Xz),
        ("zstd", SquashfsCompressor::Zstd { level: 15 }),
        ("gzip", SquashfsCompressor::Gzip { level: 9 }),
    ] {
        let options = SquashfsOptions {
            compressor,
            block_size: 64 * 1024,
            threads: 0,
        };
        write_squashfs(&tree, &out.join(format!("root.{name}.squashfs")), &options).unwrap();
    }
    for compression in [
        Compression::None,
        Compression::Gzip { level: 9 },
        Compression::Xz { level: 6 },
        Compression::Zstd { level: 19 },
    ] {
        write_cpio(
            &tree,
            &out.join(format!("initrd.{}", compression.name())),
            compression,
        )
        .unwrap();
        write_tar(
            &tree,
            &out.join(format!("layer.tar.{}", compression.name())),
            compression,
        )
        .unwrap();
    }
    let boot = out.join("boot.vfat");
    let fat = FatOptions {
        size: 40 << 20,
        label: Some("BOOT".into()),
        hidden_sectors: 2048,
    };
    write_fat32(&boot_tree(), &boot, &fat).unwrap();
    for (name, table) in [("mbr", PartitionTable::Mbr), ("gpt", PartitionTable::Gpt)] {
        let layout = DiskLayout {
            table,
            partitions: vec![
                PartitionSpec {
                    name: "boot".into(),
                    kind: PartitionType::FAT32,
                    size: None,
                    content: Some(boot.clone()),
                    bootable: true,
                },
                PartitionSpec {
                    name: "root".into(),
                    kind: PartitionType::LINUX,
                    size: None,
                    content: Some(out.join("root.xz.squashfs")),
                    bootable: false,
                },
            ],
            size: None,
            seed: b"seed".to_vec(),
        };
        write_disk(&out.join(format!("disk.{name}.img")), &layout).unwrap();
    }
}

fn rerun_self(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}

#[test]
fn every_format_is_byte_identical_across_processes_and_times() {
    if let Some(out) = std::env::var_os(CHILD_OUT) {
        let scratch = tempfile::tempdir().unwrap();
        write_every_format(Path::new(&out), scratch.path());
        return;
    }
    let here = tempfile::tempdir().unwrap();
    let first = here.path().join("first");
    let second = here.path().join("second");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let scratch = here.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    write_every_format(&first, &scratch);
    // A clock read anywhere would now give another second.
    std::thread::sleep(Duration::from_millis(1100));
    let status = rerun_self("process::every_format_is_byte_identical_across_processes_and_times")
        .env(CHILD_OUT, &second)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the child writer failed");

    let mut names: Vec<_> = std::fs::read_dir(&first)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), 14, "{names:?}");
    for name in names {
        let one = std::fs::read(first.join(&name)).unwrap();
        let two = std::fs::read(second.join(&name)).unwrap_or_default();
        assert!(
            one == two,
            "{} differs between the two runs",
            name.to_string_lossy()
        );
    }
}

#[test]
fn a_writer_killed_halfway_leaves_the_previous_image() {
    if let Some(fifo) = std::env::var_os(CHILD_FIFO) {
        // The child: a tree whose big file is a pipe the parent feeds slowly.
        let fifo = Path::new(&fifo);
        let mut tree = Tree::new();
        tree.insert(
            p("/lib/firmware.bin"),
            Entry::file(
                Content::Extent {
                    file: Arc::new(fifo.to_owned()),
                    offset: 0,
                    length: 8 << 20,
                },
                0o644,
                "firmware",
            ),
        )
        .unwrap();
        tree.normalize(EPOCH).unwrap();
        let dest = fifo.parent().unwrap().join("root.squashfs");
        let _ = write_squashfs(&tree, &dest, &SquashfsOptions::default());
        unreachable!("the parent kills this process before the pipe ends");
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root.squashfs");
    let mut good_tree = Tree::new();
    good_tree
        .insert(
            p("/etc/good"),
            Entry::file(Content::bytes("the previous build\n"), 0o644, "t"),
        )
        .unwrap();
    good_tree.normalize(EPOCH).unwrap();
    write_squashfs(&good_tree, &dest, &SquashfsOptions::default()).unwrap();
    let good = std::fs::read(&dest).unwrap();

    let fifo = dir.path().join("feed");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut child = rerun_self("process::a_writer_killed_halfway_leaves_the_previous_image")
        .env(CHILD_FIFO, &fifo)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Opening a fifo for writing waits for its reader: the child is then in
    // its data pass, with its temp file created. Open it on a helper thread
    // so a child that dies first fails the test instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    let opener = fifo.clone();
    std::thread::spawn(move || {
        let _ = sender.send(std::fs::OpenOptions::new().write(true).open(opener));
    });
    let mut pipe = loop {
        if let Ok(opened) = receiver.try_recv() {
            break opened.unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child writer exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Half a megabyte in: the child has read, compressed and written some.
    pipe.write_all(&vec![7u8; 512 * 1024]).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(pipe);

    assert_eq!(
        std::fs::read(&dest).unwrap(),
        good,
        "the previous image is intact"
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".root.squashfs."))
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "the killed writer's temp file, under its own name"
    );
    // The next build simply replaces the image.
    let mut next = good_tree.clone();
    next.insert(p("/etc/next"), Entry::file(Content::bytes("x"), 0o644, "t"))
        .unwrap();
    write_squashfs(&next, &dest, &SquashfsOptions::default()).unwrap();
    assert_ne!(std::fs::read(&dest).unwrap(), good);
}
