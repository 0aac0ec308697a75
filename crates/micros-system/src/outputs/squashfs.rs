//! `root.squashfs`: the assembled root, normalized to the build's one
//! timestamp and compressed as `image.rootfs` says; with where its bytes
//! go, its special files and what the packages' scripts asked for that
//! MicrOS did not do.
use std::path::Path;

use micros_config::model::Compression as ConfigCompression;
use micros_image::{SquashfsCompressor, SquashfsOptions};

use crate::error::BuildError;
use crate::report::{Share, SpecialFile};
use crate::system::System;

/// What the written root holds, for the build's report and manifest.
#[derive(Debug, Clone, Default)]
pub struct Root {
    pub report: Vec<Share>,
    pub special_files: Vec<SpecialFile>,
    /// Maintainer-script lines MicrOS does not do, by package.
    pub not_understood: Vec<(String, Vec<String>)>,
    pub warnings: Vec<String>,
}

pub fn write(system: &System<'_>, dir: &Path) -> Result<Root, BuildError> {
    let config = system.config;
    let assembled = system.root()?;
    let not_understood = assembled
        .declared
        .into_iter()
        .filter(|declared| !declared.skipped.is_empty())
        .map(|declared| (declared.package, declared.skipped))
        .collect();
    let mut root = assembled.tree;
    let names = system.root_packages();
    let report = crate::report::by_source(&root, &names);
    let special_files = crate::report::special_files(&root, &names);
    root.normalize(system.epoch)?;
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
    Ok(Root {
        report,
        special_files,
        not_understood,
        warnings: assembled.warnings,
    })
}
