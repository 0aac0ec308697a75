//! Needs the network (Debian's archive) and QEMU: boots a Debian kernel
//! with a MicrOS initrd and checks what stage 1 does on the console.
//!
//! The root is a squashfs holding busybox whose init prints a marker and
//! the mount table, so the test sees the overlay stage 1 built.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use micros_debian::archive::{Source, DEFAULT_KEYRING};
use micros_debian::cache::Cache;
use micros_debian::deb::{data_tar, unpack_tar, UnpackOptions};
use micros_debian::fetch::{Fetcher, Silent};
use micros_debian::resolve::{fetch_packages, resolve, LockMode, Wanted};
use micros_image::{Content, Entry, Tree, TreePath};
use micros_system::kernel::Kernel;

struct Images {
    _dir: tempfile::TempDir,
    kernel: PathBuf,
    initrd: PathBuf,
    root: PathBuf,
}

fn path(text: &str) -> TreePath {
    TreePath::parse(text).unwrap()
}

/// Locks, fetches and unpacks Debian's cloud kernel and busybox-static, and
/// writes a kernel, an initrd and a root squashfs.
fn images() -> Images {
    let mirror = micros_debian::sources::find_mirror(
        None,
        std::env::var("MICROS_MIRROR").ok().as_deref(),
        Path::new("/"),
    )
    .expect("this test needs a Debian mirror (MICROS_MIRROR or the host's apt sources)");
    let fetcher = Fetcher::new(&mirror.url);
    let cache =
        Cache::open(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("micros-cache")).unwrap();
    let wanted = Wanted {
        packages: [
            "linux-image-cloud-amd64".to_string(),
            "busybox-static".to_string(),
        ]
        .into(),
        exclude: [
            "initramfs-tools",
            "linux-initramfs-tool",
            "kmod",
            "linux-base",
        ]
        .iter()
        .map(|n| (n.to_string(), "test".to_string()))
        .collect(),
    };
    // The product reads a suite caught mid-update through a consistent
    // alias of the same release by itself.
    let source = Source {
        suite: "trixie".into(),
        components: vec!["main".into()],
        architecture: "amd64".into(),
        keyring: DEFAULT_KEYRING.into(),
    };
    let resolved = resolve(
        &wanted,
        &source,
        None,
        LockMode::Normal,
        &fetcher,
        &cache,
        &Silent,
    )
    .unwrap_or_else(|error| {
        panic!("cannot lock the test packages (this test needs Debian's archive): {error}")
    });
    if let Some(note) = &resolved.note {
        eprintln!("note: {note}");
    }
    let lock = resolved.lock;
    let debs = fetch_packages(&lock, &fetcher, &cache, &Silent, None)
        .expect("fetch the test packages")
        .paths;

    let mut kernel_tree = Tree::new();
    let mut root = Tree::new();
    for package in &lock.packages {
        let deb = &debs[&package.name];
        let tar = data_tar(&cache, &package.name, deb, &package.sha256).unwrap();
        let target = if package.name.starts_with("linux-image") {
            &mut kernel_tree
        } else {
            &mut root
        };
        unpack_tar(
            &package.name,
            &tar,
            target,
            UnpackOptions { merged_usr: true },
        )
        .unwrap();
    }
    let kernel = Kernel::from_tree("linux-image-cloud-amd64", &kernel_tree).expect("a kernel");
    let mut initrd = micros_system::initrd::build(
        "x86_64-linux",
        &kernel,
        &[
            "virtio_pci".into(),
            "virtio_blk".into(),
            "squashfs".into(),
            "overlay".into(),
        ],
        // Only available: under software emulation the CPU has no VMX, so
        // it fails to load, and the boot must go on.
        &["kvm_intel".into()],
        None,
    )
    .expect("an initrd");
    initrd.normalize(0).unwrap();

    for (link, target) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/sbin"),
        ("/lib", "usr/lib"),
    ] {
        root.insert(path(link), Entry::symlink(target, "test"))
            .unwrap();
    }
    root.insert(
        path("/usr/sbin/init"),
        Entry::symlink("../bin/busybox", "test"),
    )
    .unwrap();
    for dir in ["/dev", "/proc", "/sys", "/run", "/tmp"] {
        root.insert(path(dir), Entry::directory(0o755, "test"))
            .unwrap();
    }
    let inittab = "::sysinit:/bin/busybox echo MICROS-STAGE1-OK\n::sysinit:/bin/busybox cat /proc/mounts\n::once:/bin/busybox poweroff -f\n";
    root.insert(
        path("/etc/inittab"),
        Entry::file(Content::bytes(inittab), 0o644, "test"),
    )
    .unwrap();
    root.normalize(0).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let images = Images {
        kernel: dir.path().join("kernel"),
        initrd: dir.path().join("initrd"),
        root: dir.path().join("root.squashfs"),
        _dir: dir,
    };
    std::fs::write(&images.kernel, kernel.image.read().unwrap()).unwrap();
    micros_image::write_cpio(
        &initrd,
        &images.initrd,
        micros_image::Compression::Zstd { level: 3 },
    )
    .unwrap();
    let options = micros_image::SquashfsOptions {
        compressor: micros_image::SquashfsCompressor::Zstd { level: 3 },
        ..Default::default()
    };
    micros_image::write_squashfs(&root, &images.root, &options).unwrap();
    images
}

/// Boots under QEMU (software emulation) and collects the console until
/// `until` appears or `timeout` passes; QEMU is then killed by its PID.
fn boot(images: &Images, cmdline: &str, until: &str, timeout: Duration) -> String {
    // QEMU 7.2's software emulation sometimes crashes Debian's 6.12 kernel
    // before the initrd runs (a double fault in __kmalloc, about one boot in
    // five; an oops in do_sync_core). That is the emulator, not MicrOS:
    // boot again.
    // One more boot when the emulator crashed the first, never more.
    for attempt in 1..=2 {
        let console = boot_once(images, cmdline, until, timeout);
        // Only a kernel crash before MicrOS's code ran is the emulator's.
        let before_init = console.split("Run /init").next().unwrap_or(&console);
        let emulator = !console.contains("Attempted to kill init")
            && (before_init.contains("Kernel panic") || before_init.contains("Oops"));
        if !emulator || attempt == 2 {
            return console;
        }
        record_boot("retry");
        let test = std::thread::current().name().unwrap_or("").to_owned();
        static RETRIED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut retried = RETRIED.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            !retried.contains(&test),
            "{test}: the emulator would have brought a guest down a second time; one boot again per test is all that is put down to the emulator:\n{console}"
        );
        retried.push(test);
        eprintln!("note: the emulator crashed the kernel in early boot; booting again");
    }
    unreachable!()
}

/// Counts QEMU starts in the ledger `tools/test.sh` sums up (the same file
/// as crates/micros/tests/support's `boot_ledger`).
fn record_boot(what: &str) {
    use std::io::Write as _;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("qemu-boots.log");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{what} stage1_boot");
    }
}

fn boot_once(images: &Images, cmdline: &str, until: &str, timeout: Duration) -> String {
    record_boot("boot");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nographic",
            "-no-reboot",
            "-kernel",
        ])
        .arg(&images.kernel)
        .arg("-initrd")
        .arg(&images.initrd)
        .args(["-append", cmdline, "-drive"])
        .arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            images.root.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 (Debian package qemu-system-x86) is needed for this test");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        // Bytes, not `lines()`: firmware output is not always UTF-8, and
        // one bad byte must not end the capture.
        let mut reader = BufReader::new(stdout);
        let mut raw = Vec::new();
        while reader.read_until(b'\n', &mut raw).unwrap_or(0) > 0 {
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            raw.clear();
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut console = String::new();
    while start.elapsed() < timeout {
        match receiver.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                console.push_str(&line);
                console.push('\n');
                if line.contains(until) {
                    // Let the lines right after the marker arrive too.
                    std::thread::sleep(Duration::from_millis(500));
                    console.extend(receiver.try_iter().map(|l| l + "\n"));
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    console
}

#[test]
fn needs_network_and_qemu_stage1_mounts_the_squashfs_root_under_an_overlay_and_hands_over() {
    let images = images();
    let console = boot(
        &images,
        "console=ttyS0 root=/dev/vda micros.init=/sbin/init panic=-1",
        "MICROS-STAGE1-OK",
        Duration::from_secs(120),
    );
    assert!(
        console.contains("MICROS-STAGE1-OK"),
        "no marker; console:\n{console}"
    );
    assert!(
        console.contains("/dev/vda /run/micros/lower squashfs ro"),
        "the squashfs root is mounted read-only:\n{console}"
    );
    assert!(
        console.contains("overlay / overlay rw"),
        "an overlay is the root:\n{console}"
    );
    assert!(
        console.contains("micros-init: the available kernel module kvm_intel did not load"),
        "a module for hardware the machine lacks is only a note:\n{console}"
    );
    assert!(!console.contains("Kernel panic"), "{console}");
}

#[test]
fn needs_network_and_qemu_stage1_checks_the_init_before_giving_up_the_initramfs() {
    let images = images();
    let console = boot(
        &images,
        "console=ttyS0 root=/dev/vda micros.init=/sbin/no-such-init panic=-1",
        "rebooting in 10 seconds",
        Duration::from_secs(120),
    );
    assert!(
        console.contains("micros-init: the init /sbin/no-such-init cannot start from the new root: No such file or directory"),
        "{console}"
    );
    assert!(!console.contains("Kernel panic"), "{console}");
}

#[test]
fn needs_network_and_qemu_stage1_says_which_root_device_never_appeared() {
    let images = images();
    let console = boot(
        &images,
        "console=ttyS0 root=/dev/vdb micros.rootwait=2 panic=-1",
        "rebooting in",
        Duration::from_secs(120),
    );
    assert!(
        console.contains(
            "micros-init: the root device /dev/vdb did not appear within 2 s (block devices: vda)"
        ),
        "no clear stage 1 error; console:\n{console}"
    );
    assert!(!console.contains("Kernel panic"), "{console}");
}

/// The root squashfs as partition 2 of a disk (a small empty partition 1
/// first), as an SD card or disk image would hold it.
fn disk(images: &Images, table: micros_image::PartitionTable) -> (PathBuf, String) {
    use micros_image::{DiskLayout, PartitionSpec, PartitionType};
    let path = images.root.with_file_name(format!("disk-{table:?}.img"));
    let layout = DiskLayout {
        table,
        partitions: vec![
            PartitionSpec {
                name: "boot".into(),
                kind: PartitionType::FAT32,
                size: Some(1 << 20),
                content: None,
                bootable: false,
            },
            PartitionSpec {
                name: "root".into(),
                kind: PartitionType::LINUX,
                size: None,
                content: Some(images.root.clone()),
                bootable: false,
            },
        ],
        size: None,
        seed: b"stage1 test".to_vec(),
    };
    let summary = micros_image::write_disk(&path, &layout).expect("a disk image");
    (path, summary.partition_uuids[1].clone())
}

#[test]
fn needs_network_and_qemu_stage1_finds_the_root_by_partuuid_on_mbr_and_gpt_disks() {
    let mut images = images();
    let squashfs = images.root.clone();
    for table in [
        micros_image::PartitionTable::Mbr,
        micros_image::PartitionTable::Gpt,
    ] {
        images.root = squashfs.clone();
        let (disk, partuuid) = disk(&images, table);
        images.root = disk;
        // With no time to wait, the first scan still reads every disk
        // that is there (GPT's case).
        let wait = match table {
            micros_image::PartitionTable::Mbr => "",
            _ => " micros.rootwait=0",
        };
        let cmdline =
            format!("console=ttyS0 root=PARTUUID={partuuid}{wait} micros.init=/sbin/init panic=-1");
        let console = boot(
            &images,
            &cmdline,
            "MICROS-STAGE1-OK",
            Duration::from_secs(120),
        );
        assert!(
            console.contains("MICROS-STAGE1-OK"),
            "{table:?}: no marker; console:\n{console}"
        );
        assert!(
            console.contains("/dev/vda2 /run/micros/lower squashfs ro"),
            "{table:?}: the root is partition 2:\n{console}"
        );
    }
}
