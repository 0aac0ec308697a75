//! The manifest of an update bundle: what it holds and for what, the text
//! the signature covers. One fact per line, in a fixed order, so that the
//! host writes exactly the bytes the device parses:
//!
//! ```text
//! micros-update-manifest 1
//! version 1.4.2
//! platform aarch64-linux
//! compatible qemu-virt
//! cmdline console=ttyAMA0,115200 micros.rootwait=10 panic=10
//! fdt broadcom/bcm2837-rpi-3-b.dtb 31842   (a Pi's device trees, if any)
//! fdt broadcom/bcm2711-rpi-4-b.dtb 55711
//! block-size 65536
//! part kernel 11702144 <sha256 of the whole part>
//! part initrd 1204513 <sha256>
//! part root 6553600 <sha256>
//! part fdt 87552 <sha256>                  only with device trees
//! block <sha256 of kernel's first 64 KiB>
//! …                                        every part's blocks, in order
//! ```
//!
//! The `fdt` part holds the device trees named by the `fdt` lines, in
//! their order, each starting on a 512-byte block ([`fdt_offsets`]), so
//! that U-Boot reads the one for its board by block. A tree's name is its
//! path under the kernel's device tree directory, as U-Boot's `fdtfile`
//! names it.
//!
//! The parser is strict: a line it does not know, a part out of order, a
//! block count that does not match a size, is an error, never a guess.
use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::version::Version;

/// What a slot holds, in the order a bundle carries them (`fdt` only when
/// the manifest names device trees).
pub const PARTS: [&str; 4] = ["kernel", "initrd", "root", "fdt"];
/// At most this many device trees (the slot header names each one)…
pub const MAX_TREES: usize = 16;
/// …of at most this size each (Debian's Pi trees are 20–60 KiB).
pub const MAX_TREE: u64 = 1 << 20;
const TREE_ALIGN: u64 = 512;
pub const MIN_BLOCK: u32 = 4096;
pub const MAX_BLOCK: u32 = 4 << 20;
/// No part is larger (a whole root filesystem fits many times over).
pub const MAX_PART: u64 = 4 << 30;

pub type Digest = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: &'static str,
    pub size: u64,
    pub sha256: Digest,
}

/// A device tree in the `fdt` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// Its path under the kernel's device tree directory
    /// (`broadcom/bcm2837-rpi-3-b.dtb`): see [`valid_tree_name`].
    pub name: String,
    pub size: u64,
}

/// Where each tree starts in the `fdt` part, and the part's size: each
/// tree on a 512-byte block, in order, zero-padded.
pub fn fdt_offsets(sizes: impl IntoIterator<Item = u64>) -> (Vec<u64>, u64) {
    let mut offsets = Vec::new();
    let mut end = 0;
    for size in sizes {
        offsets.push(end);
        end += size.div_ceil(TREE_ALIGN) * TREE_ALIGN;
    }
    (offsets, end)
}

/// A device tree's name as a slot header and U-Boot's `fdtfile` can carry
/// it: a relative path of `[A-Za-z0-9._-]` words ending in `.dtb`, no
/// empty, `.` or `..` component, at most 64 bytes.
pub fn valid_tree_name(name: &str) -> bool {
    name.len() <= 64
        && name.ends_with(".dtb")
        && name.split('/').all(|word| {
            !word.is_empty()
                && word != "."
                && word != ".."
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub version: Version,
    /// `x86_64-linux`, `aarch64-linux`, … (`platform.host`).
    pub platform: String,
    /// The boards it may be installed on (`qemu-virt`, `rpi3`, …).
    pub compatible: Vec<String>,
    /// The kernel command line without `root=` (the boot script adds the
    /// slot's partition): printable ASCII, one line.
    pub cmdline: String,
    /// The device trees in the `fdt` part, in order; none on boards whose
    /// firmware provides the tree (QEMU).
    pub trees: Vec<Tree>,
    pub block_size: u32,
    /// kernel, initrd, root, and `fdt` when there are trees.
    pub parts: Vec<Part>,
    /// Every part's blocks' SHA-256, part after part.
    pub blocks: Vec<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// Line number (from 1) and what is wrong.
    Line(usize, &'static str),
    Missing(&'static str),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Line(line, why) => write!(f, "manifest line {line}: {why}"),
            ManifestError::Missing(what) => write!(f, "the manifest has no {what}"),
        }
    }
}

/// How many blocks of `block_size` hold `size` bytes.
pub fn block_count(size: u64, block_size: u32) -> u64 {
    size.div_ceil(u64::from(block_size))
}

impl Manifest {
    /// The manifest's bytes, as signed.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "micros-update-manifest 1");
        let _ = writeln!(text, "version {}", self.version);
        let _ = writeln!(text, "platform {}", self.platform);
        for board in &self.compatible {
            let _ = writeln!(text, "compatible {board}");
        }
        let _ = writeln!(text, "cmdline {}", self.cmdline);
        for tree in &self.trees {
            let _ = writeln!(text, "fdt {} {}", tree.name, tree.size);
        }
        let _ = writeln!(text, "block-size {}", self.block_size);
        for part in &self.parts {
            let _ = writeln!(
                text,
                "part {} {} {}",
                part.name,
                part.size,
                hex(&part.sha256)
            );
        }
        for block in &self.blocks {
            let _ = writeln!(text, "block {}", hex(block));
        }
        text
    }

    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        let mut next = |what: &'static str| -> Result<(usize, &str, &str), ManifestError> {
            let (number, line) = lines.next().ok_or(ManifestError::Missing(what))?;
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            Ok((number, key, value))
        };
        let (n, key, value) = next("header")?;
        if key != "micros-update-manifest" || value != "1" {
            return Err(ManifestError::Line(
                n,
                "not a version 1 MicrOS update manifest",
            ));
        }
        let (n, key, value) = next("version")?;
        if key != "version" {
            return Err(ManifestError::Line(n, "expected `version`"));
        }
        let version = Version::parse(value)
            .ok()
            .filter(|v| v.to_string() == value)
            .ok_or(ManifestError::Line(n, "bad version"))?;
        let (n, key, value) = next("platform")?;
        if key != "platform" || !is_word(value) {
            return Err(ManifestError::Line(n, "expected `platform <name>`"));
        }
        let platform = value.to_owned();
        let mut compatible = Vec::new();
        let (mut n, mut key, mut value) = next("cmdline")?;
        while key == "compatible" {
            if !is_word(value) || compatible.len() >= 64 {
                return Err(ManifestError::Line(n, "bad board name"));
            }
            compatible.push(value.to_owned());
            (n, key, value) = next("cmdline")?;
        }
        if key != "cmdline" || !crate::slot::Header::valid_cmdline(value) {
            return Err(ManifestError::Line(
                n,
                "expected `cmdline <kernel parameters>` (printable, one line)",
            ));
        }
        let cmdline = value.to_owned();
        let mut trees: Vec<Tree> = Vec::new();
        let (mut n, mut key, mut value) = next("block-size")?;
        while key == "fdt" {
            let Some((name, size)) = value.split_once(' ') else {
                return Err(ManifestError::Line(n, "expected `fdt <name> <size>`"));
            };
            if !valid_tree_name(name)
                || trees.len() >= MAX_TREES
                || trees.iter().any(|t| t.name == name)
            {
                return Err(ManifestError::Line(
                    n,
                    "bad, repeated or too many device tree names",
                ));
            }
            let size = size
                .parse()
                .ok()
                .filter(|s| (1..=MAX_TREE).contains(s) && is_decimal(size))
                .ok_or(ManifestError::Line(n, "bad device tree size"))?;
            trees.push(Tree {
                name: name.to_owned(),
                size,
            });
            (n, key, value) = next("block-size")?;
        }
        if key != "block-size" {
            return Err(ManifestError::Line(n, "expected `block-size`"));
        }
        let block_size: u32 = value
            .parse()
            .ok()
            .filter(|b: &u32| {
                b.is_power_of_two() && (MIN_BLOCK..=MAX_BLOCK).contains(b) && is_decimal(value)
            })
            .ok_or(ManifestError::Line(
                n,
                "block size must be a power of two from 4 KiB to 4 MiB",
            ))?;
        let mut parts = Vec::new();
        let with_trees = if trees.is_empty() { 3 } else { 4 };
        for name in &PARTS[..with_trees] {
            let name = *name;
            let (n, key, value) = next("part")?;
            let mut words = value.split(' ');
            let (Some(part), Some(size), Some(sha), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(ManifestError::Line(
                    n,
                    "expected `part <name> <size> <sha256>`",
                ));
            };
            if key != "part" || part != name {
                return Err(ManifestError::Line(
                    n,
                    "parts must be kernel, initrd, root (and fdt with device trees), in order",
                ));
            }
            let size: u64 = size
                .parse()
                .ok()
                .filter(|s| *s <= MAX_PART && is_decimal(size))
                .ok_or(ManifestError::Line(n, "bad part size"))?;
            if name == "fdt" && size != fdt_offsets(trees.iter().map(|t| t.size)).1 {
                return Err(ManifestError::Line(
                    n,
                    "the fdt part's size does not match its device trees",
                ));
            }
            let sha256 = unhex(sha).ok_or(ManifestError::Line(n, "bad SHA-256"))?;
            parts.push(Part { name, size, sha256 });
        }
        let expected: u64 = parts.iter().map(|p| block_count(p.size, block_size)).sum();
        let mut blocks = Vec::new();
        for _ in 0..expected {
            let (n, key, value) = next("block")?;
            if key != "block" {
                return Err(ManifestError::Line(n, "expected `block <sha256>`"));
            }
            blocks.push(unhex(value).ok_or(ManifestError::Line(n, "bad SHA-256"))?);
        }
        match lines.next() {
            Some((_, "")) if lines.next().is_none() => {}
            Some((n, _)) => return Err(ManifestError::Line(n, "unexpected line after the blocks")),
            None => return Err(ManifestError::Missing("final newline")),
        }
        Ok(Manifest {
            version,
            platform,
            compatible,
            cmdline,
            trees,
            block_size,
            parts,
            blocks,
        })
    }
}

fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

pub fn unhex(text: &str) -> Option<Digest> {
    unhex_array(text)
}

/// `N` bytes from exactly `2 N` lowercase hex digits.
pub fn unhex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn example() -> Manifest {
        Manifest {
            version: Version::parse("1.4.2").unwrap(),
            platform: "aarch64-linux".into(),
            compatible: alloc::vec!["qemu-virt".into(), "rpi3".into()],
            cmdline: "console=ttyAMA0,115200 panic=10".into(),
            trees: alloc::vec![],
            block_size: 4096,
            parts: alloc::vec![
                Part {
                    name: "kernel",
                    size: 5000,
                    sha256: [1; 32]
                },
                Part {
                    name: "initrd",
                    size: 0,
                    sha256: [2; 32]
                },
                Part {
                    name: "root",
                    size: 4096,
                    sha256: [3; 32]
                },
            ],
            blocks: alloc::vec![[4; 32], [5; 32], [6; 32]],
        }
    }

    #[test]
    fn the_text_round_trips_and_nothing_else_parses() {
        let manifest = example();
        let text = manifest.to_text();
        assert_eq!(Manifest::parse(&text), Ok(manifest));
        assert!(text.starts_with("micros-update-manifest 1\nversion 1.4.2\nplatform aarch64-linux\ncompatible qemu-virt\ncompatible rpi3\ncmdline console=ttyAMA0,115200 panic=10\nblock-size 4096\npart kernel 5000 0101"));
        let broken = [
            text.replace("manifest 1", "manifest 2"),
            text.replace("block-size 4096", "block-size 4000"),
            text.replace("panic=10", "panic=10\t"),
            text.replace("cmdline console", "cmdlines console"),
            text.replace("part initrd", "part root"),
            text.replace("part kernel 5000", "part kernel 05000"),
            text.replace("version 1.4.2", "version 01.4.2"),
            text.replace("block-size 4096", "block-size 04096"),
            text.replace("part kernel 5000", "part kernel 9000"),
            text.replace(&hex(&[6; 32]), "zz"),
            text.replace("platform aarch64-linux", "platform a b"),
            format!("{text}extra\n"),
            text.trim_end().to_owned(),
        ];
        for (i, text) in broken.iter().enumerate() {
            assert!(Manifest::parse(text).is_err(), "case {i} parsed:\n{text}");
        }
    }

    fn with_trees() -> Manifest {
        let mut manifest = example();
        manifest.trees = alloc::vec![
            Tree {
                name: "broadcom/bcm2837-rpi-3-b.dtb".into(),
                size: 513,
            },
            Tree {
                name: "broadcom/bcm2711-rpi-4-b.dtb".into(),
                size: 512,
            },
        ];
        manifest.parts.push(Part {
            name: "fdt",
            size: 1536,
            sha256: [9; 32],
        });
        manifest.blocks.push([10; 32]);
        manifest
    }

    #[test]
    fn device_trees_are_named_sized_and_laid_out_on_blocks() {
        assert_eq!(
            fdt_offsets([513, 512, 1]),
            (alloc::vec![0, 1024, 1536], 2048)
        );
        let manifest = with_trees();
        let text = manifest.to_text();
        assert!(text.contains("cmdline console=ttyAMA0,115200 panic=10\nfdt broadcom/bcm2837-rpi-3-b.dtb 513\nfdt broadcom/bcm2711-rpi-4-b.dtb 512\nblock-size 4096\n"));
        assert!(text.contains(&format!("part fdt 1536 {}\n", hex(&[9; 32]))));
        assert_eq!(Manifest::parse(&text), Ok(manifest));
        let broken = [
            // The part must match the trees, and trees need the part.
            text.replace("part fdt 1536", "part fdt 1025"),
            text.replace(&format!("part fdt 1536 {}\n", hex(&[9; 32])), ""),
            example().to_text().replace(
                "block-size",
                "fdt broadcom/bcm2837-rpi-3-b.dtb 1\nblock-size",
            ),
            text.replace("bcm2711-rpi-4-b.dtb 512", "bcm2837-rpi-3-b.dtb 512"),
            text.replace("broadcom/bcm2711", "../bcm2711"),
            text.replace("broadcom/bcm2711", "/bcm2711"),
            text.replace("broadcom/bcm2711", "broadcom//bcm2711"),
            text.replace("rpi-4-b.dtb", "rpi-4-b.dtb.sh"),
            text.replace("rpi-4-b.dtb", "rpi-4 b.dtb"),
            text.replace("rpi-4-b.dtb 512", "rpi-4-b.dtb 0"),
            text.replace("rpi-4-b.dtb 512", "rpi-4-b.dtb 2000000"),
            text.replace("bcm2837-rpi-3-b.dtb", &format!("{}.dtb", "x".repeat(61))),
        ];
        for (i, text) in broken.iter().enumerate() {
            assert!(Manifest::parse(text).is_err(), "case {i} parsed:\n{text}");
        }
        let many: String = (0..=MAX_TREES)
            .map(|i| format!("fdt t{i}.dtb 512\n"))
            .collect();
        let too_many = example()
            .to_text()
            .replace("block-size", &format!("{many}block-size"));
        assert_eq!(
            Manifest::parse(&too_many),
            Err(ManifestError::Line(
                7 + MAX_TREES,
                "bad, repeated or too many device tree names"
            ))
        );
    }
}
