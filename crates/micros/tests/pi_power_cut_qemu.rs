//! Needs the network (Debian's archive), QEMU and e2fsprogs: power cuts
//! during updates of a Raspberry Pi 3 A/B card under QEMU's `raspi3b`
//! (U-Boot off the card, as the Pi's firmware starts it), and a version
//! failing in stage 1 rolling back. The card updates itself back and forth
//! between versions 1 and 2 from bundles on its data partition (QEMU's Pi
//! has no network a test can use): once its running slot is good, a
//! service feeds the other version's bundle to `micros-update install` in
//! twentieths, saying each on the console, and reboots. QEMU is killed
//! (SIGKILL) at 20 points spread over the install, the switch, U-Boot's
//! choice, the first boots of the new slot, its confirmation and a
//! rollback. After each cut the next boot's choice must be the version the
//! cut allows, and every boot that settles must have its data.
//!
//! A Pi boot takes about a minute under software emulation, so most cuts
//! fall in the boot after the previous cut, once U-Boot has said what it
//! boots: version 1 gives a new slot nine boots (`system.update.tries`),
//! which lets one install be cut in U-Boot, the kernel, stage 1, runit and
//! the health check in turn; version 2 gives one, so a cut in its trial
//! rolls back. Every boot's writes are logged and replayed, and the slot
//! chooser's decision checked after each write (`support::power_cut`).
//! Last, version 3 (version 2's bundle signed again with a command line
//! naming an init that does not exist) is put on the card: it fails in
//! stage 1, which reboots, and U-Boot brings the card back to version 2.
use std::collections::BTreeMap;

mod support;
use support::device::{build_bundle, keys};
use support::pi::{add_to_data_partition, card_config, flashed_card, write_failing_v3, Firmware};
use support::power_cut::{wait_for_after, Build, LoggedBoot, LoggedDisk};
use support::{shown, Vm};

/// The installer: waits until the booted slot is good, says so with its
/// version and the data partition's file, then installs `/v3.bundle` if
/// it is there, else the other version, fed in twentieths (`MARKER-FED i`
/// after the i-th went into the pipe), and reboots.
const SCRIPT: &str = r#"
micros-update boot-check >/dev/null
until micros-update status | grep -q 'good, booted'; do sleep 1; done
s=$(micros-update status | grep booted)
echo "MARKER-SETTLED $s; data: $(cat /kept); tree: $(tr '\0' ' ' < /proc/device-tree/compatible); model: $(cat /proc/device-tree/model)"
case "$s" in *"version 1"*) b=/v2.bundle ;; *) b=/v1.bundle ;; esac
[ -f /v3.bundle ] && b=/v3.bundle
chunk=$(( ($(wc -c < "$b") + 19) / 20 ))
i=0
while [ $i -lt 20 ]; do
  dd if="$b" bs=$chunk skip=$i count=1 2>/dev/null
  echo "MARKER-FED $i" >&2
  i=$((i+1))
done | micros-update install --allow-downgrade
if [ $? -ne 0 ]; then echo MARKER-INSTALL-FAILED; exit 1; fi
[ "$b" = /v3.bundle ] && rm /v3.bundle
sync
echo MARKER-INSTALLED
exec /usr/sbin/reboot"#;

/// The version a boot runs: what U-Boot says it boots.
const BOOTING: &str = "micros: booting slot ";

/// After a cut, the version the next boot must run: the one that was
/// settled when the update began, or the one it installs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    Old,
    New,
}

/// The line holding byte `at` of `console`, and where it ends (waiting
/// for the rest of it to arrive).
fn line_at(vm: &mut Vm, at: usize, what: &str) -> (String, usize) {
    wait_for_after(vm, "\n", at, what);
    let console = vm.console();
    let start = console[..at].rfind('\n').map_or(0, |n| n + 1);
    let end = at + console[at..].find('\n').unwrap();
    (console[start..end].to_owned(), end)
}

/// The version a line names (`…version N, …`).
fn version_in(line: &str) -> String {
    line.split("version ")
        .nth(1)
        .and_then(|rest| rest.split([',', ';', ' ']).next())
        .unwrap_or_else(|| panic!("no version in {line}"))
        .to_owned()
}

/// Waits for `marker` after byte `from`; where it is. Checks each time
/// the card settled on the way (its data is there) and returns the
/// version it last settled on, if it did.
fn until(vm: &mut Vm, marker: &str, from: usize, what: &str) -> (usize, Option<String>) {
    wait_for_after(vm, marker, from, what);
    let console = vm.console();
    let at = from + console[from..].find(marker).unwrap();
    let mut settled = None;
    let mut search = from;
    while let Some(found) = console[search..at].find("MARKER-SETTLED") {
        let (line, end) = line_at(vm, search + found, what);
        assert!(
            line.contains("data: kept;"),
            "{what}: the data partition survives: {line}"
        );
        // The Pi 3 B's tree from the slot, with the model U-Boot copied
        // from the firmware's (B+) tree (see `Firmware`).
        assert!(
            line.contains(
                "; tree: raspberrypi,3-model-b brcm,bcm2837 ; model: Raspberry Pi 3 Model B+"
            ),
            "{what}: the slot's device tree is booted: {line}"
        );
        settled = Some(version_in(&line));
        search = end;
    }
    (at, settled)
}

#[test]
fn needs_network_and_qemu_power_cuts_anywhere_in_a_pi_card_update_leave_a_whole_slot_and_the_data()
{
    let dir = tempfile::tempdir().unwrap();
    let (key, _, signing) = keys(dir.path());
    let mut builds = BTreeMap::new();
    for (version, extra) in [("1", "{ system.update.tries = 9 }"), ("2", "{}")] {
        let name = format!("v{version}.ncl");
        let config = card_config(&key, version, SCRIPT, extra);
        std::fs::write(dir.path().join(&name), config).unwrap();
        let out = format!("v{version}");
        build_bundle(dir.path(), &name, &out);
        builds.insert(version.to_owned(), Build::read(&dir.path().join(&out)));
    }
    // Version 3 has version 2's kernel, initrd and root.
    builds.insert("3".to_owned(), Build::read(&dir.path().join("v2")));
    write_failing_v3(dir.path(), &signing);
    // The card, as flashed, with both bundles and a file on its data
    // partition.
    let card = flashed_card(
        dir.path(),
        &[
            ("v1.bundle", "v1/update.bundle"),
            ("v2.bundle", "v2/update.bundle"),
        ],
    );
    let firmware = Firmware::of(dir.path());
    let mut logged = LoggedDisk::new(card.clone(), dir.path(), builds);
    let start = |logged: &mut LoggedDisk| -> LoggedBoot {
        logged.boot(|card, log| {
            firmware.qemu(&format!(
                "if=sd,driver=blklogwrites,file.driver=file,file.filename={},log.driver=file,log.filename={},log-super-update-interval=1",
                card.display(),
                log.display()
            ))
        })
    };

    // Each cut falls at its marker after the previous cut's boot has
    // said what it boots (a marker U-Boot prints before that falls in the
    // next boot of the same QEMU, after an install's reboot).
    let fed = |i: usize| format!("MARKER-FED {i}\n");
    let cuts: Vec<(String, Expect)> = vec![
        // Version 1 installs version 2 (nine boots to pass).
        // (The virt test cuts its install at nine points; here four,
        // each costing a Pi boot.)
        (fed(0), Expect::Old),
        (fed(7), Expect::Old),
        (fed(11), Expect::Old),
        (fed(18), Expect::Old),
        ("micros: choosing a slot".into(), Expect::New),
        ("Uncompressing Kernel Image".into(), Expect::New),
        ("Starting kernel".into(), Expect::New),
        ("micros: coldplug loaded".into(), Expect::New),
        ("enter stage: /etc/runit/2".into(), Expect::New),
        ("runs on trial: checking its health".into(), Expect::New),
        ("passed its health check".into(), Expect::New),
        // Version 2 installs version 1 (one boot to pass).
        ("MARKER-INSTALLED".into(), Expect::New),
        ("Starting kernel".into(), Expect::Old),
        ("micros-update: rolled back to slot".into(), Expect::Old),
        ("reboot: Restarting system".into(), Expect::New),
        ("passed its health check".into(), Expect::New),
        // Version 1 installs version 2 again.
        ("micros: trying slot".into(), Expect::New),
        ("enter stage: /etc/runit/2".into(), Expect::New),
        ("passed its health check".into(), Expect::New),
        // Version 2 installs version 1: cut early, for version 3.
        (fed(0), Expect::Old),
    ];

    let mut boot = start(&mut logged);
    let (at, first) = until(&mut boot.vm, BOOTING, 0, "the first boot");
    let (line, mut from) = line_at(&mut boot.vm, at, "the first boot");
    assert_eq!(version_in(&line), "1", "{line}");
    assert!(first.is_none());
    let mut running = "1".to_owned();
    let began = std::time::Instant::now();
    for (number, (marker, expect)) in cuts.iter().enumerate() {
        let what = format!("cut {} at \"{}\"", number + 1, marker.trim());
        let (_, settled) = until(&mut boot.vm, marker, from, &what);
        if let Some(version) = settled {
            running = version;
        }
        let earlier = logged.cut(boot);
        assert!(
            !earlier.contains("MARKER-INSTALL-FAILED"),
            "{what}: the install failed:\n{}",
            shown(&earlier)
        );
        let target = if running == "1" { "2" } else { "1" };
        boot = start(&mut logged);
        let (at, _) = until(&mut boot.vm, BOOTING, 0, &what);
        let (line, end) = line_at(&mut boot.vm, at, &what);
        let version = version_in(&line);
        let expected = match expect {
            Expect::Old => running.as_str(),
            Expect::New => target,
        };
        assert_eq!(
            version,
            expected,
            "{what}: the card boots version {version}\nbefore the cut:\n{}",
            shown(&earlier)
        );
        eprintln!(
            "{what}: came back on version {version} ({} s into the cuts)",
            began.elapsed().as_secs()
        );
        from = end;
    }
    let kills = cuts.len();

    // Version 3, copied onto the card, fails in stage 1 and rolls back.
    let (_, settled) = until(&mut boot.vm, "MARKER-SETTLED", from, "before version 3");
    assert!(settled.is_none());
    logged.cut(boot);
    add_to_data_partition(
        dir.path(),
        &card,
        "v3.bundle",
        &dir.path().join("v3.bundle"),
    );
    let mut boot = start(&mut logged);
    let steps = [
        "micros-update: version 3 is in slot",
        "micros: booting slot",
        "micros-init: rebooting in 10 seconds",
        "micros-update: rolled back to slot",
        "never reached its health check",
        "MARKER-SETTLED",
    ];
    let mut from = until(&mut boot.vm, "MARKER-SETTLED", 0, "version 3").0 + 1;
    for step in steps {
        from = until(&mut boot.vm, step, from, "version 3").0 + 1;
    }
    let console = boot.vm.console();
    let (line, _) = line_at(&mut boot.vm, from - 1, "version 3");
    assert_eq!(version_in(&line), "2", "{line}");
    assert!(
        console.contains("micros: booting slot a, version 3")
            || console.contains("micros: booting slot b, version 3"),
        "{}",
        shown(&console)
    );
    logged.cut(boot);
    assert!(kills >= 20);
    logged.report(kills);
}
