//! The hardware table the build writes into the root
//! (`/usr/lib/micros/hardware`), and how a device's `modalias` picks
//! modules from it: the part of udev MicrOS needs, as pure functions.
//!
//! ```text
//! # MicrOS hardware table (written by micros build)
//! dir /usr/lib/modules/6.12.48+deb13-arm64
//! module usbnet mii usbnet                 load order: dependencies first
//! module cdc_ether mii usbnet cdc_ether
//! alias usb:v*p*d*dc*dsc*dp*ic02isc06ip00in* cdc_ether
//! ```
//!
//! Each `module` line lists every module to load for it, in order, so the
//! device needs no dependency resolution. An `alias` pattern is the
//! kernel's own (`alias=` in the module's `.modinfo`): `*`, `?` and `[…]`
//! (with ranges and `!`) as in fnmatch(3) without flags.
use alloc::{borrow::ToOwned, string::String, vec::Vec};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Where the module files are: `<dir>/<name>.ko`.
    pub dir: String,
    /// Module name → the modules to load for it, in order (itself last).
    pub modules: Vec<(String, Vec<String>)>,
    /// (pattern, module name).
    pub aliases: Vec<(String, String)>,
}

impl Table {
    /// Reads the table. Lines it does not know are skipped: a table from a
    /// newer build still loads what this init understands.
    pub fn parse(text: &str) -> Table {
        let mut table = Table::default();
        for line in text.lines() {
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some("dir") => {
                    if let Some(dir) = words.next() {
                        table.dir = dir.to_owned();
                    }
                }
                Some("module") => {
                    if let Some(name) = words.next() {
                        let order: Vec<String> = words.map(str::to_owned).collect();
                        table.modules.push((name.to_owned(), order));
                    }
                }
                Some("alias") => {
                    if let (Some(pattern), Some(module)) = (words.next(), words.next()) {
                        table.aliases.push((pattern.to_owned(), module.to_owned()));
                    }
                }
                _ => {}
            }
        }
        table.modules.sort();
        table
    }

    /// The modules whose aliases match a device's `modalias`, in table
    /// order, each once.
    pub fn modules_for(&self, modalias: &str) -> Vec<&str> {
        let mut found: Vec<&str> = Vec::new();
        for (pattern, module) in &self.aliases {
            if !found.contains(&module.as_str()) && matches(pattern, modalias) {
                found.push(module);
            }
        }
        found
    }

    /// What to load for `module`, dependencies first; just the module when
    /// the table does not list its dependencies.
    pub fn load_order<'a>(&'a self, module: &'a str) -> Vec<&'a str> {
        match self
            .modules
            .binary_search_by(|(name, _)| name.as_str().cmp(module))
        {
            Ok(index) if !self.modules[index].1.is_empty() => {
                self.modules[index].1.iter().map(String::as_str).collect()
            }
            _ => alloc::vec![module],
        }
    }

    /// The file of a module.
    pub fn path(&self, module: &str) -> String {
        alloc::format!("{}/{module}.ko", self.dir)
    }
}

/// Whether `text` matches the fnmatch(3) `pattern` (no flags: `/` and a
/// leading `.` are ordinary characters). Iterative, with one saved `*`
/// position: linear in practice, never exponential.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        // An unclosed `[` is an ordinary character.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                byte if byte == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        // A mismatch: let the last `*` take one more character.
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches `byte` against the class starting at `pattern[start]` (`[`):
/// (whether it matched, the index after `]`), or None when the class is
/// not closed.
fn class(pattern: &[u8], start: usize, byte: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = matches!(pattern.get(i), Some(b'!') | Some(b'^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let c = *pattern.get(i)?;
        if c == b']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            let end = pattern[i + 2];
            if c <= byte && byte <= end {
                matched = true;
            }
            i += 3;
        } else {
            if c == byte {
                matched = true;
            }
            i += 1;
        }
    }
}

/// What a kernel uevent (from the `NETLINK_KOBJECT_UEVENT` socket) says:
/// `add@/devices/…\0ACTION=add\0DEVPATH=…\0MODALIAS=usb:v…\0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent<'a> {
    pub action: &'a str,
    pub devpath: &'a str,
    pub modalias: Option<&'a str>,
}

/// Reads a kernel uevent; None for anything else on the socket (udev's
/// own messages start with `libudev`, and have no `@` header).
pub fn parse_uevent(message: &[u8]) -> Option<Uevent<'_>> {
    let mut fields = message.split(|&b| b == 0);
    let header = core::str::from_utf8(fields.next()?).ok()?;
    if !header.contains('@') {
        return None;
    }
    let mut event = Uevent {
        action: "",
        devpath: "",
        modalias: None,
    };
    for field in fields {
        let Ok(field) = core::str::from_utf8(field) else {
            continue;
        };
        match field.split_once('=') {
            Some(("ACTION", value)) => event.action = value,
            Some(("DEVPATH", value)) => event.devpath = value,
            Some(("MODALIAS", value)) => event.modalias = Some(value),
            _ => {}
        }
    }
    (!event.action.is_empty()).then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_as_the_kernel_writes_aliases() {
        for (pattern, text) in [
            (
                "usb:v0424pEC00d*dc*dsc*dp*ic*isc*ip*in*",
                "usb:v0424pEC00d0200dcFFdsc00dp02icFFisc00ipFFin00",
            ),
            (
                "pci:v000015ADd000007B0sv*sd*bc*sc*i*",
                "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00",
            ),
            (
                "of:N*T*Cbrcm,bcm2835-usb",
                "of:NusbT(null)Cbrcm,bcm2835-usb",
            ),
            (
                "of:N*T*Cbrcm,bcm2835-usbC*",
                "of:NusbT(null)Cbrcm,bcm2835-usbCsnps,dwc2",
            ),
            ("usb:v0BDAp8153d[1-2]*dc*", "usb:v0BDAp8153d2000dcFF"),
            ("usb:v0BDAp8153d[!3]*", "usb:v0BDAp8153d2000"),
            ("a?c", "abc"),
            ("*", ""),
            ("[x", "[x"),
        ] {
            assert!(matches(pattern, text), "{pattern} should match {text}");
        }
        for (pattern, text) in [
            ("usb:v0424pEC00d*", "usb:v0424pEC01d0200"),
            (
                "of:N*T*Cbrcm,bcm2835-usb",
                "of:NusbT(null)Cbrcm,bcm2835-usbCsnps,dwc2",
            ),
            ("usb:v0BDAp8153d[1-2]*", "usb:v0BDAp8153d3000"),
            ("usb:v0BDAp8153d[!3]*", "usb:v0BDAp8153d3000"),
            ("a?c", "ac"),
            ("abc", "abcd"),
        ] {
            assert!(!matches(pattern, text), "{pattern} should not match {text}");
        }
        // Many stars against a long mismatch stays quick.
        let text = "a".repeat(10_000);
        assert!(!matches("*a*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn table_picks_modules_with_their_dependencies() {
        let table = Table::parse(
            "# comment\ndir /usr/lib/modules/6.12\nmodule cdc_ether mii usbnet cdc_ether\n\
             alias usb:v*p*d*dc*dsc*dp*ic02isc06ip00in* cdc_ether\nalias usb:v0525pA4A2d*dc*dsc*dp*ic*isc*ip*in* cdc_ether\n\
             alias pci:v000015ADd000007B0sv*sd*bc*sc*i* vmxnet3\nfuture words\n",
        );
        assert_eq!(table.dir, "/usr/lib/modules/6.12");
        let found = table.modules_for("usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00");
        assert_eq!(found, ["cdc_ether"], "each module once");
        assert_eq!(
            table.load_order("cdc_ether"),
            ["mii", "usbnet", "cdc_ether"]
        );
        assert_eq!(table.load_order("vmxnet3"), ["vmxnet3"]);
        assert_eq!(table.path("vmxnet3"), "/usr/lib/modules/6.12/vmxnet3.ko");
        assert!(table.modules_for("platform:serial8250").is_empty());
    }

    #[test]
    fn uevents() {
        let event = parse_uevent(
            b"add@/devices/platform/soc/3f980000.usb/usb1/1-1\0ACTION=add\0DEVPATH=/devices/platform/soc/3f980000.usb/usb1/1-1\0SUBSYSTEM=usb\0MODALIAS=usb:v0525pA4A2d0000\0SEQNUM=812\0",
        )
        .unwrap();
        assert_eq!(event.action, "add");
        assert_eq!(event.modalias, Some("usb:v0525pA4A2d0000"));
        assert!(event.devpath.ends_with("/1-1"));
        assert_eq!(parse_uevent(b"libudev\0\xfe\xed"), None);
        assert_eq!(parse_uevent(b""), None);
        let removed =
            parse_uevent(b"remove@/devices/x\0ACTION=remove\0DEVPATH=/devices/x\0").unwrap();
        assert_eq!((removed.action, removed.modalias), ("remove", None));
    }
}
