//! The signed Release text of a suite: its date and the SHA-256 and size of
//! every index file.
use std::collections::BTreeMap;

use crate::deb822;
use crate::digest::Sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    pub sha256: Sha256,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub suite: String,
    pub codename: String,
    /// The point release (`Version: 13.7`); empty for testing and unstable.
    pub version: String,
    /// As the archive wrote it: `Sat, 21 Nov 2026 09:15:44 UTC`.
    pub date: String,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Whether indexes can be fetched by their hash (`by-hash/SHA256/…`),
    /// which avoids reading an index newer than the Release during a
    /// mirror update.
    pub acquire_by_hash: bool,
    /// Whether each architecture's `Packages` also lists the `all`
    /// packages (`No-Support-for-Architecture-all: Packages`, as Debian's
    /// archive says), so that `binary-all` need not be read.
    pub all_in_architecture_indexes: bool,
    /// Path relative to `dists/<suite>/` → hash and size.
    pub files: BTreeMap<String, FileHash>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("the Release file is malformed: {0}")]
    Syntax(#[from] deb822::ParseError),
    #[error("the Release file has no `{0}` field")]
    Missing(&'static str),
    #[error("the Release file has a malformed SHA256 line: `{0}`")]
    BadHashLine(String),
}

impl Release {
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let paragraphs = deb822::parse(text)?;
        let paragraph = paragraphs.first().ok_or(ReleaseError::Missing("Suite"))?;
        let field = |name: &'static str| paragraph.get(name).ok_or(ReleaseError::Missing(name));
        let mut files = BTreeMap::new();
        for line in field("SHA256")?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [sha256, size, path] = parts[..] else {
                return Err(ReleaseError::BadHashLine(line.to_owned()));
            };
            let size = size
                .parse()
                .map_err(|_| ReleaseError::BadHashLine(line.to_owned()))?;
            let sha256 =
                Sha256::parse(sha256).map_err(|_| ReleaseError::BadHashLine(line.to_owned()))?;
            files.insert(path.to_owned(), FileHash { sha256, size });
        }
        let words = |name: &'static str| -> Vec<String> {
            paragraph
                .get(name)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        Ok(Release {
            suite: paragraph.get("Suite").unwrap_or("").to_owned(),
            codename: paragraph.get("Codename").unwrap_or("").to_owned(),
            version: paragraph.get("Version").unwrap_or("").to_owned(),
            date: field("Date")?.to_owned(),
            architectures: words("Architectures"),
            components: words("Components"),
            acquire_by_hash: paragraph
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            all_in_architecture_indexes: paragraph
                .get("No-Support-for-Architecture-all")
                .is_some_and(|v| v.trim() == "Packages"),
            files,
        })
    }

    /// Whether this is the Release of `name`, as asked for under
    /// `dists/<name>/`: its Suite (`stable`) or its Codename (`trixie`).
    /// A mirror that answers for one suite with another's signed Release
    /// (a replay, or a mistake) is caught here.
    pub fn is_for(&self, name: &str) -> bool {
        self.suite == name || self.codename == name
    }

    /// What it is, for messages: `trixie 13.7`, `sid`.
    pub fn describe(&self) -> String {
        let name = if self.codename.is_empty() {
            &self.suite
        } else {
            &self.codename
        };
        if self.version.is_empty() {
            name.clone()
        } else {
            format!("{name} {}", self.version)
        }
    }

    /// The best-compressed `Packages` index for a component and
    /// architecture, with its hash: `main/binary-amd64/Packages.xz`.
    pub fn packages_index(&self, component: &str, arch: &str) -> Option<(String, &FileHash)> {
        ["xz", "gz"].iter().find_map(|ext| {
            let path = format!("{component}/binary-{arch}/Packages.{ext}");
            self.files.get(&path).map(|hash| (path, hash))
        })
    }

    /// Where to download the index at `path` (relative to `dists/<suite>/`).
    pub fn download_path(&self, path: &str, hash: &FileHash) -> String {
        match (self.acquire_by_hash, path.rsplit_once('/')) {
            (true, Some((dir, _))) => format!("{dir}/by-hash/SHA256/{}", hash.sha256),
            _ => path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "Origin: Debian\nSuite: stable\nCodename: trixie\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nArchitectures: all amd64 arm64\nComponents: main contrib\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000001 1234 main/binary-amd64/Packages.xz\n 0000000000000000000000000000000000000000000000000000000000000002 99999 main/binary-amd64/Packages\n";

    #[test]
    fn parses_date_and_hashes() {
        let release = Release::parse(RELEASE).unwrap();
        assert_eq!(release.codename, "trixie");
        assert_eq!(release.version, "");
        assert!(!release.all_in_architecture_indexes);
        let debian = Release::parse(&RELEASE.replace(
            "Architectures:",
            "No-Support-for-Architecture-all: Packages\nArchitectures:",
        ))
        .unwrap();
        assert!(debian.all_in_architecture_indexes);
        assert!(release.is_for("stable") && release.is_for("trixie") && !release.is_for("forky"));
        assert_eq!(release.describe(), "trixie");
        let with_version = Release::parse(
            &RELEASE.replace("Codename: trixie\n", "Codename: trixie\nVersion: 13.7\n"),
        )
        .unwrap();
        assert_eq!(with_version.describe(), "trixie 13.7");
        assert_eq!(release.date, "Sat, 21 Nov 2026 09:15:44 UTC");
        let (path, hash) = release.packages_index("main", "amd64").unwrap();
        assert_eq!(path, "main/binary-amd64/Packages.xz");
        assert_eq!(hash.size, 1234);
        assert!(release.packages_index("main", "armel").is_none());
    }

    #[test]
    fn malformed_hash_lines_are_refused() {
        let bad = RELEASE.replace(" 1234 ", " lots ");
        assert!(matches!(
            Release::parse(&bad),
            Err(ReleaseError::BadHashLine(_))
        ));
        assert!(matches!(
            Release::parse("Suite: x\n"),
            Err(ReleaseError::Missing(_))
        ));
    }
}
