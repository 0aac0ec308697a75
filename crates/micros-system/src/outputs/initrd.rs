//! `initrd`: stage 1 (micros-init), the modules that reach the root, and
//! busybox for `micros.onfailure=shell` when the root has it; a cpio
//! archive compressed as `boot.initrd.compression` says.
use std::path::Path;

use micros_config::model::{enabled, Compression as ConfigCompression, Config};
use micros_image::Compression;

use crate::error::BuildError;
use crate::system::System;

/// The initrd's modules: (required, only available). A blacklisted module
/// is not made available (one both required and blacklisted is refused
/// when the configuration is evaluated).
fn initrd_modules(config: &Config) -> (Vec<String>, Vec<String>) {
    let required: Vec<String> = enabled(&config.boot.initrd.kernel_modules)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let blacklisted = enabled(&config.boot.blacklisted_kernel_modules);
    let available = enabled(&config.boot.initrd.available_kernel_modules)
        .into_iter()
        .filter(|module| !required.iter().any(|m| m == module))
        .filter(|module| !blacklisted.contains(module))
        .map(str::to_owned)
        .collect();
    (required, available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blacklist_wins_over_availability() {
        let place = tempfile::tempdir().unwrap();
        let path = place.path().join("system.ncl");
        std::fs::write(
            &path,
            "let micros = import \"micros\" in micros.system { modules = [ micros.profiles.qemu, { boot.blacklistedKernelModules.virtio_console = true, boot.initrd.kernelModules.ext4 = true } ] }",
        )
        .unwrap();
        let config = micros_config::evaluate(&path).unwrap().config;
        let (required, available) = initrd_modules(&config);
        assert_eq!(required, ["ext4"]);
        assert!(available.iter().any(|m| m == "virtio_blk"), "{available:?}");
        assert!(
            !available.iter().any(|m| m == "virtio_console"),
            "{available:?}"
        );

        std::fs::write(
            &path,
            "let micros = import \"micros\" in micros.system { modules = [ micros.profiles.qemu, { boot.blacklistedKernelModules.ext4 = true, boot.initrd.kernelModules.ext4 = true } ] }",
        )
        .unwrap();
        let error = micros_config::evaluate(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("both blacklisted and loaded"), "{error}");
    }
}

pub fn write(system: &System<'_>, dir: &Path) -> Result<(), BuildError> {
    let config = system.config;
    let (required, available) = initrd_modules(config);
    let mut initrd = crate::initrd::build(
        config.platform.host.name(),
        &system.kernel,
        &required,
        &available,
        system.busybox()?,
    )?;
    initrd.normalize(system.epoch)?;
    let compression = match config.boot.initrd.compression {
        ConfigCompression::Zstd => Compression::Zstd { level: 19 },
        ConfigCompression::Xz => Compression::Xz { level: 6 },
        ConfigCompression::Gzip => Compression::Gzip { level: 9 },
        ConfigCompression::None => Compression::None,
    };
    micros_image::write_cpio(&initrd, &dir.join("initrd"), compression)?;
    Ok(())
}
