//! `/init` in a MicrOS initrd: mount the pseudo filesystems, load the
//! modules the root needs, find the root device, mount the squashfs
//! read-only under a writable overlay, and hand over to runit. Run as any
//! other process, it loads modules for devices instead (autoload.rs).
//!
//! PID 1 must never exit: every failure goes through [`fail`], which prints
//! one line on the console and then reboots after a delay, or starts a shell
//! when the command line says `micros.onfailure=shell`.
//!
//! There is no standard library here, only `core` and `alloc` over
//! [`sys`], the raw system calls: so stage 1 builds for every platform from
//! the toolchain's `rust-src` alone.
#![no_std]
#![no_main]

extern crate alloc;

mod autoload;
mod sys;

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::time::Duration;

use micros_init::cmdline::{self, OnFailure, Options, Overlay};
use micros_init::device::{self, BlockDevice, DeviceSpec};
use micros_init::modules::{self, LoadFailure};
use sys::{File, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY};

/// Where the new root is assembled (inside `/run`, which moves along).
const LOWER: &str = "/run/micros/lower";
const WRITABLE: &str = "/run/micros/rw";
const NEW_ROOT: &str = "/newroot";

/// Prints a line on the console.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(sys::Console, $($arg)*);
    }};
}

fn main() -> ! {
    // The same binary loads modules for devices in the running system
    // (`micros-init coldplug`, `micros-init hotplug`): see autoload.rs.
    if sys::process_id() != 1 {
        autoload::run(&sys::arguments());
    }
    match stage1() {
        Err(reason) => fail(&reason),
        Ok(never) => match never {},
    }
}

/// A panic in PID 1 would become a kernel panic: it goes through `fail`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fail(&format!("internal error: {info}"))
}

/// What never exists: `stage1` returns only with an error.
enum Never {}

fn stage1() -> Result<Never, String> {
    mount_pseudo_filesystems()?;
    let text = sys::read_to_string("/proc/cmdline")
        .map_err(|e| format!("cannot read /proc/cmdline: {e}"))?;
    let options = cmdline::parse(&text).map_err(|e| e.to_string())?;
    load_modules("/etc/micros/modules")?;
    if let Some(seconds) = options.watchdog {
        arm_watchdog(seconds);
    }
    let root = wait_for(&options.root, options.root_wait)?;
    mount_root(&root, &options)?;
    switch_root(&options)
}

/// Arms the hardware watchdog for `seconds` and leaves it running: from
/// here a boot that hangs (in stage 1, the kernel or init) resets the
/// machine unless the running system feeds `/dev/watchdog` (its
/// `watchdog` service). Closing it without the magic `V` keeps it armed.
/// A machine without one boots on, saying so.
fn arm_watchdog(seconds: u32) {
    match File::open_for_writing("/dev/watchdog").and_then(|watchdog| {
        watchdog.set_watchdog_timeout(seconds)?;
        watchdog.write_all(b"\0")
    }) {
        Ok(()) => say!("micros-init: watchdog armed for {seconds} s"),
        Err(e) => say!("micros-init: no watchdog to arm (/dev/watchdog: {e}); a hang will not reset this machine"),
    }
}

fn mount(source: &str, target: &str, fstype: &str, flags: usize, data: &str) -> Result<(), String> {
    let _ = sys::create_dir_all(target);
    sys::mount(source, target, fstype, flags, data)
        .map_err(|e| format!("cannot mount {source} ({fstype}) on {target}: {e}"))
}

fn mount_pseudo_filesystems() -> Result<(), String> {
    mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755")?;
    mount(
        "proc",
        "/proc",
        "proc",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        "",
    )?;
    mount(
        "sysfs",
        "/sys",
        "sysfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        "",
    )?;
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
}

fn load_modules(list: &str) -> Result<(), String> {
    let Ok(text) = sys::read_to_string(list) else {
        return Ok(());
    };
    for module in modules::parse(&text) {
        let file = File::open(&module.path)
            .map_err(|e| format!("cannot open kernel module {}: {e}", module.path))?;
        let Err(error) = sys::finit_module(&file, &module.parameters) else {
            continue;
        };
        match module.on_load_error(error.0) {
            LoadFailure::AlreadyLoaded => {}
            LoadFailure::GoOn => say!(
                "micros-init: the available kernel module {} did not load ({error}); going on",
                modules::name_of(&module.path)
            ),
            LoadFailure::StopBoot => {
                return Err(format!(
                    "cannot load kernel module {} ({}): {error}",
                    modules::name_of(&module.path),
                    module.path
                ))
            }
        }
    }
    Ok(())
}

/// The block devices the kernel knows.
fn block_devices() -> Vec<BlockDevice> {
    sys::read_dir("/sys/class/block")
        .unwrap_or_default()
        .into_iter()
        .map(|name| BlockDevice {
            partition: sys::exists(&format!("/sys/class/block/{name}/partition")),
            sectors: sys::read_to_string(&format!("/sys/class/block/{name}/size"))
                .ok()
                .and_then(|size| size.trim().parse().ok()),
            name,
        })
        .collect()
}

/// The device `spec` names, if it is there now. Scanning for a label or
/// a partition UUID reads each device's start; [`device::scan`] stops at
/// `deadline` (time since boot), so a slow device cannot hold the boot past
/// it.
fn find(spec: &DeviceSpec, deadline: Duration) -> Option<String> {
    match spec {
        DeviceSpec::Path(path) => sys::exists(path).then(|| path.clone()),
        DeviceSpec::Label(label) => device::scan(&block_devices(), deadline, sys::now, |device| {
            let path = format!("/dev/{}", device.name);
            let found = device::label_of(&sys::read_start(&path, 4096));
            (found.as_deref() == Some(label.as_str())).then_some(path)
        }),
        DeviceSpec::PartUuid(uuid) => {
            let devices = block_devices();
            let disks = devices.iter().filter(|device| !device.partition);
            device::scan(disks, deadline, sys::now, |disk| {
                let sector = sys::read_to_string(&format!(
                    "/sys/class/block/{}/queue/logical_block_size",
                    disk.name
                ))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(512usize);
                let start = sys::read_start(&format!("/dev/{}", disk.name), sector * 34);
                let (number, _) = device::partition_uuids(&start, sector)
                    .into_iter()
                    .find(|(_, found)| found == uuid)?;
                partition_device(&disk.name, number)
            })
        }
    }
}

/// `/dev/vda2` or `/dev/mmcblk0p2`: the partition of `disk` numbered `number`.
fn partition_device(disk: &str, number: u32) -> Option<String> {
    sys::read_dir(&format!("/sys/class/block/{disk}"))
        .ok()?
        .into_iter()
        .find_map(|name| {
            let partition =
                sys::read_to_string(&format!("/sys/class/block/{disk}/{name}/partition")).ok()?;
            (partition.trim() == number.to_string()).then(|| format!("/dev/{name}"))
        })
}

fn wait_for(spec: &DeviceSpec, timeout: Duration) -> Result<String, String> {
    let deadline = sys::now() + timeout;
    // The first look reads every device, whatever the timeout: with
    // `micros.rootwait=0` a label on a disk that is there is still found.
    let mut scan_until = Duration::MAX;
    loop {
        if let Some(path) = find(spec, scan_until) {
            return Ok(path);
        }
        scan_until = deadline;
        if sys::now() >= deadline {
            let seen: Vec<String> = block_devices().into_iter().map(|d| d.name).collect();
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
        sys::sleep(Duration::from_millis(50));
    }
}

fn mount_root(root: &str, options: &Options) -> Result<(), String> {
    mount(root, LOWER, "squashfs", MS_RDONLY, "")?;
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
            mount(&data, WRITABLE, "ext4", 0, "")?;
        }
    }
    for dir in ["upper", "work"] {
        sys::create_dir_all(&format!("{WRITABLE}/{dir}"))
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
fn prepare_data_partition(device: &str, spec: &DeviceSpec) -> Result<(), String> {
    use micros_init::ext2;

    let name = device;
    let file =
        File::open(device).map_err(|e| format!("cannot open the data partition {name}: {e}"))?;
    let size = file
        .size()
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
    say!(
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
    let file = File::open_for_writing(device)
        .map_err(|e| format!("cannot open the data partition {name} for writing: {e}"))?;
    write_plan(&file, &plan).map_err(|e| format!("cannot format the data partition {name}: {e}"))
}

/// Writes a format plan so that a power cut at any moment leaves a partition
/// the next boot formats again (its start still blank) or mounts (complete),
/// except within the last few KiB: first what keeps the start blank (the
/// zeroed inode tables and everything past the start), then the rest but the
/// primary superblock, then the superblock, whose magic says "done"; each
/// step on the disk before the next.
fn write_plan(file: &File, plan: &[micros_init::ext2::Write]) -> sys::Result<()> {
    let zeros = vec![0; 1 << 20];
    let write_zeros = |write: &micros_init::ext2::Write| {
        let mut at = write.offset + write.bytes.len() as u64;
        while at < write.end() {
            let length = (write.end() - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..length], at)?;
            at += length as u64;
        }
        Ok::<(), sys::Errno>(())
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
    file.sync()?;
    for write in rest.iter().filter(|write| write.offset < BLANK_START) {
        file.write_all_at(&write.bytes, write.offset)?;
    }
    file.sync()?;
    file.write_all_at(&superblock.bytes, superblock.offset)?;
    write_zeros(superblock)?;
    file.sync()
}

/// Whether the new root's init is an executable file, resolved inside the
/// new root (its absolute symbolic links point into it, not here).
fn check_init(init: &str) -> Result<(), String> {
    let complain = |why: String| {
        format!("the init {init} cannot start from the new root: {why} (check micros.init= on the kernel command line)")
    };
    let root =
        File::open(NEW_ROOT).map_err(|e| complain(format!("cannot open {NEW_ROOT}: {e}")))?;
    let file = match sys::open_in_root(&root, init) {
        Ok(file) => file,
        // A kernel older than 5.6 has no openat2: nothing to check with.
        Err(sys::ENOSYS) => return Ok(()),
        Err(error) => return Err(complain(error.to_string())),
    };
    let status = file.status().map_err(|e| complain(e.to_string()))?;
    if !status.is_file() {
        return Err(complain("it is not a regular file".to_owned()));
    }
    if status.mode & 0o111 == 0 {
        return Err(complain("it is not executable".to_owned()));
    }
    Ok(())
}

fn switch_root(options: &Options) -> Result<Never, String> {
    // Before anything is torn down: with a wrong init the rescue shell in
    // the initramfs must still be there.
    check_init(&options.init)?;
    for dir in ["/dev", "/proc", "/sys", "/run"] {
        mount(dir, &format!("{NEW_ROOT}{dir}"), "", MS_MOVE, "")?;
    }
    // The initramfs cannot be pivoted away (pivot_root refuses rootfs), so
    // free its files and move the new root over `/` instead, then chroot.
    free_initramfs();
    sys::chdir(NEW_ROOT).map_err(|e| format!("cannot enter {NEW_ROOT}: {e}"))?;
    mount(".", "/", "", MS_MOVE, "")?;
    sys::chroot(".").map_err(|e| format!("cannot chroot into the new root: {e}"))?;
    sys::chdir("/").map_err(|e| format!("cannot enter /: {e}"))?;
    let error = sys::execv(&options.init, &[&options.init]);
    Err(format!("cannot start {}: {error}", options.init))
}

/// Deletes the initramfs's files (they would pin memory forever), without
/// crossing into mounted filesystems.
fn free_initramfs() {
    fn remove(path: &str, root_device: (u32, u32)) {
        let Ok(status) = sys::status(path, false) else {
            return;
        };
        if status.device != root_device {
            return;
        }
        if status.is_dir() {
            for name in sys::read_dir(path).unwrap_or_default() {
                remove(&format!("{path}/{name}"), root_device);
            }
            let _ = sys::remove(path, true);
        } else {
            let _ = sys::remove(path, false);
        }
    }
    if let Ok(root) = sys::status("/", false) {
        for name in sys::read_dir("/").unwrap_or_default() {
            let path = format!("/{name}");
            if path != NEW_ROOT {
                remove(&path, root.device);
            }
        }
    }
}

/// Prints one line saying what went wrong, then applies the failure policy.
/// Never returns.
fn fail(reason: &str) -> ! {
    say!("\nmicros-init: {reason}");
    let policy = sys::read_to_string("/proc/cmdline")
        .map(|t| cmdline::on_failure(&t))
        .unwrap_or(OnFailure::Reboot);
    if policy == OnFailure::Shell {
        for shell in ["/bin/sh", "/usr/bin/sh", "/bin/busybox"] {
            if sys::exists(shell) {
                say!("micros-init: starting {shell} (micros.onfailure=shell)");
                // busybox picks the applet from argv[0].
                let error = sys::execv(shell, &["sh"]);
                say!("micros-init: cannot start {shell}: {error}");
            }
        }
        say!("micros-init: no shell in the initrd; rebooting instead");
    }
    say!("micros-init: rebooting in 10 seconds (add micros.onfailure=shell to the kernel command line for a shell)");
    sys::sleep(Duration::from_secs(10));
    sys::sync();
    sys::reboot();
    loop {
        sys::sleep(Duration::from_secs(3600));
    }
}
