//! `update.bundle`: what a device installs into its other slot, the
//! kernel, initrd and root just written (and a Pi's device trees), behind a manifest (version,
//! platform, boards, sizes, every 64 KiB block's SHA-256) signed with the
//! update key (see `micros_update::bundle` for the format). The parts are
//! read as they are hashed and copied, never whole into memory.
use std::io::{Read, Write};
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use micros_update::bundle::{self, PartHasher};
use micros_update::version::Version;

use crate::error::{io, BuildError};
use crate::system::System;

/// The payload's block size: what the device verifies, then writes, at a
/// time.
pub const BLOCK_SIZE: u32 = 64 * 1024;

/// `kernel` names the kernel file in `dir` the slot holds
/// (`kernel::write_slot_kernel`), `trees` its device trees
/// (`disk::slot_trees`).
pub fn write(
    system: &System<'_>,
    dir: &Path,
    kernel: &str,
    trees: &super::disk::SlotTrees,
    signing_key: &[u8; 32],
) -> Result<(), BuildError> {
    let update = &system.config.system.update;
    let version = Version::parse(&update.version).map_err(|error| BuildError::Option {
        option: "system.update.version",
        message: format!("`{}`: {error}", update.version),
    })?;
    // The artifacts that make a slot, in the bundle's order, and the
    // device trees after them.
    let parts = [kernel, "initrd", "root.squashfs"];
    let mut hashed = vec![
        hash(dir, parts[0])?,
        hash(dir, parts[1])?,
        hash(dir, parts[2])?,
    ];
    if !trees.trees.is_empty() {
        let mut hasher = PartHasher::new(BLOCK_SIZE);
        hasher.update(&trees.part);
        hashed.push((trees.part.len() as u64, hasher));
    }
    let manifest = bundle::manifest(
        version,
        system.config.platform.host.name(),
        update.compatible.clone(),
        &super::disk::slot_cmdline(system.config)?,
        trees.trees.clone(),
        BLOCK_SIZE,
        hashed,
    );
    let text = manifest.to_text();
    let signature = SigningKey::from_bytes(signing_key)
        .sign(&bundle::signed_message(&text))
        .to_bytes();
    let path = dir.join("update.bundle");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
    out.write_all(&bundle::header(&text, &signature))
        .map_err(io(&path))?;
    for name in parts {
        let part = dir.join(name);
        let mut file = std::fs::File::open(&part).map_err(io(&part))?;
        std::io::copy(&mut file, &mut out).map_err(io(&path))?;
    }
    out.write_all(&trees.part).map_err(io(&path))?;
    out.into_inner()
        .map_err(|error| io(&path)(error.into_error()))?
        .sync_all()
        .map_err(io(&path))
}

/// The size and block hashes of the part `name` in `dir`, read in 1 MiB
/// pieces.
fn hash(dir: &Path, name: &str) -> Result<(u64, PartHasher), BuildError> {
    let path = &dir.join(name);
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = PartHasher::new(BLOCK_SIZE);
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io(path))?;
        if n == 0 {
            return Ok((size, hasher));
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
}
