//! Needs the network (Debian's archive), QEMU, e2fsprogs and
//! device-tree-compiler: a 32-bit Raspberry Pi 2 A/B card (armhf, Debian's
//! `rpi_2` U-Boot, `bootz`) under QEMU's `raspi2b`, started as the Pi's
//! firmware would start it (see `support::pi::Firmware::pi2`). The card
//! updates itself from bundles on its data partition: version 1 installs
//! version 2, which boots on trial, passes its health check and is
//! confirmed; version 2 then installs version 3 (version 2's bundle signed
//! again with a command line naming an init that does not exist), which
//! fails in stage 1 and reboots, and U-Boot brings the card back to
//! version 2, which records the rollback. Linux boots the slot's own
//! device tree every time, and the data partition keeps its file.
mod support;
use support::device::{build_bundle, keys};
use support::pi::{card_config, flashed_card, write_failing_v3, Firmware};
use support::power_cut::wait_for_after;
use support::{shown, Vm};

/// The updater: once the booted slot is good, says so, then installs
/// version 2 over version 1, or version 3 over version 2 once.
const SCRIPT: &str = r#"
micros-update boot-check >/dev/null
until micros-update status | grep -q 'good, booted'; do sleep 1; done
s=$(micros-update status | grep booted)
echo "MARKER-SETTLED $s; data: $(cat /kept); tree: $(tr '\0' ' ' < /proc/device-tree/compatible)"
case "$s" in
  *"version 1"*) b=/v2.bundle ;;
  *) [ -f /v3.bundle ] || { echo "MARKER-DONE $(micros-update status | grep last)"; exit 0; }; b=/v3.bundle ;;
esac
micros-update install < "$b" || { echo MARKER-INSTALL-FAILED; exit 1; }
[ "$b" = /v3.bundle ] && rm /v3.bundle
sync
echo MARKER-INSTALLED
exec /usr/sbin/reboot"#;

/// The Pi 2's model, and one CPU: QEMU's Pi 2 runs one emulator thread
/// (`support::PI_ACCEL`), with which its kernel hangs bringing up the
/// other cores.
const PI2: &str = r#"{
  platform.host = "armv7l-linux",
  hardware.raspberryPi.rpi2 = true,
  hardware.raspberryPi.rpi3 = false,
  boot.kernelParams = ["maxcpus=1"],
}"#;

#[test]
fn needs_network_and_qemu_a_pi_2_card_updates_itself_and_a_failing_version_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, signing) = keys(dir.path());
    for version in ["1", "2"] {
        let name = format!("v{version}.ncl");
        std::fs::write(
            dir.path().join(&name),
            card_config(&key, version, SCRIPT, PI2),
        )
        .unwrap();
        build_bundle(dir.path(), &name, &format!("v{version}"));
    }
    write_failing_v3(dir.path(), &signing);
    let card = flashed_card(
        dir.path(),
        &[
            ("v2.bundle", "v2/update.bundle"),
            ("v3.bundle", "v3.bundle"),
        ],
    );
    let firmware = Firmware::pi2(dir.path());
    let started = std::time::Instant::now();
    let mut vm =
        Vm::start_command(firmware.qemu(&format!("if=sd,format=raw,file={}", card.display())));
    let steps = [
        "micros: booting slot a, version 1",
        "MARKER-SETTLED slot a: good, booted, version 1",
        "micros-update: version 2 is in slot b",
        "micros: trying slot b",
        "micros: booting slot b, version 2",
        "MARKER-SETTLED slot b: good, booted, version 2",
        "micros-update: version 3 is in slot a",
        "micros: booting slot a, version 3",
        "micros-init: rebooting in 10 seconds",
        "micros: booting slot b, version 2",
        "micros-update: rolled back to slot",
        "MARKER-DONE",
    ];
    let mut from = 0;
    for step in steps {
        wait_for_after(&mut vm, step, from, "the Pi 2 card");
        from += vm.console()[from..].find(step).unwrap() + step.len();
    }
    let console = vm.console();
    drop(vm);
    eprintln!(
        "figure: Pi 2 card: version 1, version 2 on trial and confirmed, version 3 failing in stage 1, back on version 2: 4 boots in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let settled: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("MARKER-SETTLED"))
        .collect();
    assert_eq!(settled.len(), 3, "{}", shown(&console));
    for line in &settled {
        assert!(line.contains("; data: kept;"), "the data is kept: {line}");
        assert!(
            line.ends_with("; tree: raspberrypi,2-model-b brcm,bcm2836 "),
            "Linux runs on the slot's device tree: {line}"
        );
    }
    for slot in ["a", "b"] {
        assert!(
            console.contains(&format!(
                "micros: device tree bcm2836-rpi-2-b.dtb from slot {slot}"
            )),
            "{}",
            shown(&console)
        );
    }
    let done = console
        .lines()
        .find(|l| l.starts_with("MARKER-DONE"))
        .unwrap();
    assert!(
        done.contains("last update: version 3 into slot a: rolled-back"),
        "{done}"
    );
}
