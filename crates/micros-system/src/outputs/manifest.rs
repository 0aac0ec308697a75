//! `manifest.json`: the platform, kernel, packages and every artifact with
//! its size and SHA-256, the root by source and its special files; and
//! `image.maxSize`, the budgets the artifacts must fit.
use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::squashfs::Root;
use crate::error::{io, BuildError};
use crate::system::System;

/// Artifact name → (size, SHA-256).
pub type Artifacts = BTreeMap<String, (u64, String)>;

/// The artifacts in `dir`, hashed as they are read (a card image can be
/// gigabytes).
pub fn artifacts(dir: &Path) -> Result<Artifacts, BuildError> {
    let mut artifacts = BTreeMap::new();
    for name in [
        "kernel",
        "initrd",
        "root.squashfs",
        "cmdline",
        "run-vm",
        "sd.img",
        "update.bundle",
    ] {
        let path = dir.join(name);
        if path.exists() {
            let mut hash = Sha256::new();
            let size = std::fs::File::open(&path)
                .and_then(|mut file| std::io::copy(&mut file, &mut hash))
                .map_err(io(&path))?;
            artifacts.insert(name.to_owned(), (size, hex::encode(hash.finalize())));
        }
    }
    Ok(artifacts)
}

/// Fails when an artifact is over its `image.maxSize`, with the root's
/// report to show where the bytes went.
pub fn check_budgets(
    system: &System<'_>,
    artifacts: &Artifacts,
    root: &Root,
) -> Result<(), BuildError> {
    for (artifact, limit) in &system.config.image.max_size {
        if let Some((size, _)) = artifacts.get(artifact) {
            if *size > micros_config::model::size_bytes(limit) {
                return Err(BuildError::OverBudget {
                    artifact: artifact.clone(),
                    size: *size,
                    limit: limit.clone(),
                    report: crate::report::table(&root.report, 15),
                });
            }
        }
    }
    Ok(())
}

pub fn write(
    system: &System<'_>,
    artifacts: &Artifacts,
    root: &Root,
    dir: &Path,
) -> Result<(), BuildError> {
    let (config, lock) = (system.config, system.lock);
    let root_total: u64 = root.report.iter().map(|s| s.bytes).sum();
    let manifest = serde_json::json!({
        "platform": config.platform.host.name(),
        "architecture": config.platform.host.debian_arch(),
        "kernel": { "package": config.boot.kernel.package, "version": system.kernel.version },
        "suite": lock.suite,
        "archiveDate": lock.date,
        "packages": lock.packages.iter().map(|p| serde_json::json!({"name": p.name, "version": p.version, "sha256": p.sha256})).collect::<Vec<_>>(),
        "artifacts": artifacts.iter().map(|(name, (size, sha))| (name.clone(), serde_json::json!({"size": size, "sha256": sha}))).collect::<serde_json::Map<_, _>>(),
        "rootBySource": root.report.iter().map(|s| serde_json::json!({
            "source": s.source,
            "bytes": s.bytes,
            "files": s.files,
            "share": if root_total == 0 { 0.0 } else { (s.bytes as f64 / root_total as f64 * 10_000.0).round() / 10_000.0 },
        })).collect::<Vec<_>>(),
        "specialFiles": root.special_files.iter().map(crate::report::SpecialFile::to_json).collect::<Vec<_>>(),
    });
    let path = dir.join("manifest.json");
    std::fs::write(
        &path,
        format!(
            "{}\n",
            serde_json::to_string_pretty(&manifest).expect("JSON")
        ),
    )
    .map_err(io(&path))
}
