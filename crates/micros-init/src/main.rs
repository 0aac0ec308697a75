//! `/init` in a MicrOS initrd: mount the pseudo filesystems, load the
//! modules the root needs, find the root device, mount the squashfs
//! read-only under a writable overlay, and hand over to runit.
//!
//! PID 1 must never exit: every failure goes through [`fail`], which prints
//! one line on the console and then reboots after a delay, or starts a shell
//! when the command line says `micros.onfailure=shell`.
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use micros_init::cmdline::{self, OnFailure, Options, Overlay};
use micros_init::device::{self, DeviceSpec};
use micros_init::modules;

/// Where the new root is assembled (inside `/run`, which moves along).
const LOWER: &str = "/run/micros/lower";
const WRITABLE: &str = "/run/micros/rw";
const NEW_ROOT: &str = "/newroot";

fn main() {
    // A panic in PID 1 would become a kernel panic: turn it into `fail`.
    std::panic::set_hook(Box::new(|info| fail(&format!("internal error: {info}"))));
    if let Err(reason) = stage1() {
        fail(&reason);
    }
}

fn stage1() -> Result<(), String> {
    mount_pseudo_filesystems()?;
    let text = std::fs::read_to_string("/proc/cmdline")
        .map_err(|e| format!("cannot read /proc/cmdline: {e}"))?;
    let options = cmdline::parse(&text).map_err(|e| e.to_string())?;
    load_modules(Path::new("/etc/micros/modules"))?;
    let root = wait_for(&options.root, options.root_wait)?;
    mount_root(&root, &options)?;
    switch_root(&options)
}

fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), String> {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| CString::new(s).expect("no NUL in mount arguments");
    let (source_c, target_c, fstype_c, data_c) = (c(source), c(target), c(fstype), c(data));
    // SAFETY: every pointer is a valid NUL-terminated string for the call.
    #[allow(unsafe_code)]
    let result = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ptr(),
            flags,
            data_c.as_ptr().cast(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot mount {source} ({fstype}) on {target}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn mount_pseudo_filesystems() -> Result<(), String> {
    mount("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755")?;
    mount(
        "proc",
        "/proc",
        "proc",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )?;
    mount(
        "sysfs",
        "/sys",
        "sysfs",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )?;
    mount(
        "tmpfs",
        "/run",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0755",
    )
}

fn load_modules(list: &Path) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(list) else {
        return Ok(());
    };
    for module in modules::parse(&text) {
        let file = std::fs::File::open(&module.path)
            .map_err(|e| format!("cannot open kernel module {}: {e}", module.path))?;
        let parameters = CString::new(module.parameters.clone())
            .map_err(|_| format!("{}: bad parameters", module.path))?;
        use std::os::fd::AsRawFd;
        // SAFETY: a valid file descriptor and NUL-terminated parameters.
        #[allow(unsafe_code)]
        let result = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                file.as_raw_fd(),
                parameters.as_ptr(),
                0,
            )
        };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EEXIST) {
                return Err(format!(
                    "cannot load kernel module {} ({}): {error}",
                    modules::name_of(&module.path),
                    module.path
                ));
            }
        }
    }
    Ok(())
}

/// The block devices the kernel knows, as (name, is a partition).
fn block_devices() -> Vec<(String, bool)> {
    let mut devices: Vec<(String, bool)> = std::fs::read_dir("/sys/class/block")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let partition = entry.path().join("partition").exists();
            (name, partition)
        })
        .collect();
    devices.sort();
    devices
}

fn read_start(path: &Path, length: usize) -> Vec<u8> {
    let mut buffer = vec![0; length];
    let read = std::fs::File::open(path).and_then(|mut file| {
        let mut total = 0;
        while total < length {
            let n = file.read(&mut buffer[total..])?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    });
    buffer.truncate(read.unwrap_or(0));
    buffer
}

fn find(spec: &DeviceSpec) -> Option<PathBuf> {
    match spec {
        DeviceSpec::Path(path) => Path::new(path).exists().then(|| PathBuf::from(path)),
        DeviceSpec::Label(label) => block_devices().into_iter().find_map(|(name, _)| {
            let path = PathBuf::from(format!("/dev/{name}"));
            (device::label_of(&read_start(&path, 4096)).as_deref() == Some(label.as_str()))
                .then_some(path)
        }),
        DeviceSpec::PartUuid(uuid) => {
            for (disk, partition) in block_devices() {
                if partition {
                    continue;
                }
                let sector = std::fs::read_to_string(format!(
                    "/sys/class/block/{disk}/queue/logical_block_size"
                ))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(512usize);
                let start = read_start(Path::new(&format!("/dev/{disk}")), sector * 34);
                for (number, found) in device::partition_uuids(&start, sector) {
                    if &found == uuid {
                        return partition_device(&disk, number);
                    }
                }
            }
            None
        }
    }
}

/// `/dev/vda2` or `/dev/mmcblk0p2`: the partition of `disk` numbered `number`.
fn partition_device(disk: &str, number: u32) -> Option<PathBuf> {
    std::fs::read_dir(format!("/sys/class/block/{disk}"))
        .ok()?
        .flatten()
        .find_map(|entry| {
            let partition = std::fs::read_to_string(entry.path().join("partition")).ok()?;
            (partition.trim() == number.to_string())
                .then(|| PathBuf::from(format!("/dev/{}", entry.file_name().to_string_lossy())))
        })
}

fn wait_for(spec: &DeviceSpec, timeout: Duration) -> Result<PathBuf, String> {
    let start = Instant::now();
    loop {
        if let Some(path) = find(spec) {
            return Ok(path);
        }
        if start.elapsed() >= timeout {
            let seen: Vec<String> = block_devices().into_iter().map(|(name, _)| name).collect();
            return Err(format!(
                "the root device {spec} did not appear within {} s (block devices: {})",
                timeout.as_secs(),
                if seen.is_empty() {
                    "none".to_owned()
                } else {
                    seen.join(", ")
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mount_root(root: &Path, options: &Options) -> Result<(), String> {
    mount(
        &root.display().to_string(),
        LOWER,
        "squashfs",
        libc::MS_RDONLY,
        "",
    )?;
    match &options.overlay {
        Overlay::Tmpfs => mount("tmpfs", WRITABLE, "tmpfs", 0, "mode=0755")?,
        Overlay::Data(spec) => {
            let data = wait_for(spec, options.root_wait).map_err(|e| {
                let e = e.replace("root device", "data partition");
                match spec {
                    DeviceSpec::Label(_) => format!(
                        "{e}; a blank data partition has no label yet: name it micros.data=PARTUUID=..."
                    ),
                    _ => e,
                }
            })?;
            prepare_data_partition(&data, spec)?;
            // The ext4 driver mounts the ext2 filesystem stage 1 makes.
            mount(&data.display().to_string(), WRITABLE, "ext4", 0, "")?;
        }
    }
    for dir in ["upper", "work"] {
        std::fs::create_dir_all(format!("{WRITABLE}/{dir}"))
            .map_err(|e| format!("cannot create {WRITABLE}/{dir}: {e}"))?;
    }
    mount(
        "overlay",
        NEW_ROOT,
        "overlay",
        0,
        &format!("lowerdir={LOWER},upperdir={WRITABLE}/upper,workdir={WRITABLE}/work"),
    )
}

/// How much of the data partition's start must be zeros for stage 1 to
/// format it: past every filesystem's and LUKS's signature.
const BLANK_START: u64 = 1 << 20;

/// The image ships the data partition blank: on first boot, format it as
/// ext2. A partition that is ext2/3/4 already is left alone, and one that
/// holds anything else is never overwritten.
fn prepare_data_partition(device: &Path, spec: &DeviceSpec) -> Result<(), String> {
    use micros_init::ext2;
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileExt;

    let name = device.display();
    let mut file = std::fs::File::open(device)
        .map_err(|e| format!("cannot open the data partition {name}: {e}"))?;
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("cannot get the size of the data partition {name}: {e}"))?;
    let mut start = vec![0; size.min(BLANK_START) as usize];
    file.read_exact_at(&mut start, 0)
        .map_err(|e| format!("cannot read the data partition {name}: {e}"))?;
    if ext2::has_ext_magic(&start) {
        return Ok(());
    }
    if !ext2::is_blank(&start) {
        return Err(format!(
            "the data partition {name} holds data that is not an ext2/3/4 filesystem, \
             and micros-init will not overwrite it; to have it formatted on the next boot, \
             wipe its start: dd if=/dev/zero of={name} bs=1M count=1"
        ));
    }
    let _ = writeln!(
        std::io::stderr(),
        "micros-init: preparing the data partition {name} ({} MiB) as ext2",
        size >> 20
    );
    // The UUID follows from the partition's name, not from a random source:
    // the same image gives the same filesystem.
    let uuid = ext2::uuid_from_name(format!("micros-data {spec}").as_bytes());
    let label = match spec {
        DeviceSpec::Label(label) => label.as_str(),
        _ => "micros-data",
    };
    let plan = ext2::format(size, uuid, label)
        .map_err(|e| format!("cannot format the data partition {name}: {e}"))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .map_err(|e| format!("cannot open the data partition {name} for writing: {e}"))?;
    write_plan(&file, &plan).map_err(|e| format!("cannot format the data partition {name}: {e}"))
}

/// Writes a format plan so that a power cut at any moment leaves a partition
/// the next boot formats again (its start still blank) or mounts (complete),
/// except within the last few KiB: first what keeps the start blank (the
/// zeroed inode tables and everything past the start), then the rest but the
/// primary superblock, then the superblock, whose magic says "done"; each
/// step on the disk before the next.
fn write_plan(file: &std::fs::File, plan: &[micros_init::ext2::Write]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;

    let zeros = vec![0; 1 << 20];
    let write_zeros = |write: &micros_init::ext2::Write| {
        let mut at = write.offset + write.bytes.len() as u64;
        while at < write.end() {
            let length = (write.end() - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..length], at)?;
            at += length as u64;
        }
        Ok::<(), std::io::Error>(())
    };
    let Some((superblock, rest)) = plan.split_first() else {
        return Ok(());
    };
    for write in rest {
        write_zeros(write)?;
        if write.offset >= BLANK_START {
            file.write_all_at(&write.bytes, write.offset)?;
        }
    }
    file.sync_all()?;
    for write in rest.iter().filter(|write| write.offset < BLANK_START) {
        file.write_all_at(&write.bytes, write.offset)?;
    }
    file.sync_all()?;
    file.write_all_at(&superblock.bytes, superblock.offset)?;
    write_zeros(superblock)?;
    file.sync_all()
}

fn switch_root(options: &Options) -> Result<(), String> {
    for dir in ["/dev", "/proc", "/sys", "/run"] {
        mount(dir, &format!("{NEW_ROOT}{dir}"), "", libc::MS_MOVE, "")?;
    }
    // The initramfs cannot be pivoted away (pivot_root refuses rootfs), so
    // free its files and move the new root over `/` instead, then chroot.
    free_initramfs();
    std::env::set_current_dir(NEW_ROOT).map_err(|e| format!("cannot enter {NEW_ROOT}: {e}"))?;
    mount(".", "/", "", libc::MS_MOVE, "")?;
    let dot = CString::new(".").expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    #[allow(unsafe_code)]
    if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
        return Err(format!(
            "cannot chroot into the new root: {}",
            std::io::Error::last_os_error()
        ));
    }
    std::env::set_current_dir("/").map_err(|e| format!("cannot enter /: {e}"))?;
    let init = CString::new(options.init.clone()).map_err(|_| "bad micros.init".to_owned())?;
    let argv = [init.as_ptr(), std::ptr::null()];
    // SAFETY: argv is NULL-terminated and its strings outlive the call.
    #[allow(unsafe_code)]
    unsafe {
        libc::execv(init.as_ptr(), argv.as_ptr());
    }
    Err(format!(
        "cannot start {}: {}",
        options.init,
        std::io::Error::last_os_error()
    ))
}

/// Deletes the initramfs's files (they would pin memory forever), without
/// crossing into mounted filesystems.
fn free_initramfs() {
    fn remove(path: &Path, root_device: u64) {
        let Ok(metadata) = std::fs::symlink_metadata(path) else {
            return;
        };
        if metadata.dev() != root_device {
            return;
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                remove(&entry.path(), root_device);
            }
            if path != Path::new("/") {
                let _ = std::fs::remove_dir(path);
            }
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
    if let Ok(root) = std::fs::metadata("/") {
        for entry in std::fs::read_dir("/").into_iter().flatten().flatten() {
            if entry.path() != Path::new(NEW_ROOT) {
                remove(&entry.path(), root.dev());
            }
        }
    }
}

/// Prints one line saying what went wrong, then applies the failure policy.
/// Never returns.
fn fail(reason: &str) -> ! {
    let mut console = std::io::stderr();
    let _ = writeln!(console, "\nmicros-init: {reason}");
    let policy = std::fs::read_to_string("/proc/cmdline")
        .map(|t| cmdline::on_failure(&t))
        .unwrap_or(OnFailure::Reboot);
    if policy == OnFailure::Shell {
        for shell in ["/bin/sh", "/usr/bin/sh", "/bin/busybox"] {
            if Path::new(shell).exists() {
                let _ = writeln!(
                    console,
                    "micros-init: starting {shell} (micros.onfailure=shell)"
                );
                let program = CString::new(shell).expect("no NUL");
                // busybox picks the applet from argv[0].
                let name = CString::new("sh").expect("no NUL");
                let argv = [name.as_ptr(), std::ptr::null()];
                // SAFETY: argv is NULL-terminated and outlives the call.
                #[allow(unsafe_code)]
                unsafe {
                    libc::execv(program.as_ptr(), argv.as_ptr());
                }
            }
        }
        let _ = writeln!(
            console,
            "micros-init: no shell in the initrd; rebooting instead"
        );
    }
    let _ = writeln!(console, "micros-init: rebooting in 10 seconds (add micros.onfailure=shell to the kernel command line for a shell)");
    std::thread::sleep(Duration::from_secs(10));
    // SAFETY: reboot(2) with a valid command; PID 1 may call it.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
