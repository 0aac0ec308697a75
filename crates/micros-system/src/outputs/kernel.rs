//! `kernel`: the kernel image of `boot.kernel.package`, as the package has it.
use std::path::Path;

use crate::error::{io, BuildError};
use crate::system::System;

pub fn write(system: &System<'_>, dir: &Path) -> Result<(), BuildError> {
    let path = dir.join("kernel");
    let bytes = system.kernel.image.read().map_err(io(&path))?;
    std::fs::write(&path, bytes).map_err(io(&path))
}
