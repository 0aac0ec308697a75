//! Needs the network (Debian's archive) and QEMU: builds systems with the
//! real `micros` binary and boots them under software emulation, reading
//! the serial console.
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::{boot, build, cache, emulator_fault, micros, project, shown, text};

const SERVICES: &str = r#"  {
    networking.hostName = "boot-test",
    runit.services = {
      # The dependent service sorts first and the one it waits for is slow:
      # only `after` can put MARKER-FIRST before MARKER-SECOND.
      zz-first = { oneshot = true, command = "sh -c 'sleep 2; echo MARKER-FIRST uptime $(cut -d\" \" -f1 /proc/uptime) stdout $(grep flags /proc/$$/fdinfo/1)'" },
      aa-second = { oneshot = true, after = ["zz-first"], command = "sh -c 'echo MARKER-SECOND TERM-$TERM'" },
      counter = { command = "sh -c 'echo MARKER-COUNTER-START; exec sleep 1000'" },
      logged = { oneshot = true, command = "echo LOGGED-LINE", log.target = "file" },
      killer = {
        oneshot = true,
        after = ["counter", "aa-second", "logged"],
        command = "sh -c 'first=$(cat /etc/sv/counter/supervise/pid); kill $first; n=0; while [ $n -lt 600 ] && { [ ! -s /etc/sv/counter/supervise/pid ] || [ $(cat /etc/sv/counter/supervise/pid) = $first ]; }; do sleep 0.1; n=$((n+1)); done; sleep 1; echo MODULE-$(grep -o ^dummy /proc/modules); echo FROM-LOG-$(cut -d\" \" -f2 /var/log/logged/current); echo MARKER-POWEROFF; /usr/sbin/poweroff'",
      },
    },
    boot.kernelModules.dummy = true,
  },"#;

fn services_ordering_restart_and_poweroff(platform: &str) {
    let dir = project(&format!(
        "  {{ platform.host = \"{platform}\" }},\n{SERVICES}"
    ));
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-POWEROFF", Duration::from_secs(180));
    let console = &boot.console;
    let position = |marker: &str| {
        console
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} on the console:\n{}", shown(console)))
    };
    // Services write to the console blocking: a busy serial line slows
    // them down instead of losing their output (EAGAIN).
    // (Kernel messages may continue the line: read the digits only.)
    let first = &console[position("MARKER-FIRST")..];
    let flags: String = first
        .split_once("flags:")
        .map_or("", |(_, rest)| rest)
        .trim_start()
        .chars()
        .take_while(|c| c.is_digit(8))
        .collect();
    let flags = u32::from_str_radix(&flags, 8).unwrap_or_else(|_| panic!("no flags: {first}"));
    assert_eq!(
        flags & 0o4000,
        0,
        "a service's stdout is O_NONBLOCK: {flags:o}"
    );
    assert!(
        console.contains("MARKER-SECOND TERM-linux"),
        "the environment the kernel gives PID 1 reaches the services:\n{}",
        shown(console)
    );
    assert!(
        position("MARKER-FIRST") < position("MARKER-SECOND"),
        "`after` ordering:\n{}",
        shown(console)
    );
    assert_eq!(
        console.matches("MARKER-COUNTER-START").count(),
        2,
        "runsv restarts the killed service:\n{}",
        shown(console)
    );
    assert!(
        console.contains("MODULE-dummy"),
        "boot.kernelModules are loaded by stage 1:\n{}",
        shown(console)
    );
    assert!(
        console.contains("FROM-LOG-LOGGED-LINE"),
        "log.target = file goes through svlogd:\n{}",
        shown(console)
    );
    assert!(
        !console.lines().any(|l| l == "LOGGED-LINE"),
        "a file-logged service stays off the console:\n{}",
        shown(console)
    );
    assert!(
        console.contains("runit: enter stage: /etc/runit/3"),
        "stage 3 runs:\n{}",
        shown(console)
    );
    // QEMU runs with -no-reboot and the kernel with panic=10: a reboot or
    // a crashed PID 1 would end it with 0 too. The kernel says which.
    assert!(
        console.contains("reboot: Power down"),
        "the kernel powered the machine down:\n{}",
        shown(console)
    );
    assert!(!console.contains("Kernel panic"), "{}", shown(console));
    assert_eq!(
        boot.exit,
        Some(0),
        "a guest power-off ends QEMU with status 0:\n{}",
        shown(console)
    );
}

#[test]
fn needs_network_and_qemu_a_reboot_restarts_the_machine() {
    let dir = project(
        r#"  { runit.services.bye = { oneshot = true, command = "sh -c 'echo MARKER-REBOOT; /usr/sbin/reboot'" } },"#,
    );
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-REBOOT", Duration::from_secs(180));
    let console = &boot.console;
    assert!(
        console.contains("runit: enter stage: /etc/runit/3"),
        "stage 3 runs:\n{}",
        shown(console)
    );
    assert!(
        console.contains("reboot: Restarting system"),
        "the kernel restarts the machine (QEMU's -no-reboot then ends):\n{}",
        shown(console)
    );
    assert!(
        !console.contains("reboot: Power down"),
        "{}",
        shown(console)
    );
    assert!(!console.contains("Kernel panic"), "{}", shown(console));
}

#[test]
fn needs_network_and_qemu_x86_64_boots_runs_services_in_order_restarts_and_powers_off() {
    services_ordering_restart_and_poweroff("x86_64-linux");
}

#[test]
fn needs_network_and_qemu_aarch64_boots_runs_services_in_order_restarts_and_powers_off() {
    services_ordering_restart_and_poweroff("aarch64-linux");
}

/// armhf: stage 1 built from rust-src like every other, Debian's armmp
/// kernel on QEMU's virt board.
#[test]
fn needs_network_and_qemu_armv7l_boots_runs_services_in_order_restarts_and_powers_off() {
    services_ordering_restart_and_poweroff("armv7l-linux");
}

#[test]
fn needs_network_and_qemu_a_root_that_never_appears_is_a_clear_stage1_error() {
    let dir = project("  { boot.root = \"/dev/vdb\", boot.rootWait = 2 },");
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "rebooting in", Duration::from_secs(120));
    assert!(
        boot.console
            .contains("micros-init: the root device /dev/vdb did not appear within 2 s"),
        "no clear stage 1 error:\n{}",
        shown(&boot.console)
    );
    assert!(
        !boot.console.contains("Kernel panic"),
        "{}",
        shown(&boot.console)
    );
}

/// Builds `config` (with `args`) in one project directory with the suite's
/// warm cache, then the same config and the lock that build wrote again in
/// a copy of the project elsewhere: an empty cache of its own (everything
/// downloaded afresh), another time zone and a umask that takes every bit
/// from group and others. Checks that every artifact of the two `result/`
/// directories is the same byte for byte, and that `manifest.json` records
/// each artifact's SHA-256 and size as they are on disk. Returns the first
/// project directory, which holds its `result/`.
fn builds_byte_identical_elsewhere(config: &str, args: &[&str]) -> tempfile::TempDir {
    let one = tempfile::tempdir().unwrap();
    std::fs::write(one.path().join("system.ncl"), config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_micros"))
        .arg("build")
        .args(args)
        .current_dir(one.path())
        .env("MICROS_CACHE_DIR", cache())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run micros");
    assert!(
        output.status.success(),
        "the first build failed:\n{}",
        text(&output.stderr)
    );
    let lock = std::fs::read(one.path().join("micros.lock")).expect("the build wrote a lock");

    let two = tempfile::tempdir().unwrap();
    for name in ["system.ncl", "micros.lock"] {
        std::fs::copy(one.path().join(name), two.path().join(name)).unwrap();
    }
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new("sh")
        .args(["-c", "umask 077; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_micros"))
        .arg("build")
        .args(args)
        .arg("--locked")
        .current_dir(two.path())
        .env("MICROS_CACHE_DIR", empty.path().join("micros"))
        .env("XDG_CACHE_HOME", empty.path().join("xdg"))
        .env("TZ", "Pacific/Kiritimati")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run micros");
    assert!(
        output.status.success(),
        "the second build failed:\n{}",
        text(&output.stderr)
    );
    assert!(
        empty
            .path()
            .join("micros/debs-v1")
            .read_dir()
            .unwrap()
            .count()
            > 0,
        "the second build downloaded into its own cache"
    );
    assert!(
        std::fs::read(two.path().join("micros.lock")).unwrap() == lock,
        "the lock is used as it is"
    );

    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("result"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let artifacts = names(one.path());
    assert_eq!(artifacts, names(two.path()), "the same artifacts");
    for artifact in &artifacts {
        let a = std::fs::read(one.path().join("result").join(artifact)).unwrap();
        let b = std::fs::read(two.path().join("result").join(artifact)).unwrap();
        assert!(
            a == b,
            "{artifact} differs between the two builds ({} and {} bytes)",
            a.len(),
            b.len()
        );
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.path().join("result/manifest.json")).unwrap())
            .unwrap();
    let recorded: Vec<&String> = manifest["artifacts"].as_object().unwrap().keys().collect();
    let on_disk: Vec<&String> = artifacts.iter().filter(|n| *n != "manifest.json").collect();
    assert_eq!(recorded, on_disk, "the manifest records every artifact");
    for artifact in on_disk {
        let path = one.path().join("result").join(artifact);
        let sum = Command::new("sha256sum")
            .arg(&path)
            .output()
            .expect("sha256sum (coreutils)");
        assert!(sum.status.success());
        let sum = text(&sum.stdout);
        let sha256 = sum.split_whitespace().next().unwrap();
        assert_eq!(
            manifest["artifacts"][artifact]["sha256"], sha256,
            "{artifact}'s SHA-256 in manifest.json"
        );
        assert_eq!(
            manifest["artifacts"][artifact]["size"],
            std::fs::metadata(&path).unwrap().len(),
            "{artifact}'s size in manifest.json"
        );
    }
    one
}

#[test]
fn needs_network_the_same_config_and_lock_build_byte_identical_artifacts() {
    let config = "let micros = import \"micros\" in\nmicros.system { modules = [\n  micros.profiles.minimal,\n  micros.profiles.qemu,\n  { networking.hostName = \"twice\" },\n] }\n";
    let dir = builds_byte_identical_elsewhere(config, &[]);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("result"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for artifact in [
        "kernel",
        "initrd",
        "root.squashfs",
        "cmdline",
        "run-vm",
        "manifest.json",
    ] {
        assert!(names.iter().any(|n| n == artifact), "{artifact} is built");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["platform"], "x86_64-linux");
    assert!(manifest["kernel"]["version"]
        .as_str()
        .unwrap()
        .contains("cloud-amd64"));
    assert!(manifest["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "runit"));
}

/// The same for a Raspberry Pi 3 card: its partition table's disk id, the
/// FAT boot partition and the root and data partitions.
#[test]
fn needs_network_the_same_config_and_lock_build_a_byte_identical_pi_card() {
    let config = r#"let micros = import "micros" in
micros.system { modules = [ micros.profiles.minimal, {
  networking.hostName = "twice-pi",
  platform.host = "aarch64-linux",
  hardware.raspberryPi.rpi3 = true,
  image.disk.dataPartition = true,
  image.disk.dataPartitionSize = "32M",
} ] }
"#;
    let dir = builds_byte_identical_elsewhere(config, &["-A", "sdImage"]);
    let card = dir.path().join("result/sd.img");
    assert!(
        std::fs::metadata(&card).unwrap().len() > 64 << 20,
        "a card with its boot, root and data partitions"
    );
}

#[test]
fn needs_network_single_artifacts_and_a_failed_build_keeps_the_previous_result() {
    let dir = project("  { networking.hostName = \"keep\" },");
    let output = micros(&["build", "-A", "initrd", "-o", "only-initrd"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("only-initrd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["initrd"], "-A initrd builds just the initrd");

    build(dir.path(), "result");
    let before = std::fs::read(dir.path().join("result/root.squashfs")).unwrap();
    // A module the kernel does not have: the build fails, clearly, and the
    // previous result stays as it was.
    let config = std::fs::read_to_string(dir.path().join("system.ncl")).unwrap().replace(
        "{ networking.hostName = \"keep\" },",
        "{ networking.hostName = \"keep\", boot.initrd.availableKernelModules.no_such_module = true },",
    );
    std::fs::write(dir.path().join("system.ncl"), config).unwrap();
    let output = micros(&["build"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains("kernel module `no_such_module` is not in the kernel package"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("result/root.squashfs")).unwrap(),
        before
    );
    assert!(dir.path().join("result/manifest.json").exists());
}

#[test]
fn needs_network_and_qemu_micros_run_boots_on_the_terminal_and_says_how() {
    let dir = project("  { runit.services.bye = { oneshot = true, command = \"sh -c 'echo MARKER-RUN; /usr/sbin/poweroff'\" } },");
    let run = || {
        support::record_boot();
        let mut command = Command::new(env!("CARGO_BIN_EXE_micros"));
        command
            .args(["run"])
            .current_dir(dir.path())
            .env("MICROS_CACHE_DIR", cache())
            .stdin(Stdio::null());
        // A guest that never powers off must not hold the suite.
        let (output, killed) = support::output_within(command, Duration::from_secs(600));
        assert!(
            !killed,
            "micros run did not end within 10 minutes:\n{}",
            text(&output.stdout)
        );
        output
    };
    // As in `boot`: QEMU 7.2's TCG sometimes crashes the kernel in early
    // boot, before MicrOS runs; run again then.
    let mut output = run();
    for _ in 1..support::BOOTS {
        if !emulator_fault(&text(&output.stdout)) {
            break;
        }
        support::booting_again("the emulator crashed the kernel in early boot");
        output = run();
    }
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "micros run failed:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("MARKER-RUN"),
        "the serial console is on the terminal:\n{stdout}"
    );
    assert!(
        stderr.contains("booting boot-test under qemu-system-x86_64 with ")
            || stderr.contains("booting micros under qemu-system-x86_64 with "),
        "{stderr}"
    );
    // Which accelerator, and why, is said either way.
    assert!(
        stderr.contains("KVM") || stderr.contains("software emulation (TCG)"),
        "{stderr}"
    );
}

#[test]
fn needs_network_and_qemu_a_stage1_failure_can_start_a_shell() {
    let dir = project("  { boot.root = \"/dev/vdb\", boot.rootWait = 1, boot.kernelParams = [\"micros.onfailure=shell\"] },");
    build(dir.path(), "result");
    let boot = boot(
        dir.path(),
        &[],
        "starting /bin/busybox",
        Duration::from_secs(120),
    );
    assert!(
        boot.console
            .contains("micros-init: the root device /dev/vdb did not appear within 1 s"),
        "{}",
        shown(&boot.console)
    );
    assert!(
        boot.console
            .contains("micros-init: starting /bin/busybox (micros.onfailure=shell)"),
        "{}",
        shown(&boot.console)
    );
    assert!(
        !boot.console.contains("Kernel panic"),
        "{}",
        shown(&boot.console)
    );
}

#[test]
fn needs_network_micros_run_without_qemu_names_the_package_to_install() {
    let dir = project("");
    let bin = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_micros"))
        .args(["run"])
        .current_dir(dir.path())
        .env("MICROS_CACHE_DIR", cache())
        // No QEMU on this PATH (building needs no external tool).
        .env("PATH", bin.path())
        .stdin(Stdio::null())
        .output()
        .expect("run micros");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("qemu-system-x86_64 is not installed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("install the Debian package qemu-system-x86"),
        "{stderr}"
    );
}

/// A data disk that holds something other than an ext2/3/4 filesystem is
/// never formatted: stage 1 says so and how to wipe it, and reboots. The
/// disk is the one `MICROS_DATA_DISK` names, not `./<hostName>-data.img`.
#[test]
fn needs_network_and_qemu_a_data_disk_holding_other_data_is_left_untouched() {
    let dir = project(
        r#"  { networking.hostName = "untouched", boot.overlay = "data", virtualisation.qemu.dataDiskSize = "64M" },"#,
    );
    build(dir.path(), "result");
    let elsewhere = tempfile::tempdir().unwrap();
    let disk = elsewhere.path().join("mine.img");
    let mut bytes = vec![0u8; 64 << 20];
    // Someone's data: neither blank nor an ext2/3/4 superblock.
    bytes[512..512 + 14].copy_from_slice(b"my photos, v1\n");
    std::fs::write(&disk, &bytes).unwrap();

    let boot = support::boot_command(
        || {
            let mut command = Command::new(dir.path().join("result/run-vm"));
            command
                .current_dir(dir.path())
                .env("MICROS_DATA_DISK", &disk);
            command
        },
        "rebooting in",
        Duration::from_secs(180),
    );
    let console = &boot.console;
    assert!(
        console.contains(
            "micros-init: the data partition /dev/vdb holds data that is not an ext2/3/4 filesystem, and micros-init will not overwrite it; to have it formatted on the next boot, wipe its start: dd if=/dev/zero of=/dev/vdb bs=1M count=1"
        ),
        "stage 1 refuses the disk and says how to wipe it:\n{}",
        shown(console)
    );
    assert!(
        !console.contains("preparing the data partition"),
        "{}",
        shown(console)
    );
    assert!(
        !console.contains("runit: enter stage"),
        "the system does not start over a disk it cannot use:\n{}",
        shown(console)
    );
    assert!(
        console.contains("reboot: Restarting system"),
        "stage 1 reboots, as its failure policy says:\n{}",
        shown(console)
    );
    assert!(!console.contains("Kernel panic"), "{}", shown(console));
    assert!(
        std::fs::read(&disk).unwrap() == bytes,
        "the data disk's bytes are unchanged"
    );
    assert!(
        !dir.path().join("untouched-data.img").exists(),
        "MICROS_DATA_DISK chose the disk: no default disk file is made"
    );
}
