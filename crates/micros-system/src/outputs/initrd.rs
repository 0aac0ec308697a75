//! `initrd`: stage 1 (micros-init), the modules that reach the root, and
//! busybox for `micros.onfailure=shell` when the root has it; a cpio
//! archive compressed as `boot.initrd.compression` says.
use std::path::Path;

use micros_config::model::{enabled, Compression as ConfigCompression, Config};
use micros_image::Compression;

use crate::error::BuildError;
use crate::system::System;

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
