//! `micros.lock`: the exact packages a configuration resolved to, so that
//! every build of it is the same and needs no network.
//!
//! It is sorted and holds nothing that depends on the mirror or the clock
//! (pool paths are relative to any mirror), so identical inputs give a
//! byte-identical file.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    pub suite: String,
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
    /// Below the archive root: `pool/main/r/runit/runit_2.2.0-3_amd64.deb`.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
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
        if version.version != FORMAT_VERSION {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        Lock {
            version: FORMAT_VERSION,
            suite: "trixie".into(),
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
                    filename: "pool/main/r/runit/runit_2.2.0-3_amd64.deb".into(),
                    size: 10,
                    sha256: "a".repeat(64),
                    installed_size: 300,
                    depends: vec!["libc6".into()],
                },
                LockedPackage {
                    name: "libc6".into(),
                    version: "2.41-12".into(),
                    architecture: "amd64".into(),
                    filename: "pool/main/g/glibc/libc6_2.41-12_amd64.deb".into(),
                    size: 20,
                    sha256: "b".repeat(64),
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
    fn unknown_versions_and_garbage_are_typed_errors() {
        let text = sample().render().replace("version = 1\n", "version = 7\n");
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
