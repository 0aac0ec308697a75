//! `micros build`: from a configuration, its lock and the cached packages
//! to the artifacts, written into a directory that replaces the previous
//! one only once complete.
//!
//! ```text
//! result/
//! ├── kernel           the kernel image from boot.kernel.package
//! ├── initrd           stage 1 and the modules to reach the root (cpio)
//! ├── root.squashfs    the root filesystem
//! ├── cmdline          the kernel command line
//! ├── run-vm           boots it in QEMU
//! └── manifest.json    platform, kernel, packages, artifacts with SHA-256,
//!                      the root by package, its setuid/setgid files and devices
//! ```
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use micros_config::model::{enabled, Compression as ConfigCompression, Config, Overlay};
use micros_debian::cache::Cache;
use micros_debian::deb::{data_tar, unpack_tar, DebError, UnpackOptions};
use micros_debian::lock::Lock;
use micros_image::{Compression, SquashfsCompressor, SquashfsOptions, Tree};
use sha2::{Digest, Sha256};

use crate::declared::Declared;
use crate::kernel::{Kernel, KernelError};
use crate::rootfs::{self, Package, RootfsError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no .deb file was given for the locked package {package}: run `micros fetch` to fetch the lock's packages")]
    FileNotFetched { package: String },
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Initrd(#[from] crate::initrd::InitrdError),
    #[error(transparent)]
    Image(#[from] micros_image::Error),
    #[error(transparent)]
    Tree(#[from] micros_image::TreeError),
    #[error("{artifact} is {} ({size} bytes), over its budget image.maxSize.\"{artifact}\" = \"{limit}\"\n{report}", crate::report::human(*size))]
    OverBudget {
        artifact: String,
        size: u64,
        limit: String,
        report: String,
    },
    #[error("sdImage: {0}\nhint: enable a model (hardware.raspberryPi.rpi2 = true, …); the firmware comes from Debian's raspi-firmware or hardware.raspberryPi.firmware")]
    Firmware(String),
    #[error("{option}: {message}")]
    Option {
        option: &'static str,
        message: String,
    },
    #[error("the lock has no package {0}: run `micros lock`")]
    NotLocked(String),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Which artifacts to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Toplevel,
    Kernel,
    Initrd,
    Squashfs,
    /// Everything, and the Raspberry Pi card `sd.img`.
    SdImage,
}

impl Attribute {
    pub fn parse(text: &str) -> Option<Attribute> {
        Some(match text {
            "toplevel" => Attribute::Toplevel,
            "kernel" => Attribute::Kernel,
            "initrd" => Attribute::Initrd,
            "squashfs" => Attribute::Squashfs,
            "sdImage" | "sdimage" => Attribute::SdImage,
            _ => return None,
        })
    }
}

/// Artifact name → (size, SHA-256).
pub type Artifacts = BTreeMap<String, (u64, String)>;

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct Built {
    pub directory: PathBuf,
    pub artifacts: Artifacts,
    pub kernel_version: String,
    /// Where the root filesystem's bytes go, when it was built.
    pub root_report: Vec<crate::report::Share>,
    /// The root filesystem's setuid/setgid files and device nodes, when it
    /// was built.
    pub special_files: Vec<crate::report::SpecialFile>,
    /// Maintainer-script lines MicrOS does not do, by package (only
    /// packages that have any).
    pub not_understood: Vec<(String, Vec<String>)>,
    /// What the build could not apply (systemd directives), for the user.
    pub warnings: Vec<String>,
}

/// The modules the initrd needs for the configuration.
/// The initrd's modules: (required, only available).
fn initrd_modules(config: &Config) -> (Vec<String>, Vec<String>) {
    let required: Vec<String> = enabled(&config.boot.initrd.kernel_modules)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let available = enabled(&config.boot.initrd.available_kernel_modules)
        .into_iter()
        .filter(|module| !required.iter().any(|m| m == module))
        .map(str::to_owned)
        .collect();
    (required, available)
}

/// The kernel command line.
pub fn cmdline(config: &Config) -> String {
    let mut words: Vec<String> = config
        .boot
        .console
        .iter()
        .map(|c| format!("console={c}"))
        .collect();
    words.push(format!("root={}", config.boot.root));
    words.push(format!("micros.rootwait={}", config.boot.root_wait));
    if config.boot.overlay == Overlay::Data {
        words.push("micros.overlay=data".to_owned());
        if let Some(device) = &config.boot.data_device {
            words.push(format!("micros.data={device}"));
        }
    }
    words.push("panic=10".to_owned());
    words.extend(config.boot.kernel_params.iter().cloned());
    words.join(" ")
}

/// The build's one timestamp: `SOURCE_DATE_EPOCH`, else the date of the
/// archive the lock was made from.
pub fn epoch(lock: &Lock) -> u64 {
    micros_image::tree::source_date_epoch(parse_release_date(&lock.date).unwrap_or(0))
}

/// `Sat, 12 Sep 2026 07:55:41 UTC` → seconds since 1970.
pub fn parse_release_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, _] = parts[..] else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u64
        + 1;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let clock: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [hour, minute, second] = clock[..] else {
        return None;
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Builds `attribute` for `config` into `out` (replacing it only once the
/// new one is complete). `debs` are the cached `.deb` files, by package.
pub fn build(
    config: &Config,
    config_path: &Path,
    lock: &Lock,
    debs: &Debs,
    cache: &Cache,
    attribute: Attribute,
    out: &Path,
) -> Result<Built, BuildError> {
    let config_dir = config_path.parent().unwrap_or(Path::new("."));
    let unpacked = unpack(config, lock, debs, cache)?;
    let epoch = epoch(lock);

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result".to_owned());
    let staging = parent.join(format!(".{name}.new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = write_artifacts(
        config, config_dir, &unpacked, epoch, attribute, &staging, lock,
    );
    let Written {
        artifacts,
        root_report,
        special_files,
        not_understood,
        warnings,
    } = match result {
        Ok(built) => built,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    // Swap the complete new directory in; the old one stays valid until then.
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old).map_err(io(out))?;
    }
    std::fs::rename(&staging, out).map_err(io(out))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(Built {
        directory: out.to_owned(),
        artifacts,
        kernel_version: unpacked.kernel.version,
        root_report,
        special_files,
        not_understood,
        warnings,
    })
}

/// What [`write_artifacts`] wrote, and what it found in the root.
struct Written {
    artifacts: Artifacts,
    root_report: Vec<crate::report::Share>,
    special_files: Vec<crate::report::SpecialFile>,
    not_understood: Vec<(String, Vec<String>)>,
    warnings: Vec<String>,
}

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
struct Unpacked {
    kernel: Kernel,
    /// The kernel packages' files (device trees for a Pi card).
    kernel_tree: Tree,
    /// raspi-firmware's files; it goes onto the Pi's boot partition.
    firmware_tree: Tree,
    /// `hardware.firmware`'s packages: the root takes the files its
    /// modules can ask for.
    hardware_firmware: crate::hardware::FirmwarePackages,
    /// The root's packages: name and decompressed data tar.
    data: Vec<(String, PathBuf)>,
    /// What the root's packages' maintainer scripts declare, by package.
    declared: BTreeMap<String, Declared>,
}

/// The kernel, and the other packages' decompressed data tars by name.
fn unpack(
    config: &Config,
    lock: &Lock,
    debs: &Debs,
    cache: &Cache,
) -> Result<Unpacked, BuildError> {
    let mut kernel_tree = Tree::new();
    let mut firmware_tree = Tree::new();
    let mut hardware_firmware = crate::hardware::FirmwarePackages::new();
    let mut data = Vec::new();
    let mut declared = BTreeMap::new();
    for (package, deb) in pair(lock, debs)? {
        let tar = data_tar(cache, &package.name, deb, &package.sha256)?;
        if package.name == "raspi-firmware" {
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
    Ok(Unpacked {
        kernel,
        kernel_tree,
        firmware_tree,
        hardware_firmware,
        data,
        declared,
    })
}

/// The Pi's boot firmware: from `hardware.raspberryPi.firmware` (a
/// directory) or Debian's raspi-firmware.
fn firmware(
    config: &Config,
    config_dir: &Path,
    tree: &Tree,
) -> Result<Vec<(String, micros_image::Content)>, BuildError> {
    let wanted = |name: &str| {
        name == "bootcode.bin"
            || (name.starts_with("start") && name.ends_with(".elf"))
            || (name.starts_with("fixup") && name.ends_with(".dat"))
    };
    let mut files = Vec::new();
    if let Some(dir) = &config.hardware.raspberry_pi.firmware {
        let dir = config_dir.join(dir);
        let entries = std::fs::read_dir(&dir).map_err(|source| BuildError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if wanted(&name) {
                let path = entry.path();
                let metadata = std::fs::metadata(&path).map_err(io(&path))?;
                files.push((name, micros_image::Content::whole_file(path, &metadata)));
            }
        }
    } else {
        for (path, entry) in tree.iter() {
            if let micros_image::Kind::File(content) = &entry.kind {
                let name = path.name();
                if path.to_string().starts_with("/usr/lib/raspi-firmware/") && wanted(name) {
                    files.push((name.to_owned(), content.clone()));
                }
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn as_packages<'a>(
    data: &'a [(String, PathBuf)],
    declared: &'a BTreeMap<String, Declared>,
) -> Vec<Package<'a>> {
    data.iter()
        .map(|(name, tar)| Package {
            name,
            data_tar: tar,
            declared: declared.get(name),
        })
        .collect()
}

/// The root filesystem's tree as `micros build` would write it (for
/// `micros why`), the names of the packages unpacked into it, and what
/// they declared.
pub fn root_tree(
    config: &Config,
    config_path: &Path,
    lock: &Lock,
    debs: &Debs,
    cache: &Cache,
) -> Result<(Tree, Vec<String>, Vec<Declared>), BuildError> {
    let config_dir = config_path.parent().unwrap_or(Path::new("."));
    let unpacked = unpack(config, lock, debs, cache)?;
    let packages = as_packages(&unpacked.data, &unpacked.declared);
    let assembled = rootfs::assemble(
        config,
        config_dir,
        &packages,
        &unpacked.kernel,
        &unpacked.hardware_firmware,
    )?;
    Ok((
        assembled.tree,
        unpacked.data.into_iter().map(|(name, _)| name).collect(),
        assembled.declared,
    ))
}

#[allow(clippy::too_many_arguments)]
fn write_artifacts(
    config: &Config,
    config_dir: &Path,
    unpacked: &Unpacked,
    epoch: u64,
    attribute: Attribute,
    dir: &Path,
    lock: &Lock,
) -> Result<Written, BuildError> {
    let mut root_report = Vec::new();
    let mut special_files = Vec::new();
    let mut not_understood = Vec::new();
    let mut warnings = Vec::new();
    let (kernel, data) = (&unpacked.kernel, &unpacked.data);
    let card = attribute == Attribute::SdImage;
    // Before any writing: a card needs a model to be made for.
    if card && !crate::sdimage::enabled(config) {
        return Err(BuildError::Firmware(
            "no Raspberry Pi model is enabled".into(),
        ));
    }
    let all = attribute == Attribute::Toplevel || card;
    let platform = config.platform.host.name();
    if all || attribute == Attribute::Kernel {
        let path = dir.join("kernel");
        let bytes = kernel.image.read().map_err(io(&path))?;
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    if all || attribute == Attribute::Initrd {
        // busybox-static, when installed, is the shell micros.onfailure=shell starts.
        let shell = if data.iter().any(|(name, _)| name == "busybox-static") {
            let packages: Vec<(&str, &Path)> = data
                .iter()
                .filter(|(name, _)| name == "busybox-static")
                .map(|(n, t)| (n.as_str(), t.as_path()))
                .collect();
            let mut busybox = Tree::new();
            for (name, tar) in packages {
                unpack_tar(name, tar, &mut busybox, UnpackOptions { merged_usr: true })?;
            }
            busybox
                .get(&micros_image::TreePath::parse("/usr/bin/busybox")?)
                .and_then(|e| match &e.kind {
                    micros_image::Kind::File(content) => Some(content.clone()),
                    _ => None,
                })
        } else {
            None
        };
        let (required, available) = initrd_modules(config);
        let mut initrd = crate::initrd::build(platform, kernel, &required, &available, shell)?;
        initrd.normalize(epoch)?;
        let compression = match config.boot.initrd.compression {
            ConfigCompression::Zstd => Compression::Zstd { level: 19 },
            ConfigCompression::Xz => Compression::Xz { level: 6 },
            ConfigCompression::Gzip => Compression::Gzip { level: 9 },
            ConfigCompression::None => Compression::None,
        };
        micros_image::write_cpio(&initrd, &dir.join("initrd"), compression)?;
    }
    if all || attribute == Attribute::Squashfs {
        let packages = as_packages(data, &unpacked.declared);
        let assembled = rootfs::assemble(
            config,
            config_dir,
            &packages,
            kernel,
            &unpacked.hardware_firmware,
        )?;
        warnings = assembled.warnings;
        not_understood = assembled
            .declared
            .into_iter()
            .filter(|declared| !declared.skipped.is_empty())
            .map(|declared| (declared.package, declared.skipped))
            .collect();
        let mut root = assembled.tree;
        let names: Vec<&str> = data.iter().map(|(name, _)| name.as_str()).collect();
        root_report = crate::report::by_source(&root, &names);
        special_files = crate::report::special_files(&root, &names);
        root.normalize(epoch)?;
        let compressor = match config.image.rootfs.compression {
            ConfigCompression::Xz => SquashfsCompressor::Xz,
            ConfigCompression::Gzip => SquashfsCompressor::Gzip { level: 9 },
            _ => SquashfsCompressor::Zstd { level: 15 },
        };
        let options = SquashfsOptions {
            compressor,
            block_size: config.image.rootfs.block_size,
            threads: 0,
        };
        micros_image::write_squashfs(&root, &dir.join("root.squashfs"), &options)?;
    }
    if all {
        let cmdline_path = dir.join("cmdline");
        std::fs::write(&cmdline_path, format!("{}\n", cmdline(config)))
            .map_err(io(&cmdline_path))?;
        let run_vm = dir.join("run-vm");
        std::fs::write(&run_vm, crate::qemu::run_vm_script(config)).map_err(io(&run_vm))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run_vm, std::fs::Permissions::from_mode(0o755))
            .map_err(io(&run_vm))?;
    }
    if card {
        let files = firmware(config, config_dir, &unpacked.firmware_tree)?;
        let mut seed = Sha256::new();
        for package in &lock.packages {
            seed.update(package.sha256.as_str().as_bytes());
        }
        let line = cmdline(config);
        seed.update(line.as_bytes());
        crate::sdimage::write(
            config,
            dir,
            &unpacked.kernel.image,
            &unpacked.kernel_tree,
            &files,
            &line,
            &seed.finalize(),
        )?;
    }
    let mut artifacts = BTreeMap::new();
    for name in [
        "kernel",
        "initrd",
        "root.squashfs",
        "cmdline",
        "run-vm",
        "sd.img",
    ] {
        // Hashed as it is read: a card image can be gigabytes.
        let path = dir.join(name);
        if path.exists() {
            let mut hash = Sha256::new();
            let size = std::fs::File::open(&path)
                .and_then(|mut file| std::io::copy(&mut file, &mut hash))
                .map_err(io(&path))?;
            artifacts.insert(name.to_owned(), (size, hex::encode(hash.finalize())));
        }
    }
    for (artifact, limit) in &config.image.max_size {
        if let Some((size, _)) = artifacts.get(artifact) {
            if *size > micros_config::model::size_bytes(limit) {
                return Err(BuildError::OverBudget {
                    artifact: artifact.clone(),
                    size: *size,
                    limit: limit.clone(),
                    report: crate::report::table(&root_report, 15),
                });
            }
        }
    }
    if all {
        let root_total: u64 = root_report.iter().map(|s| s.bytes).sum();
        let manifest = serde_json::json!({
            "platform": platform,
            "architecture": config.platform.host.debian_arch(),
            "kernel": { "package": config.boot.kernel.package, "version": kernel.version },
            "suite": lock.suite,
            "archiveDate": lock.date,
            "packages": lock.packages.iter().map(|p| serde_json::json!({"name": p.name, "version": p.version, "sha256": p.sha256})).collect::<Vec<_>>(),
            "artifacts": artifacts.iter().map(|(name, (size, sha))| (name.clone(), serde_json::json!({"size": size, "sha256": sha}))).collect::<serde_json::Map<_, _>>(),
            "rootBySource": root_report.iter().map(|s| serde_json::json!({
                "source": s.source,
                "bytes": s.bytes,
                "files": s.files,
                "share": if root_total == 0 { 0.0 } else { (s.bytes as f64 / root_total as f64 * 10_000.0).round() / 10_000.0 },
            })).collect::<Vec<_>>(),
            "specialFiles": special_files.iter().map(crate::report::SpecialFile::to_json).collect::<Vec<_>>(),
        });
        let path = dir.join("manifest.json");
        std::fs::write(
            &path,
            format!(
                "{}\n",
                serde_json::to_string_pretty(&manifest).expect("JSON")
            ),
        )
        .map_err(io(&path))?;
    }
    Ok(Written {
        artifacts,
        root_report,
        special_files,
        not_understood,
        warnings,
    })
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

    #[test]
    fn release_dates() {
        assert_eq!(parse_release_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_release_date("Sat, 12 Sep 2026 07:55:41 UTC"),
            Some(1_789_199_741)
        );
        assert_eq!(parse_release_date("garbage"), None);
    }
}
