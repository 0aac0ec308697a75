//! The kernel command line, as stage 1 reads it from `/proc/cmdline`.
//!
//! ```text
//! root=PARTUUID=1234abcd-02        where the root filesystem is
//! micros.rootwait=10               seconds to wait for it (default 10)
//! micros.overlay=tmpfs|data        what goes over the read-only root
//! micros.data=PARTUUID=…           the data partition, for overlay=data
//! micros.onfailure=reboot|shell    what a failure does (default reboot)
//! micros.init=/sbin/runit          what to hand over to (Debian's runit)
//! micros.watchdog=60               arm /dev/watchdog for 60 s before the root
//!                                  is looked for; userspace must feed it
//! ```
use alloc::{borrow::ToOwned, string::String, vec::Vec};
use core::time::Duration;

use crate::device::{DeviceSpec, InvalidDevice};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Tmpfs,
    Data(DeviceSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Print the reason, wait, reboot.
    Reboot,
    /// Print the reason and start a shell on the console.
    Shell,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub root: DeviceSpec,
    pub root_wait: Duration,
    pub overlay: Overlay,
    pub on_failure: OnFailure,
    pub init: String,
    /// Seconds the hardware watchdog gets, armed by stage 1 (none when
    /// absent).
    pub watchdog: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdlineError {
    MissingRoot,
    BadDevice(String, InvalidDevice),
    BadValue {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl core::fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CmdlineError::MissingRoot => write!(
                f,
                "the kernel command line has no root= (e.g. root=/dev/vda or root=PARTUUID=...)"
            ),
            CmdlineError::BadDevice(key, error) => write!(f, "{key}: {error}"),
            CmdlineError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "{key}={value}: expected {expected}"),
        }
    }
}

/// Splits a command line into words, honouring double quotes as the kernel
/// does (`a="b c"` is one word).
pub fn words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(core::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(current);
    }
    words
}

/// The value of the last `key=value` word for `key` (the kernel's rule:
/// later parameters win).
pub fn value<'a>(words: &'a [String], key: &str) -> Option<&'a str> {
    words.iter().rev().find_map(|word| {
        word.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// Whether the failure policy asks for a shell; readable even when the
/// rest of the command line is broken.
pub fn on_failure(cmdline: &str) -> OnFailure {
    match value(&words(cmdline), "micros.onfailure") {
        Some("shell") => OnFailure::Shell,
        _ => OnFailure::Reboot,
    }
}

pub fn parse(cmdline: &str) -> Result<Options, CmdlineError> {
    let words = words(cmdline);
    let root = value(&words, "root").ok_or(CmdlineError::MissingRoot)?;
    let root =
        DeviceSpec::parse(root).map_err(|e| CmdlineError::BadDevice("root".to_owned(), e))?;
    let root_wait = match value(&words, "micros.rootwait") {
        None => Duration::from_secs(10),
        Some(text) => Duration::from_secs(text.parse().map_err(|_| CmdlineError::BadValue {
            key: "micros.rootwait",
            value: text.to_owned(),
            expected: "a number of seconds",
        })?),
    };
    let overlay = match value(&words, "micros.overlay") {
        None | Some("tmpfs") => Overlay::Tmpfs,
        Some("data") => {
            let data = value(&words, "micros.data").ok_or(CmdlineError::BadValue {
                key: "micros.overlay",
                value: "data".to_owned(),
                expected: "micros.data=<device> too",
            })?;
            Overlay::Data(
                DeviceSpec::parse(data)
                    .map_err(|e| CmdlineError::BadDevice("micros.data".to_owned(), e))?,
            )
        }
        Some(other) => {
            return Err(CmdlineError::BadValue {
                key: "micros.overlay",
                value: other.to_owned(),
                expected: "tmpfs or data",
            })
        }
    };
    let on_failure = match value(&words, "micros.onfailure") {
        None | Some("reboot") => OnFailure::Reboot,
        Some("shell") => OnFailure::Shell,
        Some(other) => {
            return Err(CmdlineError::BadValue {
                key: "micros.onfailure",
                value: other.to_owned(),
                expected: "reboot or shell",
            })
        }
    };
    let init = value(&words, "micros.init")
        .unwrap_or("/sbin/runit")
        .to_owned();
    let watchdog = match value(&words, "micros.watchdog") {
        None => None,
        Some(text) => Some(
            text.parse::<u32>()
                .ok()
                .filter(|n| (1..=3600).contains(n))
                .ok_or(CmdlineError::BadValue {
                    key: "micros.watchdog",
                    value: text.to_owned(),
                    expected: "seconds from 1 to 3600",
                })?,
        ),
    };
    Ok(Options {
        root,
        root_wait,
        overlay,
        on_failure,
        init,
        watchdog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_armed_only_when_asked_and_for_a_sane_time() {
        assert_eq!(parse("root=/dev/vda").unwrap().watchdog, None);
        assert_eq!(
            parse("root=/dev/vda micros.watchdog=60").unwrap().watchdog,
            Some(60)
        );
        for bad in ["0", "-1", "sixty", "100000"] {
            assert!(parse(&alloc::format!("root=/dev/vda micros.watchdog={bad}")).is_err());
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let options = parse("console=ttyS0,115200 root=/dev/vda quiet").unwrap();
        assert_eq!(options.root, DeviceSpec::Path("/dev/vda".into()));
        assert_eq!(options.root_wait, Duration::from_secs(10));
        assert_eq!(options.overlay, Overlay::Tmpfs);
        assert_eq!(options.on_failure, OnFailure::Reboot);
        assert_eq!(options.init, "/sbin/runit");

        let options = parse("root=PARTUUID=1234abcd-02 root=LABEL=micros micros.rootwait=3 micros.overlay=data micros.data=PARTUUID=1234abcd-03 micros.onfailure=shell").unwrap();
        assert_eq!(
            options.root,
            DeviceSpec::Label("micros".into()),
            "the last root= wins"
        );
        assert_eq!(options.root_wait, Duration::from_secs(3));
        assert!(matches!(
            options.overlay,
            Overlay::Data(DeviceSpec::PartUuid(_))
        ));
        assert_eq!(options.on_failure, OnFailure::Shell);
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(words(r#"a="b c" d  e"#), ["a=b c", "d", "e"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            parse("quiet").unwrap_err().to_string(),
            "the kernel command line has no root= (e.g. root=/dev/vda or root=PARTUUID=...)"
        );
        assert_eq!(
            parse("root=/dev/vda micros.rootwait=soon")
                .unwrap_err()
                .to_string(),
            "micros.rootwait=soon: expected a number of seconds"
        );
        assert!(parse("root=/dev/vda micros.overlay=data")
            .unwrap_err()
            .to_string()
            .contains("micros.data"));
        assert_eq!(on_failure("root= micros.onfailure=shell"), OnFailure::Shell);
    }
}
