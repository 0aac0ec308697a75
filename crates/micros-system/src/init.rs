//! The stage-1 binaries embedded at build time (see `build.rs`).
include!(concat!(env!("OUT_DIR"), "/init_binaries.rs"));

/// The static `/init` for a platform (`x86_64-linux`, …).
pub fn binary(platform: &str) -> Option<&'static [u8]> {
    INIT_BINARIES
        .iter()
        .find(|(name, _)| *name == platform)
        .map(|(_, bytes)| *bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ELF machine field of each embedded binary matches its platform,
    /// and each is statically linked (no program interpreter).
    #[test]
    fn every_platform_has_a_static_binary_for_its_machine() {
        // x86_64 and aarch64 are required; the others are checked when built.
        let expected = [
            ("x86_64-linux", 62u16, true),
            ("aarch64-linux", 183, true),
            ("armv7l-linux", 40, false),
            ("armv6l-linux", 40, false),
            ("riscv64-linux", 243, false),
        ];
        for (platform, machine, required) in expected {
            let Some(elf) = binary(platform) else {
                assert!(!required, "no init for {platform}");
                continue;
            };
            assert_eq!(&elf[0..4], b"\x7fELF", "{platform}");
            assert_eq!(
                u16::from_le_bytes([elf[18], elf[19]]),
                machine,
                "{platform}"
            );
            assert!(
                !elf.windows(16)
                    .any(|w| w == b"/lib/ld-musl-x86" || w == b"/lib/ld-linux-x8"),
                "{platform} is dynamically linked"
            );
            assert!(
                elf.len() < 1_000_000,
                "{platform}: {} bytes is not small",
                elf.len()
            );
        }
    }
}
