//! The device binaries embedded at build time (see `build.rs`): stage 1
//! (`micros-init`) and the update program (`micros-update`).
include!(concat!(env!("OUT_DIR"), "/init_binaries.rs"));

/// The static `/init` for a platform (`x86_64-linux`, …).
pub fn binary(platform: &str) -> Option<&'static [u8]> {
    INIT_BINARIES
        .iter()
        .find(|(name, _)| *name == platform)
        .map(|(_, bytes)| *bytes)
}

/// The static `micros-update` for a platform.
pub fn update_binary(platform: &str) -> Option<&'static [u8]> {
    UPDATE_BINARIES
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
        // Every platform `platform.host` accepts has one.
        let expected = [
            ("x86_64-linux", 62u16),
            ("aarch64-linux", 183),
            ("armv7l-linux", 40),
            ("armv6l-linux", 40),
            ("riscv64-linux", 243),
        ];
        assert_eq!(INIT_BINARIES.len(), expected.len());
        assert_eq!(UPDATE_BINARIES.len(), expected.len());
        let both = expected.iter().flat_map(|&(platform, machine)| {
            [
                (platform, machine, binary(platform)),
                (platform, machine, update_binary(platform)),
            ]
        });
        for (platform, machine, elf) in both {
            let elf = elf.unwrap_or_else(|| panic!("no binary for {platform}"));
            assert_eq!(&elf[0..4], b"\x7fELF", "{platform}");
            assert_eq!(
                u16::from_le_bytes([elf[18], elf[19]]),
                machine,
                "{platform}"
            );
            // No program header asks for an interpreter (PT_INTERP = 3):
            // statically linked.
            let wide = elf[4] == 2;
            let word = |at: usize, size: usize| {
                elf[at..at + size]
                    .iter()
                    .rev()
                    .fold(0usize, |n, &b| (n << 8) | usize::from(b))
            };
            let (phoff, phentsize, phnum) = if wide {
                (word(32, 8), word(54, 2), word(56, 2))
            } else {
                (word(28, 4), word(42, 2), word(44, 2))
            };
            for header in 0..phnum {
                let kind = word(phoff + header * phentsize, 4);
                assert_ne!(kind, 3, "{platform} is dynamically linked");
            }
            assert!(
                elf.len() < 200_000,
                "{platform}: {} bytes is not small",
                elf.len()
            );
        }
    }
}
