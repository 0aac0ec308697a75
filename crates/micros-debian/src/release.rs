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
    /// `Valid-Until:`, after which the Release must not be trusted (a
    /// mirror replaying an old signed Release to hold back updates).
    pub valid_until: Option<ReleaseDate>,
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
    #[error("the Release file's `{field}` is not a date: `{value}`")]
    BadDate { field: &'static str, value: String },
    #[error("the Release expired on {until} (its Valid-Until): the mirror serves an old signed Release, or this machine's clock is wrong\nhint: use another mirror, or check the clock")]
    Expired { until: String },
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
            valid_until: paragraph
                .get("Valid-Until")
                .map(|value| {
                    ReleaseDate::parse(value).ok_or_else(|| ReleaseError::BadDate {
                        field: "Valid-Until",
                        value: value.to_owned(),
                    })
                })
                .transpose()?,
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

    /// Refuses a Release past its `Valid-Until` at `now` (Unix seconds).
    pub fn check_valid_at(&self, now: i64) -> Result<(), ReleaseError> {
        match &self.valid_until {
            Some(until) if until.unix_seconds() < now => Err(ReleaseError::Expired {
                until: paragraph_date(until),
            }),
            _ => Ok(()),
        }
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

fn paragraph_date(date: &ReleaseDate) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        date.year, date.month, date.day, date.hour, date.minute, date.second
    )
}

/// A Release's `Date:` or `Valid-Until:`, RFC 2822 in UTC as Debian
/// writes it: `Sat, 21 Nov 2026 09:15:44 UTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseDate {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl ReleaseDate {
    pub fn parse(text: &str) -> Option<ReleaseDate> {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let words: Vec<&str> = text.split_whitespace().collect();
        // The weekday is optional in RFC 2822.
        let words = match words.first() {
            Some(first) if first.ends_with(',') => &words[1..],
            _ => &words[..],
        };
        let [day, month, year, time, zone] = words else {
            return None;
        };
        if !matches!(*zone, "UTC" | "GMT" | "+0000" | "Z") {
            return None;
        }
        let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
        let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
        let year: u32 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
        let parts: Vec<u32> = time
            .split(':')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let [hour, minute, second] = parts[..] else {
            return None;
        };
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        Some(ReleaseDate {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// `20261121T091544Z`, as a snapshot archive names its states.
    pub fn snapshot_timestamp(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// Seconds since 1970-01-01 UTC.
    pub fn unix_seconds(&self) -> i64 {
        // Days from the civil date (Howard Hinnant's algorithm).
        let (year, month) = if self.month <= 2 {
            (i64::from(self.year) - 1, i64::from(self.month) + 9)
        } else {
            (i64::from(self.year), i64::from(self.month) - 3)
        };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * month + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
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
    fn dates_parse_to_seconds_and_snapshot_timestamps() {
        let date = ReleaseDate::parse("Sat, 21 Nov 2026 09:15:44 UTC").unwrap();
        assert_eq!(date.snapshot_timestamp(), "20261121T091544Z");
        // date -u -d '2026-11-21 09:15:44' +%s
        assert_eq!(date.unix_seconds(), 1_795_252_544);
        assert_eq!(
            ReleaseDate::parse("1 Jan 1970 00:00:00 UTC")
                .unwrap()
                .unix_seconds(),
            0
        );
        assert_eq!(
            ReleaseDate::parse("Tue, 29 Feb 2028 23:59:59 UTC")
                .unwrap()
                .unix_seconds(),
            1_835_481_599
        );
        for bad in [
            "",
            "Sat, 21 Nov 2026 09:15:44 CET",
            "Sat, 32 Nov 2026 09:15:44 UTC",
            "Sat, 21 Foo 2026 09:15:44 UTC",
            "Sat, 21 Nov 2026 25:15:44 UTC",
            "Sat, 21 Nov 2026 09:15 UTC",
        ] {
            assert_eq!(ReleaseDate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_expired_release_is_refused() {
        let release = Release::parse(&RELEASE.replace(
            "Architectures:",
            "Valid-Until: Sat, 28 Nov 2026 09:15:44 UTC\nArchitectures:",
        ))
        .unwrap();
        let until = ReleaseDate::parse("Sat, 28 Nov 2026 09:15:44 UTC")
            .unwrap()
            .unix_seconds();
        assert!(release.check_valid_at(until - 1).is_ok());
        let error = release.check_valid_at(until + 1).unwrap_err().to_string();
        assert!(
            error.contains("the Release expired on 2026-11-28 09:15:44 UTC"),
            "{error}"
        );
        // No Valid-Until (Debian's stable): never expires.
        assert!(Release::parse(RELEASE)
            .unwrap()
            .check_valid_at(i64::MAX)
            .is_ok());
        assert!(matches!(
            Release::parse(&RELEASE.replace("Architectures:", "Valid-Until: soon\nArchitectures:")),
            Err(ReleaseError::BadDate { .. })
        ));
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
