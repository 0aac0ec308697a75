//! A system's version (`system.update.version`): dotted numbers, compared
//! number by number (`1.10` is newer than `1.9`; `1.2` and `1.2.0` are the
//! same version).
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(Vec<u64>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadVersion;

impl fmt::Display for BadVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a version is dotted numbers, e.g. 1.4.2")
    }
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, BadVersion> {
        if text.is_empty() || text.len() > 64 {
            return Err(BadVersion);
        }
        text.split('.')
            .map(|part| {
                if part.is_empty() || part.len() > 18 || !part.bytes().all(|b| b.is_ascii_digit()) {
                    Err(BadVersion)
                } else {
                    part.parse().map_err(|_| BadVersion)
                }
            })
            .collect::<Result<Vec<u64>, _>>()
            .map(Version)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let length = self.0.len().max(other.0.len());
        (0..length)
            .map(|i| {
                let a = self.0.get(i).copied().unwrap_or(0);
                let b = other.0.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|order| *order != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_number_by_number() {
        let v = |t: &str| Version::parse(t).unwrap();
        assert!(v("1.10") > v("1.9"));
        assert!(v("2") > v("1.99.99"));
        assert_eq!(v("1.2").cmp(&v("1.2.0")), Ordering::Equal);
        assert!(v("1.2.1") > v("1.2"));
        assert_eq!(v("007.1").to_string(), "7.1");
        for bad in [
            "",
            "1..2",
            "1.a",
            "-1",
            "1.2.",
            " 1",
            "99999999999999999999",
        ] {
            assert_eq!(Version::parse(bad), Err(BadVersion), "{bad:?}");
        }
    }
}
