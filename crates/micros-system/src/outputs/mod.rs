//! The outputs of a build, one file each, every one a function of the
//! unpacked [`System`] writing into the build's directory:
//!
//! ```text
//! kernel.rs    kernel           the kernel image
//! initrd.rs    initrd           stage 1 and the modules that reach the root
//! squashfs.rs  root.squashfs    the root filesystem, and where its bytes go
//! toplevel.rs  cmdline, run-vm  the kernel command line; QEMU for it
//! sdimage.rs   sd.img           the Raspberry Pi card
//! manifest.rs  manifest.json    what was built, with sizes and hashes
//! ```
use std::path::Path;

use crate::build::Attribute;
use crate::error::BuildError;
use crate::system::System;

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
pub fn write(system: &System<'_>, attribute: Attribute, dir: &Path) -> Result<Written, BuildError> {
    let card = attribute == Attribute::SdImage;
    // Before any writing: a card needs a model to be made for.
    if card && !sdimage::enabled(system.config) {
        return Err(BuildError::Firmware(
            "no Raspberry Pi model is enabled".into(),
        ));
    }
    let all = attribute == Attribute::Toplevel || card;
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
    let artifacts = manifest::artifacts(dir)?;
    manifest::check_budgets(system, &artifacts, &root)?;
    if all {
        manifest::write(system, &artifacts, &root, dir)?;
    }
    Ok(Written { artifacts, root })
}
