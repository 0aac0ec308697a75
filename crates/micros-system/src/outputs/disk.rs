//! `disk.img`: the A/B disk of a system built for updates
//! (`system.update.enable`), and `u-boot.bin`, the firmware QEMU boots it
//! with. U-Boot (Debian's `u-boot-qemu`) runs `boot.scr` from the first
//! partition; the script reads the boot state, counts a trial boot down,
//! and boots the chosen slot's kernel and initrd with the slot itself as
//! the root:
//!
//! ```text
//! disk.img (GPT)
//! ├─ p1 micros-boot   FAT32: boot.scr (the slot chooser; never rewritten)
//! ├─ p2 micros-state  the boot state sector (micros_update::state), then
//! │                   the last update's record (micros_update::device)
//! ├─ p3 micros-a      slot a: root, kernel, initrd, header (micros_update::slot)
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
use micros_update::slot::{self, Header};
use micros_update::state::BootState;
use micros_update::version::Version;

use crate::error::{io, BuildError};
use crate::system::System;

const MIB: u64 = 1 << 20;
/// FAT32 needs about 33 MiB for its minimum cluster count.
const BOOT_SIZE: u64 = 36 * MIB;
const STATE_SIZE: u64 = MIB;
/// Where U-Boot's `u-boot-qemu` keeps the firmware for QEMU's arm64 `virt`.
const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// The Debian package that has it.
pub const UBOOT_PACKAGE: &str = "u-boot-qemu";

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
env delete micros_cmdline micros_initrd micros_initrd_blocks micros_initrd_size micros_installed micros_kernel micros_kernel_blocks micros_slot_end micros_version
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
# A gzip-compressed Image is unpacked 2 MiB-aligned past the initrd.
setexpr kernel_comp_size ${micros_kernel_blocks} * 0x200
setexpr kernel_comp_addr_r ${ramdisk_addr_r} + ${micros_initrd_size}
setexpr kernel_comp_addr_r ${kernel_comp_addr_r} + 0x3fffff
setexpr kernel_comp_addr_r ${kernel_comp_addr_r} / 0x200000
setexpr kernel_comp_addr_r ${kernel_comp_addr_r} * 0x200000
setenv bootargs "${micros_cmdline} root=PARTUUID=${micros_slot_uuid} micros.data=PARTUUID=${micros_data_uuid} micros.slot=${micros_slot}"
booti ${kernel_addr_r} ${ramdisk_addr_r}:${micros_initrd_size} ${fdtcontroladdr}
echo "micros: slot ${micros_slot} did not start; resetting"
reset
"#;

/// The kernel command line a slot carries: the system's, without the
/// devices the boot script names (its root, the data partition).
pub fn slot_cmdline(config: &Config) -> Result<String, BuildError> {
    let line = super::toplevel::cmdline(config)
        .split_whitespace()
        .filter(|w| !w.starts_with("root=") && !w.starts_with("micros.data="))
        .collect::<Vec<_>>()
        .join(" ");
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
/// machine.
pub fn check(config: &Config) -> Result<(), BuildError> {
    if !config.system.update.enable {
        return Err(BuildError::Option {
            option: "system.update.enable",
            message:
                "the A/B disk is for systems built for updates: set system.update.enable = true"
                    .into(),
        });
    }
    if config.platform.host != Platform::Aarch64 {
        return Err(BuildError::Option {
            option: "platform.host",
            message: format!(
                "the A/B disk boots with U-Boot on QEMU's aarch64 `virt` machine; {} is not supported yet (set platform.host = \"aarch64-linux\")",
                config.platform.host.name()
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
/// initrd and the header, as an installed bundle leaves a slot.
fn write_slot(
    config: &Config,
    dir: &Path,
    kernel: &str,
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
    let header = Header {
        version,
        cmdline: slot_cmdline(config)?,
        kernel: placed.kernel,
        kernel_size: kernel.len() as u64,
        initrd: placed.initrd,
        initrd_size: initrd.len() as u64,
        installed: None,
    };
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::create(path).map_err(io(path))?;
    file.set_len(size).map_err(io(path))?;
    for (bytes, at) in [
        (&root[..], placed.root),
        (&kernel[..], placed.kernel),
        (&initrd[..], placed.initrd),
        (&header.to_bytes()[..], placed.header),
    ] {
        file.write_all_at(bytes, at).map_err(io(path))?;
    }
    Ok(())
}

/// Writes `disk.img` and `u-boot.bin` into `dir`, next to the kernel,
/// initrd and root already there; `kernel` names the kernel file slot a
/// holds (`kernel::write_slot_kernel`).
pub fn write(system: &System<'_>, dir: &Path, kernel: &str) -> Result<(), BuildError> {
    let config = system.config;
    check(config)?;
    let uboot = match TreePath::parse(UBOOT).ok().and_then(|p| system.boot_firmware.get(&p)) {
        Some(Entry {
            kind: micros_image::Kind::File(content),
            ..
        }) => content.read().map_err(|e| BuildError::Firmware(format!("{UBOOT}: {e}")))?,
        _ => {
            return Err(BuildError::Firmware(format!(
                "{UBOOT_PACKAGE} has no {UBOOT}: run `micros lock` (system.update.enable adds the package)"
            )))
        }
    };
    let uboot_path = dir.join("u-boot.bin");
    std::fs::write(&uboot_path, uboot).map_err(io(&uboot_path))?;

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
        write_slot(config, dir, kernel, &slot_a, slot_size)?;
        let mut state_file = std::fs::File::create(&state).map_err(io(&state))?;
        state_file
            .write_all(&BootState::initial().to_sector())
            .map_err(io(&state))?;
        state_file.set_len(STATE_SIZE).map_err(io(&state))?;
        let mut tree = Tree::new();
        tree.replace(
            TreePath::parse("/boot.scr").expect("a path"),
            Entry::file(
                Content::bytes(boot_script_image()),
                0o644,
                "A/B slot chooser",
            ),
        )?;
        micros_image::write_fat32(
            &tree,
            &boot,
            &FatOptions {
                size: BOOT_SIZE,
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
        let layout = DiskLayout {
            table: PartitionTable::Gpt,
            partitions: vec![
                spec(
                    "micros-boot",
                    PartitionType::FAT32,
                    BOOT_SIZE,
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
        micros_image::write_disk(&dir.join("disk.img"), &layout)?;
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
}
