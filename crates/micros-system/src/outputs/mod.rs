//! The outputs of a build, one file each, every one a function of the
//! unpacked [`System`] writing into the build's directory:
//!
//! ```text
//! kernel.rs    kernel           the kernel image
//!              kernel.gz        the same, compressed, as slots hold it
//! initrd.rs    initrd           stage 1 and the modules that reach the root
//! squashfs.rs  root.squashfs    the root filesystem, and where its bytes go
//! toplevel.rs  cmdline, run-vm  the kernel command line; QEMU for it
//! sdimage.rs   sd.img           the Raspberry Pi card
//! disk.rs      disk.img         the A/B disk (system.update.enable), and
//!              u-boot.bin       the firmware QEMU boots it with
//! bundle.rs    update.bundle    kernel, initrd and root, signed for devices
//! manifest.rs  manifest.json    what was built, with sizes and hashes
//! ```
use std::path::Path;

use crate::build::{Attribute, Request};
use crate::error::BuildError;
use crate::system::System;

pub mod bundle;
pub mod disk;
pub mod initrd;
pub mod kernel;
pub mod manifest;
pub mod sdimage;
pub mod squashfs;
pub mod toplevel;

/// What the outputs wrote, and what they found in the root.
pub struct Written {
    pub artifacts: manifest::Artifacts,
    pub root: squashfs::Root,
}

/// Writes the outputs `attribute` asks for into `dir`.
pub fn write(system: &System<'_>, request: Request<'_>, dir: &Path) -> Result<Written, BuildError> {
    let attribute = request.attribute;
    let card = attribute == Attribute::SdImage;
    let update = attribute == Attribute::Update;
    let disk = attribute == Attribute::Disk;
    // Before any writing: a bundle needs its key.
    let signing_key = match (update, request.signing_key) {
        (true, None) => return Err(BuildError::NoSigningKey),
        (_, key) => key,
    };
    // Before any writing: a card needs a model to be made for.
    if card && !sdimage::enabled(system.config) {
        return Err(BuildError::Firmware(
            "no Raspberry Pi model is enabled".into(),
        ));
    }
    // Before any writing: the A/B disk needs a system built for it; a
    // Pi's is its card.
    let pi = sdimage::enabled(system.config);
    let updatable = system.config.system.update.enable;
    if disk && pi {
        return Err(BuildError::Option {
            option: "hardware.raspberryPi",
            message: "a Raspberry Pi's A/B disk is its SD card: micros build -A sdImage".into(),
        });
    }
    if disk || (card && updatable) {
        disk::check(system.config)?;
    }
    // A system built for updates boots from its disk (`micros run`); a
    // Pi card built for updates is that disk.
    let all = attribute == Attribute::Toplevel || card || update || disk;
    let disk =
        disk || (card && updatable) || (attribute == Attribute::Toplevel && updatable && !pi);
    let card = card && !updatable;
    if all || attribute == Attribute::Kernel {
        kernel::write(system, dir)?;
    }
    if all || attribute == Attribute::Initrd {
        initrd::write(system, dir)?;
    }
    let root = if all || attribute == Attribute::Squashfs {
        squashfs::write(system, dir)?
    } else {
        squashfs::Root::default()
    };
    if all {
        toplevel::write(system, dir)?;
    }
    if card {
        sdimage::write(system, dir)?;
    }
    let (slot_kernel, slot_trees) = if disk || update {
        (kernel::write_slot_kernel(dir)?, disk::slot_trees(system)?)
    } else {
        ("kernel", disk::SlotTrees::default())
    };
    if disk {
        disk::write(system, dir, slot_kernel, &slot_trees)?;
    }
    if let (true, Some(key)) = (update, signing_key) {
        bundle::write(system, dir, slot_kernel, &slot_trees, key)?;
    }
    let artifacts = manifest::artifacts(dir)?;
    manifest::check_budgets(system, &artifacts, &root)?;
    if all {
        manifest::write(system, &artifacts, &root, dir)?;
    }
    Ok(Written { artifacts, root })
}
