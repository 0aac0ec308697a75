//! Checked values for what arrives from outside and later names a file:
//! a SHA-256 digest (the cache's only kind of entry name) and a path below
//! a mirror's root (`pool/…`). A lock, an index or a Release hands over
//! text; these types are made from it once, where it enters, so that no
//! path can pass as a hash and no `..` reaches a URL or the file system.
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a SHA-256 digest (64 lowercase hexadecimal digits)")]
    Sha256(String),
    #[error("`{0}` is not a path below the archive's pool/ (relative, no `..`, no spaces or control characters)")]
    PoolPath(String),
}

/// A SHA-256 digest: 64 lowercase hexadecimal digits.
///
/// Deserialised (the lock) only in that form, through
/// [`Sha256::parse_lowercase`]; read from an archive's index through the
/// lenient [`Sha256::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    /// Checks a digest from an archive's Release or Packages index:
    /// upper-case digits are accepted and lowered. Those files are the
    /// archive's, written by whatever tool its maintainers run, and a digest
    /// is the same number in either case, so refusing one would refuse a
    /// mirror for its spelling.
    pub fn parse(text: &str) -> Result<Sha256, ValueError> {
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256(text.to_ascii_lowercase()))
        } else {
            Err(Sha256::invalid(text))
        }
    }

    /// Checks a digest that micros wrote itself (the lock): only the form
    /// it writes, 64 lowercase hexadecimal digits. Anything else means the
    /// file was edited by hand, and is refused rather than quietly
    /// rewritten, so that the lock on disk and the lock in use never differ.
    pub fn parse_lowercase(text: &str) -> Result<Sha256, ValueError> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256(text.to_owned()))
        } else {
            Err(Sha256::invalid(text))
        }
    }

    fn invalid(text: &str) -> ValueError {
        ValueError::Sha256(text.chars().take(80).collect())
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256 {
        use sha2::Digest as _;
        Sha256(hex::encode(sha2::Sha256::digest(bytes)))
    }

    /// A finished hasher's digest.
    pub fn from_hasher(hasher: sha2::Sha256) -> Sha256 {
        use sha2::Digest as _;
        Sha256(hex::encode(hasher.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Strict: this is how serde reads a digest, and micros only deserialises
/// what it serialised (the lock).
impl TryFrom<String> for Sha256 {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Sha256, ValueError> {
        Sha256::parse_lowercase(&text)
    }
}

impl From<Sha256> for String {
    fn from(digest: Sha256) -> String {
        digest.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Sha256 {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A file below a mirror's root, under `pool/`:
/// `pool/main/r/runit/runit_2.2.0-3_amd64.deb`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PoolPath(String);

impl PoolPath {
    pub fn parse(text: &str) -> Result<PoolPath, ValueError> {
        let bad = || ValueError::PoolPath(text.chars().take(200).collect());
        let rest = text.strip_prefix("pool/").ok_or_else(bad)?;
        let clean = rest
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
            && text
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '\\' && c != '?' && c != '#');
        if clean {
            Ok(PoolPath(text.to_owned()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PoolPath {
    type Error = ValueError;
    fn try_from(text: String) -> Result<PoolPath, ValueError> {
        PoolPath::parse(&text)
    }
}

impl From<PoolPath> for String {
    fn from(path: PoolPath) -> String {
        path.0
    }
}

impl fmt::Display for PoolPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_64_hex_digits_and_nothing_else() {
        let good = "ab".repeat(32);
        assert_eq!(Sha256::parse(&good).unwrap().as_str(), good);
        assert_eq!(
            Sha256::parse(&good.to_uppercase()).unwrap().as_str(),
            good,
            "lowered"
        );
        assert_eq!(Sha256::parse_lowercase(&good).unwrap().as_str(), good);
        assert!(Sha256::parse_lowercase(&good.to_uppercase()).is_err());
        assert!(Sha256::try_from(format!("{}A", "a".repeat(63))).is_err());
        for bad in [
            "",
            "abc",
            &"a".repeat(63),
            &"a".repeat(65),
            &format!("../../../../etc/passwd{}", "a".repeat(42)),
            &format!("{}g", "a".repeat(63)),
            &format!("{}/", "a".repeat(63)),
        ] {
            assert!(Sha256::parse(bad).is_err(), "{bad}");
            assert!(Sha256::parse_lowercase(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Sha256::of(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn pool_paths_stay_in_the_pool() {
        assert!(PoolPath::parse("pool/main/r/runit/runit_2.2.0-3_amd64.deb").is_ok());
        assert!(
            PoolPath::parse("pool/main/b/busybox/busybox-static_1%3a1.37.0-6_amd64.deb").is_ok()
        );
        for bad in [
            "",
            "pool/",
            "/pool/main/a.deb",
            "dists/trixie/InRelease",
            "pool/../../etc/passwd",
            "pool/main/../../x.deb",
            "pool/main//a.deb",
            "pool/./a.deb",
            "pool/main/a b.deb",
            "pool/main/a\n.deb",
            "pool/main\\a.deb",
            "pool/main/a.deb?x=1",
        ] {
            assert!(PoolPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
