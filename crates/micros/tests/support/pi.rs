//! Raspberry Pi A/B cards under QEMU's `raspi3b` and `raspi2b`, started
//! as the Pi's firmware would start them: U-Boot (Debian's `u-boot-rpi`,
//! off the card) with a device tree of the card's. QEMU's Pi has no network a test can
//! use (its USB host does not show Linux the emulated USB Ethernet), so
//! what a test gives the device goes on the card's data partition, and a
//! service of the test's on the device acts on it.
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{card_file, run};

/// A Pi 3 card's config at `version`, trusting `key`, whose oneshot
/// service `installer` runs the shell script `script` (its output goes to
/// the console); `extra` is one more Nickel module (which may make it
/// another model's: the platform and model are defaults).
pub fn card_config(key: &str, version: &str, script: &str, extra: &str) -> String {
    format!(
        r#"let micros = import "micros" in
micros.system {{ modules = [ micros.profiles.minimal, {{
  platform.host | default = "aarch64-linux",
  hardware.raspberryPi.rpi3 | default = true,
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

/// Version 3 for a rollback: version 2's bundle (`<dir>/v2/update.bundle`)
/// signed again with a command line naming an init that does not exist,
/// as `<dir>/v3.bundle`. It installs, and fails in stage 1.
pub fn write_failing_v3(dir: &Path, signing: &ed25519_dalek::SigningKey) {
    let v2 = std::fs::read(dir.join("v2/update.bundle")).unwrap();
    let v3 = super::device::resigned(&v2, signing, |m| {
        m.version = micros_update::version::Version::parse("3").unwrap();
        m.cmdline.push_str(" micros.init=/no-such-init");
    });
    std::fs::write(dir.join("v3.bundle"), v3).unwrap();
}

/// The card of `v1.ncl` in `dir` as flashed (`micros build -A sdImage`),
/// copied to `<dir>/card.img` with `bundles` (a name on the card, a file
/// in `dir`) and a file `kept` on its data partition.
pub fn flashed_card(dir: &Path, bundles: &[(&str, &str)]) -> PathBuf {
    let output = super::micros(&["build", "-A", "sdImage", "v1.ncl"], dir);
    assert!(output.status.success(), "{}", super::text(&output.stderr));
    let card = dir.join("card.img");
    super::power_cut::copy_sparse(&dir.join("result/sd.img"), &card);
    std::fs::write(dir.join("kept"), "kept\n").unwrap();
    let mut files: Vec<(&str, PathBuf)> = bundles
        .iter()
        .map(|(name, path)| (*name, dir.join(path)))
        .collect();
    files.push(("kept", dir.join("kept")));
    let files: Vec<(&str, &Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
    put_on_data_partition(dir, &card, &files);
    card
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

/// QEMU loads a raw `-kernel` for the 32-bit Pi at 0x10000 and enters it
/// with r2 pointing at the device tree; the Pi's firmware loads it at
/// 0x8000, where Debian's `rpi_2` U-Boot is linked to run. So the test
/// gives QEMU U-Boot between a branch and this A32 code, which copies
/// U-Boot (the word after the code says how many bytes) down to 0x8000
/// and jumps there, r0–r2 untouched. The code sits after U-Boot because
/// the copy overwrites what lies before (0x8000 up to U-Boot's end).
const SHIM: [u32; 12] = [
    0xe59f_5028, // ldr r5, length
    0xe04f_3005, // sub r3, pc, r5 (pc: here + 8, so U-Boot's start + 12)
    0xe243_300c, // sub r3, r3, #12
    0xe3a0_4902, // mov r4, #0x8000
    0xe1a0_6004, // mov r6, r4
    0xe493_7004, // 1: ldr r7, [r3], #4
    0xe486_7004, // str r7, [r6], #4
    0xe255_5004, // subs r5, r5, #4
    0xcaff_fffb, // bgt 1b
    0xf57f_f04f, // dsb sy
    0xf57f_f06f, // isb sy
    0xe12f_ff14, // bx r4
];

/// `uboot` behind a branch to [`SHIM`] after it.
fn shimmed(uboot: &[u8]) -> Vec<u8> {
    let length = uboot.len().div_ceil(4) * 4;
    // b: to (4 + length), counted in words from the branch + 8.
    let branch = 0xea00_0000 | ((4 + length - 8) / 4) as u32;
    let mut out = branch.to_le_bytes().to_vec();
    out.extend_from_slice(uboot);
    out.resize(4 + length, 0);
    out.extend(SHIM.iter().flat_map(|w| w.to_le_bytes()));
    out.extend_from_slice(&(length as u32).to_le_bytes());
    out
}

/// The `config.txt` on the card's boot partition (the image `boot`).
fn config_txt(boot: &Path) -> String {
    run(Command::new("mtype")
        .arg("-i")
        .arg(boot)
        .arg("::/config.txt"))
}

/// What the Pi's firmware would start from the card built in
/// `<dir>/result`: U-Boot, and as the firmware's device tree the Pi 3 B+'s
/// (files in `dir`). QEMU's `raspi3b` is a Pi 3 B, whose tree U-Boot
/// loads from the slot: Linux seeing the B's `compatible` proves the
/// slot's tree was booted, and the B+'s `model` (which U-Boot copies from
/// the firmware's tree) that U-Boot merged the firmware's facts into it.
pub struct Firmware {
    qemu: &'static str,
    machine: &'static str,
    uboot: PathBuf,
    tree: PathBuf,
}

impl Firmware {
    pub fn of(dir: &Path) -> Firmware {
        let boot = super::boot_partition(dir);
        let config_txt = config_txt(&boot);
        assert!(config_txt.contains("kernel=u-boot.bin"), "{config_txt}");
        Firmware {
            qemu: "qemu-system-aarch64",
            machine: "raspi3b",
            uboot: card_file(&boot, "u-boot.bin", dir),
            tree: card_file(&boot, "bcm2837-rpi-3-b-plus.dtb", dir),
        }
    }

    /// A 32-bit Pi 2 card's firmware for QEMU's `raspi2b`: its U-Boot
    /// behind [`SHIM`], and the Pi 2's tree from the card changed where
    /// QEMU's Pi 2 differs from the board: U-Boot's driver for the SD host
    /// (`mmc@7e202000`) divides by the clock QEMU's firmware mailbox does
    /// not give it (zero), so U-Boot reads the card through the SDHCI
    /// controller (`mmc@7e300000`) instead. Linux boots with the slot's own,
    /// unchanged tree.
    pub fn pi2(dir: &Path) -> Firmware {
        let boot = super::boot_partition(dir);
        let config_txt = config_txt(&boot);
        assert!(
            config_txt.contains("[pi2]\nkernel=u-boot-rpi2.bin\n"),
            "{config_txt}"
        );
        let uboot = std::fs::read(card_file(&boot, "u-boot-rpi2.bin", dir)).unwrap();
        let shim = dir.join("u-boot-rpi2.shim");
        std::fs::write(&shim, shimmed(&uboot)).unwrap();

        let tree = card_file(&boot, "bcm2836-rpi-2-b.dtb", dir);
        let fdtput = |args: &[&str]| {
            run(Command::new("fdtput").arg(&tree).args(args));
        };
        let pins = run(Command::new("fdtget")
            .arg(&tree)
            .args(["/soc/gpio@7e200000/emmc-gpio48", "phandle"]));
        fdtput(&["-t", "s", "/soc/mmc@7e202000", "status", "disabled"]);
        fdtput(&["-t", "s", "/soc/mmc@7e300000", "status", "okay"]);
        fdtput(&["-t", "s", "/soc/mmc@7e300000", "pinctrl-names", "default"]);
        fdtput(&["-t", "u", "/soc/mmc@7e300000", "pinctrl-0", pins.trim()]);
        fdtput(&["-t", "u", "/soc/mmc@7e300000", "bus-width", "4"]);
        Firmware {
            qemu: "qemu-system-arm",
            machine: "raspi2b",
            uboot: shim,
            tree,
        }
    }

    /// QEMU's Pi starting U-Boot, with `drive` (`-drive`'s value, `if=sd`)
    /// as the card. On the Pi 3 U-Boot's console is the second UART,
    /// Linux's the first: both go to standard output. (One emulator
    /// thread: see `support::PI_ACCEL`.)
    pub fn qemu(&self, drive: &str) -> Command {
        let mut qemu = Command::new(self.qemu);
        qemu.args(["-M", self.machine])
            .args(["-m", "1G", "-display", "none", "-monitor", "none"])
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
