//! Kernel modules: their metadata, read from each module's own `.modinfo`
//! ELF section (`name=`, `depends=`, `softdep=`, `alias=`), and the load
//! order of a set of modules with everything they need.
//!
//! Hard dependencies (`depends=`) must load first and must exist; soft
//! dependencies (`softdep=pre: a b post: c`) are loaded before or after
//! when present (erofs needs libcrc32c, which needs crc32c_generic first,
//! recorded only as a softdep). Modules may be `.ko`, `.ko.xz`, `.ko.zst` or
//! `.ko.gz`; file names mix `-` and `_`, module names use `_`.
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModInfo {
    pub name: String,
    pub depends: Vec<String>,
    pub soft_pre: Vec<String>,
    pub soft_post: Vec<String>,
    pub aliases: Vec<String>,
    /// Firmware files it may ask for, relative to `/lib/firmware`; may
    /// hold fnmatch patterns (`brcm/brcmfmac*-sdio.*.bin`).
    pub firmware: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmodError {
    #[error("{module}: not an ELF kernel module ({reason})")]
    NotElf {
        module: String,
        reason: &'static str,
    },
    #[error("{module}: cannot decompress: {reason}")]
    Decompress { module: String, reason: String },
    #[error("kernel module `{module}` is not in the kernel package{}", needed_by.as_ref().map(|n| format!(" (needed by `{n}`)")).unwrap_or_default())]
    Missing {
        module: String,
        needed_by: Option<String>,
    },
    #[error("kernel modules depend on each other in a cycle: {0}")]
    Cycle(String),
}

/// Whether an alias names a device (`pci:v…`, `usb:v…`, `of:N*T*C…`,
/// `acpi*:…`), which a device's `modalias` can match, rather than a
/// filesystem, protocol or device node the kernel asks for by name
/// (`fs-erofs`, `net-pf-10`, `devname:net/tun`, `char-major-10-200`).
pub fn is_device_alias(alias: &str) -> bool {
    alias.contains(':') && !alias.starts_with("devname:") && !alias.contains(char::is_whitespace)
}

/// The name a module file has: `crc32c-intel.ko.xz` → `crc32c_intel`.
pub fn module_name(file_name: &str) -> String {
    let stem = file_name.rsplit('/').next().unwrap_or(file_name);
    stem.split(".ko").next().unwrap_or(stem).replace('-', "_")
}

/// The uncompressed bytes of a module file.
pub fn decompress(file_name: &str, bytes: &[u8]) -> Result<Vec<u8>, KmodError> {
    use std::io::Read;
    let error = |e: std::io::Error| KmodError::Decompress {
        module: file_name.to_owned(),
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    if file_name.ends_with(".ko.xz") {
        liblzma::read::XzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(error)?;
    } else if file_name.ends_with(".ko.zst") {
        zstd::stream::read::Decoder::new(bytes)
            .map_err(error)?
            .read_to_end(&mut out)
            .map_err(error)?;
    } else if file_name.ends_with(".ko.gz") {
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(error)?;
    } else {
        out = bytes.to_vec();
    }
    Ok(out)
}

/// Reads the `.modinfo` section of an (uncompressed) ELF module.
pub fn modinfo(module: &str, elf: &[u8]) -> Result<ModInfo, KmodError> {
    let not_elf = |reason| KmodError::NotElf {
        module: module.to_owned(),
        reason,
    };
    let section = find_section(elf, ".modinfo")
        .map_err(not_elf)?
        .ok_or_else(|| not_elf("no .modinfo section"))?;
    let mut info = ModInfo {
        name: module_name(module),
        ..ModInfo::default()
    };
    for entry in section.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let text = String::from_utf8_lossy(entry);
        let Some((key, value)) = text.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = value.replace('-', "_"),
            "depends" => info.depends.extend(
                value
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| d.replace('-', "_")),
            ),
            "alias" => info.aliases.push(value.to_owned()),
            "firmware" => info.firmware.push(value.to_owned()),
            "softdep" => {
                let mut target = None;
                for word in value.split_whitespace() {
                    match word {
                        "pre:" => target = Some(&mut info.soft_pre),
                        "post:" => target = Some(&mut info.soft_post),
                        name => {
                            if let Some(list) = target.as_mut() {
                                list.push(name.replace('-', "_"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

fn find_section<'a>(elf: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>, &'static str> {
    if elf.len() < 52 || &elf[0..4] != b"\x7fELF" {
        return Err("bad magic");
    }
    let is64 = match elf[4] {
        1 => false,
        2 => true,
        _ => return Err("bad class"),
    };
    let little = match elf[5] {
        1 => true,
        2 => false,
        _ => return Err("bad byte order"),
    };
    let read = |offset: usize, size: usize| -> Result<u64, &'static str> {
        let bytes = elf.get(offset..offset + size).ok_or("truncated header")?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if little {
                bytes[size - 1 - i]
            } else {
                bytes[i]
            };
            value = (value << 8) | byte as u64;
        }
        Ok(value)
    };
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (
            read(0x28, 8)? as usize,
            read(0x3a, 2)? as usize,
            read(0x3c, 2)? as usize,
            read(0x3e, 2)? as usize,
        )
    } else {
        (
            read(0x20, 4)? as usize,
            read(0x2e, 2)? as usize,
            read(0x30, 2)? as usize,
            read(0x32, 2)? as usize,
        )
    };
    let section = |index: usize| -> Result<(usize, usize, usize), &'static str> {
        let base = shoff
            .checked_add(index.checked_mul(shentsize).ok_or("bad section table")?)
            .ok_or("bad section table")?;
        if is64 {
            Ok((
                read(base, 4)? as usize,
                read(base + 0x18, 8)? as usize,
                read(base + 0x20, 8)? as usize,
            ))
        } else {
            Ok((
                read(base, 4)? as usize,
                read(base + 0x10, 4)? as usize,
                read(base + 0x14, 4)? as usize,
            ))
        }
    };
    let (_, names_offset, names_size) = section(shstrndx)?;
    let names = elf
        .get(names_offset..names_offset.saturating_add(names_size))
        .ok_or("section names out of range")?;
    for index in 0..shnum {
        let (name, offset, size) = section(index)?;
        let Some(rest) = names.get(name..) else {
            continue;
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if &rest[..end] == wanted.as_bytes() {
            return elf
                .get(offset..offset.saturating_add(size))
                .map(Some)
                .ok_or("section out of range");
        }
    }
    Ok(None)
}

/// Every module of a kernel, by name.
#[derive(Debug, Clone, Default)]
pub struct ModuleIndex {
    modules: BTreeMap<String, ModInfo>,
}

impl ModuleIndex {
    pub fn new(modules: impl IntoIterator<Item = ModInfo>) -> ModuleIndex {
        ModuleIndex {
            modules: modules.into_iter().map(|m| (m.name.clone(), m)).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ModInfo> {
        self.modules.get(&name.replace('-', "_"))
    }

    /// `requested` and everything they need, in an order the kernel can
    /// load them: hard dependencies and soft pre-dependencies first, soft
    /// post-dependencies after. Modules not in the index are errors when
    /// requested or hard-required (they may be built into the kernel: then
    /// leave them out of the request), ignored when only soft.
    pub fn load_order(
        &self,
        requested: &[String],
        builtin: &BTreeSet<String>,
    ) -> Result<Vec<String>, KmodError> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        let mut visiting = Vec::new();
        for name in requested {
            let name = name.replace('-', "_");
            if builtin.contains(&name) {
                continue;
            }
            self.visit(&name, None, builtin, &mut order, &mut done, &mut visiting)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        needed_by: Option<&str>,
        builtin: &BTreeSet<String>,
        order: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        visiting: &mut Vec<String>,
    ) -> Result<(), KmodError> {
        if done.contains(name) || builtin.contains(name) {
            return Ok(());
        }
        if visiting.iter().any(|v| v == name) {
            visiting.push(name.to_owned());
            return Err(KmodError::Cycle(visiting.join(" -> ")));
        }
        let info = self.modules.get(name).ok_or_else(|| KmodError::Missing {
            module: name.to_owned(),
            needed_by: needed_by.map(str::to_owned),
        })?;
        visiting.push(name.to_owned());
        for soft in &info.soft_pre {
            if self.modules.contains_key(soft) && !visiting.contains(soft) {
                self.visit(soft, Some(name), builtin, order, done, visiting)?;
            }
        }
        for dependency in &info.depends {
            self.visit(dependency, Some(name), builtin, order, done, visiting)?;
        }
        visiting.pop();
        done.insert(name.to_owned());
        order.push(name.to_owned());
        for soft in &info.soft_post {
            if self.modules.contains_key(soft) && !visiting.contains(soft) {
                self.visit(soft, Some(name), builtin, order, done, visiting)?;
            }
        }
        Ok(())
    }
}

/// A minimal ELF64 little-endian file with one `.modinfo` section holding
/// `modinfo`'s `;`-separated entries, for tests.
#[cfg(test)]
pub(crate) fn test_elf(modinfo: &str) -> Vec<u8> {
    tests::elf(modinfo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 little-endian file with one `.modinfo` section.
    pub(super) fn elf(modinfo: &str) -> Vec<u8> {
        let names = b"\0.modinfo\0.shstrtab\0";
        let data = modinfo.replace(';', "\0");
        let mut out = vec![0u8; 64];
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        let data_offset = out.len();
        out.extend(data.as_bytes());
        let names_offset = out.len();
        out.extend(names);
        let shoff = out.len();
        out[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        for (name, offset, size) in [
            (0u32, 0usize, 0usize),
            (1, data_offset, data.len()),
            (10, names_offset, names.len()),
        ] {
            let mut header = [0u8; 64];
            header[0..4].copy_from_slice(&name.to_le_bytes());
            header[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            header[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            out.extend(header);
        }
        out
    }

    #[test]
    fn reads_modinfo() {
        let bytes = elf("alias=fs-erofs;depends=libcrc32c,netfs;softdep=pre: crc32c post: zlib-deflate;name=erofs;firmware=brcm/brcmfmac*-sdio.*.bin;vermagic=6.12");
        let info = modinfo("kernel/fs/erofs/erofs.ko", &bytes).unwrap();
        assert_eq!(info.name, "erofs");
        assert_eq!(info.depends, ["libcrc32c", "netfs"]);
        assert_eq!(info.soft_pre, ["crc32c"]);
        assert_eq!(info.soft_post, ["zlib_deflate"]);
        assert_eq!(info.aliases, ["fs-erofs"]);
        assert_eq!(info.firmware, ["brcm/brcmfmac*-sdio.*.bin"]);
        assert!(matches!(
            modinfo(
                "x.ko",
                b"not an elf at all, clearly not, no no no no no no no"
            ),
            Err(KmodError::NotElf { .. })
        ));
    }

    #[test]
    fn device_aliases() {
        for alias in [
            "pci:v000015ADd000007B0sv*sd*bc*sc*i*",
            "usb:v0424pEC00d*",
            "of:N*T*Cbrcm,bcm2835-usb",
            "acpi*:BCM2E00:*",
            "scsi:t-0x00*",
        ] {
            assert!(is_device_alias(alias), "{alias}");
        }
        for alias in [
            "fs-erofs",
            "net-pf-10",
            "devname:net/tun",
            "char-major-10-200",
            "crypto-ccm",
            "dmi*:svnA B:*",
        ] {
            assert!(!is_device_alias(alias), "{alias}");
        }
    }

    #[test]
    fn decompresses_xz_modules() {
        use std::io::Read;
        let bytes = elf("name=virtio;depends=");
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(&bytes[..], 6)
            .read_to_end(&mut xz)
            .unwrap();
        assert_eq!(decompress("virtio.ko.xz", &xz).unwrap(), bytes);
        assert_eq!(
            module_name("kernel/arch/x86/crypto/crc32c-intel.ko.xz"),
            "crc32c_intel"
        );
    }

    fn module(name: &str, depends: &[&str], pre: &[&str]) -> ModInfo {
        ModInfo {
            name: name.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            soft_pre: pre.iter().map(|s| s.to_string()).collect(),
            ..ModInfo::default()
        }
    }

    #[test]
    fn load_order_respects_dependencies_and_soft_dependencies() {
        let index = ModuleIndex::new([
            module("virtio_blk", &["virtio", "virtio_ring"], &[]),
            module(
                "virtio_pci",
                &[
                    "virtio_pci_modern_dev",
                    "virtio_pci_legacy_dev",
                    "virtio",
                    "virtio_ring",
                ],
                &[],
            ),
            module("virtio", &[], &[]),
            module("virtio_ring", &[], &[]),
            module("virtio_pci_modern_dev", &[], &[]),
            module("virtio_pci_legacy_dev", &[], &[]),
            module("erofs", &["libcrc32c"], &[]),
            module("libcrc32c", &[], &["crc32c", "crc32c_generic"]),
            module("crc32c_generic", &[], &[]),
        ]);
        let order = index
            .load_order(
                &["virtio_pci".into(), "virtio_blk".into(), "erofs".into()],
                &BTreeSet::new(),
            )
            .unwrap();
        let position = |name: &str| order.iter().position(|m| m == name).unwrap();
        assert!(position("virtio") < position("virtio_pci"));
        assert!(position("virtio_pci_modern_dev") < position("virtio_pci"));
        assert!(position("virtio_ring") < position("virtio_blk"));
        assert!(
            position("crc32c_generic") < position("libcrc32c"),
            "soft pre-dependency first: {order:?}"
        );
        assert!(position("libcrc32c") < position("erofs"));
        assert_eq!(order.len(), 9);
    }

    #[test]
    fn missing_and_builtin_modules() {
        let index = ModuleIndex::new([
            module("overlay", &[], &[]),
            module("squashfs", &["zstd_decompress"], &[]),
        ]);
        let builtin: BTreeSet<String> = ["overlay".to_string()].into();
        assert_eq!(
            index.load_order(&["overlay".into()], &builtin).unwrap(),
            Vec::<String>::new()
        );
        let error = index
            .load_order(&["squashfs".into()], &BTreeSet::new())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "kernel module `zstd_decompress` is not in the kernel package (needed by `squashfs`)"
        );
        let cyclic = ModuleIndex::new([module("a", &["b"], &[]), module("b", &["a"], &[])]);
        assert!(matches!(
            cyclic.load_order(&["a".into()], &BTreeSet::new()),
            Err(KmodError::Cycle(_))
        ));
    }
}
