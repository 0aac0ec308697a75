//! Fleets: a static update repository (`micros publish`) and what a device
//! decides from it (`micros-update check`). The repository is plain files
//! any web server can serve:
//!
//! ```text
//! index                                         the signed index, below
//! aarch64-linux-2-3f0c9a1b2c4d.bundle           the bundles it names
//! ```
//!
//! The index is text, one release per platform and board, signed like a
//! bundle's manifest (a different context, so neither verifies as the
//! other):
//!
//! ```text
//! micros-update-index 1
//! serial 1765120000
//! release aarch64-linux generic 2 0.2 22706075 <sha256> aarch64-linux-2-3f0c9a1b2c4d.bundle
//! signature <ed25519 signature of the lines above, 128 hex digits>
//! ```
//!
//! `serial` only grows: a device remembers the highest it has seen and
//! refuses an older index (a replay that would hide a fix). The rollout
//! share (0 to 1, four decimals) picks devices by a stable identifier each
//! device draws once and keeps in its `micros-state` partition; the same
//! devices take a release at every check, and raising the share only adds
//! devices.
use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};

use crate::manifest::{hex, unhex, unhex_array, Digest};
use crate::version::Version;

/// What an index's signature covers, before its text.
pub const CONTEXT: &[u8] = b"micros-update-index-v1\0";
/// The index's file name in the repository.
pub const INDEX: &str = "index";
/// No index is larger (a release is ~200 bytes).
pub const MAX_INDEX: usize = 1 << 20;
/// A share is counted in ten-thousandths.
pub const WHOLE: u16 = 10_000;

/// The share of devices a release goes to, in ten-thousandths (0 to
/// [`WHOLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Share(u16);

impl Share {
    pub const ALL: Share = Share(WHOLE);

    /// `0`, `1`, `0.2`, `0.0625`: a number from 0 to 1 with at most four
    /// decimals.
    pub fn parse(text: &str) -> Option<Share> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 1
            || !digits(whole)
            || fraction.len() > 4
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let mut value = u32::from(whole.as_bytes()[0] - b'0') * u32::from(WHOLE);
        let mut scale = u32::from(WHOLE) / 10;
        for digit in fraction.bytes() {
            value += u32::from(digit - b'0') * scale;
            scale /= 10;
        }
        (value <= u32::from(WHOLE)).then_some(Share(value as u16))
    }

    /// Whether the device with `id` takes `version` at this share. The
    /// device's place in line is a hash of its identifier and the version,
    /// so each release starts with different devices, and a device's place
    /// for one release never changes.
    pub fn selects(self, id: &[u8; 16], version: &Version) -> bool {
        let mut hash = Sha256::new();
        hash.update(b"micros-rollout\0");
        hash.update(id);
        hash.update(version.to_string().as_bytes());
        let digest = hash.finalize();
        let place =
            u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % u32::from(WHOLE);
        place < u32::from(self.0)
    }

    pub fn percent(self) -> String {
        let mut text = (self.0 / 100).to_string();
        if !self.0.is_multiple_of(100) {
            let _ = write!(text, ".{:02}", self.0 % 100);
            while text.ends_with('0') {
                text.pop();
            }
        }
        text
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0 / WHOLE)?;
        let fraction = self.0 % WHOLE;
        if fraction != 0 {
            let mut digits = alloc::format!("{fraction:04}");
            while digits.ends_with('0') {
                digits.pop();
            }
            write!(f, ".{digits}")?;
        }
        Ok(())
    }
}

/// One platform and board's current release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub platform: String,
    pub board: String,
    pub version: Version,
    pub rollout: Share,
    pub size: u64,
    pub sha256: Digest,
    /// The bundle's file name beside the index.
    pub bundle: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub serial: u64,
    pub releases: Vec<Release>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    TooLarge,
    Unsigned,
    BadSignature,
    UntrustedKey,
    Line(usize, &'static str),
    Replay { serial: u64, seen: u64 },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::TooLarge => write!(f, "the index is larger than {MAX_INDEX} bytes"),
            IndexError::Unsigned => f.write_str("the index is not signed (no signature line at its end): not a MicrOS update index, or cut short"),
            IndexError::BadSignature => f.write_str("the index's signature is malformed"),
            IndexError::UntrustedKey => f.write_str("the index is not signed by a key this device trusts (system.update.trustedKeys)"),
            IndexError::Line(line, why) => write!(f, "index line {line}: {why}"),
            IndexError::Replay { serial, seen } => write!(
                f,
                "the index is older than one this device has seen (serial {serial} < {seen}): a replayed or stale copy"
            ),
        }
    }
}

/// A bundle's name in the repository: letters, digits, `.`, `_`, `-`, not
/// starting with a dot (a plain file beside the index, never a path).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A platform or board word: what the manifest allows, and no spaces.
fn valid_word(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 64
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Index {
    /// The index's text without its signature line.
    pub fn body(&self) -> String {
        let mut text = String::from("micros-update-index 1\n");
        let _ = writeln!(text, "serial {}", self.serial);
        for r in &self.releases {
            let _ = writeln!(
                text,
                "release {} {} {} {} {} {} {}",
                r.platform,
                r.board,
                r.version,
                r.rollout,
                r.size,
                hex(&r.sha256),
                r.bundle
            );
        }
        text
    }

    /// The index's file: its text and the signature by `seed`.
    pub fn sign(&self, seed: &[u8; 32]) -> String {
        let body = self.body();
        let signature = SigningKey::from_bytes(seed).sign(&message(&body));
        let mut text = body;
        let _ = writeln!(text, "signature {}", hex(&signature.to_bytes()));
        text
    }

    /// Verifies an index's file with the keys a device trusts, then parses
    /// it. Nothing of an index is read before its signature is checked.
    pub fn verify(bytes: &[u8], keys: &[[u8; 32]]) -> Result<Index, IndexError> {
        if bytes.len() > MAX_INDEX {
            return Err(IndexError::TooLarge);
        }
        let text = core::str::from_utf8(bytes).map_err(|_| IndexError::Unsigned)?;
        let body_end = text
            .strip_suffix('\n')
            .and_then(|t| t.rfind('\n'))
            .map(|at| at + 1)
            .ok_or(IndexError::Unsigned)?;
        let (body, last) = text.split_at(body_end);
        let signature = last
            .strip_prefix("signature ")
            .and_then(|s| s.strip_suffix('\n'))
            .ok_or(IndexError::Unsigned)?;
        let signature: [u8; 64] = unhex_array(signature).ok_or(IndexError::BadSignature)?;
        if !crate::bundle::signed_by_any(keys, &message(body), &signature) {
            return Err(IndexError::UntrustedKey);
        }
        Index::parse(body)
    }

    /// Parses an index's text (without its signature line): strictly.
    pub fn parse(body: &str) -> Result<Index, IndexError> {
        let mut lines = body.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, "micros-update-index 1")) => {}
            _ => return Err(IndexError::Line(1, "not a version 1 MicrOS update index")),
        }
        let serial = match lines.next() {
            Some((n, line)) => line
                .strip_prefix("serial ")
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(IndexError::Line(n, "expected `serial N`"))?,
            None => return Err(IndexError::Line(2, "no serial")),
        };
        let mut releases: Vec<Release> = Vec::new();
        for (n, line) in lines {
            let bad = |why| IndexError::Line(n, why);
            let fields: Vec<&str> = line.split(' ').collect();
            let [word, platform, board, version, rollout, size, sha256, bundle] = fields[..] else {
                return Err(bad(
                    "expected `release PLATFORM BOARD VERSION ROLLOUT SIZE SHA256 NAME`",
                ));
            };
            if word != "release" {
                return Err(bad("expected `release …`"));
            }
            if !valid_word(platform) || !valid_word(board) {
                return Err(bad(
                    "a platform or board name may hold letters, digits, `.`, `_` and `-`",
                ));
            }
            if releases
                .iter()
                .any(|r| r.platform == platform && r.board == board)
            {
                return Err(bad("a second release for the same platform and board"));
            }
            releases.push(Release {
                platform: platform.to_owned(),
                board: board.to_owned(),
                version: Version::parse(version).map_err(|_| bad("not a version"))?,
                rollout: Share::parse(rollout).ok_or(bad("a rollout is a number from 0 to 1"))?,
                size: size
                    .parse()
                    .ok()
                    .filter(|&s| s > 0 && s <= 16 << 30)
                    .ok_or(bad("not a bundle size"))?,
                sha256: unhex(sha256).ok_or(bad("not a SHA-256"))?,
                bundle: Some(bundle)
                    .filter(|b| valid_name(b))
                    .ok_or(bad("a bundle's name is a plain file name"))?
                    .to_owned(),
            });
        }
        Ok(Index { serial, releases })
    }

    pub fn release(&self, platform: &str, board: &str) -> Option<&Release> {
        self.releases
            .iter()
            .find(|r| r.platform == platform && r.board == board)
    }
}

fn message(body: &str) -> Vec<u8> {
    crate::bundle::in_context(CONTEXT, body)
}

/// What a device does with a verified index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The index is older than one the device has seen.
    Replay {
        serial: u64,
        seen: u64,
    },
    /// No release for this platform and board.
    NoRelease,
    /// The device runs this release or a newer one.
    UpToDate(&'a Release),
    /// The release failed its trial on this device: wait for a newer one.
    FailedHere(&'a Release),
    /// The release goes to a share of devices that leaves this one out.
    NotSelected(&'a Release),
    Install(&'a Release),
}

/// What the device knows of itself when it reads an index.
pub struct Device<'a> {
    pub platform: &'a str,
    pub board: &'a str,
    /// The version the device runs.
    pub running: Option<&'a Version>,
    /// A version that failed its trial here (the other slot, marked bad).
    pub failed: Option<&'a Version>,
    /// The highest serial the device has seen.
    pub seen: u64,
    pub id: &'a [u8; 16],
}

pub fn decide<'a>(index: &'a Index, device: &Device<'_>) -> Decision<'a> {
    if index.serial < device.seen {
        return Decision::Replay {
            serial: index.serial,
            seen: device.seen,
        };
    }
    let Some(release) = index.release(device.platform, device.board) else {
        return Decision::NoRelease;
    };
    if device.running.is_some_and(|v| *v >= release.version) {
        Decision::UpToDate(release)
    } else if device.failed == Some(&release.version) {
        Decision::FailedHere(release)
    } else if !release.rollout.selects(device.id, &release.version) {
        Decision::NotSelected(release)
    } else {
        Decision::Install(release)
    }
}

/// Where in the `micros-state` partition the device keeps its fleet
/// record: after the boot state and the last update's record.
pub const RECORD_OFFSET: u64 = 8192;
pub const RECORD_SIZE: usize = 4096;

/// The device's identifier for rollouts and the highest index serial it
/// has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRecord {
    pub id: [u8; 16],
    pub seen: u64,
}

impl FleetRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = alloc::format!(
            "micros-fleet 1\nid {}\nseen {}\nend\n",
            hex(&self.id),
            self.seen
        )
        .into_bytes();
        bytes.resize(RECORD_SIZE, 0);
        bytes
    }

    /// None for a partition that never had a record (or a torn one).
    pub fn parse(bytes: &[u8]) -> Option<FleetRecord> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = core::str::from_utf8(&bytes[..end]).ok()?;
        let mut lines = text.lines();
        (lines.next()? == "micros-fleet 1").then_some(())?;
        let id = unhex_array(lines.next()?.strip_prefix("id ")?)?;
        let seen = lines.next()?.strip_prefix("seen ")?.parse().ok()?;
        (lines.next()? == "end").then_some(())?;
        Some(FleetRecord { id, seen })
    }
}

/// When a device that installed an update may reboot into it
/// (`system.update.window`): `HH:MM-HH:MM` in UTC, by the device's clock;
/// it may run past midnight (`23:00-02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Minutes after midnight.
    pub start: u32,
    pub end: u32,
}

impl Window {
    pub fn parse(text: &str) -> Option<Window> {
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = text.split_once('-')?;
        let window = Window {
            start: minutes(start)?,
            end: minutes(end)?,
        };
        (window.start != window.end).then_some(window)
    }

    /// Seconds from `unix_time` until the window opens (0 inside it).
    pub fn wait(&self, unix_time: u64) -> u64 {
        let day = 24 * 3600;
        let now = unix_time % day;
        let (start, end) = (u64::from(self.start) * 60, u64::from(self.end) * 60);
        let inside = if start < end {
            now >= start && now < end
        } else {
            now >= start || now < end
        };
        if inside {
            0
        } else {
            (start + day - now) % day
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version: &str, rollout: &str) -> Release {
        Release {
            platform: "aarch64-linux".into(),
            board: "qemu-virt".into(),
            version: Version::parse(version).unwrap(),
            rollout: Share::parse(rollout).unwrap(),
            size: 1234,
            sha256: [7; 32],
            bundle: format!("aarch64-linux-{version}.bundle"),
        }
    }

    fn index(serial: u64, releases: Vec<Release>) -> Index {
        Index { serial, releases }
    }

    const SEED: [u8; 32] = [1; 32];

    fn key() -> [u8; 32] {
        crate::bundle::public_key(&SEED)
    }

    #[test]
    fn an_index_round_trips_through_its_signed_text() {
        let original = index(
            42,
            vec![
                release("2.1", "0.2"),
                Release {
                    board: "rpi3".into(),
                    ..release("2", "1")
                },
            ],
        );
        let text = original.sign(&SEED);
        assert!(text.starts_with(
            "micros-update-index 1\nserial 42\nrelease aarch64-linux qemu-virt 2.1 0.2 1234 "
        ));
        assert_eq!(Index::verify(text.as_bytes(), &[key()]), Ok(original));
    }

    #[test]
    fn an_index_verifies_only_whole_and_with_a_trusted_key() {
        let text = index(3, vec![release("2", "1")]).sign(&SEED);
        assert_eq!(
            Index::verify(text.as_bytes(), &[crate::bundle::public_key(&[2; 32])]),
            Err(IndexError::UntrustedKey)
        );
        assert_eq!(
            Index::verify(text.as_bytes(), &[]),
            Err(IndexError::UntrustedKey)
        );
        // Any changed byte before the signature breaks it.
        let changed = text.replace(
            "release aarch64-linux qemu-virt 2 1",
            "release aarch64-linux qemu-virt 3 1",
        );
        assert_eq!(
            Index::verify(changed.as_bytes(), &[key()]),
            Err(IndexError::UntrustedKey)
        );
        let raised = text.replace("serial 3", "serial 9");
        assert_eq!(
            Index::verify(raised.as_bytes(), &[key()]),
            Err(IndexError::UntrustedKey)
        );
        // Cut anywhere: unsigned or malformed, never accepted.
        for cut in 0..text.len() {
            assert!(
                Index::verify(&text.as_bytes()[..cut], &[key()]).is_err(),
                "cut at {cut}"
            );
        }
        let unsigned = index(3, vec![]).body();
        assert_eq!(
            Index::verify(unsigned.as_bytes(), &[key()]),
            Err(IndexError::Unsigned)
        );
        // A bundle's manifest signature is for another context.
        let manifest_signed = {
            let body = index(3, vec![]).body();
            let signature =
                SigningKey::from_bytes(&SEED).sign(&crate::bundle::signed_message(&body));
            format!("{body}signature {}\n", hex(&signature.to_bytes()))
        };
        assert_eq!(
            Index::verify(manifest_signed.as_bytes(), &[key()]),
            Err(IndexError::UntrustedKey)
        );
    }

    #[test]
    fn the_parser_refuses_what_it_does_not_know() {
        let bad = [
            ("micros-update-index 2\nserial 1\n", "version 1"),
            ("micros-update-index 1\n", "no serial"),
            ("micros-update-index 1\nserial x\n", "serial N"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 1 5\n", "expected `release"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 2 5 0000000000000000000000000000000000000000000000000000000000000000 x.bundle\n", "rollout"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 1 5 0000000000000000000000000000000000000000000000000000000000000000 ../x\n", "plain file name"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 1 5 0000000000000000000000000000000000000000000000000000000000000000 .hidden\n", "plain file name"),
            ("micros-update-index 1\nserial 1\nrelease a b 1.x 1 5 0000000000000000000000000000000000000000000000000000000000000000 x\n", "version"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 1 0 0000000000000000000000000000000000000000000000000000000000000000 x\n", "size"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 1 5 00 x\n", "SHA-256"),
            ("micros-update-index 1\nserial 1\nrelease a/b b 1 1 5 0000000000000000000000000000000000000000000000000000000000000000 x\n", "platform or board"),
            ("micros-update-index 1\nserial 1\nrelease a b 1 1 5 0000000000000000000000000000000000000000000000000000000000000000 x\nrelease a b 2 1 5 0000000000000000000000000000000000000000000000000000000000000000 y\n", "same platform and board"),
            ("micros-update-index 1\nserial 1\nsomething else\n", "expected `release"),
        ];
        for (body, expected) in bad {
            let error = Index::parse(body).unwrap_err().to_string();
            assert!(error.contains(expected), "{body:?}: {error}");
        }
    }

    #[test]
    fn shares_parse_as_decimals_from_zero_to_one() {
        for (text, tenthousandths, shown, percent) in [
            ("0", 0, "0", "0"),
            ("1", 10_000, "1", "100"),
            ("0.2", 2_000, "0.2", "20"),
            ("0.0625", 625, "0.0625", "6.25"),
            ("1.0", 10_000, "1", "100"),
            ("0.05", 500, "0.05", "5"),
        ] {
            let share = Share::parse(text).unwrap();
            assert_eq!(share, Share(tenthousandths), "{text}");
            assert_eq!(share.to_string(), shown);
            assert_eq!(share.percent(), percent);
        }
        for text in [
            "", "2", "1.5", "1.00001", "0.", ".5", "-0", "0,5", "10", "0.2x", " 1",
        ] {
            assert_eq!(Share::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_rollout_takes_a_stable_share_and_growing_it_only_adds_devices() {
        let version = Version::parse("2").unwrap();
        let ids: Vec<[u8; 16]> = (0..2000u32)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_le_bytes());
                id
            })
            .collect();
        let taken = |share: &str| -> Vec<bool> {
            let share = Share::parse(share).unwrap();
            ids.iter().map(|id| share.selects(id, &version)).collect()
        };
        let count = |taken: &[bool]| taken.iter().filter(|&&t| t).count();
        assert_eq!(count(&taken("0")), 0);
        assert_eq!(count(&taken("1")), ids.len());
        let fifth = taken("0.2");
        assert!((340..=460).contains(&count(&fifth)), "{}", count(&fifth));
        assert_eq!(fifth, taken("0.2"), "the same devices at every check");
        let half = taken("0.5");
        assert!((900..=1100).contains(&count(&half)));
        assert!(
            fifth.iter().zip(&half).all(|(&f, &h)| !f || h),
            "raising the share keeps every device it had"
        );
        // Another release starts with other devices.
        let other = Version::parse("3").unwrap();
        let share = Share::parse("0.2").unwrap();
        let next: Vec<bool> = ids.iter().map(|id| share.selects(id, &other)).collect();
        assert_ne!(fifth, next);
    }

    #[test]
    fn a_device_decides_from_the_index_and_what_it_knows() {
        let id = [9u8; 16];
        let one = Version::parse("1").unwrap();
        let two = Version::parse("2").unwrap();
        let three = Version::parse("3").unwrap();
        let device = |running, failed, seen| Device {
            platform: "aarch64-linux",
            board: "qemu-virt",
            running,
            failed,
            seen,
            id: &id,
        };
        let all = index(10, vec![release("2", "1")]);
        let none = index(10, vec![release("2", "0")]);
        assert!(
            matches!(decide(&all, &device(Some(&one), None, 10)), Decision::Install(r) if r.version == two)
        );
        assert!(matches!(
            decide(&all, &device(None, None, 0)),
            Decision::Install(_)
        ));
        assert!(matches!(
            decide(&none, &device(Some(&one), None, 0)),
            Decision::NotSelected(_)
        ));
        assert!(matches!(
            decide(&all, &device(Some(&two), None, 0)),
            Decision::UpToDate(_)
        ));
        assert!(matches!(
            decide(&all, &device(Some(&three), None, 0)),
            Decision::UpToDate(_)
        ));
        assert!(matches!(
            decide(&all, &device(Some(&one), Some(&two), 0)),
            Decision::FailedHere(_)
        ));
        assert!(matches!(
            decide(&all, &device(Some(&one), Some(&one), 0)),
            Decision::Install(_)
        ));
        assert_eq!(
            decide(&all, &device(Some(&one), None, 11)),
            Decision::Replay {
                serial: 10,
                seen: 11
            }
        );
        let other_board = index(
            10,
            vec![Release {
                board: "rpi3".into(),
                ..release("2", "1")
            }],
        );
        assert_eq!(
            decide(&other_board, &device(Some(&one), None, 0)),
            Decision::NoRelease
        );
    }

    #[test]
    fn the_fleet_record_round_trips_and_an_empty_partition_has_none() {
        let record = FleetRecord {
            id: [0xab; 16],
            seen: 1_765_120_000,
        };
        let bytes = record.to_bytes();
        assert_eq!(bytes.len(), RECORD_SIZE);
        assert_eq!(FleetRecord::parse(&bytes), Some(record));
        assert_eq!(FleetRecord::parse(&[0; RECORD_SIZE]), None);
        assert_eq!(FleetRecord::parse(&bytes[..30]), None, "torn");
    }

    #[test]
    fn a_window_says_how_long_to_wait() {
        let night = Window::parse("02:00-04:30").unwrap();
        assert_eq!(night.to_string(), "02:00-04:30");
        let at = |h: u64, m: u64| 20_000 * 86_400 + h * 3600 + m * 60;
        assert_eq!(night.wait(at(3, 0)), 0);
        assert_eq!(night.wait(at(2, 0)), 0);
        assert_eq!(night.wait(at(4, 30)), 21 * 3600 + 30 * 60);
        assert_eq!(night.wait(at(1, 0)), 3600);
        assert_eq!(night.wait(at(12, 0)), 14 * 3600);
        let midnight = Window::parse("23:00-01:00").unwrap();
        assert_eq!(midnight.wait(at(23, 30)), 0);
        assert_eq!(midnight.wait(at(0, 30)), 0);
        assert_eq!(midnight.wait(at(1, 0)), 22 * 3600);
        for bad in [
            "",
            "2:00-04:00",
            "02:00-02:00",
            "24:00-01:00",
            "02:60-03:00",
            "02:00",
            "02:00-03:00-04:00",
        ] {
            assert_eq!(Window::parse(bad), None, "{bad}");
        }
    }
}
