//! `kernel`: the kernel image of `boot.kernel.package`, as the package has
//! it; and `kernel.gz`, the same compressed, which the slots of a system
//! built for updates hold when the package's image is uncompressed.
use std::io::Write as _;
use std::path::Path;

use crate::error::{io, BuildError};
use crate::system::System;

pub fn write(system: &System<'_>, dir: &Path) -> Result<(), BuildError> {
    let path = dir.join("kernel");
    let bytes = system.kernel.image.read().map_err(io(&path))?;
    std::fs::write(&path, bytes).map_err(io(&path))
}

/// The kernel file a slot holds, written next to `kernel` if need be; its
/// name in `dir`. An uncompressed arm64 `Image` (Debian's arm64 kernels
/// are, 38 MB of them) becomes `kernel.gz`: U-Boot's `booti` unpacks a
/// gzip stream itself, so a slot and a bundle carry a third of the bytes.
/// The stream has no name and no time: the same kernel compresses to the
/// same bytes. Self-unpacking kernels (x86's bzImage, arm's zImage) are
/// `kernel` as it is.
pub fn write_slot_kernel(dir: &Path) -> Result<&'static str, BuildError> {
    let source = dir.join("kernel");
    let bytes = std::fs::read(&source).map_err(io(&source))?;
    if !is_arm64_image(&bytes) {
        return Ok("kernel");
    }
    let path = dir.join(COMPRESSED);
    let file = std::fs::File::create(&path).map_err(io(&path))?;
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(std::io::BufWriter::new(file), flate2::Compression::new(6));
    encoder.write_all(&bytes).map_err(io(&path))?;
    encoder
        .finish()
        .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
        .map_err(io(&path))?;
    Ok(COMPRESSED)
}

const COMPRESSED: &str = "kernel.gz";

/// An arm64 `Image` has the magic `ARM\x64` at byte 56 (the kernel's
/// Documentation/arch/arm64/booting.rst).
fn is_arm64_image(bytes: &[u8]) -> bool {
    bytes.get(56..60) == Some(b"ARM\x64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        let mut bytes = vec![0u8; 4096];
        bytes[56..60].copy_from_slice(b"ARM\x64");
        bytes.extend((0..100_000u32).map(|i| (i % 251) as u8));
        bytes
    }

    #[test]
    fn an_arm64_image_is_compressed_the_same_way_every_time_and_unpacks_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kernel"), image()).unwrap();
        assert_eq!(write_slot_kernel(dir.path()).unwrap(), "kernel.gz");
        let first = std::fs::read(dir.path().join("kernel.gz")).unwrap();
        assert!(first.len() < image().len() / 4);
        write_slot_kernel(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("kernel.gz")).unwrap(), first);
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&first[..]), &mut unpacked)
            .unwrap();
        assert_eq!(unpacked, image());
    }

    #[test]
    fn a_kernel_that_unpacks_itself_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut bzimage = image();
        bzimage[56..60].copy_from_slice(b"\0\0\0\0");
        bzimage[0x202..0x206].copy_from_slice(b"HdrS");
        std::fs::write(dir.path().join("kernel"), bzimage).unwrap();
        assert_eq!(write_slot_kernel(dir.path()).unwrap(), "kernel");
        assert!(!dir.path().join("kernel.gz").exists());
    }
}
