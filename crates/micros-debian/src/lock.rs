//! `micros.lock`: the exact packages a configuration resolved to, so that
//! every build of it is the same and needs no network.
//!
//! It is sorted and holds nothing that depends on the mirror or the clock
//! (pool paths are relative to any mirror), so identical inputs give a
//! byte-identical file.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{PoolPath, Sha256};
use crate::release::ReleaseDate;

/// The format this build writes. Version 1 (no `release`, no `alias`, the
/// suite as the configuration named it) is still read.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    /// The release the packages came from, by its codename (`trixie`), even
    /// when it was read through an alias such as `stable`: an alias moves
    /// on to the next release, a lock must not.
    pub suite: String,
    /// The point release (`13.7`), where the archive names one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release: String,
    /// The name the configuration asked for, when it is another name of the
    /// same release (`stable`): such a configuration accepts this lock
    /// until `micros lock --update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The `Date:` of the signed Release the packages came from.
    pub date: String,
    pub architecture: String,
    pub components: Vec<String>,
    /// The packages the configuration asked for, sorted.
    pub request: Vec<String>,
    /// Dependencies dropped on purpose, and why.
    #[serde(default, rename = "exclude")]
    pub exclusions: Vec<LockedExclusion>,
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedExclusion {
    pub name: String,
    /// Who excluded it and why (`runit: only maintainer scripts use it`).
    pub reason: String,
    /// The locked packages whose dependency it dropped.
    pub required_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Below the archive root: `pool/main/r/runit/runit_2.2.0-3_amd64.deb`
    /// (checked when the lock is read: under `pool/`, no `..`).
    pub filename: PoolPath,
    pub size: u64,
    /// Checked when the lock is read: 64 lowercase hexadecimal digits (as
    /// micros writes them), never a path.
    pub sha256: Sha256,
    /// Installed size in KiB, from the index (for size reports).
    pub installed_size: u64,
    /// The dependencies this package needs from the lock (names), for
    /// `micros why`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: this lock file has format version {found}, but this micros reads version {FORMAT_VERSION}\nhint: use the micros that wrote it, or run `micros lock --update` to write a new one")]
    UnknownVersion { path: String, found: u32 },
    #[error("{path} is not a valid lock file: {message}\nhint: delete it and run `micros lock` to write a new one")]
    Syntax { path: String, message: String },
}

impl Lock {
    pub fn parse(path: &str, text: &str) -> Result<Lock, LockError> {
        // Read the version first, so that a future format is reported as
        // such rather than as a syntax error.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let version: VersionOnly = toml::from_str::<toml::Value>(text)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| LockError::Syntax {
                path: path.to_owned(),
                message: "no `version`".to_owned(),
            })?;
        if !(1..=FORMAT_VERSION).contains(&version.version) {
            return Err(LockError::UnknownVersion {
                path: path.to_owned(),
                found: version.version,
            });
        }
        toml::from_str(text).map_err(|e| LockError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The file's text: a header, then the fields, packages sorted by name.
    pub fn render(&self) -> String {
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.architecture.cmp(&b.architecture))
        });
        sorted.exclusions.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.request.sort();
        let body = toml::to_string(&sorted).expect("a lock serialises");
        format!("# micros.lock: the exact packages this configuration uses.\n# Written by `micros lock`; commit it, do not edit it.\n{body}")
    }

    /// What release it is, for messages: `trixie 13.7`.
    pub fn describe(&self) -> String {
        if self.release.is_empty() {
            self.suite.clone()
        } else {
            format!("{} {}", self.suite, self.release)
        }
    }

    /// Whether a configuration asking for `suite` is served by this lock:
    /// the lock's release by codename, or the alias it was solved through.
    pub fn serves_suite(&self, suite: &str) -> bool {
        self.suite == suite || self.alias.as_deref() == Some(suite)
    }

    /// The lock's date as a snapshot archive's timestamp,
    /// `20261121T091544Z`, from `Sat, 21 Nov 2026 09:15:44 UTC`.
    pub fn snapshot_timestamp(&self) -> Option<String> {
        snapshot_timestamp(&self.date)
    }

    pub fn package(&self, name: &str) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// Preferred versions for re-solving with this lock in place.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    }
}

/// `Sat, 21 Nov 2026 09:15:44 UTC` (a Release's `Date:`) as a snapshot
/// archive's timestamp, `20261121T091544Z`.
pub fn snapshot_timestamp(date: &str) -> Option<String> {
    ReleaseDate::parse(date).map(|d| d.snapshot_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        Lock {
            version: FORMAT_VERSION,
            suite: "trixie".into(),
            release: "13.7".into(),
            alias: Some("stable".into()),
            date: "Sat, 21 Nov 2026 09:15:44 UTC".into(),
            architecture: "amd64".into(),
            components: vec!["main".into()],
            request: vec!["runit".into(), "busybox-static".into()],
            exclusions: vec![LockedExclusion {
                name: "sysuser-helper".into(),
                reason: "runit: maintainer scripts only".into(),
                required_by: vec!["runit".into()],
            }],
            packages: vec![
                LockedPackage {
                    name: "runit".into(),
                    version: "2.2.0-3".into(),
                    architecture: "amd64".into(),
                    filename: PoolPath::parse("pool/main/r/runit/runit_2.2.0-3_amd64.deb").unwrap(),
                    size: 10,
                    sha256: Sha256::parse(&"a".repeat(64)).unwrap(),
                    installed_size: 300,
                    depends: vec!["libc6".into()],
                },
                LockedPackage {
                    name: "libc6".into(),
                    version: "2.41-12".into(),
                    architecture: "amd64".into(),
                    filename: PoolPath::parse("pool/main/g/glibc/libc6_2.41-12_amd64.deb").unwrap(),
                    size: 20,
                    sha256: Sha256::parse(&"b".repeat(64)).unwrap(),
                    installed_size: 12000,
                    depends: vec![],
                },
            ],
        }
    }

    #[test]
    fn renders_sorted_and_round_trips() {
        let text = sample().render();
        assert!(text.find("name = \"libc6\"").unwrap() < text.find("name = \"runit\"").unwrap());
        let parsed = Lock::parse("micros.lock", &text).unwrap();
        assert_eq!(parsed.render(), text, "rendering is stable");
        assert_eq!(parsed.package("runit").unwrap().version, "2.2.0-3");
    }

    #[test]
    fn a_lock_serves_its_codename_and_its_alias() {
        let lock = sample();
        assert!(lock.serves_suite("trixie") && lock.serves_suite("stable"));
        assert!(!lock.serves_suite("forky") && !lock.serves_suite("testing"));
        assert_eq!(lock.describe(), "trixie 13.7");
    }

    #[test]
    fn version_1_locks_are_still_read() {
        let text = sample()
            .render()
            .replace("version = 2\n", "version = 1\n")
            .replace("release = \"13.7\"\n", "")
            .replace("alias = \"stable\"\n", "");
        let lock = Lock::parse("micros.lock", &text).unwrap();
        assert_eq!((lock.release.as_str(), lock.alias), ("", None));
    }

    #[test]
    fn release_dates_become_snapshot_timestamps() {
        assert_eq!(
            sample().snapshot_timestamp().as_deref(),
            Some("20261121T091544Z")
        );
        assert_eq!(
            snapshot_timestamp("1 Jan 2028 00:00:00 UTC").as_deref(),
            Some("20280101T000000Z")
        );
        assert_eq!(snapshot_timestamp("Sat, 21 Nov 2026 09:15:44 CET"), None);
    }

    /// `line N` for the line of `text` holding `needle`, as TOML errors
    /// name it.
    fn line_of(text: &str, needle: &str) -> String {
        let index = text.lines().position(|l| l.contains(needle)).unwrap();
        format!("line {}", index + 1)
    }

    #[test]
    fn hashes_and_pool_paths_are_checked_where_the_lock_is_read() {
        let text = sample().render();
        let hostile = text.replacen(
            &"a".repeat(64),
            "../../../../../../home/user/precious-file",
            1,
        );
        let error = Lock::parse("micros.lock", &hostile)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("micros.lock is not a valid lock file"),
            "{error}"
        );
        assert!(error.contains("is not a SHA-256 digest"), "{error}");
        let line = line_of(&hostile, "precious-file");
        assert!(error.contains(&line), "the error names {line}: {error}");
        let hostile = text.replacen(
            "pool/main/r/runit/runit_2.2.0-3_amd64.deb",
            "pool/../../../etc/shadow",
            1,
        );
        let error = Lock::parse("micros.lock", &hostile)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not a path below the archive's pool/"),
            "{error}"
        );
        let line = line_of(&hostile, "etc/shadow");
        assert!(error.contains(&line), "the error names {line}: {error}");
    }

    #[test]
    fn an_upper_case_hash_in_the_lock_is_refused() {
        let text = sample().render();
        let shouting = text.replacen(&"a".repeat(64), &"A".repeat(64), 1);
        assert_ne!(shouting, text);
        let error = Lock::parse("micros.lock", &shouting)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("`{}` is not a SHA-256 digest", "A".repeat(64))),
            "{error}"
        );
        let line = line_of(&shouting, &"A".repeat(64));
        assert!(error.contains(&line), "the error names {line}: {error}");
    }

    #[test]
    fn unknown_versions_and_garbage_are_typed_errors() {
        let text = sample().render().replace("version = 2\n", "version = 7\n");
        assert!(matches!(
            Lock::parse("micros.lock", &text),
            Err(LockError::UnknownVersion { found: 7, .. })
        ));
        assert!(matches!(
            Lock::parse("micros.lock", "not toml ["),
            Err(LockError::Syntax { .. })
        ));
    }
}
