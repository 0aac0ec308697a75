//! Needs the network (Debian's archive, non-free-firmware) and QEMU:
//! Raspberry Pi SD cards. QEMU cannot run the Pi's GPU firmware, so the
//! boot tests take the kernel, device tree, initrd and cmdline.txt from the
//! card's boot partition and boot them with the card as the SD device.
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::{boot_partition, build_card, card_qemu, micros, run, shown, text, Vm};

/// The boot partition's root directory, checked to hold `names`.
fn assert_listed(boot: &Path, names: &[&str]) -> String {
    let listing = run(Command::new("mdir").arg("-i").arg(boot).args(["-b", "::/"]));
    for name in names {
        assert!(
            listing.lines().any(|l| l == format!("::/{name}")),
            "{name} is missing from the boot partition:\n{listing}"
        );
    }
    listing
}

#[test]
fn needs_network_the_seed_example_builds_a_card_for_its_pi_2() {
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-rpi.ncl"),
    )
    .unwrap();
    let (dir, stderr) = build_card(&seed);
    // The seed's combination builds, and says what a Pi 1 needs.
    assert!(
        stderr.contains("a Pi 1 or Zero cannot run that userland")
            && stderr.contains("platform.host = \"armv6l-linux\""),
        "{stderr}"
    );
    let card = dir.path().join("result/sd.img");
    let size = std::fs::metadata(&card).unwrap().len();
    assert!(size.is_power_of_two(), "QEMU wants a power of two: {size}");

    let dump = run(Command::new("sfdisk").arg("--dump").arg(&card));
    let id = dump
        .lines()
        .find_map(|l| l.strip_prefix("label-id: 0x"))
        .expect("an MBR disk id")
        .to_owned();
    assert!(dump.contains("label: dos"), "{dump}");
    assert!(
        dump.contains("sd.img1 : start=        2048, size=      131072, type=c, bootable"),
        "{dump}"
    );
    assert!(dump.contains("sd.img2 : start=      133120"), "{dump}");
    assert!(dump.contains("type=83"), "{dump}");

    let boot = boot_partition(dir.path());
    run(Command::new("fsck.fat").arg("-n").arg(&boot));
    let listing = assert_listed(
        &boot,
        &[
            "bootcode.bin",
            "start.elf",
            "fixup.dat",
            "kernel7.img",
            "initrd",
            "config.txt",
            "cmdline.txt",
            // The Pi 2's device tree, and the Pi 1's (the kernel is the
            // armmp one here, but the trees are the boards').
            "bcm2836-rpi-2-b.dtb",
            "bcm2835-rpi-b.dtb",
        ],
    );
    assert!(!listing.contains("kernel8.img"), "{listing}");
    let config_txt = run(Command::new("mtype")
        .arg("-i")
        .arg(&boot)
        .arg("::/config.txt"));
    assert!(config_txt.contains("kernel=kernel7.img\n"), "{config_txt}");
    assert!(
        config_txt.contains("initramfs initrd followkernel\n"),
        "{config_txt}"
    );
    let cmdline = run(Command::new("mtype")
        .arg("-i")
        .arg(&boot)
        .arg("::/cmdline.txt"));
    assert!(
        cmdline.starts_with(&format!("root=PARTUUID={id}-02 ")),
        "{cmdline}"
    );
    assert!(cmdline.contains("console=ttyAMA0,115200"), "{cmdline}");
}

/// Builds a card for `host` with one Pi `model` (and a data partition when
/// `data`), takes the kernel, device tree, initrd and command line off its
/// boot partition and boots them on QEMU's `machine` with the card as the
/// SD device.
#[allow(clippy::too_many_arguments)]
fn boots_from_its_card(
    host: &str,
    model: &str,
    qemu: &str,
    machine: &str,
    kernel: &str,
    tree: &str,
    data: bool,
) {
    let (dir, _) = build_card(&format!(
        r#"let micros = import "micros" in
micros.system {{ modules = [ micros.profiles.minimal, {{
  platform.host = "{host}",
  hardware.raspberryPi.{model} = true,
  image.disk.dataPartition = {data},
  image.disk.dataPartitionSize = "96M",
  runit.services.hello = {{ oneshot = true, command = "sh -c 'echo MARKER-CARD $(uname -m) uptime $(cut -d\" \" -f1 /proc/uptime) $(grep -o \"root=[^ ]*\" /proc/cmdline) END'" }},
}} ] }}
"#
    ));
    let (command, cmdline) = card_qemu(dir.path(), qemu, machine, kernel, tree);
    let mut vm = Vm::start_command(command);
    // The boards do not exit on power-off: the marker is the end.
    let seen = vm.wait_for(" END", Duration::from_secs(300));
    let console = vm.console();
    drop(vm);
    assert!(seen, "no marker from the card's root:\n{}", shown(&console));
    let line = console
        .lines()
        .find(|l| l.starts_with("MARKER-CARD"))
        .unwrap_or_else(|| panic!("no marker:\n{}", shown(&console)));
    eprintln!("figure: {machine}: {line}");
    if data {
        assert!(
            console.contains("preparing the data partition /dev/mmcblk0p3 (96 MiB)"),
            "the card's empty data partition is prepared at first boot:\n{}",
            shown(&console)
        );
        assert!(
            cmdline.contains("micros.overlay=data micros.data=PARTUUID="),
            "{cmdline}"
        );
        // 1 MiB of table, 64 MiB boot, a few MiB of root and 96 MiB of data
        // make a 256 MiB card (the next power of two).
        let card = std::fs::metadata(dir.path().join("result/sd.img")).unwrap();
        assert_eq!(card.len(), 256 << 20);
    }
    let root = cmdline.split_whitespace().next().unwrap();
    assert!(root.starts_with("root=PARTUUID="), "{cmdline}");
    // (A kernel message may end the line before the newline does.)
    assert!(
        line.contains(&format!(" {root} END")),
        "the system runs from the root cmdline.txt names ({root}): {line}"
    );
}

#[test]
fn needs_network_and_qemu_an_rpi2_card_boots_on_raspi2b() {
    boots_from_its_card(
        "armv7l-linux",
        "rpi2",
        "qemu-system-arm",
        "raspi2b",
        "kernel7.img",
        "bcm2836-rpi-2-b.dtb",
        false,
    );
}

#[test]
fn needs_network_and_qemu_an_rpi3_card_with_a_data_partition_boots_on_raspi3b() {
    boots_from_its_card(
        "aarch64-linux",
        "rpi3",
        "qemu-system-aarch64",
        "raspi3b",
        "kernel8.img",
        "bcm2837-rpi-3-b.dtb",
        true,
    );
}

/// QEMU 7.2's raspi0/raspi1ap crash Debian's Pi 1 kernel before userland
/// (bcm2835_power_probe), so the armel card is checked for its layout.
#[test]
fn needs_network_an_rpi1_card_has_the_armel_kernel_and_pi_1_trees() {
    let config = r#"let micros = import "micros" in
micros.system { modules = [ {
  platform.host = "armv6l-linux",
  hardware.raspberryPi.rpi1 = true,
} ] }
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.ncl"), config).unwrap();
    let output = micros(&["build", "-A", "sdImage"], dir.path());
    let stderr = text(&output.stderr);
    // Seen on this project's mirror since 13.8: its signed armel index
    // names .deb files its pool does not have yet. That is the mirror's
    // state, not MicrOS's; what MicrOS owes then is a clear error naming
    // the packages and the way forward, and nothing half-built.
    if !output.status.success()
        && stderr.contains("_armel.deb: HTTP 404")
        && stderr.contains("is gone (")
    {
        assert!(
            stderr.contains("hint: Debian's mirrors drop old versions"),
            "{stderr}"
        );
        assert!(!dir.path().join("result").exists(), "nothing half-built");
        eprintln!("note: this mirror's pool lacks armel files its signed index names; the Pi 1 card's layout is not checked this run:\n{stderr}");
        return;
    }
    assert!(
        output.status.success(),
        "micros build -A sdImage failed:\n{stderr}"
    );
    assert!(!stderr.contains("cannot run that userland"), "{stderr}");
    let boot = boot_partition(dir.path());
    run(Command::new("fsck.fat").arg("-n").arg(&boot));
    assert_listed(
        &boot,
        &[
            "kernel.img",
            "bcm2835-rpi-zero.dtb",
            "bcm2835-rpi-b.dtb",
            "bootcode.bin",
        ],
    );
    let manifest = std::fs::read_to_string(dir.path().join("result/manifest.json")).unwrap();
    assert!(manifest.contains("\"linux-image-rpi\""), "{manifest}");

    // Sizes the card cannot have are errors naming the option, and the
    // card already built stays as it was.
    let card = std::fs::read(dir.path().join("result/sd.img")).unwrap();
    let config = std::fs::read_to_string(dir.path().join("system.ncl")).unwrap();
    for (setting, error) in [
        (
            r#"image.disk.size = "64M","#,
            r#"image.disk.size: "64M" is too small: the card's partitions need"#,
        ),
        (
            r#"image.disk.dataPartition = true, image.disk.dataPartitionSize = "0","#,
            r#"image.disk.dataPartitionSize: "0" is too small"#,
        ),
    ] {
        let changed = config.replace(
            "hardware.raspberryPi.rpi1 = true,",
            &format!("hardware.raspberryPi.rpi1 = true, {setting}"),
        );
        std::fs::write(dir.path().join("system.ncl"), changed).unwrap();
        let output = micros(&["build", "-A", "sdImage"], dir.path());
        assert_eq!(output.status.code(), Some(1), "{setting}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(error), "{setting}:\n{stderr}");
        assert!(
            std::fs::read(dir.path().join("result/sd.img")).unwrap() == card,
            "a failed build changed result/sd.img"
        );
    }
}
