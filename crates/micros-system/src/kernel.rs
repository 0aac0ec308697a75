//! The kernel of an unpacked kernel package: its image and its modules.
//!
//! ```text
//! /boot/vmlinuz-<version>
//! /usr/lib/modules/<version>/
//! ├── kernel/…/*.ko{,.xz,.zst,.gz}
//! ├── modules.builtin        modules compiled in (nothing to load)
//! └── modules.order
//! ```
use std::collections::{BTreeMap, BTreeSet};

use micros_image::{Content, Kind, Tree, TreePath};

use crate::kmod::{self, KmodError, ModInfo, ModuleIndex};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("the kernel package {package} has no /boot/vmlinuz-*\nhint: boot.kernel.package must name a Debian kernel image package, e.g. linux-image-cloud-amd64")]
    NoImage { package: String },
    #[error("the kernel package {package} has no /usr/lib/modules/{version}/")]
    NoModules { package: String, version: String },
    #[error("the kernel package {package} names its image vmlinuz-{version}, which is not a kernel version")]
    BadVersion { package: String, version: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Module(#[from] KmodError),
}

/// A module file of the kernel.
#[derive(Debug, Clone)]
pub struct ModuleFile {
    pub path: TreePath,
    pub content: Content,
}

#[derive(Debug, Clone)]
pub struct Kernel {
    pub version: String,
    pub image: Content,
    /// Module name → file.
    pub modules: BTreeMap<String, ModuleFile>,
    pub builtin: BTreeSet<String>,
}

impl Kernel {
    /// Finds the kernel in a tree holding an unpacked kernel package.
    pub fn from_tree(package: &str, tree: &Tree) -> Result<Kernel, KernelError> {
        let boot = TreePath::parse("/boot").expect("a valid path");
        let (version, image) = tree
            .children(&boot)
            .find_map(
                |(path, entry)| match (&entry.kind, path.name().strip_prefix("vmlinuz-")) {
                    (Kind::File(content), Some(version)) => {
                        Some((version.to_owned(), content.clone()))
                    }
                    _ => None,
                },
            )
            .ok_or_else(|| KernelError::NoImage {
                package: package.to_owned(),
            })?;
        // The version comes from a file name in the package: it must be one
        // path component, not `..`.
        let root = TreePath::parse(&format!("/usr/lib/modules/{version}"))
            .ok()
            .filter(|_| {
                !version.is_empty() && version != "." && version != ".." && !version.contains('/')
            })
            .ok_or_else(|| KernelError::BadVersion {
                package: package.to_owned(),
                version: version.clone(),
            })?;
        if tree.get(&root).is_none() {
            return Err(KernelError::NoModules {
                package: package.to_owned(),
                version,
            });
        }
        let mut modules = BTreeMap::new();
        let mut builtin = BTreeSet::new();
        for (path, entry) in tree.iter().filter(|(path, _)| path.starts_with(&root)) {
            let Kind::File(content) = &entry.kind else {
                continue;
            };
            let name = path.name();
            if name == "modules.builtin" {
                let text = content.read().map_err(|source| KernelError::Read {
                    path: path.to_string(),
                    source,
                })?;
                builtin.extend(
                    String::from_utf8_lossy(&text)
                        .lines()
                        .map(kmod::module_name),
                );
            } else if name.contains(".ko") {
                modules.insert(
                    kmod::module_name(name),
                    ModuleFile {
                        path: path.clone(),
                        content: content.clone(),
                    },
                );
            }
        }
        Ok(Kernel {
            version,
            image,
            modules,
            builtin,
        })
    }

    /// The uncompressed bytes of a module.
    pub fn module_bytes(&self, name: &str) -> Result<Vec<u8>, KernelError> {
        let file = self.modules.get(name).ok_or_else(|| KmodError::Missing {
            module: name.to_owned(),
            needed_by: None,
        })?;
        let raw = file.content.read().map_err(|source| KernelError::Read {
            path: file.path.to_string(),
            source,
        })?;
        Ok(kmod::decompress(file.path.name(), &raw)?)
    }

    /// `requested` with everything they need, in load order, reading only
    /// the modules involved (a generic kernel has thousands).
    pub fn load_order(&self, requested: &[String]) -> Result<Vec<String>, KernelError> {
        Ok(self
            .index(requested)?
            .load_order(requested, &self.builtin)?)
    }

    /// Where the root keeps this kernel's modules, flat and uncompressed.
    pub fn root_module_dir(&self) -> String {
        format!("/usr/lib/modules/{}", self.version)
    }

    /// A module's file in the root: `/usr/lib/modules/<version>/<name>.ko`.
    pub fn root_module_path(&self, name: &str) -> String {
        format!("{}/{name}.ko", self.root_module_dir())
    }

    /// A module's place in the package's module tree, below `kernel/`:
    /// `drivers/net/usb/usbnet.ko.xz`.
    pub fn tree_path(&self, name: &str) -> Option<String> {
        let path = self.modules.get(name)?.path.to_string();
        let prefix = format!("/usr/lib/modules/{}/kernel/", self.version);
        path.strip_prefix(&prefix).map(str::to_owned)
    }

    /// The names of the modules under `kernel/<dir>/` of the module tree
    /// (`drivers/net/usb`), sorted.
    pub fn modules_in(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_matches('/'));
        self.modules
            .keys()
            .filter(|name| self.tree_path(name).is_some_and(|p| p.starts_with(&prefix)))
            .cloned()
            .collect()
    }

    /// The metadata of `requested` and of everything they need (modules
    /// the kernel lacks or has built in are left out).
    pub fn index(&self, requested: &[String]) -> Result<ModuleIndex, KernelError> {
        Ok(self.read(requested)?.index)
    }

    /// [`Kernel::index`], with the uncompressed bytes it read: what goes
    /// into the root, decompressed once.
    pub fn read(&self, requested: &[String]) -> Result<Modules, KernelError> {
        let mut infos: BTreeMap<String, ModInfo> = BTreeMap::new();
        let mut bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut queue: Vec<String> = requested.iter().map(|n| n.replace('-', "_")).collect();
        while let Some(name) = queue.pop() {
            if infos.contains_key(&name)
                || self.builtin.contains(&name)
                || !self.modules.contains_key(&name)
            {
                continue;
            }
            let elf = self.module_bytes(&name)?;
            let info = kmod::modinfo(&name, &elf)?;
            queue.extend(
                info.depends
                    .iter()
                    .chain(&info.soft_pre)
                    .chain(&info.soft_post)
                    .cloned(),
            );
            bytes.insert(name.clone(), elf);
            infos.insert(name, info);
        }
        Ok(Modules {
            index: ModuleIndex::new(infos.into_values()),
            bytes,
        })
    }
}

/// Modules read from the kernel package: their metadata and bytes.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    pub index: ModuleIndex,
    /// Module name → uncompressed ELF.
    pub bytes: BTreeMap<String, Vec<u8>>,
}

#[cfg(test)]
mod version_tests {
    use super::*;
    use micros_image::Entry;

    #[test]
    fn an_image_named_vmlinuz_dot_dot_is_an_error_not_a_panic() {
        for version in ["..", "."] {
            let mut tree = Tree::new();
            tree.insert(
                TreePath::parse(&format!("/boot/vmlinuz-{version}")).unwrap(),
                Entry::file(Content::bytes(b"kernel".to_vec()), 0o644, "test"),
            )
            .unwrap();
            let error = Kernel::from_tree("linux-image-evil", &tree)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("which is not a kernel version")
                    || error.contains("has no /boot/vmlinuz"),
                "{version}: {error}"
            );
        }
    }
}
