//! Raspberry Pi 3 A/B cards under QEMU's `raspi3b`, started as the Pi's
//! firmware would start them: U-Boot (Debian's `u-boot-rpi`, off the
//! card) with the card's device tree. QEMU's Pi has no network a test can
//! use (its USB host does not show Linux the emulated USB Ethernet), so
//! what a test gives the device goes on the card's data partition, and a
//! service of the test's on the device acts on it.
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{card_file, run};

/// A Pi 3 card's config at `version`, trusting `key`, whose oneshot
/// service `installer` runs the shell script `script` (its output goes to
/// the console); `extra` is one more Nickel module.
pub fn card_config(key: &str, version: &str, script: &str, extra: &str) -> String {
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
{script}
  "%,
  runit.services.installer = {{ oneshot = true, command = "sh /etc/installer.sh" }},
}}, {extra} ] }}
"#
    )
}

/// Where partition `number` of a GPT disk starts and how long it is, in bytes.
pub fn gpt_partition(disk: &[u8], number: usize) -> (u64, u64) {
    let entry = &disk[1024 + (number - 1) * 128..1024 + number * 128];
    let lba = |at: usize| u64::from_le_bytes(entry[at..at + 8].try_into().unwrap());
    (lba(32) * 512, (lba(40) - lba(32) + 1) * 512)
}

/// Fills the card's data partition with an ext2 whose overlay holds
/// `files` at the root (as if written on the device).
pub fn put_on_data_partition(dir: &Path, card: &Path, files: &[(&str, &Path)]) {
    let upper = dir.join("data/upper");
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(dir.join("data/work")).unwrap();
    for (name, from) in files {
        std::fs::copy(from, upper.join(name)).unwrap();
    }
    edit_data_partition(dir, card, |image| {
        let size = std::fs::metadata(image).unwrap().len();
        std::fs::File::create(image).unwrap().set_len(size).unwrap();
        run(Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2", "-d"])
            .arg(dir.join("data"))
            .arg(image));
    });
}

/// Adds `from` as `/name` to the card's data partition (its overlay's
/// upper layer) between boots, as someone copying it onto the card would.
pub fn add_to_data_partition(dir: &Path, card: &Path, name: &str, from: &Path) {
    edit_data_partition(dir, card, |image| {
        run(Command::new("debugfs")
            .arg("-w")
            .arg("-R")
            .arg(format!("write {} upper/{name}", from.display()))
            .arg(image));
        let listing = run(Command::new("debugfs")
            .arg("-R")
            .arg("ls -l upper")
            .arg(image));
        assert!(listing.contains(name), "debugfs wrote no {name}: {listing}");
    });
}

/// Copies the card's data partition (its fifth) out to `<dir>/data.ext2`,
/// lets `change` work on that file, and writes it back in place.
fn edit_data_partition(dir: &Path, card: &Path, change: impl FnOnce(&Path)) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(card)
        .unwrap();
    let mut table = vec![0u8; 1024 + 5 * 128];
    file.read_exact_at(&mut table, 0).unwrap();
    let (start, size) = gpt_partition(&table, 5);
    let mut bytes = vec![0u8; size as usize];
    file.read_exact_at(&mut bytes, start).unwrap();
    let image = dir.join("data.ext2");
    std::fs::write(&image, &bytes).unwrap();
    change(&image);
    file.write_all_at(&std::fs::read(&image).unwrap(), start)
        .unwrap();
}

/// What the Pi's firmware would start from the card built in
/// `<dir>/result`: U-Boot, and as the firmware's device tree the Pi 3 B+'s
/// (files in `dir`). QEMU's `raspi3b` is a Pi 3 B, whose tree U-Boot
/// loads from the slot: Linux seeing the B's `compatible` proves the
/// slot's tree was booted, and the B+'s `model` (which U-Boot copies from
/// the firmware's tree) that U-Boot merged the firmware's facts into it.
pub struct Firmware {
    uboot: PathBuf,
    tree: PathBuf,
}

impl Firmware {
    pub fn of(dir: &Path) -> Firmware {
        let boot = super::boot_partition(dir);
        let config_txt = run(Command::new("mtype")
            .arg("-i")
            .arg(&boot)
            .arg("::/config.txt"));
        assert!(config_txt.contains("kernel=u-boot.bin"), "{config_txt}");
        Firmware {
            uboot: card_file(&boot, "u-boot.bin", dir),
            tree: card_file(&boot, "bcm2837-rpi-3-b-plus.dtb", dir),
        }
    }

    /// QEMU's `raspi3b` starting U-Boot, with `drive` (`-drive`'s value,
    /// `if=sd`) as the card. U-Boot's console is the Pi's second UART,
    /// Linux's the first: both go to standard output. (One emulator
    /// thread: see `support::PI_ACCEL`.)
    pub fn qemu(&self, drive: &str) -> Command {
        let mut qemu = Command::new("qemu-system-aarch64");
        qemu.args([
            "-M", "raspi3b", "-m", "1G", "-display", "none", "-monitor", "none",
        ])
        .args(["-accel", super::PI_ACCEL])
        .arg("-kernel")
        .arg(&self.uboot)
        .arg("-dtb")
        .arg(&self.tree)
        .args(["-drive", drive])
        .args(["-chardev", "stdio,id=c,mux=on,signal=off"])
        .args(["-serial", "chardev:c", "-serial", "chardev:c"]);
        qemu
    }
}
