//! The boot state: which slot is good, which one is being tried and how
//! many boots it has left. It is one 512-byte sector at the start of the
//! disk's `micros-state` partition, written in one piece (a single-sector
//! write is all or nothing), by U-Boot's boot script before a trial boot and
//! by the device's `micros-update` after an install, a confirmation or a
//! failed health check. Its text is the one U-Boot's `env import -t` reads
//! and `env export -t` writes, NUL-padded:
//!
//! ```text
//! micros_bad=none         the slot whose last trial failed, or none
//! micros_end=1            the last line: a sector without it is not a state
//! micros_good=a           the confirmed slot: the fallback of every boot
//! micros_left=1           boots the trial slot has left (0 to 9)
//! micros_try=b            the slot being tried, or none
//! ```
//!
//! [`choose`] is the boot script's decision as a function, shared by the
//! tests that check the script and the power-cut replays: only a slot that
//! is being tried loses boots, and once it has none left every boot goes to
//! the good slot until the device says otherwise.
use alloc::string::String;
use core::fmt::{self, Write as _};

pub const SECTOR: usize = 512;
/// The most boots a trial may get: U-Boot's `test -gt` reads decimal, its
/// `setexpr` writes hex, and single digits are the same in both.
pub const MAX_TRIES: u8 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    pub fn parse(text: &str) -> Option<Slot> {
        match text {
            "a" => Some(Slot::A),
            "b" => Some(Slot::B),
            _ => None,
        }
    }

    /// The slot's partition: `micros-a` or `micros-b`.
    pub fn partition_name(self) -> &'static str {
        match self {
            Slot::A => "micros-a",
            Slot::B => "micros-b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootState {
    pub good: Slot,
    pub trying: Option<Slot>,
    pub left: u8,
    pub bad: Option<Slot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// No `micros_end=1`: an empty or torn sector.
    Incomplete,
    /// A line that is not one of ours, or a value out of range.
    Malformed,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateError::Incomplete => "the boot state sector is empty or incomplete",
            StateError::Malformed => "the boot state sector holds something else",
        })
    }
}

impl BootState {
    /// A freshly written disk: slot a is good, nothing is tried.
    pub fn initial() -> BootState {
        BootState {
            good: Slot::A,
            trying: None,
            left: 0,
            bad: None,
        }
    }

    /// The sector's text, in the order U-Boot's `env export -t` writes it.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let name = |slot: Option<Slot>| slot.map_or("none", Slot::name);
        let _ = write!(
            text,
            "micros_bad={}\nmicros_end=1\nmicros_good={}\nmicros_left={}\nmicros_try={}\n",
            name(self.bad),
            self.good,
            self.left,
            name(self.trying)
        );
        text
    }

    /// The whole sector, NUL-padded.
    pub fn to_sector(&self) -> [u8; SECTOR] {
        let mut sector = [0u8; SECTOR];
        let text = self.to_text();
        sector[..text.len()].copy_from_slice(text.as_bytes());
        sector
    }

    /// Reads a sector (or its text up to the first NUL). Lines may come in
    /// any order; every one of ours must be there exactly once.
    pub fn parse(bytes: &[u8]) -> Result<BootState, StateError> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = core::str::from_utf8(&bytes[..end]).map_err(|_| StateError::Malformed)?;
        let (mut good, mut trying, mut left, mut bad, mut complete) =
            (None, None, None, None, false);
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').ok_or(StateError::Malformed)?;
            let optional = |value: &str| match value {
                "none" => Ok(None),
                other => Slot::parse(other).map(Some).ok_or(StateError::Malformed),
            };
            let seen = match key {
                "micros_good" => good
                    .replace(Slot::parse(value).ok_or(StateError::Malformed)?)
                    .is_some(),
                "micros_try" => trying.replace(optional(value)?).is_some(),
                "micros_bad" => bad.replace(optional(value)?).is_some(),
                "micros_left" => {
                    let n: u8 = value.parse().map_err(|_| StateError::Malformed)?;
                    if n > MAX_TRIES {
                        return Err(StateError::Malformed);
                    }
                    left.replace(n).is_some()
                }
                "micros_end" if value == "1" => core::mem::replace(&mut complete, true),
                _ => return Err(StateError::Malformed),
            };
            if seen {
                return Err(StateError::Malformed);
            }
        }
        if !complete {
            return Err(StateError::Incomplete);
        }
        match (good, trying, left, bad) {
            (Some(good), Some(trying), Some(left), Some(bad)) if trying != Some(good) => {
                Ok(BootState {
                    good,
                    trying,
                    left,
                    bad,
                })
            }
            _ => Err(StateError::Malformed),
        }
    }
}

/// What the boot script does with a state: the slot it boots and the state
/// it writes first, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub boot: Slot,
    pub write: Option<BootState>,
}

/// The boot script's decision. An unreadable state boots slot a, as a
/// freshly written disk would; the device rewrites the state before it ever
/// makes slot b bootable, so that is only the first boot's case.
pub fn choose(state: Result<BootState, StateError>) -> Choice {
    match state {
        Ok(state) => match state.trying {
            Some(slot) if state.left > 0 => Choice {
                boot: slot,
                write: Some(BootState {
                    left: state.left - 1,
                    ..state
                }),
            },
            _ => Choice {
                boot: state.good,
                write: None,
            },
        },
        Err(_) => Choice {
            boot: Slot::A,
            write: None,
        },
    }
}

/// Why the device will not change the state as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The running slot is itself on trial: it must be confirmed (or fail)
    /// before another update.
    Unconfirmed(Slot),
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::Unconfirmed(slot) => write!(
                f,
                "slot {slot} runs on trial and is not confirmed yet; wait for its health check"
            ),
        }
    }
}

impl BootState {
    /// Before the other slot is written: nothing may be tried while its
    /// bytes change. Returns the slot to write and the state to write first.
    pub fn begin_install(self, booted: Slot) -> Result<(Slot, BootState), Busy> {
        if booted != self.good {
            return Err(Busy::Unconfirmed(booted));
        }
        let target = booted.other();
        Ok((
            target,
            BootState {
                trying: None,
                left: 0,
                bad: self.bad.filter(|&bad| bad != target),
                ..self
            },
        ))
    }

    /// After the other slot is written and flushed: try it `tries` times.
    pub fn arm(self, target: Slot, tries: u8) -> BootState {
        BootState {
            trying: Some(target),
            left: tries.clamp(1, MAX_TRIES),
            bad: None,
            ..self
        }
    }

    /// The trial slot passed its health check: it becomes the good one.
    /// `None` when there is nothing to confirm.
    pub fn confirm(self, booted: Slot) -> Option<BootState> {
        (self.trying == Some(booted)).then_some(BootState {
            good: booted,
            trying: None,
            left: 0,
            bad: None,
        })
    }

    /// The trial slot failed (its health check, or it never came back):
    /// it gets no more boots and is marked bad. `None` when `slot` is not
    /// on trial.
    pub fn reject(self, slot: Slot) -> Option<BootState> {
        (self.trying == Some(slot)).then_some(BootState {
            trying: None,
            left: 0,
            bad: Some(slot),
            ..self
        })
    }

    /// Booted on the good slot while a trial has no boots left: the trial
    /// ended without a verdict (a panic, a hang, stage 1 failing).
    pub fn trial_ended_unconfirmed(&self, booted: Slot) -> Option<Slot> {
        self.trying
            .filter(|_| self.left == 0 && booted == self.good)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_states() -> Vec<BootState> {
        let mut states = Vec::new();
        for good in [Slot::A, Slot::B] {
            for trying in [None, Some(good.other())] {
                for left in 0..=MAX_TRIES {
                    for bad in [None, Some(Slot::A), Some(Slot::B)] {
                        states.push(BootState {
                            good,
                            trying,
                            left,
                            bad,
                        });
                    }
                }
            }
        }
        states
    }

    #[test]
    fn every_state_reads_back_from_its_sector() {
        for state in all_states() {
            assert_eq!(BootState::parse(&state.to_sector()), Ok(state));
        }
    }

    #[test]
    fn what_u_boot_exports_reads_in_any_order() {
        let text =
            b"micros_try=b\nmicros_left=0\nmicros_good=a\nmicros_end=1\nmicros_bad=none\n\0junk";
        assert_eq!(
            BootState::parse(text),
            Ok(BootState {
                good: Slot::A,
                trying: Some(Slot::B),
                left: 0,
                bad: None
            })
        );
    }

    #[test]
    fn torn_empty_and_foreign_sectors_are_not_states() {
        let full = BootState::initial().to_sector();
        let text_len = full.iter().position(|&b| b == 0).unwrap();
        // Every prefix of the text that lacks the end marker is incomplete
        // or malformed, never a different state.
        for cut in 0..text_len {
            let mut torn = [0u8; SECTOR];
            torn[..cut].copy_from_slice(&full[..cut]);
            match BootState::parse(&torn) {
                Ok(state) => assert_eq!(state, BootState::initial(), "cut at {cut}"),
                Err(_) => {}
            }
        }
        assert_eq!(BootState::parse(&[0; SECTOR]), Err(StateError::Incomplete));
        assert_eq!(
            BootState::parse(&[0xff; SECTOR]),
            Err(StateError::Malformed)
        );
        for bad in [
            "micros_end=1\nmicros_good=c\nmicros_left=0\nmicros_try=none\nmicros_bad=none\n",
            "micros_end=1\nmicros_good=a\nmicros_left=10\nmicros_try=b\nmicros_bad=none\n",
            "micros_end=1\nmicros_good=a\nmicros_left=1\nmicros_try=a\nmicros_bad=none\n",
            "micros_end=1\nmicros_good=a\nmicros_good=b\nmicros_left=1\nmicros_try=none\nmicros_bad=none\n",
            "micros_end=1\nmicros_good=a\nmicros_left=1\nmicros_try=none\nmicros_bad=none\nother=1\n",
            "micros_end=1\nmicros_good=a\nmicros_left=1\nmicros_try=none\n",
        ] {
            assert_eq!(BootState::parse(bad.as_bytes()), Err(StateError::Malformed), "{bad}");
        }
    }

    #[test]
    fn only_a_slot_on_trial_loses_boots() {
        for state in all_states() {
            let choice = choose(Ok(state));
            match (state.trying, state.left) {
                (Some(slot), left) if left > 0 => {
                    assert_eq!(choice.boot, slot);
                    let written = choice.write.unwrap();
                    assert_eq!(written.left, left - 1);
                    assert_eq!(
                        (written.good, written.trying, written.bad),
                        (state.good, state.trying, state.bad)
                    );
                }
                _ => {
                    assert_eq!(
                        choice,
                        Choice {
                            boot: state.good,
                            write: None
                        }
                    );
                }
            }
        }
        assert_eq!(choose(Err(StateError::Incomplete)).boot, Slot::A);
    }

    #[test]
    fn a_trial_gets_its_boots_then_every_boot_goes_to_the_good_slot() {
        for tries in 1..=MAX_TRIES {
            let (target, cleared) = BootState::initial().begin_install(Slot::A).unwrap();
            assert_eq!(target, Slot::B);
            let mut state = cleared.arm(target, tries);
            let mut boots = Vec::new();
            for _ in 0..20 {
                let choice = choose(Ok(state));
                boots.push(choice.boot);
                if let Some(next) = choice.write {
                    state = next;
                }
            }
            assert!(boots[..tries as usize].iter().all(|&s| s == Slot::B));
            assert!(boots[tries as usize..].iter().all(|&s| s == Slot::A));
            assert_eq!(state.trial_ended_unconfirmed(Slot::A), Some(Slot::B));
            let rejected = state.reject(Slot::B).unwrap();
            assert_eq!(rejected.bad, Some(Slot::B));
            assert_eq!(choose(Ok(rejected)).boot, Slot::A);
        }
    }

    #[test]
    fn confirming_makes_the_trial_slot_good_and_only_the_trial_slot() {
        let armed = BootState::initial().arm(Slot::B, 1);
        let after_boot = choose(Ok(armed)).write.unwrap();
        let confirmed = after_boot.confirm(Slot::B).unwrap();
        assert_eq!(
            confirmed,
            BootState {
                good: Slot::B,
                trying: None,
                left: 0,
                bad: None
            }
        );
        assert_eq!(choose(Ok(confirmed)).boot, Slot::B);
        assert_eq!(after_boot.confirm(Slot::A), None);
        assert_eq!(BootState::initial().confirm(Slot::A), None);
    }

    #[test]
    fn an_install_never_writes_over_the_running_or_an_unconfirmed_slot() {
        for state in all_states() {
            for booted in [Slot::A, Slot::B] {
                match state.begin_install(booted) {
                    Ok((target, cleared)) => {
                        assert_eq!(booted, state.good);
                        assert_ne!(target, booted);
                        assert_eq!(cleared.trying, None);
                        // While the target is written, no boot reaches it.
                        assert_eq!(choose(Ok(cleared)).boot, booted);
                    }
                    Err(Busy::Unconfirmed(slot)) => {
                        assert_eq!(slot, booted);
                        assert_ne!(booted, state.good);
                    }
                }
            }
        }
    }
}
