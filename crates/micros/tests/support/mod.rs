//! What the tests that build with the real `micros` binary and boot the
//! result under QEMU share: the project directory, the cache,
//! and a running guest whose serial console the test reads and types into.
#![allow(dead_code)] // Each test binary uses a different part.

pub mod device;
pub mod pi;
pub mod power_cut;
pub mod repo_server;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("micros-cache")
}

pub fn micros(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_micros"))
        .args(args)
        .current_dir(dir)
        .env("MICROS_CACHE_DIR", cache())
        .output()
        .expect("run micros")
}

/// Every QEMU start of the suite is a line in this file (`boot`, or
/// `retry` for a boot started again because the emulator brought the
/// previous one down); `tools/test.sh` counts them after the run.
pub fn boot_ledger() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("qemu-boots.log")
}

fn record(what: &str) {
    use std::io::Write as _;
    let line = format!("{what} {}\n", std::env::args().next().unwrap_or_default());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(boot_ledger())
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Counts a QEMU start that does not go through [`Vm::start_command`].
pub fn record_boot() {
    record("boot");
}

/// Says why a boot is run again, and counts it. A test whose guests the
/// emulator brings down more than once fails: past one, it is more likely
/// the product than the emulator.
pub fn booting_again(why: &str) {
    record("retry");
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    if let Err(too_many) = count_retry(&test) {
        panic!("{too_many}:\n{why}");
    }
    eprintln!("note: {test}: {why}; booting again");
}

/// Counts a boot `test` runs again: the number so far, or an error past
/// [`RETRIES_PER_TEST`].
pub fn count_retry(test: &str) -> Result<u32, String> {
    static RETRIES: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
    let mut retries = RETRIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let count = retries.entry(test.to_owned()).or_default();
    *count += 1;
    if *count > RETRIES_PER_TEST {
        return Err(format!(
            "{test}: the emulator would have brought a guest down {count} times; \
             one boot again per test is all that is put down to the emulator"
        ));
    }
    Ok(*count)
}

/// Boots one test may run again because the emulator brought a guest down.
pub const RETRIES_PER_TEST: u32 = 1;

/// Runs `command` to its end, or kills it (and everything it started: its
/// own process group) after `limit`; the output so far either way, and
/// whether it was killed.
pub fn output_within(mut command: Command, limit: Duration) -> (Output, bool) {
    use std::os::unix::process::CommandExt;
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start the command");
    let group = child.id();
    let start = Instant::now();
    let watcher = std::thread::spawn(move || {
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(200));
            if Command::new("kill")
                .args(["-0", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| !s.success())
            {
                return false;
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
        true
    });
    let output = child.wait_with_output().expect("wait for the command");
    (output, matches!(watcher.join(), Ok(true)))
}

/// A console for a failure message: its last lines, where the trouble
/// usually is (CI shows the head of a long message), and the whole of it
/// saved in the target directory.
pub fn shown(console: &str) -> String {
    const LINES: usize = 150;
    let lines: Vec<&str> = console.lines().collect();
    if lines.len() <= LINES {
        return console.to_owned();
    }
    static SAVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("consoles");
    let n = SAVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{}-{n}.log", std::process::id()));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, console))
        .map(|()| format!("; the whole console is in {}", path.display()))
        .unwrap_or_default();
    format!(
        "[{} earlier lines left out{saved}]\n{}",
        lines.len() - LINES,
        lines[lines.len() - LINES..].join("\n")
    )
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project directory with `system.ncl` made of the minimal and QEMU
/// profiles and `modules` (Nickel).
pub fn project(modules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "let micros = import \"micros\" in\nmicros.system {{ modules = [\n  micros.profiles.minimal,\n  micros.profiles.qemu,\n{modules}\n] }}\n"
    );
    std::fs::write(dir.path().join("system.ncl"), config).unwrap();
    dir
}

pub fn build(dir: &Path, out: &str) {
    let output = micros(&["build", "-o", out], dir);
    assert!(
        output.status.success(),
        "micros build failed:\n{}",
        text(&output.stderr)
    );
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A guest booted from `<dir>/result/run-vm`. One runs at a time per test
/// binary (two emulated guests on two cores would starve each other); it
/// is killed by its PID when dropped.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    console: Arc<Mutex<Vec<u8>>>,
    /// What the boots `Vm::boot` started again printed (a first boot may
    /// have changed a data disk before the emulator brought it down).
    pub earlier: String,
    _turn: MutexGuard<'static, ()>,
}

impl Vm {
    /// Polls `check` every half second for up to `limit` while QEMU runs;
    /// its first answer.
    pub fn poll<T>(&mut self, limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let start = Instant::now();
        while start.elapsed() < limit && self.exited().is_none() {
            if let Some(value) = check() {
                return Some(value);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        None
    }

    pub fn start(dir: &Path, extra: &[&str]) -> Vm {
        Self::spawn(&dir.join("result"), extra, None)
    }

    /// `result/run-vm` run from `dir` (where it keeps a data disk).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Vm {
        Self::spawn(&dir.join("result"), extra, Some(dir))
    }

    /// Starts the guest and waits until runit supervises the services,
    /// starting it again when the emulator brought the guest down before
    /// that (QEMU 7.2's software emulation does now and then; see
    /// `emulator_stopped`). A system that cannot get there is returned as
    /// it is, for the test to fail on.
    pub fn boot(dir: &Path, extra: &[&str]) -> Vm {
        let mut earlier = String::new();
        for attempt in 1..=BOOTS {
            let mut vm = Vm::start_in(dir, extra);
            vm.earlier = std::mem::take(&mut earlier);
            let up = vm.wait_for("enter stage: /etc/runit/2", Duration::from_secs(180));
            let console = vm.console();
            let stopped = vm
                .exited()
                .is_some_and(|code| emulator_stopped(&console, code));
            if up || !stopped || attempt == BOOTS {
                return vm;
            }
            earlier = std::mem::take(&mut vm.earlier) + &console;
            booting_again(&format!(
                "the emulator brought the guest down before runit started:\n{}",
                shown(&console)
            ));
        }
        unreachable!()
    }

    fn spawn(result: &Path, extra: &[&str], cwd: Option<&Path>) -> Vm {
        let mut command = Command::new(result.join("run-vm"));
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        command.args(extra);
        Self::start_command(command)
    }

    /// Any QEMU command line (a board `run-vm` does not know).
    pub fn start_command(mut command: Command) -> Vm {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        record("boot");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start QEMU");
        let mut stdout = child.stdout.take().unwrap();
        let console = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&console);
        // Raw bytes, not lines: a login prompt has no newline, and firmware
        // output is not always UTF-8.
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Vm {
            stdin: child.stdin.take(),
            child,
            console,
            earlier: String::new(),
            _turn: turn,
        }
    }

    /// Everything the console printed so far.
    pub fn console(&self) -> String {
        text(&self.console.lock().unwrap()).replace('\r', "")
    }

    /// Waits until `marker` has appeared `count` times on the console;
    /// false if QEMU exits or `timeout` passes first.
    pub fn wait_for_nth(&mut self, marker: &str, count: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.console().matches(marker).count() >= count {
                return true;
            }
            if start.elapsed() > timeout || self.exited().is_some() {
                return self.console().matches(marker).count() >= count;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> bool {
        self.wait_for_nth(marker, 1, timeout)
    }

    /// Types `text` on the serial console.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// QEMU's exit code if it has exited (`Some(None)` when killed by a
    /// signal).
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().unwrap().map(|status| status.code())
    }

    /// Waits up to `timeout` for QEMU to exit by itself, then kills it.
    pub fn finish(mut self, timeout: Duration) -> Boot {
        let start = Instant::now();
        let mut exit = None;
        while start.elapsed() < timeout {
            if let Some(code) = self.exited() {
                exit = code;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        // Let the reader drain what QEMU wrote last.
        std::thread::sleep(Duration::from_millis(200));
        Boot {
            console: self.console(),
            exit,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Boot {
    pub console: String,
    /// QEMU's exit code, if it exited by itself.
    pub exit: Option<i32>,
}

/// Boots a test may make: one more when the first was brought down by the
/// emulator (see [`emulator_fault`]), never more. Every one is counted in
/// the [`boot_ledger`].
pub const BOOTS: u32 = 2;

/// Whether the emulator, not MicrOS, brought the guest down: the kernel
/// crashed before it ran MicrOS's code (`Run /init`), which QEMU 7.2's
/// software emulation did now and then to Debian's 6.12 kernel (a double
/// fault in __kmalloc, an oops in do_sync_core). A crash after that, PID 1
/// dying (`Attempted to kill init`), a hang or an unexpected reset are
/// MicrOS's to answer for, and are never run again.
pub fn emulator_fault(console: &str) -> bool {
    if console.contains("Attempted to kill init") {
        return false;
    }
    let before_init = console.split("Run /init").next().unwrap_or(console);
    before_init.contains("Kernel panic") || before_init.contains("Oops")
}

/// [`emulator_fault`], for a guest that stopped by itself (`exit` is
/// QEMU's status; how it ended does not make it the emulator's fault).
pub fn emulator_stopped(console: &str, _exit: Option<i32>) -> bool {
    emulator_fault(console)
}

/// Boots `<dir>/result` (from `dir`) and runs `session` against the guest.
/// When the session fails because the emulator brought the guest down (see
/// `emulator_stopped`), the guest is booted again and the session run anew,
/// [`BOOTS`] times at most; any other failure is the test's.
pub fn boot_session(dir: &Path, session: impl Fn(&mut Vm)) {
    for attempt in 1..=BOOTS {
        let mut vm = Vm::boot(dir, &[]);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session(&mut vm)));
        let Err(failure) = run else {
            return;
        };
        let exit = vm.exited();
        let console = vm.console();
        if attempt == BOOTS || !exit.is_some_and(|code| emulator_stopped(&console, code)) {
            std::panic::resume_unwind(failure);
        }
        booting_again(&format!(
            "the emulator brought the guest down:\n{}",
            shown(&console)
        ));
    }
}

/// Boots `<dir>/result`, collecting the console until `until` appears and
/// QEMU exits (or 20 s later), or `timeout` passes; QEMU is then killed.
/// A boot the emulator brings down first is booted again ([`BOOTS`] in all).
pub fn boot(dir: &Path, extra: &[&str], until: &str, timeout: Duration) -> Boot {
    boot_command(
        || {
            let mut command = Command::new(dir.join("result/run-vm"));
            command.args(extra);
            command
        },
        until,
        timeout,
    )
}

/// [`boot`], for a QEMU started by `command` (run afresh for a boot again):
/// one with its own working directory or environment.
pub fn boot_command(command: impl Fn() -> Command, until: &str, timeout: Duration) -> Boot {
    for attempt in 1..=BOOTS {
        let mut vm = Vm::start_command(command());
        let seen = vm.wait_for(until, timeout);
        let result = vm.finish(if seen {
            Duration::from_secs(20)
        } else {
            Duration::ZERO
        });
        // Brought down before `until`, by the emulator rather than MicrOS
        // (QEMU exited by itself: a timeout kill leaves `exit` empty).
        let stopped =
            !seen && result.exit.is_some() && emulator_stopped(&result.console, result.exit);
        if !(emulator_fault(&result.console) || stopped) || attempt == BOOTS {
            return result;
        }
        booting_again(&format!(
            "the emulator brought the guest down:\n{}",
            shown(&result.console)
        ));
    }
    unreachable!()
}

/// A project against a signed test archive served on 127.0.0.1 (no
/// network): its directory, its own cache, and the archive.
pub struct ArchiveProject {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    pub archive: micros_test_archive::TestArchive,
    pub url: String,
}

/// A test archive with what the minimal profile needs, at sizes the size
/// report's tests reason about: libc6 (40 kB), busybox-static (30 kB),
/// runit (10 kB, with runit-helper) and a kernel package (20 kB).
pub fn base_archive() -> micros_test_archive::TestArchive {
    use micros_test_archive::{TestArchive, TestPackage};
    let mut archive = TestArchive::new("testing");
    archive
        .add(TestPackage::new("libc6", "2.41-12").file(
            "./usr/lib/x86_64-linux-gnu/libc.so.6",
            &[7u8; 40_000],
            0o755,
        ))
        .add(TestPackage::new("busybox-static", "1:1.37.0-6").file(
            "./usr/bin/busybox",
            &[1u8; 30_000],
            0o755,
        ))
        .add(
            TestPackage::new("runit", "2.2.0-3")
                .field("Depends", "libc6, runit-helper")
                .file("./usr/sbin/runit", &[2u8; 5_000], 0o755)
                .file("./usr/bin/runsvdir", &[3u8; 5_000], 0o755),
        )
        .add(TestPackage::new("runit-helper", "2.16.4").arch("all"))
        .add(
            TestPackage::new("linux-image-test", "6.12")
                .file("./boot/vmlinuz-6.12-test", &[4u8; 20_000], 0o644)
                .file("./usr/lib/modules/6.12-test/modules.builtin", b"", 0o644),
        );
    archive
}

impl ArchiveProject {
    /// Publishes and serves `archive`; the config is the minimal profile,
    /// the kernel `linux-image-test` and `extra` (Nickel record fields).
    pub fn new(mut archive: micros_test_archive::TestArchive, extra: &str) -> ArchiveProject {
        archive.publish();
        let url = archive.serve();
        let project = ArchiveProject {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
            archive,
            url,
        };
        project.write_config(extra);
        project
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.path("system.ncl"),
            format!(
                r#"let micros = import "micros" in
micros.system {{ modules = [
  micros.profiles.minimal,
  {{
    packages.source = {{ suite = "testing", mirror = "{}", keyring = "{}" }},
    boot.kernel.package = "linux-image-test",
  }},
  {{ {extra} }},
] }}
"#,
                self.url,
                self.archive.keyring().display()
            ),
        )
        .unwrap();
    }

    pub fn micros(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_micros"))
            .args(args)
            .current_dir(self.dir.path())
            .env("MICROS_CACHE_DIR", self.cache.path())
            .env_remove("MICROS_MIRROR")
            .output()
            .expect("run micros")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The command's stdout, after checking it succeeded.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A project directory holding `config` as `system.ncl`, built with
/// `micros build -A sdImage`; and what the build printed on stderr.
pub fn build_card(config: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.ncl"), config).unwrap();
    let output = micros(&["build", "-A", "sdImage"], dir.path());
    assert!(
        output.status.success(),
        "micros build -A sdImage failed:\n{}",
        text(&output.stderr)
    );
    (dir, text(&output.stderr))
}

/// Runs a host tool; its output (the test fails, naming it, if it fails).
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} (fdisk, dosfstools, mtools?): {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The boot partition of `<dir>/result/sd.img` (the card's first
/// MiB..65 MiB) as a file.
pub fn boot_partition(dir: &Path) -> PathBuf {
    let card = std::fs::read(dir.join("result/sd.img")).unwrap();
    let path = dir.join("boot.vfat");
    std::fs::write(&path, &card[1 << 20..65 << 20]).unwrap();
    path
}

/// A file of the boot partition `boot`, copied into `out`.
pub fn card_file(boot: &Path, name: &str, out: &Path) -> PathBuf {
    let target = out.join(name);
    run(Command::new("mcopy")
        .arg("-o")
        .arg("-i")
        .arg(boot)
        .arg(format!("::/{name}"))
        .arg(&target));
    target
}

/// How QEMU runs a Pi 3's four cores: one thread for all of them. With a
/// thread each, the cores a kernel has not started yet spin on their wait
/// instructions, and on two host cores they starve the one that boots (a
/// Pi 3 card reaches runit in 39 s instead of 58 s). On `raspi2b` the
/// 32-bit kernel then hangs bringing up the other cores: a Pi 2 guest
/// runs this way only with `maxcpus=1` (the Pi 2 A/B test: U-Boot at its
/// prompt in 4 s instead of 12 s), the plain Pi 2 card with a thread each.
pub const PI_ACCEL: &str = "tcg,thread=single";

/// QEMU (`qemu` on `machine`) booting the Pi card in `<dir>/result` as the
/// Pi's firmware would: the card's kernel, device tree, initrd and
/// cmdline.txt (QEMU cannot run the GPU firmware), with the card as the SD
/// device; and the command line. The caller adds devices.
pub fn card_qemu(
    dir: &Path,
    qemu: &str,
    machine: &str,
    kernel: &str,
    tree: &str,
) -> (Command, String) {
    let boot = boot_partition(dir);
    let kernel = card_file(&boot, kernel, dir);
    let tree = card_file(&boot, tree, dir);
    let initrd = card_file(&boot, "initrd", dir);
    let cmdline = run(Command::new("mtype")
        .arg("-i")
        .arg(&boot)
        .arg("::/cmdline.txt"));
    let mut command = Command::new(qemu);
    command
        .args(["-M", machine, "-nographic", "-no-reboot", "-kernel"])
        .arg(&kernel)
        .arg("-dtb")
        .arg(&tree)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=sd",
            dir.join("result/sd.img").display()
        ))
        .args(["-append", cmdline.trim()]);
    if machine == "raspi3b" {
        command.args(["-accel", PI_ACCEL]);
    }
    (command, cmdline)
}
