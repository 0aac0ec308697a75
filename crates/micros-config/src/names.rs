//! Names that end up in generated files, checked once where the
//! configuration enters Rust: a service name becomes a directory under
//! `/etc/sv`, a user name a line of `/etc/passwd` and an argument of
//! `chpst`, an environment variable an `export` in a script, a sysctl key a
//! path under `/proc/sys`. Each type holds only a name that is safe in all
//! of those places, so a value of the type cannot climb out of a directory,
//! split a line or end a shell word. (Values, which may hold anything, are
//! quoted where they leave: `micros_system::shell`.)
//!
//! The modules check the same rules with Nickel contracts (`lib/types.ncl`),
//! which name the option; these types are the line that holds if a contract
//! is ever missing. `tests/names.rs` checks that both agree.
use std::borrow::Borrow;
use std::fmt;

/// Why a name was refused: what was expected, for the error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not {expected}")]
pub struct NameError {
    pub name: String,
    pub expected: &'static str,
}

macro_rules! name_type {
    ($(#[$doc:meta])* $type:ident, $expected:expr, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $type(String);

        impl $type {
            /// What a valid name looks like, for error messages.
            pub const EXPECTED: &'static str = $expected;

            pub fn parse(name: &str) -> Result<Self, NameError> {
                let valid: fn(&str) -> bool = $valid;
                if valid(name) {
                    Ok(Self(name.to_owned()))
                } else {
                    Err(NameError {
                        name: name.to_owned(),
                        expected: $expected,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $type {
            type Error = NameError;
            fn try_from(name: String) -> Result<Self, NameError> {
                Self::parse(&name)
            }
        }

        impl std::ops::Deref for $type {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $type {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $type {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $type {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                Self::parse(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

name_type!(
    /// A supervised service: a directory under `/etc/sv` and `/etc/service`.
    /// Not `.`/`..`, and not starting with `.` (runsvdir skips those) or `-`
    /// (it would read as an option to `sv`).
    ServiceName,
    "a service name (letters, digits, `-`, `_` and `.`, not starting with `.` or `-`, at most 64)",
    |name| {
        name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && name.chars().all(|c| is_word_char(c) || c == '-' || c == '.')
    }
);

name_type!(
    /// A user or group: a field of `/etc/passwd`/`/etc/group` and an
    /// argument of `chpst -u`. Debian's own system users fit (`_apt`,
    /// `www-data`, `Debian-exim`).
    UserName,
    "a user or group name (letters, digits, `_`, `-` and `.`, starting with a letter or `_`, at most 32)",
    |name| {
        name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| is_word_char(c) || c == '-' || c == '.')
    }
);

name_type!(
    /// An environment variable, as POSIX shells accept it after `export`.
    EnvName,
    "an environment variable name (letters, digits and `_`, not starting with a digit)",
    |name| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(is_word_char)
    }
);

name_type!(
    /// A kernel parameter under `/proc/sys`, in sysctl's notation:
    /// `net.ipv4.ip_forward`, or with `/` when a component holds a dot
    /// (`net/ipv4/conf/eth0.100/forwarding`). No component is empty, `.`
    /// or `..`, so the key stays below `/proc/sys`.
    SysctlKey,
    "a sysctl key (components of letters, digits, `_` and `-`, not starting with `-`, separated by `.`, or by `/` when one holds a `.`)",
    |name| {
        let separator = if name.contains('/') { '/' } else { '.' };
        name.split(separator).all(|component| {
            component.starts_with(is_word_char)
                && component != ".."
                && component
                    .chars()
                    .all(|c| is_word_char(c) || c == '-' || (separator == '/' && c == '.'))
        })
    }
);

impl SysctlKey {
    /// The file the key names: `/proc/sys/net/ipv4/ip_forward`.
    pub fn proc_path(&self) -> String {
        let separator = if self.0.contains('/') { '/' } else { '.' };
        let components: Vec<&str> = self.0.split(separator).collect();
        format!("/proc/sys/{}", components.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values an attacker would try: each must be refused by every type.
    const HOSTILE: &[&str] = &[
        "",
        ".",
        "..",
        "../x",
        "a/../../x",
        "a b",
        "a'b",
        "a\"b",
        "$(reboot)",
        "`reboot`",
        "a;b",
        "a\nb",
        "a:b",
        "-rf",
        "a\0b",
    ];

    #[test]
    fn hostile_names_are_refused_by_every_type() {
        for name in HOSTILE {
            assert!(ServiceName::parse(name).is_err(), "service {name:?}");
            assert!(UserName::parse(name).is_err(), "user {name:?}");
            assert!(EnvName::parse(name).is_err(), "env {name:?}");
            assert!(SysctlKey::parse(name).is_err(), "sysctl {name:?}");
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for name in ["sshd", "dhcp-eth0", "network-eth0.100", "_x", "a.b"] {
            ServiceName::parse(name).unwrap();
        }
        assert!(ServiceName::parse(".hidden").is_err());
        for name in ["root", "_apt", "www-data", "Debian-exim", "ntpd"] {
            UserName::parse(name).unwrap();
        }
        assert!(UserName::parse("0day").is_err());
        assert!(UserName::parse(&"a".repeat(33)).is_err());
        for name in ["PATH", "_x1", "LANG"] {
            EnvName::parse(name).unwrap();
        }
        assert!(EnvName::parse("1X").is_err());
        assert!(EnvName::parse("A-B").is_err());
    }

    #[test]
    fn sysctl_keys_stay_below_proc_sys() {
        let key = SysctlKey::parse("net.ipv4.ip_forward").unwrap();
        assert_eq!(key.proc_path(), "/proc/sys/net/ipv4/ip_forward");
        let key = SysctlKey::parse("net/ipv4/conf/eth0.100/forwarding").unwrap();
        assert_eq!(
            key.proc_path(),
            "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
        );
        for bad in [
            "net/../../etc/x",
            "net..x",
            ".net",
            "net/",
            "/net/x",
            "a/./b",
        ] {
            assert!(SysctlKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        let error = ServiceName::parse("..").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("\"..\" is not {}", ServiceName::EXPECTED)
        );
    }
}
