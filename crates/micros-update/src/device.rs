//! The device program's pure parts: its configuration (written by the
//! build into `/etc/micros/update`), the record of the last update (kept
//! after the boot state in the `micros-state` partition), and its status as
//! text and JSON.
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::bundle::{parse_public_key, Expectations};
use crate::fleet::Window;
use crate::http::Url;
use crate::slot::Header;
use crate::state::{BootState, Slot};
use crate::version::Version;

/// Where in the `micros-state` partition the last update's record is: after
/// the boot state's sector, in its own 4 KiB.
pub const RECORD_OFFSET: u64 = 4096;
pub const RECORD_SIZE: usize = 4096;

/// `/etc/micros/update`, one setting per line:
///
/// ```text
/// platform aarch64-linux
/// board generic
/// tries 1
/// key micros-ed25519:<64 hex digits>
/// url http://updates.example/fleet       (system.update.url, optional)
/// window 02:00-04:00                     (system.update.window, optional)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub platform: String,
    pub board: String,
    pub tries: u8,
    pub keys: Vec<[u8; 32]>,
    /// The update repository the device checks (`micros-update check`).
    pub url: Option<Url>,
    /// When a device may reboot into an update it fetched itself.
    pub window: Option<Window>,
}

impl Settings {
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = write!(
            text,
            "platform {}\nboard {}\ntries {}\n",
            self.platform, self.board, self.tries
        );
        for key in &self.keys {
            let _ = writeln!(text, "key {}", crate::bundle::format_public_key(key));
        }
        if let Some(url) = &self.url {
            let _ = writeln!(text, "url {url}");
        }
        if let Some(window) = &self.window {
            let _ = writeln!(text, "window {window}");
        }
        text
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        let (mut platform, mut board, mut tries, mut keys) = (None, None, None, Vec::new());
        let (mut url, mut window) = (None, None);
        for (number, line) in text.lines().enumerate() {
            let bad = |what: &str| alloc::format!("line {}: {what}", number + 1);
            let (key, value) = line.split_once(' ').ok_or_else(|| bad("no value"))?;
            match key {
                "platform" => platform = Some(value.to_string()),
                "board" => board = Some(value.to_string()),
                "tries" => {
                    tries = Some(
                        value
                            .parse::<u8>()
                            .ok()
                            .filter(|n| (1..=crate::state::MAX_TRIES).contains(n))
                            .ok_or_else(|| bad("tries is 1 to 9"))?,
                    )
                }
                "key" => keys
                    .push(parse_public_key(value).ok_or_else(|| bad("not a micros-ed25519 key"))?),
                "url" => url = Some(Url::parse(value).map_err(bad)?),
                "window" => {
                    window =
                        Some(Window::parse(value).ok_or_else(|| bad("a window is HH:MM-HH:MM"))?)
                }
                _ => return Err(bad("unknown setting")),
            }
        }
        Ok(Settings {
            platform: platform.ok_or("no platform")?,
            board: board.ok_or("no board")?,
            tries: tries.ok_or("no tries")?,
            keys,
            url,
            window,
        })
    }

    pub fn expectations(&self, installed: Option<Version>, allow_downgrade: bool) -> Expectations {
        Expectations {
            trusted_keys: self.keys.clone(),
            platform: self.platform.clone(),
            board: self.board.clone(),
            installed,
            allow_downgrade,
        }
    }
}

/// How the last update went, as far as the device knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written and armed; the next boot tries it.
    Installed,
    /// The trial slot reached userspace and runs its health check.
    Checking,
    Confirmed,
    RolledBack,
    Refused,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Installed => "installed",
            Outcome::Checking => "checking",
            Outcome::Confirmed => "confirmed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        [
            Outcome::Installed,
            Outcome::Checking,
            Outcome::Confirmed,
            Outcome::RolledBack,
            Outcome::Refused,
        ]
        .into_iter()
        .find(|o| o.name() == text)
    }
}

/// The record of the last update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub outcome: Outcome,
    pub slot: Slot,
    pub version: String,
    /// One line: what happened, in words.
    pub reason: String,
}

impl Record {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        let _ = write!(
            text,
            "outcome={}\nslot={}\nversion={}\nreason={}\nend=1\n",
            self.outcome.name(),
            self.slot,
            one_line(&self.version, 64),
            one_line(&self.reason, 3000)
        );
        let mut bytes = alloc::vec![0u8; RECORD_SIZE];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        bytes
    }

    pub fn parse(bytes: &[u8]) -> Option<Record> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = core::str::from_utf8(&bytes[..end]).ok()?;
        let (mut outcome, mut slot, mut version, mut reason, mut complete) =
            (None, None, None, None, false);
        for line in text.lines() {
            let (key, value) = line.split_once('=')?;
            match key {
                "outcome" => outcome = Outcome::parse(value),
                "slot" => slot = Slot::parse(value),
                "version" => version = Some(value.to_string()),
                "reason" => reason = Some(value.to_string()),
                "end" => complete = value == "1",
                _ => return None,
            }
        }
        complete.then_some(())?;
        Some(Record {
            outcome: outcome?,
            slot: slot?,
            version: version?,
            reason: reason?,
        })
    }
}

/// `text` on one printable line of at most `max` bytes.
pub fn one_line(text: &str, max: usize) -> String {
    let mut line = String::new();
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if line.len() + c.len_utf8() > max {
            break;
        }
        line.push(c);
    }
    line
}

/// Why a trial ended without a verdict, from what it last recorded.
pub fn unconfirmed_reason(record: Option<&Record>, slot: Slot) -> String {
    match record {
        Some(r) if r.slot == slot && r.outcome == Outcome::Checking => alloc::format!(
            "slot {slot} reached userspace but was reset before its health check passed (a hang: the watchdog fired)"
        ),
        _ => alloc::format!(
            "slot {slot} never reached its health check (a kernel panic, stage 1 failing, or a hang before init)"
        ),
    }
}

/// One slot, as `micros-update status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    pub slot: Slot,
    pub version: Option<String>,
    pub booted: bool,
    /// good, trying, bad, inactive or empty.
    pub state: &'static str,
    /// When the device installed it (its clock, seconds since 1970); None
    /// when it came with the disk.
    pub installed: Option<u64>,
}

pub fn slot_status(
    slot: Slot,
    header: Option<&Header>,
    state: &BootState,
    booted: Slot,
) -> SlotStatus {
    let word = if state.good == slot {
        "good"
    } else if state.trying == Some(slot) {
        "trying"
    } else if state.bad == Some(slot) {
        "bad"
    } else if header.is_some() {
        "inactive"
    } else {
        "empty"
    };
    SlotStatus {
        slot,
        version: header.map(|h| h.version.to_string()),
        booted: booted == slot,
        state: word,
        installed: header.and_then(|h| h.installed),
    }
}

pub struct Status<'a> {
    pub slots: &'a [SlotStatus],
    pub record: Option<&'a Record>,
}

impl fmt::Display for Status<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in self.slots {
            write!(
                f,
                "slot {}: {}{}, version {}",
                s.slot,
                s.state,
                if s.booted { ", booted" } else { "" },
                s.version.as_deref().unwrap_or("-")
            )?;
            match (s.installed, &s.version) {
                (Some(seconds), _) => writeln!(f, ", installed {}", when(seconds))?,
                (None, Some(_)) => writeln!(f, ", flashed with the disk")?,
                (None, None) => writeln!(f)?,
            }
        }
        match self.record {
            Some(r) => writeln!(
                f,
                "last update: version {} into slot {}: {}{}{}",
                r.version,
                r.slot,
                r.outcome.name(),
                if r.reason.is_empty() { "" } else { ": " },
                r.reason
            ),
            None => writeln!(f, "last update: none"),
        }
    }
}

/// A time by the device's clock, as a date, or that the clock was not set
/// (before 2020: a board without a battery-backed clock starts in 1970).
pub fn when(seconds: u64) -> String {
    if seconds < 1_577_836_800 {
        return "at an unknown time (the device's clock was not set)".into();
    }
    // Days to a civil date (Howard Hinnant's days_from_civil, inverted).
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let minutes = seconds % 86_400 / 60;
    alloc::format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC (device clock)",
        minutes / 60,
        minutes % 60
    )
}

impl Status<'_> {
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"slots\":[");
        for (i, s) in self.slots.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"slot\":\"{}\",\"state\":\"{}\",\"booted\":{},\"version\":{},\"installed\":{}}}",
                s.slot,
                s.state,
                s.booted,
                s.version.as_deref().map_or("null".into(), json_string),
                s.installed.map_or("null".into(), |t| t.to_string())
            );
        }
        out.push_str("],\"last\":");
        match self.record {
            Some(r) => {
                let _ = write!(
                    out,
                    "{{\"outcome\":\"{}\",\"slot\":\"{}\",\"version\":{},\"reason\":{}}}",
                    r.outcome.name(),
                    r.slot,
                    json_string(&r.version),
                    json_string(&r.reason)
                );
            }
            None => out.push_str("null"),
        }
        out.push_str("}\n");
        out
    }
}

pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_back_and_bad_ones_are_refused() {
        let settings = Settings {
            platform: "aarch64-linux".into(),
            board: "generic".into(),
            tries: 2,
            keys: vec![[7; 32]],
            url: None,
            window: None,
        };
        assert_eq!(Settings::parse(&settings.to_text()), Ok(settings.clone()));
        let fleet = Settings {
            url: Some(Url::parse("http://10.0.2.2:8000/fleet").unwrap()),
            window: Window::parse("02:00-04:00"),
            ..settings
        };
        assert!(fleet
            .to_text()
            .contains("url http://10.0.2.2:8000/fleet\nwindow 02:00-04:00\n"));
        assert_eq!(Settings::parse(&fleet.to_text()), Ok(fleet));
        assert!(Settings::parse("platform x\nboard y\ntries 1\nurl https://h/\n").is_err());
        assert!(Settings::parse("platform x\nboard y\ntries 1\nwindow 2-4\n").is_err());
        assert!(Settings::parse("platform x\nboard y\ntries 0\n").is_err());
        assert!(Settings::parse("platform x\nboard y\ntries 1\nkey nope\n").is_err());
        assert!(Settings::parse("platform x\ntries 1\n").is_err());
    }

    #[test]
    fn a_record_survives_hostile_reasons_and_torn_bytes_are_no_record() {
        let record = Record {
            outcome: Outcome::RolledBack,
            slot: Slot::B,
            version: "2".into(),
            reason: "health check failed: line one\nline=two\0 \"quoted\"".into(),
        };
        let back = Record::parse(&record.to_bytes()).unwrap();
        assert_eq!(
            back.reason,
            "health check failed: line one line=two  \"quoted\""
        );
        let bytes = record.to_bytes();
        let text_end = bytes.iter().position(|&b| b == 0).unwrap();
        assert_eq!(Record::parse(&bytes[..text_end - 3]), None);
        assert_eq!(Record::parse(&[0; 16]), None);
        let status = Status {
            slots: &[],
            record: Some(&back),
        };
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["last"]["reason"], back.reason.as_str());
        assert_eq!(json["last"]["outcome"], "rolled-back");
    }

    #[test]
    fn the_status_names_each_slot_by_the_boot_state() {
        let header = Header {
            version: Version::parse("1").unwrap(),
            cmdline: String::new(),
            kernel: 0,
            kernel_size: 0,
            initrd: 0,
            initrd_size: 0,
            trees: Vec::new(),
            tree_blocks: 0,
            installed: None,
        };
        let state = BootState::initial().arm(Slot::B, 1);
        assert_eq!(
            slot_status(Slot::A, Some(&header), &state, Slot::A).state,
            "good"
        );
        assert_eq!(
            slot_status(Slot::B, Some(&header), &state, Slot::A).state,
            "trying"
        );
        let rejected = state.reject(Slot::B).unwrap();
        assert_eq!(
            slot_status(Slot::B, Some(&header), &rejected, Slot::A).state,
            "bad"
        );
        assert_eq!(
            slot_status(Slot::B, None, &BootState::initial(), Slot::A).state,
            "empty"
        );
        let slots = [slot_status(Slot::A, Some(&header), &state, Slot::A)];
        let json: serde_json::Value = serde_json::from_str(
            &Status {
                slots: &slots,
                record: None,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(json["slots"][0]["booted"], true);
        assert_eq!(json["slots"][0]["version"], "1");
        assert!(json["slots"][0]["installed"].is_null());
        assert!(json["last"].is_null());
        let installed = Header {
            installed: Some(1_796_647_200),
            ..header
        };
        let slots = [
            slot_status(Slot::A, Some(&installed), &state, Slot::A),
            slot_status(Slot::B, None, &state, Slot::A),
        ];
        let status = Status {
            slots: &slots,
            record: None,
        };
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["slots"][0]["installed"], 1_796_647_200u64);
        assert_eq!(
            status.to_string(),
            "slot a: good, booted, version 1, installed 2026-12-07 12:40 UTC (device clock)\nslot b: trying, version -\nlast update: none\n"
        );
    }
}
