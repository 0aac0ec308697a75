//! Needs the network (Debian's archive), QEMU and e2fsprogs: updates on a
//! Raspberry Pi 3 A/B card (`micros build -A sdImage` with
//! `system.update.enable`) under QEMU's `raspi3b`, booted as the Pi's
//! firmware would start it: U-Boot (Debian's `u-boot-rpi`, off the card)
//! with the card's device tree. QEMU's Pi has no network a test can use
//! (its USB host does not show Linux the emulated USB Ethernet), so the
//! bundles reach the device on its data partition, and a service on the
//! device installs them with `micros-update install` as `micros deploy`
//! would. Version 2 goes over version 1 and confirms itself; version 3
//! (version 2's bundle signed again with a kernel command line naming an
//! init that does not exist) fails in stage 1, which reboots, and U-Boot,
//! having counted the trial down, brings the card back to version 2.
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::device::{keys, resigned};
use support::{card_file, micros, run, shown, text, Vm};

/// The card's config at `version`, with `extra` Nickel fields. A service
/// shows the update status (after the boot check, which it runs too: the
/// device program serializes the two), then installs `/v2.bundle`, then
/// `/v3.bundle`, from the data partition (once the running slot is
/// confirmed), removes it and reboots.
fn config(key: &str, version: &str, extra: &str) -> String {
    format!(
        r#"let micros = import "micros" in
micros.system {{ modules = [ micros.profiles.minimal, {{
  platform.host = "aarch64-linux",
  hardware.raspberryPi.rpi3 = true,
  image.disk.dataPartition = true,
  image.disk.dataPartitionSize = "96M",
  system.update = {{
    enable = true,
    version = "{version}",
    trustedKeys = [{key:?}],
    # QEMU's raspi3b resets at once when bcm2835_wdt is armed.
    watchdog = 0,
  }},
  environment.etc."installer.sh".text = m%"
    micros-update boot-check >/dev/null
    micros-update status
    for v in 2 3; do
      b=/v$v.bundle
      [ -f "$b" ] || continue
      n=0
      until micros-update install < "$b"; do
        n=$((n+1)); [ $n -ge 120 ] && exit 1; sleep 1
      done
      rm "$b"; sync; echo "MARKER-INSTALLED $v"; exec /usr/sbin/reboot
    done
    echo MARKER-SETTLED
  "%,
  runit.services.installer = {{ oneshot = true, command = "sh /etc/installer.sh" }},
}}, {extra} ] }}
"#
    )
}

/// Where partition `number` of a GPT disk starts and how long it is, in bytes.
fn gpt_partition(disk: &[u8], number: usize) -> (u64, u64) {
    let entry = &disk[1024 + (number - 1) * 128..1024 + number * 128];
    let lba = |at: usize| u64::from_le_bytes(entry[at..at + 8].try_into().unwrap());
    (lba(32) * 512, (lba(40) - lba(32) + 1) * 512)
}

/// Fills the card's data partition with an ext2 whose overlay holds
/// `files` at the root (as if written on the device).
fn put_on_data_partition(dir: &Path, card: &Path, files: &[(&str, &Path)]) {
    let upper = dir.join("data/upper");
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(dir.join("data/work")).unwrap();
    for (name, from) in files {
        std::fs::copy(from, upper.join(name)).unwrap();
    }
    let mut bytes = std::fs::read(card).unwrap();
    let (start, size) = gpt_partition(&bytes, 5);
    let image = dir.join("data.ext2");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(size)
        .unwrap();
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(dir.join("data"))
        .arg(&image));
    let data = std::fs::read(&image).unwrap();
    bytes[start as usize..(start + size) as usize].copy_from_slice(&data);
    std::fs::write(card, bytes).unwrap();
}

#[test]
fn needs_network_and_qemu_a_pi_3_ab_card_takes_an_update_and_rolls_back_a_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, signing) = keys(dir.path());
    let build = |name: &str, version: &str, extra: &str, args: &[&str]| {
        std::fs::write(dir.path().join(name), config(&key, version, extra)).unwrap();
        let mut all = args.to_vec();
        all.push(name);
        let output = micros(&all, dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    build("v1.ncl", "1", "{}", &["build", "-A", "sdImage"]);
    let bundle = ["build", "-A", "update", "--key", "update.key", "-o"];
    build("v2.ncl", "2", "{}", &[&bundle[..], &["v2"]].concat());
    let v2 = std::fs::read(dir.path().join("v2/update.bundle")).unwrap();
    let v3 = resigned(&v2, &signing, |m| {
        m.version = micros_update::version::Version::parse("3").unwrap();
        m.cmdline.push_str(" micros.init=/no-such-init");
    });
    std::fs::write(dir.path().join("v3.bundle"), v3).unwrap();

    // The card, as flashed, with both bundles on its data partition.
    let card = dir.path().join("card.img");
    std::fs::copy(dir.path().join("result/sd.img"), &card).unwrap();
    put_on_data_partition(
        dir.path(),
        &card,
        &[
            ("v2.bundle", &dir.path().join("v2/update.bundle")),
            ("v3.bundle", &dir.path().join("v3.bundle")),
        ],
    );
    let boot = support::boot_partition(dir.path());
    let uboot = card_file(&boot, "u-boot.bin", dir.path());
    let tree = card_file(&boot, "bcm2837-rpi-3-b.dtb", dir.path());
    let config_txt = run(Command::new("mtype")
        .arg("-i")
        .arg(&boot)
        .arg("::/config.txt"));
    assert!(config_txt.contains("kernel=u-boot.bin"), "{config_txt}");

    // U-Boot's console is the Pi's second UART, Linux's the first: both go
    // to the test.
    let mut qemu = Command::new("qemu-system-aarch64");
    qemu.args([
        "-M", "raspi3b", "-m", "1G", "-display", "none", "-monitor", "none",
    ])
    .arg("-kernel")
    .arg(&uboot)
    .arg("-dtb")
    .arg(&tree)
    .arg("-drive")
    .arg(format!("file={},format=raw,if=sd", card.display()))
    .args(["-chardev", "stdio,id=c,mux=on,signal=off"])
    .args(["-serial", "chardev:c", "-serial", "chardev:c"]);
    let mut vm = Vm::start_command(qemu);
    let steps = [
        ("micros: booting slot a, version 1", 1),
        ("micros-update: version 2 is in slot b", 1),
        ("micros: booting slot b, version 2", 1),
        ("slot b passed its health check and is now the good slot", 1),
        ("micros-update: version 3 is in slot a", 1),
        ("micros: trying slot a (0 more boots)", 1),
        ("micros: booting slot a, version 3", 1),
        ("micros-init: rebooting in 10 seconds", 1),
        ("micros: booting slot b, version 2", 2),
        (
            "micros-update: rolled back to slot b: slot a never reached its health check",
            1,
        ),
        ("MARKER-SETTLED", 1),
    ];
    for (step, count) in steps {
        assert!(
            vm.wait_for_nth(step, count, Duration::from_secs(400)),
            "never saw `{step}`:\n{}",
            shown(&vm.console())
        );
    }
    let console = vm.console();
    let settled = &console[console.rfind("micros: booting slot b, version 2").unwrap()..];
    assert!(
        settled.contains("slot a: bad, version 3")
            && settled.contains("slot b: good, booted, version 2")
            && settled.contains("last update: version 3 into slot a: rolled-back: slot a never reached its health check"),
        "{}",
        shown(settled)
    );
    let boots: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("micros: booting slot"))
        .collect();
    eprintln!("figure: raspi3b boots through U-Boot: {boots:?}");
}
