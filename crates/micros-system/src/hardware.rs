//! Which kernel modules go into the root and why, the hardware table that
//! loads them for devices (`micros-init coldplug` and `hotplug`), and the
//! firmware they may ask for.
//!
//! ```text
//! /usr/lib/modules/<version>/<name>.ko   boot.kernelModules, boot.availableKernelModules,
//!                                        and what they need (uncompressed)
//! /usr/lib/micros/hardware               modalias patterns → modules (hardware.autoload)
//! /usr/lib/micros/micros-init            stage 1's binary, which loads them
//! /usr/lib/firmware/…                    hardware.firmware: only files the modules name
//! ```
//!
//! The modules' own `.modinfo` says everything: `alias=` (which devices),
//! `depends=` and `softdep=` (what loads first), `firmware=` (which files).
use std::collections::{BTreeMap, BTreeSet};

use micros_config::model::{enabled, Config, FirmwareFiles};
use micros_image::{Content, Entry, Kind, Tree, TreePath};

use crate::kernel::{Kernel, KernelError};
use crate::kmod::{self, ModuleIndex};

/// Where the hardware table goes in the root.
pub const TABLE: &str = "/usr/lib/micros/hardware";
/// Where stage 1's binary goes in the root, to load modules for devices.
pub const LOADER: &str = "/usr/lib/micros/micros-init";
/// The runit service `hardware.autoload` declares (modules/hardware.ncl).
pub const HOTPLUG_SERVICE: &str = "hotplug";
pub const HOTPLUG_COMMAND: &str = "/usr/lib/micros/micros-init hotplug";

/// The root's kernel modules and firmware.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Every module in the root, in load order within each request, with
    /// why it is there (`boot.kernelModules`, `needed by cdc_ether`, …).
    pub modules: Vec<(String, String)>,
    /// `boot.kernelModules` and what they need, in load order.
    pub boot_order: Vec<String>,
    /// The hardware table, when `hardware.autoload` is on.
    pub table: Option<String>,
    /// Firmware: path in the root, entry.
    pub firmware: Vec<(TreePath, Entry)>,
    /// What the user should know (an entry that brought nothing).
    pub warnings: Vec<String>,
    /// The modules' uncompressed bytes, as read for their `.modinfo`.
    pub bytes: BTreeMap<String, Vec<u8>>,
}

/// The files of `hardware.firmware`'s packages, by package.
pub type FirmwarePackages = BTreeMap<String, Tree>;

/// Chooses the root's modules and firmware for `config` from `kernel`.
pub fn select(
    config: &Config,
    kernel: &Kernel,
    firmware: &FirmwarePackages,
) -> Result<Selection, KernelError> {
    let mut selection = Selection::default();
    let blacklisted: BTreeSet<String> = enabled(&config.boot.blacklisted_kernel_modules)
        .into_iter()
        .map(|name| name.replace('-', "_"))
        .collect();
    let package = &config.boot.kernel.package;

    // What is asked for, with why; the first reason a module gets stays.
    let always: Vec<String> = enabled(&config.boot.kernel_modules)
        .into_iter()
        .map(|name| name.replace('-', "_"))
        .collect();
    let mut named: Vec<(String, String)> = Vec::new();
    let mut directories: Vec<(String, String)> = Vec::new();
    // The most specific entry decides: `{ "drivers/net" = true,
    // "drivers/net/wwan" = false, mlx5_core = false }` takes the network
    // drivers but the modems' and one adapter's.
    let available = &config.boot.available_kernel_modules;
    let switched_off = |name: &str| {
        available
            .iter()
            .any(|(key, on)| !on && !key.contains('/') && key.replace('-', "_") == name)
    };
    let deciding_directory = |name: &str| -> Option<&str> {
        let relative = kernel.tree_path(name)?;
        available
            .keys()
            .map(String::as_str)
            .filter(|key| key.contains('/'))
            .filter(|key| relative.starts_with(&format!("{}/", key.trim_matches('/'))))
            .max_by_key(|key| key.trim_matches('/').len())
    };
    for entry in enabled(available) {
        if entry.contains('/') {
            let option = format!("boot.availableKernelModules.\"{entry}\"");
            let found = kernel.modules_in(entry);
            if found.is_empty() {
                selection.warnings.push(format!(
                    "{option}: {package} has no modules under kernel/{}",
                    entry.trim_matches('/')
                ));
            }
            directories.extend(
                found
                    .into_iter()
                    .filter(|name| !switched_off(name) && deciding_directory(name) == Some(entry))
                    .map(|name| (name, option.clone())),
            );
        } else {
            let name = entry.replace('-', "_");
            if kernel.builtin.contains(&name) {
                continue;
            }
            if !kernel.modules.contains_key(&name) {
                selection.warnings.push(format!(
                    "boot.availableKernelModules.{entry}: {package} has no module {entry}; left out"
                ));
                continue;
            }
            named.push((name, format!("boot.availableKernelModules.{entry}")));
        }
    }
    named.retain(|(name, _)| !blacklisted.contains(name));
    directories.retain(|(name, _)| !blacklisted.contains(name));

    let everything: Vec<String> = always
        .iter()
        .chain(named.iter().map(|(n, _)| n))
        .chain(directories.iter().map(|(n, _)| n))
        .cloned()
        .collect();
    let mut read = kernel.read(&everything)?;
    let index = &read.index;
    // From a directory, only the modules that drive a device: tun,
    // bonding or wireguard have no device a modalias could name.
    directories.retain(|(name, _)| {
        index
            .get(name)
            .is_some_and(|info| info.aliases.iter().any(|a| kmod::is_device_alias(a)))
    });

    selection.boot_order = index.load_order(&always, &kernel.builtin)?;
    // An explicit request names a module better than `needed by …`.
    let mut asked: BTreeMap<String, String> = BTreeMap::new();
    let requests: Vec<(String, String)> = always
        .iter()
        .map(|name| (name.clone(), "boot.kernelModules".to_owned()))
        .chain(named)
        .chain(directories)
        .filter(|(name, reason)| {
            let first = !asked.contains_key(name);
            if first {
                asked.insert(name.clone(), reason.clone());
            }
            first
        })
        .collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (name, reason) in &requests {
        for module in index.load_order(std::slice::from_ref(name), &kernel.builtin)? {
            if seen.insert(module.clone()) {
                let because = asked
                    .get(&module)
                    .cloned()
                    .unwrap_or_else(|| format!("needed by {name}, from {reason}"));
                selection.modules.push((module, because));
            }
        }
    }

    if config.hardware.autoload {
        selection.table = table(kernel, index, &selection.modules, &blacklisted);
    }
    selection.firmware = firmware_files(config, index, &selection.modules, firmware);
    selection.bytes = selection
        .modules
        .iter()
        .filter_map(|(name, _)| Some((name.clone(), read.bytes.remove(name)?)))
        .collect();
    Ok(selection)
}

/// The hardware table (see `micros_init::hardware`): every module in the
/// root that drives a device, with what to load for it; None when no
/// module does (nothing to load, so no loader either).
fn table(
    kernel: &Kernel,
    index: &ModuleIndex,
    modules: &[(String, String)],
    blacklisted: &BTreeSet<String>,
) -> Option<String> {
    let mut text = format!(
        "# MicrOS hardware table (written by micros build): a device whose modalias\n\
         # matches an alias pattern gets that module, after the modules its line lists.\n\
         dir {}\n",
        kernel.root_module_dir()
    );
    let mut aliases = String::new();
    for (name, _) in modules {
        if blacklisted.contains(name) {
            continue;
        }
        let Some(info) = index.get(name) else {
            continue;
        };
        let device_aliases: Vec<&String> = info
            .aliases
            .iter()
            .filter(|a| kmod::is_device_alias(a))
            .collect();
        if device_aliases.is_empty() {
            continue;
        }
        let order = index
            .load_order(std::slice::from_ref(name), &kernel.builtin)
            .unwrap_or_default();
        if order.len() > 1 {
            text.push_str(&format!("module {name} {}\n", order.join(" ")));
        }
        for alias in device_aliases {
            aliases.push_str(&format!("alias {alias} {name}\n"));
        }
    }
    (!aliases.is_empty()).then(|| text + &aliases)
}

/// The firmware files the root's modules can ask for, from the packages
/// `hardware.firmware` names, narrowed by their patterns; a symbolic link
/// brings its target.
fn firmware_files(
    config: &Config,
    index: &ModuleIndex,
    modules: &[(String, String)],
    packages: &FirmwarePackages,
) -> Vec<(TreePath, Entry)> {
    const ROOT: &str = "/usr/lib/firmware/";
    // Pattern → the module that asks for it.
    let asked: Vec<(&str, &str)> = modules
        .iter()
        .filter_map(|(name, _)| index.get(name).map(|info| (name, info)))
        .flat_map(|(name, info)| {
            info.firmware
                .iter()
                .map(move |f| (f.as_str(), name.as_str()))
        })
        .collect();
    let mut files: BTreeMap<TreePath, Entry> = BTreeMap::new();
    for (package, selection) in &config.hardware.firmware {
        if !selection.is_enabled() {
            continue;
        }
        let Some(tree) = packages.get(package) else {
            continue;
        };
        let wanted = |relative: &str| match selection {
            FirmwareFiles::All(_) => true,
            FirmwareFiles::Matching(patterns) => patterns
                .iter()
                .any(|p| micros_init::hardware::matches(p, relative)),
        };
        let mut queue: Vec<(TreePath, String)> = Vec::new();
        for (path, _) in tree.iter() {
            let text = path.to_string();
            let Some(relative) = text.strip_prefix(ROOT) else {
                continue;
            };
            if !wanted(relative) {
                continue;
            }
            if let Some((_, module)) = asked
                .iter()
                .find(|(pattern, _)| micros_init::hardware::matches(pattern, relative))
            {
                queue.push((
                    path.clone(),
                    format!("firmware for {module} (hardware.firmware.{package})"),
                ));
            }
        }
        // Links within the firmware tree bring what they point at.
        let mut hops = 0;
        while let Some((path, origin)) = queue.pop() {
            if files.contains_key(&path) {
                continue;
            }
            let Some(entry) = tree.get(&path) else {
                continue;
            };
            hops += 1;
            match &entry.kind {
                Kind::Symlink(target) if hops < 10_000 => {
                    if let Some(resolved) = resolve(&path, target) {
                        queue.push((resolved, origin.clone()));
                    }
                }
                Kind::Hardlink(target) => queue.push((target.clone(), origin.clone())),
                _ => {}
            }
            let mut copy = entry.clone();
            copy.origin = origin.into();
            files.insert(path, copy);
        }
    }
    files.into_iter().collect()
}

/// The path a symbolic link at `link` with `target` points to, if it stays
/// inside the firmware tree.
fn resolve(link: &TreePath, target: &str) -> Option<TreePath> {
    let base = if target.starts_with('/') {
        String::new()
    } else {
        let text = link.to_string();
        text[..text.rfind('/')?].to_owned()
    };
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    let path = format!("/{}", parts.join("/"));
    if !path.starts_with("/usr/lib/firmware/") {
        return None;
    }
    TreePath::parse(&path).ok()
}

/// Adds the selection to the root: the modules (uncompressed), the table
/// and its loader, and the firmware.
pub fn install(
    tree: &mut Tree,
    selection: &Selection,
    kernel: &Kernel,
    platform: &str,
) -> Result<(), crate::rootfs::RootfsError> {
    let path = |text: &str| {
        TreePath::parse(text).map_err(|_| crate::rootfs::RootfsError::Option {
            option: "boot.kernelModules".to_owned(),
            message: format!("{text} is not a path"),
        })
    };
    for (name, reason) in &selection.modules {
        let bytes = match selection.bytes.get(name) {
            Some(bytes) => bytes.clone(),
            None => kernel.module_bytes(name)?,
        };
        tree.replace(
            path(&kernel.root_module_path(name))?,
            Entry::file(
                Content::bytes(bytes),
                0o644,
                &format!("kernel module {name}: {reason}"),
            ),
        )?;
    }
    if let Some(table) = &selection.table {
        tree.replace(
            path(TABLE)?,
            Entry::file(
                Content::bytes(table.clone()),
                0o644,
                "hardware table (hardware.autoload)",
            ),
        )?;
        let loader =
            crate::init::binary(platform).ok_or_else(|| crate::rootfs::RootfsError::Option {
                option: "platform.host".to_owned(),
                message: format!("MicrOS has no micros-init for {platform}"),
            })?;
        tree.replace(
            path(LOADER)?,
            Entry::file(
                Content::bytes(loader),
                0o755,
                "hardware loader (hardware.autoload)",
            ),
        )?;
    }
    for (at, entry) in &selection.firmware {
        tree.replace(at.clone(), entry.clone())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmod::test_elf;

    fn config(module: &str) -> Config {
        let place = tempfile::tempdir().unwrap();
        let path = place.path().join("system.ncl");
        std::fs::write(
            &path,
            format!("let micros = import \"micros\" in micros.system {{ modules = [ micros.profiles.minimal, {module} ] }}"),
        )
        .unwrap();
        micros_config::evaluate(&path).unwrap().config
    }

    /// A kernel whose modules have these `.modinfo` entries, by path.
    fn kernel(modules: &[(&str, &str)]) -> Kernel {
        let mut tree = Tree::new();
        let file = |bytes: Vec<u8>| Entry::file(Content::bytes(bytes), 0o644, "linux-image-test");
        tree.replace(
            TreePath::parse("/boot/vmlinuz-6.12").unwrap(),
            file(b"kernel".to_vec()),
        )
        .unwrap();
        tree.replace(
            TreePath::parse("/usr/lib/modules/6.12/modules.builtin").unwrap(),
            file(b"kernel/drivers/usb/core/usbcore.ko\n".to_vec()),
        )
        .unwrap();
        for (path, modinfo) in modules {
            tree.replace(
                TreePath::parse(&format!("/usr/lib/modules/6.12/kernel/{path}")).unwrap(),
                file(test_elf(modinfo)),
            )
            .unwrap();
        }
        Kernel::from_tree("linux-image-test", &tree).unwrap()
    }

    fn test_kernel() -> Kernel {
        kernel(&[
            ("drivers/net/mii.ko", "name=mii;depends="),
            ("drivers/net/usb/usbnet.ko", "name=usbnet;depends=mii,usbcore"),
            ("drivers/net/usb/cdc_ether.ko", "name=cdc_ether;depends=usbnet;alias=usb:v*p*d*dc*dsc*dp*ic02isc06ip00in*"),
            ("drivers/net/usb/smsc95xx.ko", "name=smsc95xx;depends=usbnet;alias=usb:v0424pEC00d*dc*dsc*dp*ic*isc*ip*in*"),
            ("drivers/net/tun.ko", "name=tun;alias=devname:net/tun;alias=char-major-10-200"),
            ("drivers/usb/dwc2/dwc2.ko", "name=dwc2;alias=of:N*T*Cbrcm,bcm2835-usb"),
            ("drivers/net/wireless/brcmfmac.ko", "name=brcmfmac;alias=sdio:c*v02D0d*;firmware=brcm/brcmfmac*-sdio.*.bin;firmware=brcm/brcmfmac43430-sdio.bin"),
            ("drivers/watchdog/softdog.ko", "name=softdog"),
        ])
    }

    #[test]
    fn modules_come_with_why_and_the_table_with_their_dependencies() {
        let asking = config(
            r#"{ boot.kernelModules.softdog = true,
                 boot.availableKernelModules = { dwc2 = true, "drivers/net" = true, nonesuch = true, "drivers/gpu" = true, "drivers/net/wireless" = false, smsc95xx = false },
                 boot.blacklistedKernelModules.cdc_ether = false }"#,
        );
        let selection = select(&asking, &test_kernel(), &FirmwarePackages::new()).unwrap();
        let why: BTreeMap<&str, &str> = selection
            .modules
            .iter()
            .map(|(n, w)| (n.as_str(), w.as_str()))
            .collect();
        assert_eq!(why["softdog"], "boot.kernelModules");
        assert_eq!(why["dwc2"], "boot.availableKernelModules.dwc2");
        assert_eq!(
            why["cdc_ether"],
            "boot.availableKernelModules.\"drivers/net\""
        );
        assert_eq!(
            why["usbnet"],
            "needed by cdc_ether, from boot.availableKernelModules.\"drivers/net\""
        );
        assert!(why.contains_key("mii"), "{why:?}");
        assert!(!why.contains_key("tun"), "tun drives no device: {why:?}");
        assert!(
            !why.contains_key("brcmfmac"),
            "its directory is switched off: {why:?}"
        );
        assert!(
            !why.contains_key("smsc95xx"),
            "switched off by name: {why:?}"
        );
        assert!(!why.contains_key("usbcore"), "built in: {why:?}");
        assert_eq!(selection.boot_order, ["softdog"]);
        assert_eq!(selection.warnings.len(), 2, "{:?}", selection.warnings);
        assert!(selection.warnings[0].contains("drivers/gpu"));
        assert!(selection.warnings[1].contains("no module nonesuch"));

        let table = micros_init::hardware::Table::parse(selection.table.as_deref().unwrap());
        assert_eq!(table.dir, "/usr/lib/modules/6.12");
        let found = table.modules_for("usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00");
        assert_eq!(found, ["cdc_ether"]);
        assert_eq!(
            table.load_order("cdc_ether"),
            ["mii", "usbnet", "cdc_ether"]
        );
        assert_eq!(
            table.modules_for("of:NusbT(null)Cbrcm,bcm2835-usb"),
            ["dwc2"]
        );
        assert!(table
            .modules_for("usb:v0424pEC00d0200dcFFdsc00dp02icFFisc00ipFFin00")
            .is_empty());

        // A blacklisted module is neither in the root nor in the table.
        let blacklisting = config(
            r#"{ boot.availableKernelModules."drivers/net/usb" = true, boot.blacklistedKernelModules.cdc_ether = true }"#,
        );
        let selection = select(&blacklisting, &test_kernel(), &FirmwarePackages::new()).unwrap();
        let names: Vec<&str> = selection.modules.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["mii", "usbnet", "smsc95xx"]);
        let table = micros_init::hardware::Table::parse(selection.table.as_deref().unwrap());
        assert!(table
            .modules_for("usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00")
            .is_empty());

        let off = config_without_autoload();
        let selection = select(&off, &test_kernel(), &FirmwarePackages::new()).unwrap();
        assert_eq!(selection.table, None);
    }

    fn config_without_autoload() -> Config {
        config("{ hardware.autoload = false, boot.availableKernelModules.dwc2 = true }")
    }

    #[test]
    fn only_the_firmware_the_modules_name_and_the_patterns_allow() {
        let mut tree = Tree::new();
        let file = |text: &str| {
            Entry::file(
                Content::bytes(text.as_bytes().to_vec()),
                0o644,
                "firmware-brcm80211",
            )
        };
        for (path, entry) in [
            (
                "/usr/lib/firmware/cypress/cyfmac43430-sdio.bin",
                file("43430"),
            ),
            (
                "/usr/lib/firmware/brcm/brcmfmac43430-sdio.bin",
                Entry::symlink("../cypress/cyfmac43430-sdio.bin", "firmware-brcm80211"),
            ),
            (
                "/usr/lib/firmware/brcm/brcmfmac4356-sdio.acme,board.bin",
                file("4356"),
            ),
            ("/usr/lib/firmware/brcm/brcmfmac4356-pcie.bin", file("pcie")),
            ("/usr/share/doc/firmware-brcm80211/copyright", file("text")),
        ] {
            tree.replace(TreePath::parse(path).unwrap(), entry).unwrap();
        }
        let packages: FirmwarePackages = [("firmware-brcm80211".to_owned(), tree)].into();
        let paths = |module: &str| -> Vec<String> {
            let selection = select(&config(module), &test_kernel(), &packages).unwrap();
            selection
                .firmware
                .iter()
                .map(|(p, _)| p.to_string())
                .collect()
        };
        assert_eq!(
            paths("{ boot.availableKernelModules.brcmfmac = true, hardware.firmware.firmware-brcm80211 = true }"),
            [
                "/usr/lib/firmware/brcm/brcmfmac43430-sdio.bin",
                "/usr/lib/firmware/brcm/brcmfmac4356-sdio.acme,board.bin",
                "/usr/lib/firmware/cypress/cyfmac43430-sdio.bin",
            ],
            "what brcmfmac names, and what the link points to; not the PCIe chip's"
        );
        assert_eq!(
            paths(
                r#"{ boot.availableKernelModules.brcmfmac = true, hardware.firmware.firmware-brcm80211 = ["brcm/brcmfmac43430-*"] }"#
            ),
            [
                "/usr/lib/firmware/brcm/brcmfmac43430-sdio.bin",
                "/usr/lib/firmware/cypress/cyfmac43430-sdio.bin",
            ]
        );
        assert!(
            paths("{ hardware.firmware.firmware-brcm80211 = true }").is_empty(),
            "without the module, none of its firmware"
        );
        let selection = select(
            &config("{ boot.availableKernelModules.brcmfmac = true, hardware.firmware.firmware-brcm80211 = true }"),
            &test_kernel(),
            &packages,
        )
        .unwrap();
        assert_eq!(
            &*selection.firmware[0].1.origin,
            "firmware for brcmfmac (hardware.firmware.firmware-brcm80211)"
        );
    }

    #[test]
    fn firmware_links_resolve_inside_the_firmware_tree() {
        let link = TreePath::parse("/usr/lib/firmware/brcm/brcmfmac43430-sdio.bin").unwrap();
        assert_eq!(
            resolve(&link, "../cypress/cyfmac43430-sdio.bin").map(|p| p.to_string()),
            Some("/usr/lib/firmware/cypress/cyfmac43430-sdio.bin".to_owned())
        );
        assert_eq!(
            resolve(&link, "brcmfmac43430-sdio.AP6212.txt").map(|p| p.to_string()),
            Some("/usr/lib/firmware/brcm/brcmfmac43430-sdio.AP6212.txt".to_owned())
        );
        assert_eq!(resolve(&link, "../../../../etc/shadow"), None);
        assert_eq!(resolve(&link, "/etc/shadow"), None);
    }
}
