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
//!
//! The build is a pipeline: the configuration (evaluated) and its lock
//! (resolved, fetched) → the unpacked [`System`] → the outputs
//! (`outputs/`, one file each), written into a staging directory that
//! replaces the previous result only once complete.
use std::path::{Path, PathBuf};

use micros_config::model::Config;
use micros_debian::cache::Cache;
use micros_debian::lock::Lock;
use micros_image::Tree;

use crate::declared::Declared;
use crate::error::io;
use crate::system::System;

pub use crate::error::BuildError;
pub use crate::outputs::manifest::Artifacts;
pub use crate::outputs::toplevel::cmdline;
pub use crate::system::Debs;

/// Which artifacts to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Toplevel,
    Kernel,
    Initrd,
    Squashfs,
    /// Everything, and the Raspberry Pi card `sd.img`.
    SdImage,
    /// Everything, and `update.bundle`, signed.
    Update,
    /// Everything, and the A/B disk `disk.img` with `u-boot.bin`.
    Disk,
}

/// What to build, and with which key to sign an update bundle.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub attribute: Attribute,
    /// The update signing key's secret seed (`micros keygen`).
    pub signing_key: Option<&'a [u8; 32]>,
}

impl Attribute {
    pub fn parse(text: &str) -> Option<Attribute> {
        Some(match text {
            "toplevel" => Attribute::Toplevel,
            "kernel" => Attribute::Kernel,
            "initrd" => Attribute::Initrd,
            "squashfs" => Attribute::Squashfs,
            "sdImage" | "sdimage" => Attribute::SdImage,
            "update" => Attribute::Update,
            "disk" => Attribute::Disk,
            _ => return None,
        })
    }
}

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
    request: Request<'_>,
    out: &Path,
) -> Result<Built, BuildError> {
    let system = System::unpack(config, config_path, lock, debs, cache)?;

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
    let written = match crate::outputs::write(&system, request, &staging) {
        Ok(written) => written,
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
    let root = written.root;
    Ok(Built {
        directory: out.to_owned(),
        artifacts: written.artifacts,
        kernel_version: system.kernel.version,
        root_report: root.report,
        special_files: root.special_files,
        not_understood: root.not_understood,
        warnings: root.warnings,
    })
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
    let system = System::unpack(config, config_path, lock, debs, cache)?;
    let assembled = system.root()?;
    let names = system
        .root_packages()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((assembled.tree, names, assembled.declared))
}

#[cfg(test)]
mod tests {
    use super::*;

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
