//! The system a configuration describes, unpacked from its locked
//! packages once and read by every output (`outputs/`): the kernel and its
//! package's files, the Pi's boot firmware, the firmware packages drivers
//! load from, and the root's packages with what their maintainer scripts
//! declare. The root tree itself is assembled from them on demand
//! ([`System::root`]), since only some outputs need it.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use micros_config::model::Config;
use micros_debian::cache::Cache;
use micros_debian::deb::{data_tar, unpack_tar, UnpackOptions};
use micros_debian::lock::Lock;
use micros_image::{Content, Kind, Tree, TreePath};

use crate::declared::Declared;
use crate::error::BuildError;
use crate::kernel::Kernel;
use crate::rootfs::{self, Assembled, Package};

/// The cached `.deb` files, by package name.
pub type Debs = BTreeMap<String, PathBuf>;

/// Each locked package with its file, in lock order; a package without one
/// is an error naming it (files are paired by name, never by position).
fn pair<'a>(
    lock: &'a Lock,
    debs: &'a Debs,
) -> Result<Vec<(&'a micros_debian::lock::LockedPackage, &'a PathBuf)>, BuildError> {
    lock.packages
        .iter()
        .map(|package| {
            debs.get(&package.name)
                .map(|deb| (package, deb))
                .ok_or_else(|| BuildError::FileNotFetched {
                    package: package.name.clone(),
                })
        })
        .collect()
}

/// What the packages hold, sorted by where it goes.
pub struct System<'a> {
    pub config: &'a Config,
    /// The configuration's directory, which its relative paths start from.
    pub config_dir: &'a Path,
    pub lock: &'a Lock,
    /// The build's one timestamp (see [`crate::build::epoch`]).
    pub epoch: u64,
    pub kernel: Kernel,
    /// The kernel packages' files (device trees for a Pi card).
    pub kernel_tree: Tree,
    /// raspi-firmware's files, which go onto the Pi's boot partition, and
    /// U-Boot's (u-boot-qemu, u-boot-rpi), which boot the A/B disk.
    pub boot_firmware: Tree,
    /// `hardware.firmware`'s packages: the root takes the files its
    /// modules can ask for.
    pub hardware_firmware: crate::hardware::FirmwarePackages,
    /// The root's packages: name and decompressed data tar.
    pub data: Vec<(String, PathBuf)>,
    /// What the root's packages' maintainer scripts declare, by package.
    pub declared: BTreeMap<String, Declared>,
}

impl<'a> System<'a> {
    /// Unpacks the locked packages (`debs`, through the cache's
    /// decompressed data tars) by where they go.
    pub fn unpack(
        config: &'a Config,
        config_path: &'a Path,
        lock: &'a Lock,
        debs: &Debs,
        cache: &Cache,
    ) -> Result<System<'a>, BuildError> {
        let mut kernel_tree = Tree::new();
        let mut firmware_tree = Tree::new();
        let mut hardware_firmware = crate::hardware::FirmwarePackages::new();
        let mut data = Vec::new();
        let mut declared = BTreeMap::new();
        for (package, deb) in pair(lock, debs)? {
            let tar = data_tar(cache, &package.name, deb, &package.sha256)?;
            // The boot firmware goes to the boot partition, not the root.
            if package.name == "raspi-firmware"
                || crate::outputs::disk::UBOOT_PACKAGES.contains(&package.name.as_str())
            {
                unpack_tar(
                    &package.name,
                    &tar,
                    &mut firmware_tree,
                    UnpackOptions { merged_usr: true },
                )?;
            } else if config
                .hardware
                .firmware
                .get(&package.name)
                .is_some_and(|files| files.is_enabled())
            {
                let mut tree = Tree::new();
                unpack_tar(
                    &package.name,
                    &tar,
                    &mut tree,
                    UnpackOptions { merged_usr: true },
                )?;
                hardware_firmware.insert(package.name.clone(), tree);
            } else if package.name.starts_with("linux-image-") {
                unpack_tar(
                    &package.name,
                    &tar,
                    &mut kernel_tree,
                    UnpackOptions { merged_usr: true },
                )?;
            } else {
                declared.insert(
                    package.name.clone(),
                    Declared::from_scripts(&package.name, deb)?,
                );
                data.push((package.name.clone(), tar));
            }
        }
        if lock.package(&config.boot.kernel.package).is_none() {
            return Err(BuildError::NotLocked(config.boot.kernel.package.clone()));
        }
        let kernel = Kernel::from_tree(&config.boot.kernel.package, &kernel_tree)?;
        Ok(System {
            config,
            config_dir: config_path.parent().unwrap_or(Path::new(".")),
            lock,
            epoch: crate::build::epoch(lock),
            kernel,
            kernel_tree,
            boot_firmware: firmware_tree,
            hardware_firmware,
            data,
            declared,
        })
    }

    /// The names of the packages unpacked into the root.
    pub fn root_packages(&self) -> Vec<&str> {
        self.data.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The root tree, assembled: the packages' files and everything the
    /// configuration generates (not yet normalized).
    pub fn root(&self) -> Result<Assembled, BuildError> {
        let packages: Vec<Package<'_>> = self
            .data
            .iter()
            .map(|(name, tar)| Package {
                name,
                data_tar: tar,
                declared: self.declared.get(name),
            })
            .collect();
        Ok(rootfs::assemble(
            self.config,
            self.config_dir,
            &packages,
            &self.kernel,
            &self.hardware_firmware,
        )?)
    }

    /// busybox-static's binary, when the root has it: the shell stage 1
    /// starts for `micros.onfailure=shell`.
    pub fn busybox(&self) -> Result<Option<Content>, BuildError> {
        let mut busybox = Tree::new();
        for (name, tar) in self
            .data
            .iter()
            .filter(|(name, _)| name == "busybox-static")
        {
            unpack_tar(name, tar, &mut busybox, UnpackOptions { merged_usr: true })?;
        }
        Ok(busybox
            .get(&TreePath::parse("/usr/bin/busybox")?)
            .and_then(|entry| match &entry.kind {
                Kind::File(content) => Some(content.clone()),
                _ => None,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_paired_with_packages_by_name() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/qemu.lock");
        let lock = Lock::parse(path, &std::fs::read_to_string(path).unwrap()).unwrap();
        let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
        assert!(names.len() > 2, "{names:?}");
        // Given in reverse order, each file still goes to its package.
        let debs: Debs = names
            .iter()
            .rev()
            .map(|name| (name.to_string(), PathBuf::from(format!("{name}.deb"))))
            .collect();
        for (package, deb) in pair(&lock, &debs).unwrap() {
            assert_eq!(*deb, PathBuf::from(format!("{}.deb", package.name)));
        }
        // One missing: named, not shifted onto its neighbour.
        let mut short = debs.clone();
        short.remove(names[1]);
        let error = pair(&lock, &short).unwrap_err();
        assert!(
            error.to_string().contains(&format!(
                "no .deb file was given for the locked package {}",
                names[1]
            )),
            "{error}"
        );
    }
}
