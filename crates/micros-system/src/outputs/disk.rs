//! The A/B disk of a system built for updates (`system.update.enable`):
//! `disk.img` and `u-boot.bin`, the firmware QEMU's `virt` machine boots it
//! with (Debian's `u-boot-qemu`), or for a Raspberry Pi the card `sd.img`,
//! whose firmware starts U-Boot (Debian's `u-boot-rpi`) from the first
//! partition. U-Boot runs `boot.scr`; the script reads the boot state,
//! counts a trial boot down, and boots the chosen slot's kernel and initrd
//! with the slot itself as the root:
//!
//! ```text
//! disk.img or sd.img (GPT; on the Pi with a hybrid MBR naming p1, which
//! │                   is all the Pi's boot ROM reads)
//! ├─ p1 micros-boot   FAT32: boot.scr (the slot chooser; never rewritten);
//! │                   on the Pi also its firmware, config.txt, the models'
//! │                   device trees (the firmware's, which U-Boot starts
//! │                   with) and u-boot.bin
//! ├─ p2 micros-state  the boot state sector (micros_update::state), then
//! │                   the last update's record (micros_update::device)
//! ├─ p3 micros-a      slot a: root, kernel, initrd, on the Pi the models'
//! │                   device trees, header (micros_update::slot)
//! ├─ p4 micros-b      slot b: empty until the first update
//! └─ p5 micros-data   the data partition, prepared by stage 1 at first boot
//! ```
//!
//! Why U-Boot, and a raw state sector: the decision must be taken before
//! any kernel runs (a panicking or hanging kernel must cost its slot a
//! boot), so it belongs to the firmware's boot loader; U-Boot is the one
//! Debian ships for QEMU and for every Raspberry Pi, so one script serves
//! both. The state is one sector U-Boot and Linux each write whole, never a
//! file in a FAT (whose update takes several writes), and the script reads
//! the disk by block so it needs no filesystem driver for the slots.
use std::io::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use micros_config::model::{Config, Platform};
use micros_image::{
    Content, DiskLayout, Entry, FatOptions, PartitionSpec, PartitionTable, PartitionType, Tree,
    TreePath,
};
use micros_update::manifest;
use micros_update::slot::{self, Header};
use micros_update::state::BootState;
use micros_update::version::Version;

use crate::error::{io, BuildError};
use crate::system::System;

const MIB: u64 = 1 << 20;
const STATE_SIZE: u64 = MIB;
/// The Debian packages with U-Boot for each board (their files go to the
/// boot partition, not the root).
pub const UBOOT_PACKAGES: [&str; 2] = ["u-boot-qemu", "u-boot-rpi"];

/// What boots the A/B disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// QEMU's arm64 `virt` machine, with U-Boot as its firmware.
    QemuVirt,
    /// A Raspberry Pi: its firmware starts U-Boot (`pi_uboots`).
    RaspberryPi,
}

impl Board {
    pub fn of(config: &Config) -> Board {
        if super::sdimage::enabled(config) {
            Board::RaspberryPi
        } else {
            Board::QemuVirt
        }
    }

    /// The boot partition: FAT32 needs about 33 MiB for its minimum
    /// cluster count; the Pi's firmware files take ~20 MiB more.
    fn boot_size(self) -> u64 {
        match self {
            Board::QemuVirt => 36 * MIB,
            Board::RaspberryPi => 64 * MIB,
        }
    }

    /// The image's file name in `result/`.
    pub fn image_name(self) -> &'static str {
        match self {
            Board::QemuVirt => "disk.img",
            Board::RaspberryPi => "sd.img",
        }
    }
}

/// One U-Boot a Pi card carries: its file on the card, its path in
/// Debian's `u-boot-rpi`, and the `config.txt` sections of the models the
/// firmware starts it on (none: every model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PiUboot {
    file: &'static str,
    path: &'static str,
    sections: &'static [&'static str],
}

/// The U-Boots of a Pi card: one 64-bit build for the Pi 3, 3+, 4, 400 and
/// Zero 2 W; the 32-bit builds are one per model (Debian's armhf
/// `u-boot-rpi`: `rpi_2`, `rpi_3_32b`, `rpi_4_32b`).
fn pi_uboots(config: &Config) -> Vec<PiUboot> {
    if config.platform.host == Platform::Aarch64 {
        return vec![PiUboot {
            file: "u-boot.bin",
            path: "/usr/lib/u-boot/rpi_arm64/u-boot.bin",
            sections: &[],
        }];
    }
    let pi = &config.hardware.raspberry_pi;
    [
        (
            pi.rpi2,
            PiUboot {
                file: "u-boot-rpi2.bin",
                path: "/usr/lib/u-boot/rpi_2/u-boot.bin",
                sections: &["pi2"],
            },
        ),
        (
            pi.rpi3,
            PiUboot {
                file: "u-boot-rpi3.bin",
                path: "/usr/lib/u-boot/rpi_3_32b/u-boot.bin",
                sections: &["pi3", "pi02"],
            },
        ),
        (
            pi.rpi4,
            PiUboot {
                file: "u-boot-rpi4.bin",
                path: "/usr/lib/u-boot/rpi_4_32b/u-boot.bin",
                sections: &["pi4"],
            },
        ),
    ]
    .into_iter()
    .filter_map(|(enabled, uboot)| enabled.then_some(uboot))
    .collect()
}

/// The Pi's `config.txt` on an A/B card: the firmware starts U-Boot, which
/// chooses the slot; a 32-bit card names each model's U-Boot in the
/// model's section.
fn pi_config_txt(config: &Config) -> String {
    let mut text = String::from("# Generated by MicrOS: the firmware starts U-Boot, which runs boot.scr\n# to choose the system slot (system.update).\nenable_uart=1\n");
    if config.platform.host == Platform::Aarch64 {
        text.push_str("arm_64bit=1\n");
    }
    let mut sectioned = false;
    for uboot in pi_uboots(config) {
        if uboot.sections.is_empty() {
            text.push_str(&format!("kernel={}\n", uboot.file));
        }
        for section in uboot.sections {
            text.push_str(&format!("[{section}]\nkernel={}\n", uboot.file));
            sectioned = true;
        }
    }
    if sectioned {
        text.push_str("[all]\n");
    }
    text
}

/// The slot chooser. Partition numbers are the disk's (above); numbers in
/// U-Boot's `setexpr` and block commands are hex. See micros_update::state
/// for the decision this script makes and the tests that hold it to it.
const BOOT_SCRIPT: &str = r#"# MicrOS slot chooser (boot.scr), written by `micros build -A disk`.
echo "micros: choosing a slot on ${devtype} ${devnum}"
${devtype} dev ${devnum}
part start ${devtype} ${devnum} 2 micros_state_at
env delete micros_bad micros_end micros_good micros_left micros_try
mw.b ${loadaddr} 0 0x1000
${devtype} read ${loadaddr} ${micros_state_at} 1
env import -t ${loadaddr} 0x200
setenv micros_slot a
if test "${micros_end}" = "1"; then
  if test "${micros_good}" = "b"; then setenv micros_slot b; fi
  if test "${micros_try}" = "a" -o "${micros_try}" = "b"; then
    if test "${micros_left}" -gt 0; then
      setexpr micros_left ${micros_left} - 1
      mw.b ${loadaddr} 0 0x1000
      env export -t ${loadaddr} micros_bad micros_end micros_good micros_left micros_try
      ${devtype} write ${loadaddr} ${micros_state_at} 1
      setenv micros_slot ${micros_try}
      echo "micros: trying slot ${micros_try} (${micros_left} more boots)"
    fi
  fi
else
  echo "micros: no boot state: booting slot a"
fi
if test "${micros_slot}" = "b"; then setenv micros_part 4; else setenv micros_part 3; fi
part start ${devtype} ${devnum} ${micros_part} micros_slot_at
part size ${devtype} ${devnum} ${micros_part} micros_slot_blocks
part uuid ${devtype} ${devnum}:${micros_part} micros_slot_uuid
part uuid ${devtype} ${devnum}:5 micros_data_uuid
setexpr micros_header ${micros_slot_at} + ${micros_slot_blocks}
setexpr micros_header ${micros_header} - 8
env delete micros_cmdline micros_fdt_blocks micros_initrd micros_initrd_blocks micros_initrd_size micros_installed micros_kernel micros_kernel_blocks micros_slot_end micros_version
mw.b ${loadaddr} 0 0x1000
${devtype} read ${loadaddr} ${micros_header} 8
env import -t ${loadaddr} 0x1000
if test "${micros_slot_end}" != "1"; then
  echo "micros: slot ${micros_slot} holds no system; resetting"
  reset
fi
echo "micros: booting slot ${micros_slot}, version ${micros_version}"
setexpr micros_at ${micros_slot_at} + ${micros_kernel}
${devtype} read ${kernel_addr_r} ${micros_at} ${micros_kernel_blocks}
setexpr micros_at ${micros_slot_at} + ${micros_initrd}
${devtype} read ${ramdisk_addr_r} ${micros_at} ${micros_initrd_blocks}
# Past the initrd, 2 MiB-aligned: the slot's device tree (at most 1 MiB),
# then room for a gzip-compressed Image to be unpacked from.
setexpr micros_fdt_addr ${ramdisk_addr_r} + ${micros_initrd_size}
setexpr micros_fdt_addr ${micros_fdt_addr} + 0x3fffff
setexpr micros_fdt_addr ${micros_fdt_addr} / 0x200000
setexpr micros_fdt_addr ${micros_fdt_addr} * 0x200000
setexpr kernel_comp_addr_r ${micros_fdt_addr} + 0x200000
setexpr kernel_comp_size ${micros_kernel_blocks} * 0x200
# The board's tree from the slot, by U-Boot's name for it; without one,
# the tree the firmware handed to U-Boot.
setenv micros_fdt ${fdtcontroladdr}
if test -n "${micros_fdt_blocks}"; then
  env delete micros_fdt_at
  setenv micros_pick 'setenv micros_fdt_at ${micros_fdt_'${fdtfile}'}'
  run micros_pick
  if test -n "${micros_fdt_at}"; then
    setexpr micros_at ${micros_slot_at} + ${micros_fdt_at}
    ${devtype} read ${micros_fdt_addr} ${micros_at} ${micros_fdt_blocks}
    setenv micros_fdt ${micros_fdt_addr}
    echo "micros: device tree ${fdtfile} from slot ${micros_slot}"
  else
    echo "micros: slot ${micros_slot} has no device tree ${fdtfile}: booting with the firmware tree"
  fi
fi
setenv bootargs "${micros_cmdline} root=PARTUUID=${micros_slot_uuid} micros.data=PARTUUID=${micros_data_uuid} micros.slot=${micros_slot}"
# A 32-bit zImage (its magic at 0x24) boots with bootz, an arm64 Image with booti.
setexpr micros_at ${kernel_addr_r} + 0x24
setexpr.l micros_magic *${micros_at}
if test "${micros_magic}" = "16f2818"; then
  bootz ${kernel_addr_r} ${ramdisk_addr_r}:${micros_initrd_size} ${micros_fdt}
else
  booti ${kernel_addr_r} ${ramdisk_addr_r}:${micros_initrd_size} ${micros_fdt}
fi
echo "micros: slot ${micros_slot} did not start; resetting"
reset
"#;

/// The device trees a slot carries: a Pi's, for the models the card is
/// for (U-Boot loads the board's from the slot, so a new kernel comes with
/// the trees it was built with); none on QEMU, whose firmware makes the
/// tree for the machine it emulates.
#[derive(Debug, Default)]
pub struct SlotTrees {
    /// As the manifest lists them.
    pub trees: Vec<manifest::Tree>,
    /// The `fdt` part: the trees laid out by `manifest::fdt_offsets`.
    pub part: Vec<u8>,
}

pub fn slot_trees(system: &System<'_>) -> Result<SlotTrees, BuildError> {
    if Board::of(system.config) != Board::RaspberryPi {
        return Ok(SlotTrees::default());
    }
    let files = super::sdimage::tree_files(system)?;
    if files.len() > manifest::MAX_TREES {
        return Err(BuildError::Option {
            option: "hardware.raspberryPi",
            message: format!(
                "an A/B card's slots carry at most {} device trees and the enabled models have {}: enable fewer models",
                manifest::MAX_TREES,
                files.len()
            ),
        });
    }
    let mut trees = Vec::new();
    let mut part = Vec::new();
    for (name, content) in files {
        let bytes = content
            .read()
            .map_err(|e| BuildError::Firmware(format!("the device tree {name}: {e}")))?;
        let size = bytes.len() as u64;
        if !manifest::valid_tree_name(&name) || !(1..=manifest::MAX_TREE).contains(&size) {
            return Err(BuildError::Firmware(format!(
                "the kernel package's device tree {name} ({size} bytes) cannot go into a slot: a slot's tree is named by a path of letters, digits, `.`, `-` and `_` of at most 64 bytes and is at most {} bytes",
                manifest::MAX_TREE
            )));
        }
        part.extend_from_slice(&bytes);
        trees.push(manifest::Tree { name, size });
        let (_, end) = manifest::fdt_offsets(trees.iter().map(|t| t.size));
        part.resize(end as usize, 0);
    }
    Ok(SlotTrees { trees, part })
}

/// The kernel command line a slot carries: the system's, without the
/// devices the boot script names (its root, the data partition).
pub fn slot_cmdline(config: &Config) -> Result<String, BuildError> {
    let line = super::toplevel::cmdline(config)
        .split_whitespace()
        .filter(|w| !w.starts_with("root=") && !w.starts_with("micros.data="))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    // A card's data partition keeps the root's changes, as on a card
    // without slots.
    let mut line = line;
    if config.image.disk.data_partition && !line.iter().any(|w| w.starts_with("micros.overlay=")) {
        line.push("micros.overlay=data".into());
    }
    let line = line.join(" ");
    if !Header::valid_cmdline(&line) {
        return Err(BuildError::Option {
            option: "boot.kernelParams",
            message:
                "an updatable system's kernel command line must be printable ASCII under 2 KiB"
                    .into(),
        });
    }
    Ok(line)
}

/// Before any writing: the A/B disk boots with U-Boot on QEMU's arm64
/// machine or a Raspberry Pi 2, 3 or 4 (64-bit, or 32-bit on armhf).
pub fn check(config: &Config) -> Result<(), BuildError> {
    if !config.system.update.enable {
        return Err(BuildError::Option {
            option: "system.update.enable",
            message:
                "the A/B disk is for systems built for updates: set system.update.enable = true"
                    .into(),
        });
    }
    let pi = super::sdimage::enabled(config);
    let supported = match config.platform.host {
        Platform::Aarch64 => true,
        Platform::Armv7l => pi && !config.hardware.raspberry_pi.rpi1,
        _ => false,
    };
    if !supported {
        return Err(BuildError::Option {
            option: "platform.host",
            message: format!(
                "the A/B disk boots with U-Boot on QEMU's aarch64 `virt` machine and on Raspberry Pi 2, 3 and 4 cards (aarch64-linux, or armv7l-linux for 32-bit); {} {}is not supported (Debian has no U-Boot for the Pi 1 and Zero in armhf)",
                config.platform.host.name(),
                if pi { "on these Raspberry Pi models " } else { "without a Raspberry Pi model " },
            ),
        });
    }
    Ok(())
}

/// `boot.scr`: the script behind U-Boot's legacy image header.
pub fn boot_script_image() -> Vec<u8> {
    let script = BOOT_SCRIPT.as_bytes();
    // A script image's data: its length, a zero terminator, the script.
    let mut data = Vec::with_capacity(script.len() + 8);
    data.extend_from_slice(&(script.len() as u32).to_be_bytes());
    data.extend_from_slice(&0u32.to_be_bytes());
    data.extend_from_slice(script);
    let header = |header_crc: u32| {
        let mut h = Vec::with_capacity(64);
        h.extend_from_slice(&0x2705_1956u32.to_be_bytes()); // magic
        h.extend_from_slice(&header_crc.to_be_bytes());
        h.extend_from_slice(&0u32.to_be_bytes()); // time: none, for reproducibility
        h.extend_from_slice(&(data.len() as u32).to_be_bytes());
        h.extend_from_slice(&0u32.to_be_bytes()); // load address
        h.extend_from_slice(&0u32.to_be_bytes()); // entry point
        h.extend_from_slice(&crc32fast::hash(&data).to_be_bytes());
        h.extend_from_slice(&[5, 22, 6, 0]); // Linux, arm64, script, uncompressed
        let mut name = [0u8; 32];
        name[..18].copy_from_slice(b"MicrOS slot choice");
        h.extend_from_slice(&name);
        h
    };
    let mut image = header(crc32fast::hash(&header(0)));
    image.extend_from_slice(&data);
    image
}

/// The bytes of slot a, written as a (sparse) file `path`: root, kernel,
/// initrd, device trees and the header, as an installed bundle leaves a
/// slot.
fn write_slot(
    config: &Config,
    dir: &Path,
    kernel: &str,
    trees: &SlotTrees,
    path: &Path,
    size: u64,
) -> Result<(), BuildError> {
    let part = |name: &str| -> Result<Vec<u8>, BuildError> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(io(&path))
    };
    let (root, kernel, initrd) = (part("root.squashfs")?, part(kernel)?, part("initrd")?);
    let placed = slot::layout(
        root.len() as u64,
        kernel.len() as u64,
        initrd.len() as u64,
        trees.part.len() as u64,
        size,
    )
    .map_err(|too_small| BuildError::Option {
        option: "system.update.slotSize",
        message: format!("{too_small}: make the slots larger"),
    })?;
    let version =
        Version::parse(&config.system.update.version).map_err(|e| BuildError::Option {
            option: "system.update.version",
            message: e.to_string(),
        })?;
    let header = Header::placed(
        version,
        slot_cmdline(config)?,
        &placed,
        kernel.len() as u64,
        initrd.len() as u64,
        &trees.trees,
        None,
    );
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::create(path).map_err(io(path))?;
    file.set_len(size).map_err(io(path))?;
    for (bytes, at) in [
        (&root[..], placed.root),
        (&kernel[..], placed.kernel),
        (&initrd[..], placed.initrd),
        (&trees.part[..], placed.fdt),
        (&header.to_bytes()[..], placed.header),
    ] {
        file.write_all_at(bytes, at).map_err(io(path))?;
    }
    Ok(())
}

/// Writes `disk.img` and `u-boot.bin` into `dir`, next to the kernel,
/// initrd and root already there; `kernel` names the kernel file slot a
/// holds (`kernel::write_slot_kernel`), `trees` its device trees
/// (`slot_trees`).
pub fn write(
    system: &System<'_>,
    dir: &Path,
    kernel: &str,
    trees: &SlotTrees,
) -> Result<(), BuildError> {
    let config = system.config;
    check(config)?;
    let board = Board::of(config);
    let uboot = |path: &str, package: &str| match TreePath::parse(path)
        .ok()
        .and_then(|p| system.boot_firmware.get(&p))
    {
        Some(Entry {
            kind: micros_image::Kind::File(content),
            ..
        }) => Ok(content.clone()),
        _ => Err(BuildError::Firmware(format!(
            "{package} has no {path}: run `micros lock` (system.update.enable adds the package)"
        ))),
    };
    let mut boot_files = vec![("boot.scr".to_owned(), Content::bytes(boot_script_image()))];
    match board {
        Board::QemuVirt => {
            let path = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
            let bytes = uboot(path, UBOOT_PACKAGES[0])?
                .read()
                .map_err(|e| BuildError::Firmware(format!("{path}: {e}")))?;
            let path = dir.join("u-boot.bin");
            std::fs::write(&path, bytes).map_err(io(&path))?;
        }
        Board::RaspberryPi => {
            boot_files.extend(super::sdimage::firmware_and_trees(system)?);
            for pi in pi_uboots(config) {
                boot_files.push((pi.file.into(), uboot(pi.path, UBOOT_PACKAGES[1])?));
            }
            boot_files.push(("config.txt".into(), Content::bytes(pi_config_txt(config))));
        }
    }

    let slot_size =
        micros_config::model::size_bytes(&config.system.update.slot_size).div_ceil(MIB) * MIB;
    let data_text = &config.image.disk.data_partition_size;
    let data_size = micros_config::model::size_bytes(data_text).div_ceil(MIB) * MIB;
    if data_size == 0 {
        return Err(BuildError::Option {
            option: "image.disk.dataPartitionSize",
            message: format!("\"{data_text}\" is too small: the data partition needs at least 1M"),
        });
    }
    let slot_a = dir.join(".slot-a.img");
    let state = dir.join(".state.img");
    let boot = dir.join(".boot.img");
    let result = (|| {
        write_slot(config, dir, kernel, trees, &slot_a, slot_size)?;
        let mut state_file = std::fs::File::create(&state).map_err(io(&state))?;
        state_file
            .write_all(&BootState::initial().to_sector())
            .map_err(io(&state))?;
        state_file.set_len(STATE_SIZE).map_err(io(&state))?;
        let mut tree = Tree::new();
        for (name, content) in boot_files {
            tree.replace(
                TreePath::parse(&format!("/{name}"))?,
                Entry::file(content, 0o644, "A/B boot partition"),
            )?;
        }
        micros_image::write_fat32(
            &tree,
            &boot,
            &FatOptions {
                size: board.boot_size(),
                label: Some("MICROS-BOOT".into()),
                hidden_sectors: (MIB / 512) as u32,
            },
        )?;
        let spec = |name: &str, kind, size, content: Option<&Path>, bootable| PartitionSpec {
            name: name.into(),
            kind,
            size: Some(size),
            content: content.map(Path::to_owned),
            bootable,
        };
        let mut seed = Sha256::new();
        for package in &system.lock.packages {
            seed.update(package.sha256.as_str().as_bytes());
        }
        seed.update(super::toplevel::cmdline(config).as_bytes());
        let mut layout = DiskLayout {
            table: match board {
                Board::QemuVirt => PartitionTable::Gpt,
                Board::RaspberryPi => PartitionTable::GptHybrid,
            },
            partitions: vec![
                spec(
                    "micros-boot",
                    PartitionType::FAT32,
                    board.boot_size(),
                    Some(&boot),
                    true,
                ),
                spec(
                    "micros-state",
                    PartitionType::LINUX,
                    STATE_SIZE,
                    Some(&state),
                    false,
                ),
                spec(
                    "micros-a",
                    PartitionType::LINUX,
                    slot_size,
                    Some(&slot_a),
                    false,
                ),
                spec("micros-b", PartitionType::LINUX, slot_size, None, false),
                spec("micros-data", PartitionType::LINUX, data_size, None, false),
            ],
            size: None,
            seed: seed.finalize().to_vec(),
        };
        if board == Board::RaspberryPi {
            // A power of two, as QEMU's SD card wants (dd users lose nothing).
            layout.size = Some(micros_image::minimum_size(&layout)?.next_power_of_two());
        }
        micros_image::write_disk(&dir.join(board.image_name()), &layout)?;
        Ok(())
    })();
    for temporary in [&slot_a, &state, &boot] {
        let _ = std::fs::remove_file(temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_script_image_has_u_boots_header_and_checksums() {
        let image = boot_script_image();
        assert_eq!(&image[..4], &[0x27, 0x05, 0x19, 0x56]);
        let mut header = image[..64].to_vec();
        let header_crc = u32::from_be_bytes(header[4..8].try_into().unwrap());
        header[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(crc32fast::hash(&header), header_crc);
        let data = &image[64..];
        assert_eq!(
            u32::from_be_bytes(image[12..16].try_into().unwrap()) as usize,
            data.len()
        );
        assert_eq!(
            crc32fast::hash(data),
            u32::from_be_bytes(image[24..28].try_into().unwrap())
        );
        assert_eq!(image[30], 6, "a script");
        let length = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        assert_eq!(&data[8..8 + length], BOOT_SCRIPT.as_bytes());
    }

    /// The script writes back exactly the variables of the state sector,
    /// in the order micros_update::state writes them.
    #[test]
    fn the_script_exports_the_state_the_device_reads() {
        let export = BOOT_SCRIPT
            .lines()
            .find(|l| l.trim_start().starts_with("env export"))
            .unwrap();
        let names: Vec<&str> = export.split_whitespace().skip(4).collect();
        let text = BootState::initial().to_text();
        let written: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
        assert_eq!(names, written);
    }

    /// U-Boot's (old) hush takes an apostrophe inside double quotes for
    /// the start of a single-quoted string: the whole script then fails
    /// with "syntax error" (found booting a card).
    #[test]
    fn no_apostrophe_inside_double_quotes() {
        for line in BOOT_SCRIPT.lines() {
            let mut double = false;
            for c in line.chars() {
                match c {
                    '"' => double = !double,
                    '\'' => assert!(!double, "{line}"),
                    _ => {}
                }
            }
        }
    }

    fn config(module: &str) -> Config {
        let place = tempfile::tempdir().unwrap();
        let path = place.path().join("system.ncl");
        std::fs::write(
            &path,
            format!("let micros = import \"micros\" in micros.system {{ modules = [ micros.profiles.minimal, {{ system.update = {{ enable = true, trustedKeys = [\"micros-ed25519:{}\"] }} }}, {module} ] }}", "0".repeat(64)),
        )
        .unwrap();
        micros_config::evaluate(&path).unwrap().config
    }

    /// The firmware starts the U-Boot built for the model it runs on.
    #[test]
    fn each_pi_model_starts_its_own_u_boot() {
        let arm64 = config(
            r#"{ platform.host = "aarch64-linux", hardware.raspberryPi.rpi3 = true, hardware.raspberryPi.rpi4 = true }"#,
        );
        assert!(check(&arm64).is_ok());
        let text = pi_config_txt(&arm64);
        assert!(
            text.ends_with("enable_uart=1\narm_64bit=1\nkernel=u-boot.bin\n"),
            "{text}"
        );
        let armhf = config(
            r#"{ platform.host = "armv7l-linux", hardware.raspberryPi.rpi2 = true, hardware.raspberryPi.rpi3 = true }"#,
        );
        assert!(check(&armhf).is_ok());
        let text = pi_config_txt(&armhf);
        assert!(!text.contains("arm_64bit"), "{text}");
        assert!(
            text.ends_with("enable_uart=1\n[pi2]\nkernel=u-boot-rpi2.bin\n[pi3]\nkernel=u-boot-rpi3.bin\n[pi02]\nkernel=u-boot-rpi3.bin\n[all]\n"),
            "{text}"
        );
        let files: Vec<_> = pi_uboots(&armhf).iter().map(|u| u.path).collect();
        assert_eq!(
            files,
            [
                "/usr/lib/u-boot/rpi_2/u-boot.bin",
                "/usr/lib/u-boot/rpi_3_32b/u-boot.bin"
            ]
        );
    }

    #[test]
    fn platforms_without_a_u_boot_are_refused_before_anything_is_written() {
        for module in [
            r#"{ platform.host = "armv7l-linux" }"#,
            r#"{ platform.host = "x86_64-linux" }"#,
            r#"{ platform.host = "armv6l-linux", hardware.raspberryPi.rpi1 = true }"#,
        ] {
            let error = check(&config(module)).unwrap_err().to_string();
            assert!(
                error.contains("platform.host") && error.contains("not supported"),
                "{module}: {error}"
            );
        }
    }
}
