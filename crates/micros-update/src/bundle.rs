//! An update bundle's bytes, and the device's streaming check of them.
//!
//! ```text
//! "MICROSUP"              magic
//! u32 LE                  format (1)
//! u32 LE                  manifest length (at most 8 MiB)
//! manifest                its text (manifest.rs)
//! [u8; 64]                ed25519 signature of "micros-update-manifest-v1\0" + manifest
//! kernel, initrd, root    the parts' bytes, back to back, as the manifest sizes them
//! ```
//!
//! The device reads the header, checks the signature against its trusted
//! keys, then the platform, board and version, before it takes a single
//! byte of payload; then each block is hashed and handed on only when it
//! matches the signed manifest, so a corrupt bundle is refused at the
//! first bad block, having written nothing unverified, and the device
//! never holds more than one block.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::manifest::{block_count, hex, Digest, Manifest, ManifestError};
use crate::version::Version;

pub const MAGIC: &[u8; 8] = b"MICROSUP";
pub const FORMAT: u32 = 1;
pub const MAX_MANIFEST: usize = 8 << 20;
/// What the signature covers, before the manifest: a signature made for
/// anything else never verifies here.
pub const CONTEXT: &[u8] = b"micros-update-manifest-v1\0";
/// How a public key is written (`system.update.trustedKeys`).
pub const PUBLIC_KEY_PREFIX: &str = "micros-ed25519:";

/// The message a bundle's signature signs.
pub fn signed_message(manifest_text: &str) -> Vec<u8> {
    in_context(CONTEXT, manifest_text)
}

/// `text` after a signature's `context`: a signature made for one kind of
/// text never verifies as another.
pub fn in_context(context: &[u8], text: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(context.len() + text.len());
    message.extend_from_slice(context);
    message.extend_from_slice(text.as_bytes());
    message
}

/// Whether one of `keys` made `signature` of `message`.
pub fn signed_by_any(keys: &[[u8; 32]], message: &[u8], signature: &[u8; 64]) -> bool {
    let signature = Signature::from_bytes(signature);
    keys.iter().any(|key| {
        VerifyingKey::from_bytes(key)
            .is_ok_and(|key| key.verify_strict(message, &signature).is_ok())
    })
}

/// The bundle's bytes before its payload.
pub fn header(manifest_text: &str, signature: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + manifest_text.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(manifest_text.len() as u32).to_le_bytes());
    out.extend_from_slice(manifest_text.as_bytes());
    out.extend_from_slice(signature);
    out
}

/// `micros-ed25519:<64 hex digits>` → the key's bytes.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    crate::manifest::unhex(text.trim().strip_prefix(PUBLIC_KEY_PREFIX)?)
}

/// How a signing key's secret seed is written (`micros keygen`'s file).
pub const SECRET_KEY_PREFIX: &str = "micros-ed25519-secret:";

pub fn parse_secret_key(text: &str) -> Option<[u8; 32]> {
    crate::manifest::unhex(text.trim().strip_prefix(SECRET_KEY_PREFIX)?)
}

pub fn format_secret_key(seed: &[u8; 32]) -> String {
    let mut text = String::from(SECRET_KEY_PREFIX);
    text.push_str(&hex(seed));
    text
}

/// The public half of a signing key's seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

pub fn format_public_key(key: &[u8; 32]) -> String {
    let mut text = String::from(PUBLIC_KEY_PREFIX);
    text.push_str(&hex(key));
    text
}

/// Hashes a part block by block as it streams by: what the host writes
/// into the manifest, and what the device compares with it.
pub struct PartHasher {
    block_size: usize,
    whole: Sha256,
    block: Sha256,
    in_block: usize,
    pub blocks: Vec<Digest>,
}

impl PartHasher {
    pub fn new(block_size: u32) -> PartHasher {
        PartHasher {
            block_size: block_size as usize,
            whole: Sha256::new(),
            block: Sha256::new(),
            in_block: 0,
            blocks: Vec::new(),
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.whole.update(bytes);
        while !bytes.is_empty() {
            let take = (self.block_size - self.in_block).min(bytes.len());
            self.block.update(&bytes[..take]);
            self.in_block += take;
            bytes = &bytes[take..];
            if self.in_block == self.block_size {
                self.blocks.push(self.block.finalize_reset().into());
                self.in_block = 0;
            }
        }
    }

    /// (the whole part's digest, each block's).
    pub fn finish(mut self) -> (Digest, Vec<Digest>) {
        if self.in_block > 0 {
            self.blocks.push(self.block.finalize().into());
        }
        (self.whole.finalize().into(), self.blocks)
    }
}

/// What the device expects of a bundle.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub trusted_keys: Vec<[u8; 32]>,
    pub platform: String,
    pub board: String,
    /// The version it runs, if it knows one.
    pub installed: Option<Version>,
    pub allow_downgrade: bool,
}

/// Why a bundle is refused: one line each, naming what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotABundle,
    UnknownFormat(u32),
    ManifestTooLarge(usize),
    Unsigned,
    UntrustedKey,
    Manifest(ManifestError),
    WrongPlatform { bundle: String, device: String },
    WrongBoard { bundle: Vec<String>, device: String },
    Older { bundle: Version, installed: Version },
    CorruptBlock { part: &'static str, block: u64 },
    CorruptPart { part: &'static str },
    Truncated { part: &'static str, missing: u64 },
    TrailingData,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotABundle => f.write_str("not a MicrOS update bundle (no MICROSUP header)"),
            Refusal::UnknownFormat(n) => write!(f, "bundle format {n} is newer than this device understands; update in steps"),
            Refusal::ManifestTooLarge(n) => write!(f, "the bundle's manifest claims {n} bytes, more than any bundle has"),
            Refusal::Unsigned => f.write_str("the bundle is not signed: build it with a signing key (micros build -A update --key …)"),
            Refusal::UntrustedKey => f.write_str("the bundle is signed by a key this device does not trust (system.update.trustedKeys), or its manifest was changed after signing"),
            Refusal::Manifest(error) => write!(f, "the bundle's manifest is malformed: {error}"),
            Refusal::WrongPlatform { bundle, device } => write!(f, "the bundle is for {bundle}, this device is {device}"),
            Refusal::WrongBoard { bundle, device } => write!(f, "the bundle is for {}, not this board ({device})", bundle.join(", ")),
            Refusal::Older { bundle, installed } => write!(f, "the bundle's version {bundle} is older than the installed {installed} (deploy with --allow-downgrade to go back)"),
            Refusal::CorruptBlock { part, block } => write!(f, "the bundle is corrupt: block {block} of its {part} does not match the signed manifest"),
            Refusal::CorruptPart { part } => write!(f, "the bundle is corrupt: its {part} does not match the signed manifest"),
            Refusal::Truncated { part, missing } => write!(f, "the bundle is truncated: {missing} bytes of its {part} are missing"),
            Refusal::TrailingData => f.write_str("the bundle has bytes after its last part"),
        }
    }
}

/// A verified stretch of a part, ready to be written at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index into [`crate::manifest::PARTS`].
    pub part: usize,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

enum State {
    Header(Vec<u8>),
    Payload {
        manifest: alloc::boxed::Box<Manifest>,
        part: usize,
        offset: u64,
        block_index: usize,
        buffer: Vec<u8>,
        whole: Sha256,
    },
    Refused(Refusal),
}

/// The device's check of a bundle as it arrives, in any chunks.
pub struct Verifier {
    expect: Expectations,
    state: State,
}

/// The manifest at the start of a bundle's bytes, once its signature by
/// one of `keys` is checked, and where the payload starts; None while the
/// header is incomplete. Checks nothing the manifest says.
pub fn signed_manifest(
    buffer: &[u8],
    keys: &[[u8; 32]],
) -> Result<Option<(Manifest, usize)>, Refusal> {
    if buffer.len() < 16 {
        if !MAGIC.starts_with(&buffer[..buffer.len().min(8)]) {
            return Err(Refusal::NotABundle);
        }
        return Ok(None);
    }
    if &buffer[..8] != MAGIC {
        return Err(Refusal::NotABundle);
    }
    let format = u32::from_le_bytes(buffer[8..12].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(Refusal::UnknownFormat(format));
    }
    let length = u32::from_le_bytes(buffer[12..16].try_into().expect("4 bytes")) as usize;
    if length > MAX_MANIFEST {
        return Err(Refusal::ManifestTooLarge(length));
    }
    let end = 16 + length + 64;
    if buffer.len() < end {
        return Ok(None);
    }
    let text = core::str::from_utf8(&buffer[16..16 + length])
        .map_err(|_| Refusal::Manifest(ManifestError::Line(0, "not UTF-8")))?;
    let signature: [u8; 64] = buffer[16 + length..end].try_into().expect("64 bytes");
    if signature == [0; 64] {
        return Err(Refusal::Unsigned);
    }
    if !signed_by_any(keys, &signed_message(text), &signature) {
        return Err(Refusal::UntrustedKey);
    }
    let manifest = Manifest::parse(text).map_err(Refusal::Manifest)?;
    Ok(Some((manifest, end)))
}

impl Verifier {
    pub fn new(expect: Expectations) -> Verifier {
        Verifier {
            expect,
            state: State::Header(Vec::new()),
        }
    }

    /// The manifest, once the header is checked.
    pub fn manifest(&self) -> Option<&Manifest> {
        match &self.state {
            State::Payload { manifest, .. } => Some(manifest),
            _ => None,
        }
    }

    /// Takes the next bytes; returns the blocks now verified (each only
    /// once, in order). After a refusal every call refuses the same way.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<Verified>, Refusal> {
        let result = self.take(input);
        if let Err(refusal) = &result {
            self.state = State::Refused(refusal.clone());
        }
        result
    }

    fn take(&mut self, input: &[u8]) -> Result<Vec<Verified>, Refusal> {
        let mut out = Vec::new();
        let rest;
        let mut payload = match &mut self.state {
            State::Refused(refusal) => return Err(refusal.clone()),
            State::Header(buffer) => {
                buffer.extend_from_slice(input);
                match self.check_header()? {
                    None => return Ok(out),
                    Some(after) => {
                        rest = after;
                        &rest[..]
                    }
                }
            }
            State::Payload { .. } => input,
        };
        self.take_payload(&mut payload, &mut out)?;
        if !payload.is_empty() {
            return Err(Refusal::TrailingData);
        }
        Ok(out)
    }

    /// The bundle has ended: every part must be complete and whole.
    pub fn finish(self) -> Result<Manifest, Refusal> {
        match self.state {
            State::Header(_) => Err(Refusal::NotABundle),
            State::Refused(refusal) => Err(refusal),
            State::Payload {
                manifest,
                part,
                offset,
                buffer,
                ..
            } => {
                if part < manifest.parts.len() {
                    let missing: u64 = manifest.parts[part].size - offset - buffer.len() as u64
                        + manifest.parts[part + 1..]
                            .iter()
                            .map(|p| p.size)
                            .sum::<u64>();
                    return Err(Refusal::Truncated {
                        part: manifest.parts[part].name,
                        missing,
                    });
                }
                Ok(*manifest)
            }
        }
    }

    /// Checks a complete header; the payload bytes after it, if any.
    fn check_header(&mut self) -> Result<Option<Vec<u8>>, Refusal> {
        let State::Header(buffer) = &self.state else {
            return Ok(None);
        };
        let Some((manifest, end)) = signed_manifest(buffer, &self.expect.trusted_keys)? else {
            return Ok(None);
        };
        if manifest.platform != self.expect.platform {
            return Err(Refusal::WrongPlatform {
                bundle: manifest.platform,
                device: self.expect.platform.clone(),
            });
        }
        if !manifest.compatible.contains(&self.expect.board) {
            return Err(Refusal::WrongBoard {
                bundle: manifest.compatible,
                device: self.expect.board.clone(),
            });
        }
        if let Some(installed) = &self.expect.installed {
            if manifest.version < *installed && !self.expect.allow_downgrade {
                return Err(Refusal::Older {
                    bundle: manifest.version,
                    installed: installed.clone(),
                });
            }
        }
        let rest = buffer[end..].to_vec();
        self.state = State::Payload {
            manifest: alloc::boxed::Box::new(manifest),
            part: 0,
            offset: 0,
            block_index: 0,
            buffer: Vec::new(),
            whole: Sha256::new(),
        };
        self.skip_empty_parts()?;
        Ok(Some(rest))
    }

    /// Moves past parts that are complete (or empty), checking each
    /// whole part's digest.
    fn skip_empty_parts(&mut self) -> Result<(), Refusal> {
        let State::Payload {
            manifest,
            part,
            offset,
            whole,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        while *part < manifest.parts.len() && *offset == manifest.parts[*part].size {
            let digest: Digest = core::mem::take(whole).finalize().into();
            if digest != manifest.parts[*part].sha256 {
                return Err(Refusal::CorruptPart {
                    part: manifest.parts[*part].name,
                });
            }
            *part += 1;
            *offset = 0;
        }
        Ok(())
    }

    fn take_payload(&mut self, input: &mut &[u8], out: &mut Vec<Verified>) -> Result<(), Refusal> {
        loop {
            let State::Payload {
                manifest,
                part,
                offset,
                block_index,
                buffer,
                whole,
            } = &mut self.state
            else {
                return Ok(());
            };
            if *part >= manifest.parts.len() || input.is_empty() {
                return Ok(());
            }
            let size = manifest.parts[*part].size;
            let block_size = u64::from(manifest.block_size);
            let this_block = block_size.min(size - *offset) as usize;
            let take = (this_block - buffer.len()).min(input.len());
            buffer.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if buffer.len() < this_block {
                return Ok(());
            }
            let digest: Digest = Sha256::digest(&buffer[..]).into();
            if digest != manifest.blocks[*block_index] {
                let first: u64 = manifest.parts[..*part]
                    .iter()
                    .map(|p| block_count(p.size, manifest.block_size))
                    .sum();
                return Err(Refusal::CorruptBlock {
                    part: manifest.parts[*part].name,
                    block: *block_index as u64 - first,
                });
            }
            whole.update(&buffer[..]);
            out.push(Verified {
                part: *part,
                offset: *offset,
                bytes: core::mem::take(buffer),
            });
            *offset += this_block as u64;
            *block_index += 1;
            self.skip_empty_parts()?;
        }
    }
}

/// The manifest of parts hashed with [`PartHasher`] (kernel, initrd, root,
/// and the `fdt` part when there are `trees`).
pub fn manifest(
    version: Version,
    platform: &str,
    compatible: Vec<String>,
    cmdline: &str,
    trees: Vec<crate::manifest::Tree>,
    block_size: u32,
    parts: Vec<(u64, PartHasher)>,
) -> Manifest {
    let mut blocks = Vec::new();
    let mut described = Vec::new();
    for (name, (size, hasher)) in crate::manifest::PARTS.into_iter().zip(parts) {
        let (sha256, part_blocks) = hasher.finish();
        blocks.extend(part_blocks);
        described.push(crate::manifest::Part { name, size, sha256 });
    }
    Manifest {
        version,
        platform: platform.into(),
        compatible,
        cmdline: cmdline.into(),
        trees,
        block_size,
        parts: described,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const KEY: [u8; 32] = [7; 32];

    /// Two device trees' sizes, and the `fdt` part they make.
    const TREES: [u64; 2] = [600, 300];

    /// kernel, initrd, root and fdt.
    fn parts() -> Vec<Vec<u8>> {
        let pattern =
            |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let fdt = crate::manifest::fdt_offsets(TREES).1 as usize;
        alloc::vec![
            pattern(10_000, 1),
            pattern(4096, 2),
            pattern(3 * 4096 + 17, 3),
            pattern(fdt, 4),
        ]
    }

    /// With device trees when `parts` has a fourth part.
    fn manifest_of(version: &str, platform: &str, parts: &[Vec<u8>]) -> Manifest {
        let hashed = parts
            .iter()
            .map(|bytes| {
                let mut hasher = PartHasher::new(4096);
                // In uneven pieces, as a file is read.
                for chunk in bytes.chunks(1000) {
                    hasher.update(chunk);
                }
                (bytes.len() as u64, hasher)
            })
            .collect();
        let trees = match parts.len() {
            4 => TREES
                .iter()
                .enumerate()
                .map(|(i, &size)| crate::manifest::Tree {
                    name: alloc::format!("broadcom/tree-{i}.dtb"),
                    size,
                })
                .collect(),
            _ => Vec::new(),
        };
        manifest(
            Version::parse(version).unwrap(),
            platform,
            alloc::vec!["qemu-virt".into()],
            "console=ttyAMA0 panic=10",
            trees,
            4096,
            hashed,
        )
    }

    fn bundle_with(manifest: &Manifest, key: Option<[u8; 32]>, parts: &[Vec<u8>]) -> Vec<u8> {
        let text = manifest.to_text();
        let signature = match key {
            Some(seed) => SigningKey::from_bytes(&seed)
                .sign(&signed_message(&text))
                .to_bytes(),
            None => [0; 64],
        };
        let mut out = header(&text, &signature);
        for part in parts {
            out.extend_from_slice(part);
        }
        out
    }

    fn bundle(version: &str) -> Vec<u8> {
        bundle_with(
            &manifest_of(version, "aarch64-linux", &parts()),
            Some(KEY),
            &parts(),
        )
    }

    fn expect() -> Expectations {
        Expectations {
            trusted_keys: alloc::vec![SigningKey::from_bytes(&KEY).verifying_key().to_bytes()],
            platform: "aarch64-linux".into(),
            board: "qemu-virt".into(),
            installed: Some(Version::parse("1.2").unwrap()),
            allow_downgrade: false,
        }
    }

    /// What a check found: the parts as verified, or the refusal with the
    /// bytes verified before it.
    type Checked = Result<Vec<Vec<u8>>, Box<(Refusal, Vec<Vec<u8>>)>>;

    /// Feeds `bytes` in chunks of `chunk`.
    fn check(bytes: &[u8], chunk: usize, expect: Expectations) -> Checked {
        let mut verifier = Verifier::new(expect);
        let mut written: Vec<Vec<u8>> = alloc::vec![Vec::new(); 4];
        for piece in bytes.chunks(chunk) {
            match verifier.feed(piece) {
                Ok(blocks) => {
                    for block in blocks {
                        assert_eq!(
                            block.offset,
                            written[block.part].len() as u64,
                            "in order, once"
                        );
                        written[block.part].extend_from_slice(&block.bytes);
                    }
                }
                Err(refusal) => return Err(Box::new((refusal, written))),
            }
        }
        match verifier.finish() {
            Ok(manifest) => {
                written.truncate(manifest.parts.len());
                Ok(written)
            }
            Err(refusal) => Err(Box::new((refusal, written))),
        }
    }

    #[test]
    fn a_good_bundle_streams_through_in_any_chunks() {
        let bytes = bundle("1.3");
        for chunk in [1, 7, 4096, 5000, bytes.len()] {
            assert_eq!(
                check(&bytes, chunk, expect()).unwrap(),
                parts(),
                "chunks of {chunk}"
            );
        }
        // The same version again is allowed (a reinstall).
        assert!(check(&bundle("1.2.0"), 999, expect()).is_ok());
        // Without device trees (QEMU's firmware has its own): three parts.
        let three = parts()[..3].to_vec();
        let manifest = manifest_of("1.3", "aarch64-linux", &three);
        assert!(manifest.trees.is_empty() && !manifest.to_text().contains("fdt"));
        let bytes = bundle_with(&manifest, Some(KEY), &three);
        assert_eq!(check(&bytes, 777, expect()).unwrap(), three);
    }

    #[test]
    fn bundles_the_device_refuses() {
        let good = bundle("1.3");
        let refusal = |bytes: &[u8], expect: Expectations| check(bytes, 777, expect).unwrap_err().0;

        let unsigned = bundle_with(
            &manifest_of("1.3", "aarch64-linux", &parts()),
            None,
            &parts(),
        );
        assert_eq!(refusal(&unsigned, expect()), Refusal::Unsigned);
        let other_key = bundle_with(
            &manifest_of("1.3", "aarch64-linux", &parts()),
            Some([9; 32]),
            &parts(),
        );
        assert_eq!(refusal(&other_key, expect()), Refusal::UntrustedKey);
        // The manifest changed after signing: the signature no longer holds.
        let text = manifest_of("1.3", "aarch64-linux", &parts()).to_text();
        let position = good.windows(11).position(|w| w == b"version 1.3").unwrap();
        let mut tampered = good.clone();
        tampered[position + 10] = b'9';
        assert_eq!(refusal(&tampered, expect()), Refusal::UntrustedKey);
        assert!(text.contains("version 1.3"));

        let x86 = bundle_with(
            &manifest_of("1.3", "x86_64-linux", &parts()),
            Some(KEY),
            &parts(),
        );
        assert!(matches!(
            refusal(&x86, expect()),
            Refusal::WrongPlatform { .. }
        ));
        let mut other_board = expect();
        other_board.board = "rpi3".into();
        assert!(matches!(
            refusal(&good, other_board),
            Refusal::WrongBoard { .. }
        ));

        let older = bundle("1.1.9");
        assert_eq!(
            refusal(&older, expect()).to_string(),
            "the bundle's version 1.1.9 is older than the installed 1.2 (deploy with --allow-downgrade to go back)"
        );
        let mut downgrade = expect();
        downgrade.allow_downgrade = true;
        assert!(check(&older, 777, downgrade).is_ok());

        // Truncated: nothing is wrong until the end, which comes too soon.
        let (why, _) = *check(&good[..good.len() - 100], 777, expect()).unwrap_err();
        assert_eq!(
            why,
            Refusal::Truncated {
                part: "fdt",
                missing: 100
            }
        );
        let (why, _) = *check(&good[..40], 777, expect()).unwrap_err();
        assert_eq!(why, Refusal::NotABundle);

        // Corrupted in the middle: refused at that block, and nothing of it
        // or after it was handed on.
        let mut corrupt = good.clone();
        let root_start = good.len() - parts()[2].len() - parts()[3].len();
        corrupt[root_start + 4096 + 10] ^= 0xff;
        let (why, written) = *check(&corrupt, 777, expect()).unwrap_err();
        assert_eq!(
            why,
            Refusal::CorruptBlock {
                part: "root",
                block: 1
            }
        );
        assert_eq!(written[2], parts()[2][..4096]);
        assert_eq!(written[0], parts()[0]);

        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(refusal(&trailing, expect()), Refusal::TrailingData);
        assert_eq!(
            refusal(b"PK\x03\x04 a zip file", expect()),
            Refusal::NotABundle
        );
        let mut huge = good.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            refusal(&huge, expect()),
            Refusal::ManifestTooLarge(_)
        ));
    }

    #[test]
    fn public_keys_are_written_and_read() {
        let key = SigningKey::from_bytes(&KEY).verifying_key().to_bytes();
        let text = format_public_key(&key);
        assert!(text.starts_with("micros-ed25519:"));
        assert_eq!(parse_public_key(&text), Some(key));
        assert_eq!(parse_public_key("ssh-ed25519 AAAA"), None);
        assert_eq!(public_key(&KEY), key);
        assert_eq!(parse_secret_key(&format_secret_key(&KEY)), Some(KEY));
        assert_eq!(
            parse_secret_key(&text),
            None,
            "a public key is no secret one"
        );
    }
}
