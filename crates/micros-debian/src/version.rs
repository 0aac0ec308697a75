//! Debian version numbers (`[epoch:]upstream[-revision]`) and their order,
//! as `dpkg --compare-versions` defines it.
use std::cmp::Ordering;
use std::fmt;

/// A version as written, with where its parts are: one allocation per
/// version (a suite's indexes hold hundreds of thousands of them, one in
/// every versioned relation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    text: Box<str>,
    epoch: u64,
    /// `text[upstream.0..upstream.1]` is the upstream version;
    /// `text[revision..]` the Debian revision (empty when there is none).
    upstream: (u32, u32),
    revision: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version `{0}`")]
pub struct InvalidVersion(pub String);

impl Version {
    pub fn parse(text: &str) -> Result<Version, InvalidVersion> {
        let text = text.trim();
        let invalid = || InvalidVersion(text.to_owned());
        if u32::try_from(text.len()).is_err() {
            return Err(invalid());
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => (epoch.parse::<u64>().map_err(|_| invalid())?, rest),
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() || !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !upstream.chars().all(allowed)
            || !revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
        {
            return Err(invalid());
        }
        let start = (text.len() - rest.len()) as u32;
        Ok(Version {
            epoch,
            upstream: (start, start + upstream.len() as u32),
            revision: (text.len() - revision.len()) as u32,
            text: text.into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn upstream(&self) -> &str {
        &self.text[self.upstream.0 as usize..self.upstream.1 as usize]
    }

    fn revision(&self) -> &str {
        &self.text[self.revision as usize..]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The weight of a character in the non-digit parts: `~` sorts before
/// everything, even the end of the string; letters before other symbols.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefixes, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            match weight(ca).cmp(&weight(cb)) {
                Ordering::Equal => {
                    a = &a[ca.map_or(0, |_| 1)..];
                    b = &b[cb.map_or(0, |_| 1)..];
                }
                other => return other,
            }
        }
        // Digit runs, numerically (without overflow: compare lengths after
        // stripping leading zeros, then lexically).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..da]);
        let nb = trim_zeros(&b[..db]);
        match na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)) {
            Ordering::Equal => {
                a = &a[da..];
                b = &b[db..];
            }
            other => return other,
        }
    }
    Ordering::Equal
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn dpkg_order() {
        // Each pair is (smaller, larger), as dpkg --compare-versions lt says.
        let pairs = [
            ("1.0", "1.1"),
            ("1.0~rc1", "1.0"),
            ("1.0~~", "1.0~"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.9", "1.10"),
            ("1:0.1", "2:0.0"),
            ("2.0", "1:1.0"),
            ("1.0-1", "1.0-2"),
            ("1.0-1", "1.0-1+b1"),
            ("1.0-1~bpo1", "1.0-1"),
            ("2.41-6", "2.41-12"),
            ("1.36.1-9", "1.37.0-1"),
            ("0001", "2"),
        ];
        for (small, large) in pairs {
            assert!(v(small) < v(large), "{small} < {large}");
            assert!(v(large) > v(small), "{large} > {small}");
        }
        assert_eq!(v("1.0").cmp(&v("1.00")), Ordering::Equal);
        assert_eq!(v("0:1.0").cmp(&v("1.0")), Ordering::Equal);
    }

    #[test]
    fn invalid_versions() {
        for bad in ["", "a1", "1:", "x:1", "1.0 2"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(v("1:2.3-4").to_string(), "1:2.3-4");
    }

    #[test]
    fn parts() {
        for (text, epoch, upstream, revision) in [
            ("1:2.3-4-5", 1, "2.3-4", "5"),
            ("2.41-12", 0, "2.41", "12"),
            ("  0.9 ", 0, "0.9", ""),
            ("10:1:2", 10, "1:2", ""),
        ] {
            let version = v(text);
            assert_eq!(
                (version.epoch, version.upstream(), version.revision()),
                (epoch, upstream, revision),
                "{text:?}"
            );
        }
    }
}
