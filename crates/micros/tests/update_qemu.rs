//! Needs the network (Debian's archive), QEMU and OpenSSH's client: updates
//! that cannot brick, on QEMU's aarch64 `virt` machine booting the A/B disk
//! with U-Boot. One device (one disk, kept across reboots inside one QEMU)
//! refuses every bad bundle without touching its slots, takes version 2
//! with `micros deploy` and keeps its data, then rolls back on its own from
//! four broken versions: a failed health check, a kernel panic, a stage 1
//! that cannot find its root, and an init that hangs (the watchdog).
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

mod support;
use support::device::{resigned, slot, Device};
use support::{micros, shown, text, Vm};

#[test]
fn needs_network_and_qemu_a_device_takes_good_updates_refuses_bad_bundles_and_rolls_back_broken_ones(
) {
    let (device, signing) = Device::new();

    // Version 1, flashed: the disk, and U-Boot to boot it.
    device.write_config("v1.ncl", "1", "{}");
    let output = micros(&["build", "-A", "disk", "v1.ncl"], device.dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    for file in [
        "disk.img",
        "u-boot.bin",
        "kernel",
        "initrd",
        "root.squashfs",
    ] {
        assert!(device.path("result").join(file).exists(), "{file}");
    }
    let boot_started = Instant::now();
    let mut vm = Vm::start_in(device.dir.path(), &[]);
    let first = vm.poll(Duration::from_secs(300), || {
        device.ssh("micros-update status --json")
    });
    assert!(
        first.is_some(),
        "version 1 never answered SSH:\n{}",
        shown(&vm.console())
    );
    eprintln!(
        "figure: first boot from the A/B disk to SSH: {:.1} s",
        boot_started.elapsed().as_secs_f64()
    );
    let status = device.status();
    assert_eq!(slot(&status, "a")["state"], "good");
    assert_eq!(slot(&status, "a")["booted"], true);
    assert_eq!(slot(&status, "a")["version"], "1");
    assert_eq!(slot(&status, "b")["state"], "empty");
    assert!(status["last"].is_null());
    assert!(vm
        .console()
        .contains("micros-init: watchdog armed for 30 s"));
    device
        .ssh("echo kept > /root/data-file && sync")
        .expect("writes to the data partition");

    // Version 2's bundle, then everything a device must refuse, each with
    // one line and the running slot untouched.
    device.write_config("v2.ncl", "2", "{}");
    let good = device.build_bundle("v2.ncl", "v2");
    eprintln!(
        "figure: update bundle for the test system: {} bytes",
        good.len()
    );
    let length = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let mut unsigned = good.clone();
    unsigned[16 + length..16 + length + 64].fill(0);
    let stranger = SigningKey::from_bytes(&[42; 32]);
    let mut corrupted = good.clone();
    let middle = good.len() / 2;
    corrupted[middle] ^= 0x55;
    let refusals: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unsigned", unsigned, "not signed"),
        (
            "wrong key",
            resigned(&good, &stranger, |_| {}),
            "does not trust",
        ),
        (
            "truncated",
            good[..good.len() - 100_000].to_vec(),
            "truncated",
        ),
        ("corrupted in the middle", corrupted, "corrupt"),
        (
            "wrong platform",
            resigned(&good, &signing, |m| m.platform = "x86_64-linux".into()),
            "is for x86_64-linux",
        ),
        (
            "older version",
            resigned(&good, &signing, |m| {
                m.version = micros_update::version::Version::parse("0.9").unwrap()
            }),
            "older than the installed 1",
        ),
        (
            "not a bundle",
            b"hello".to_vec(),
            "not a MicrOS update bundle",
        ),
    ];
    for (what, bytes, expected) in &refusals {
        let output = device.install(bytes, false);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{what}: installed?\n{stderr}");
        assert!(
            stderr.contains("refused:") && stderr.contains(expected),
            "{what}: {stderr}"
        );
        let status = device.status();
        assert_eq!(slot(&status, "a")["state"], "good", "{what}");
        assert_eq!(slot(&status, "a")["booted"], true, "{what}");
        assert_ne!(slot(&status, "b")["state"], "trying", "{what}");
        assert_eq!(status["last"]["outcome"], "refused", "{what}");
        eprintln!("figure: refused {what}: {}", stderr.trim());
    }

    // Version 2, deployed: confirmed, and the data is still there.
    let started = Instant::now();
    let output = device.deploy("v2.ncl");
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\n{}",
        shown(&vm.console())
    );
    assert!(
        stderr.contains("runs version 2 (slot b), confirmed"),
        "{stderr}"
    );
    eprintln!(
        "figure: deploy of version 2 (build, send, install, reboot, health check): {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        stderr.lines().last().unwrap_or_default()
    );
    let status = device.status();
    assert_eq!(slot(&status, "b")["state"], "good");
    assert_eq!(slot(&status, "b")["booted"], true);
    assert_eq!(slot(&status, "b")["version"], "2");
    assert!(slot(&status, "b")["installed"].is_u64(), "{status}");
    assert!(
        slot(&status, "a")["installed"].is_null(),
        "flashed: {status}"
    );
    assert_eq!(status["last"]["outcome"], "confirmed");
    let listed = device.ssh("micros-update status").unwrap();
    assert!(
        listed.contains("slot a: inactive, version 1, flashed with the disk")
            && listed.contains("slot b: good, booted, version 2, installed "),
        "{listed}"
    );
    assert_eq!(
        device.ssh("cat /root/data-file").as_deref(),
        Some("kept\n"),
        "the data partition survives the update"
    );

    // Four broken versions 3: each gets its one boot, fails, and the
    // device is back on version 2 with no one touching it.
    let broken = [
        (
            "a failed health check",
            r#"{ system.update.healthCheck = { command = "echo disk full >&2; false", timeout = 5 } }"#,
            "health check failed after 5 s: the health command failed: disk full",
            "micros-update: slot a failed its trial",
        ),
        (
            "a kernel panic",
            r#"{ boot.kernelParams = ["rdinit=/no-such-init"] }"#,
            "never reached its health check",
            "Kernel panic",
        ),
        (
            "a stage 1 that cannot find its root",
            r#"{ boot.initrd.availableKernelModules.virtio_blk = false, boot.rootWait = 3 }"#,
            "never reached its health check",
            "micros-init: rebooting in 10 seconds",
        ),
        (
            "an init that hangs",
            r#"{ boot.kernelParams = ["micros.init=/usr/bin/sh"] }"#,
            "never reached its health check",
            "micros-init: watchdog armed for 30 s",
        ),
    ];
    for (index, (what, extra, reason, console_shows)) in broken.iter().enumerate() {
        let name = format!("v3-{index}.ncl");
        device.write_config(&name, "3", extra);
        let console_before = vm.console().len();
        let started = Instant::now();
        let output = device.deploy(&name);
        let stderr = text(&output.stderr);
        let console = vm.console()[console_before..].to_owned();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {stderr}\n{}",
            shown(&console)
        );
        assert!(
            stderr.contains("version 3 failed") && stderr.contains(reason),
            "{what}: {stderr}"
        );
        assert!(
            stderr.contains("runs version 2 (slot b)"),
            "{what}: {stderr}"
        );
        assert!(
            console.contains(console_shows)
                && console.contains("micros: booting slot a, version 3"),
            "{what}: the console shows it:\n{}",
            shown(&console)
        );
        let status = device.status();
        assert_eq!(slot(&status, "b")["booted"], true, "{what}");
        assert_eq!(slot(&status, "b")["state"], "good", "{what}");
        assert_eq!(slot(&status, "a")["state"], "bad", "{what}");
        assert_eq!(status["last"]["outcome"], "rolled-back", "{what}");
        assert_eq!(
            device.ssh("cat /root/data-file").as_deref(),
            Some("kept\n"),
            "{what}: the data partition survives the rollback"
        );
        eprintln!(
            "figure: {what}: deploy to rollback {:.1} s; {}",
            started.elapsed().as_secs_f64(),
            stderr
                .lines()
                .find(|l| l.contains("rolled back"))
                .unwrap_or_default()
        );
    }
}
