//! A slot: one partition holding a whole system, its root filesystem at
//! the start (so stage 1 mounts the partition itself), the kernel and the
//! initrd after it, and at its very end a 4 KiB header that tells U-Boot's
//! boot script where they are and the device what it runs. The header is
//! text for U-Boot's `env import -t`; numbers are hex, as U-Boot reads
//! them; offsets and lengths count 512-byte blocks.
//!
//! ```text
//! micros-a  ├─ root.squashfs   at 0
//!           ├─ kernel          at the next 4 KiB
//!           ├─ initrd          at the next 4 KiB
//!           ├─ fdt             at the next 4 KiB: the device trees, if any
//!           └─ header          the last 4 KiB:
//!                micros_cmdline=console=ttyAMA0,115200 micros.rootwait=10 panic=10
//!                micros_fdt_blocks=6d                 (the largest tree's blocks)
//!                micros_fdt_broadcom/bcm2837-rpi-3-b.dtb=3c00  (one line per tree)
//!                micros_initrd=3a58
//!                micros_initrd_blocks=898
//!                micros_initrd_size=112bde
//!                micros_installed=69355b40   (device clock; absent when flashed)
//!                micros_kernel=d48
//!                micros_kernel_blocks=11fe0
//!                micros_slot_end=1
//!                micros_version=1.2
//! ```
//!
//! The header is written last, after the parts are flushed, and the boot
//! state names the slot only after that: a slot is never tried half written.
//! A tree's line is named by U-Boot's `fdtfile` for the board, so the boot
//! script finds the board's tree without a filesystem (and boots with the
//! firmware's tree when the slot has none for it).
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::version::Version;

pub const HEADER_SIZE: u64 = 4096;
pub const BLOCK: u64 = 512;
const ALIGN: u64 = 4096;

/// Where a slot's parts go, in bytes from the slot's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub root: u64,
    pub kernel: u64,
    pub initrd: u64,
    pub fdt: u64,
    pub header: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooSmall {
    pub needed: u64,
    pub slot: u64,
}

impl fmt::Display for TooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the system needs {} bytes of its slot, which has {}",
            self.needed, self.slot
        )
    }
}

fn align(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// Places root, kernel, initrd and device trees of the given sizes in a
/// slot of `slot_size` bytes.
pub fn layout(
    root: u64,
    kernel: u64,
    initrd: u64,
    fdt: u64,
    slot_size: u64,
) -> Result<Layout, TooSmall> {
    let kernel_at = align(root);
    let initrd_at = align(kernel_at + kernel);
    let fdt_at = align(initrd_at + initrd);
    let needed = align(fdt_at + fdt) + HEADER_SIZE;
    if needed > slot_size || !slot_size.is_multiple_of(ALIGN) {
        return Err(TooSmall {
            needed,
            slot: slot_size,
        });
    }
    Ok(Layout {
        root: 0,
        kernel: kernel_at,
        initrd: initrd_at,
        fdt: fdt_at,
        header: slot_size - HEADER_SIZE,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    /// The kernel command line without `root=`: the boot script adds the
    /// slot's own partition.
    pub cmdline: String,
    pub kernel: u64,
    pub kernel_size: u64,
    pub initrd: u64,
    pub initrd_size: u64,
    /// The device trees: each one's name (as U-Boot's `fdtfile`) and
    /// offset in the slot, in bytes.
    pub trees: Vec<(String, u64)>,
    /// The largest tree's size in blocks: what the boot script reads.
    pub tree_blocks: u64,
    /// When the device installed it, by its clock (seconds since 1970);
    /// None for a slot written by the build. Shown, never decided on.
    pub installed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// No `micros_slot_end=1`: an empty slot, or one being written.
    Empty,
    Malformed,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::Empty => "the slot holds no system",
            HeaderError::Malformed => "the slot's header is malformed",
        })
    }
}

impl Header {
    /// The header of a slot whose parts are `placed`: kernel and initrd of
    /// these sizes, and `trees` in the `fdt` part (laid out by
    /// manifest::fdt_offsets).
    pub fn placed(
        version: Version,
        cmdline: String,
        placed: &Layout,
        kernel_size: u64,
        initrd_size: u64,
        trees: &[crate::manifest::Tree],
        installed: Option<u64>,
    ) -> Header {
        let (offsets, _) = crate::manifest::fdt_offsets(trees.iter().map(|t| t.size));
        Header {
            version,
            cmdline,
            kernel: placed.kernel,
            kernel_size,
            initrd: placed.initrd,
            initrd_size,
            trees: trees
                .iter()
                .zip(offsets)
                .map(|(tree, offset)| (tree.name.clone(), placed.fdt + offset))
                .collect(),
            tree_blocks: trees
                .iter()
                .map(|t| t.size.div_ceil(BLOCK))
                .max()
                .unwrap_or(0),
            installed,
        }
    }

    /// A command line the header can carry: one line, printable.
    pub fn valid_cmdline(cmdline: &str) -> bool {
        cmdline.len() < 2048 && cmdline.bytes().all(|b| (0x20..0x7f).contains(&b))
    }

    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "micros_cmdline={}", self.cmdline);
        if !self.trees.is_empty() {
            let _ = writeln!(text, "micros_fdt_blocks={:x}", self.tree_blocks);
            for (name, at) in &self.trees {
                let _ = writeln!(text, "micros_fdt_{name}={:x}", at / BLOCK);
            }
        }
        let _ = write!(
            text,
            "micros_initrd={:x}\nmicros_initrd_blocks={:x}\nmicros_initrd_size={:x}\n",
            self.initrd / BLOCK,
            self.initrd_size.div_ceil(BLOCK),
            self.initrd_size,
        );
        if let Some(installed) = self.installed {
            let _ = writeln!(text, "micros_installed={installed:x}");
        }
        let _ = write!(
            text,
            "micros_kernel={:x}\nmicros_kernel_blocks={:x}\nmicros_slot_end=1\nmicros_version={}\n",
            self.kernel / BLOCK,
            self.kernel_size.div_ceil(BLOCK),
            self.version,
        );
        text
    }

    /// The header's 4 KiB, NUL-padded.
    pub fn to_bytes(&self) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec![0u8; HEADER_SIZE as usize];
        let text = self.to_text();
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        bytes
    }

    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        if end == 0 {
            return Err(HeaderError::Empty);
        }
        let text = core::str::from_utf8(&bytes[..end]).map_err(|_| HeaderError::Malformed)?;
        let (mut version, mut cmdline, mut complete) = (None, None, false);
        let (mut kernel, mut kernel_blocks, mut initrd, mut initrd_blocks, mut initrd_size) =
            (None, None, None, None, None);
        let mut installed = None;
        let (mut trees, mut tree_blocks) = (Vec::<(String, u64)>::new(), None);
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').ok_or(HeaderError::Malformed)?;
            let number = || u64::from_str_radix(value, 16).map_err(|_| HeaderError::Malformed);
            let seen = match key {
                "micros_cmdline" if Header::valid_cmdline(value) => {
                    cmdline.replace(value.to_string()).is_some()
                }
                "micros_version" => version
                    .replace(Version::parse(value).map_err(|_| HeaderError::Malformed)?)
                    .is_some(),
                "micros_kernel" => kernel.replace(number()? * BLOCK).is_some(),
                "micros_kernel_blocks" => kernel_blocks.replace(number()?).is_some(),
                "micros_initrd" => initrd.replace(number()? * BLOCK).is_some(),
                "micros_initrd_blocks" => initrd_blocks.replace(number()?).is_some(),
                "micros_initrd_size" => initrd_size.replace(number()?).is_some(),
                "micros_installed" => installed.replace(number()?).is_some(),
                "micros_slot_end" if value == "1" => core::mem::replace(&mut complete, true),
                "micros_fdt_blocks" => tree_blocks.replace(number()?).is_some(),
                _ => match key.strip_prefix("micros_fdt_") {
                    Some(name)
                        if crate::manifest::valid_tree_name(name)
                            && trees.len() < crate::manifest::MAX_TREES =>
                    {
                        let seen = trees.iter().any(|(n, _)| n == name);
                        trees.push((name.to_string(), number()? * BLOCK));
                        seen
                    }
                    _ => return Err(HeaderError::Malformed),
                },
            };
            if seen {
                return Err(HeaderError::Malformed);
            }
        }
        if !complete {
            return Err(HeaderError::Empty);
        }
        match (
            version,
            cmdline,
            kernel,
            kernel_blocks,
            initrd,
            initrd_blocks,
            initrd_size,
        ) {
            (
                Some(version),
                Some(cmdline),
                Some(kernel),
                Some(kernel_blocks),
                Some(initrd),
                Some(initrd_blocks),
                Some(initrd_size),
            ) if initrd_size.div_ceil(BLOCK) == initrd_blocks
                && trees.is_empty() == tree_blocks.is_none() =>
            {
                Ok(Header {
                    version,
                    cmdline,
                    kernel,
                    kernel_size: kernel_blocks * BLOCK,
                    initrd,
                    initrd_size,
                    trees,
                    tree_blocks: tree_blocks.unwrap_or(0),
                    installed,
                })
            }
            _ => Err(HeaderError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_aligned_in_order_and_the_header_is_last() {
        let l = layout(6_852_608, 37_732_288, 1_125_342, 70_000, 128 << 20).unwrap();
        assert_eq!(l.root, 0);
        assert_eq!(l.kernel, 6_852_608);
        assert_eq!(l.kernel % 4096, 0);
        assert!(l.initrd >= l.kernel + 37_732_288 && l.initrd % 4096 == 0);
        assert!(l.fdt >= l.initrd + 1_125_342 && l.fdt % 4096 == 0);
        assert!(l.fdt + 70_000 <= l.header);
        assert_eq!(l.header, (128 << 20) - 4096);
        let err = layout(6_852_608, 37_732_288, 1_125_342, 0, 32 << 20).unwrap_err();
        assert!(err.needed > 32 << 20);
        assert!(layout(1, 1, 1, 0, 3 * 4096).is_err());
        assert!(layout(1, 1, 1, 0, 4 * 4096).is_ok());
        assert!(layout(1, 1, 1, 1, 4 * 4096).is_err());
        assert!(layout(1, 1, 1, 1, 5 * 4096).is_ok());
    }

    #[test]
    fn a_header_reads_back_and_what_is_not_a_header_is_refused() {
        let header = Header {
            version: Version::parse("1.2").unwrap(),
            cmdline: "console=ttyAMA0,115200 panic=10".into(),
            kernel: 6_852_608,
            kernel_size: 37_732_352,
            initrd: 44_589_056,
            initrd_size: 1_125_342,
            trees: Vec::new(),
            tree_blocks: 0,
            installed: None,
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(Header::parse(&bytes), Ok(header.clone()));
        let installed = Header {
            installed: Some(1_796_647_200),
            ..header.clone()
        };
        assert!(installed.to_text().contains("micros_installed=6b16a920\n"));
        assert_eq!(Header::parse(&installed.to_bytes()), Ok(installed));
        assert_eq!(Header::parse(&[0; 4096]), Err(HeaderError::Empty));
        let text = header.to_text();
        let cut = text.find("micros_slot_end").unwrap();
        assert_eq!(
            Header::parse(&text.as_bytes()[..cut]),
            Err(HeaderError::Empty)
        );
        let evil = text.replace("panic=10", "panic=10\u{7}");
        assert_eq!(Header::parse(evil.as_bytes()), Err(HeaderError::Malformed));
        let wrong = text.replace("micros_initrd_blocks=", "micros_initrd_blocks=1");
        assert_eq!(Header::parse(wrong.as_bytes()), Err(HeaderError::Malformed));
    }

    #[test]
    fn device_trees_are_named_for_u_boot_and_the_fullest_header_fits() {
        let header = Header {
            version: Version::parse("2").unwrap(),
            cmdline: "console=ttyAMA0,115200".into(),
            kernel: 4096,
            kernel_size: 512,
            initrd: 8192,
            initrd_size: 100,
            trees: alloc::vec![
                ("broadcom/bcm2837-rpi-3-b.dtb".into(), 12288),
                ("broadcom/bcm2711-rpi-4-b.dtb".into(), 12288 + 512),
            ],
            tree_blocks: 0x6d,
            installed: None,
        };
        let text = header.to_text();
        assert!(text.starts_with("micros_cmdline=console=ttyAMA0,115200\nmicros_fdt_blocks=6d\nmicros_fdt_broadcom/bcm2837-rpi-3-b.dtb=18\nmicros_fdt_broadcom/bcm2711-rpi-4-b.dtb=19\nmicros_initrd=10\n"));
        assert_eq!(Header::parse(&header.to_bytes()), Ok(header.clone()));
        for wrong in [
            text.replace("micros_fdt_blocks=6d\n", ""),
            text.replace("bcm2711-rpi-4-b", "bcm2837-rpi-3-b"),
            text.replace("broadcom/bcm2711", "../bcm2711"),
            text.replace("rpi-4-b.dtb=19", "rpi-4-b.dtb=z"),
        ] {
            assert_eq!(
                Header::parse(wrong.as_bytes()),
                Err(HeaderError::Malformed),
                "{wrong}"
            );
        }
        // The longest command line, the most and longest tree names, the
        // largest numbers and an install time still fit in 4 KiB.
        let fullest = Header {
            version: Version::parse(&alloc::format!("{}1", "9.".repeat(31))).unwrap(),
            cmdline: "x".repeat(2047),
            kernel: u64::MAX / 2,
            kernel_size: u64::MAX / 2,
            initrd: u64::MAX / 2,
            initrd_size: u64::MAX / 2,
            trees: (0..crate::manifest::MAX_TREES)
                .map(|i| (alloc::format!("{i:0>60}.dtb"), u64::MAX / 2))
                .collect(),
            tree_blocks: u64::MAX,
            installed: Some(u64::MAX),
        };
        assert!(fullest.to_text().len() < HEADER_SIZE as usize);
    }
}
