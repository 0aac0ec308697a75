//! `micros-update` on the device: installs a signed bundle into the slot
//! that is not running while it verifies it, confirms or rejects a trial
//! boot, and shows both slots.
//!
//! ```text
//! micros-update install [--allow-downgrade] < bundle   verify while writing the other slot, arm it
//! micros-update status [--json]                        both slots and the last update
//! micros-update boot-check                             at boot: exit 0 when this boot is a trial
//! micros-update confirm                                the trial passed its health check
//! micros-update reject REASON                          the trial failed it (then reboot)
//! ```
//!
//! Like stage 1 it has no standard library and no C library: `core`,
//! `alloc` and the system calls of micros-init's `sys.rs`, which it shares
//! by path. Every decision is a pure function of micros-update's library
//! (state.rs, slot.rs, device.rs), tested on the host.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../../micros-init/src/sys.rs"]
mod sys;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use micros_update::bundle::Verifier;
use micros_update::device::{self, Outcome, Record, Settings, SlotStatus, Status};
use micros_update::slot::{self, Header};
use micros_update::state::{BootState, Slot, SECTOR};
use micros_update::version::Version;
use sys::File;

const SETTINGS: &str = "/etc/micros/update";

macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(sys::Console, $($arg)*);
    }};
}

fn main() -> ! {
    let arguments = sys::arguments();
    let words: Vec<&str> = arguments.iter().skip(1).map(String::as_str).collect();
    let result = match words.as_slice() {
        ["install"] => install(false),
        ["install", "--allow-downgrade"] => install(true),
        ["status"] => status(false),
        ["status", "--json"] => status(true),
        ["boot-check"] => boot_check(),
        ["confirm"] => confirm(),
        ["reject", reason] => reject(reason),
        _ => Err("usage: micros-update install [--allow-downgrade] < BUNDLE | status [--json] | boot-check | confirm | reject REASON".into()),
    };
    match result {
        Ok(code) => sys::exit(code),
        Err(message) => {
            say!("micros-update: {message}");
            sys::exit(1)
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("micros-update: internal error: {info}");
    sys::exit(2)
}

/// The disk's update partitions.
struct Disk {
    state: String,
    slots: [String; 2],
}

impl Disk {
    fn slot(&self, slot: Slot) -> &str {
        &self.slots[slot as usize]
    }
}

/// Finds the one disk with `micros-state`, `micros-a` and `micros-b`
/// partitions (by their GPT names, from sysfs).
fn find_disk() -> Result<Disk, String> {
    let mut found = Vec::new();
    for disk in sys::read_dir("/sys/block").map_err(|e| format!("/sys/block: {e}"))? {
        let mut parts: [Option<String>; 3] = [None, None, None];
        for entry in sys::read_dir(&format!("/sys/block/{disk}")).unwrap_or_default() {
            let Ok(uevent) = sys::read_to_string(&format!("/sys/block/{disk}/{entry}/uevent"))
            else {
                continue;
            };
            let name = uevent.lines().find_map(|l| l.strip_prefix("PARTNAME="));
            let index = match name {
                Some("micros-state") => 0,
                Some("micros-a") => 1,
                Some("micros-b") => 2,
                _ => continue,
            };
            parts[index] = Some(format!("/dev/{entry}"));
        }
        if let [Some(state), Some(a), Some(b)] = parts {
            found.push(Disk {
                state,
                slots: [a, b],
            });
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err("no disk has the micros-state, micros-a and micros-b partitions: this system was not installed from an A/B disk image (system.update.enable, micros build -A disk)".into()),
        _ => Err("several disks have MicrOS update partitions; remove the ones not booted from".into()),
    }
}

/// The slot this boot came from (`micros.slot=` from the boot script).
fn booted_slot() -> Result<Slot, String> {
    let cmdline =
        sys::read_to_string("/proc/cmdline").map_err(|e| format!("/proc/cmdline: {e}"))?;
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("micros.slot="))
        .and_then(Slot::parse)
        .ok_or_else(|| "the kernel command line names no slot (micros.slot=): this boot did not come from the A/B boot script".into())
}

fn open(path: &str) -> Result<File, String> {
    File::open_for_reading_and_writing(path).map_err(|e| format!("{path}: {e}"))
}

fn read_state(disk: &Disk) -> Result<(File, BootState), String> {
    let file = open(&disk.state)?;
    let mut sector = [0u8; SECTOR];
    file.read_exact_at(&mut sector, 0)
        .map_err(|e| format!("{}: {e}", disk.state))?;
    let state = BootState::parse(&sector).map_err(|e| format!("{}: {e}", disk.state))?;
    Ok((file, state))
}

/// Writes the boot state's sector and waits until it is on the disk.
fn write_state(file: &File, path: &str, state: &BootState) -> Result<(), String> {
    file.write_all_at(&state.to_sector(), 0)
        .and_then(|()| file.sync())
        .map_err(|e| format!("{path}: writing the boot state: {e}"))
}

fn read_record(file: &File) -> Option<Record> {
    let mut bytes = alloc::vec![0u8; device::RECORD_SIZE];
    file.read_exact_at(&mut bytes, device::RECORD_OFFSET).ok()?;
    Record::parse(&bytes)
}

fn write_record(file: &File, record: &Record) {
    // The record only informs: a failure to write it changes no decision.
    if file
        .write_all_at(&record.to_bytes(), device::RECORD_OFFSET)
        .and_then(|()| file.sync())
        .is_err()
    {
        say!("micros-update: could not record the update's outcome");
    }
}

fn read_header(path: &str) -> Option<Header> {
    let file = File::open(path).ok()?;
    let size = file.size().ok()?;
    let mut bytes = alloc::vec![0u8; slot::HEADER_SIZE as usize];
    file.read_exact_at(&mut bytes, size.checked_sub(slot::HEADER_SIZE)?)
        .ok()?;
    Header::parse(&bytes).ok()
}

fn install(allow_downgrade: bool) -> Result<i32, String> {
    let settings_text = sys::read_to_string(SETTINGS).map_err(|e| format!("{SETTINGS}: {e}"))?;
    let settings = Settings::parse(&settings_text).map_err(|e| format!("{SETTINGS}: {e}"))?;
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = read_state(&disk)?;
    let installed = read_header(disk.slot(booted)).map(|h| h.version);
    let (target, cleared) = state.begin_install(booted).map_err(|e| e.to_string())?;
    // From here the target slot is not bootable until it is whole again.
    write_state(&state_file, &disk.state, &cleared)?;
    let target_path = disk.slot(target);
    let slot_file = open(target_path)?;
    let slot_size = slot_file
        .size()
        .map_err(|e| format!("{target_path}: {e}"))?;
    let mut verifier = Verifier::new(settings.expectations(installed, allow_downgrade));
    let input = File::standard_input();
    let mut buffer = alloc::vec![0u8; 256 * 1024];
    let mut layout = None;
    let mut received = 0u64;
    let refuse = |state_file: &File, why: String, version: String| -> Result<i32, String> {
        write_record(
            state_file,
            &Record {
                outcome: Outcome::Refused,
                slot: target,
                version,
                reason: why.clone(),
            },
        );
        Err(format!("refused: {why}; slot {booted} stays as it was"))
    };
    loop {
        let n = input
            .read(&mut buffer)
            .map_err(|e| format!("reading the bundle: {e}"))?;
        if n == 0 {
            break;
        }
        received += n as u64;
        let verified = match verifier.feed(&buffer[..n]) {
            Ok(verified) => verified,
            Err(refusal) => {
                let version = verifier_version(&verifier);
                return refuse(&state_file, refusal.to_string(), version);
            }
        };
        if layout.is_none() {
            if let Some(manifest) = verifier.manifest() {
                let size = |i: usize| manifest.parts[i].size;
                match slot::layout(size(2), size(0), size(1), slot_size) {
                    Ok(placed) => layout = Some(placed),
                    Err(too_small) => {
                        let version = manifest.version.to_string();
                        return refuse(&state_file, format!("slot {target}: {too_small}"), version);
                    }
                }
                say!(
                    "micros-update: installing version {} into slot {target} ({target_path})",
                    manifest.version
                );
            }
        }
        for block in verified {
            let placed = layout.expect("a layout before any payload");
            let base = [placed.kernel, placed.initrd, placed.root][block.part];
            slot_file
                .write_all_at(&block.bytes, base + block.offset)
                .map_err(|e| format!("{target_path}: {e}"))?;
        }
    }
    let version_seen = verifier_version(&verifier);
    let manifest = match verifier.finish() {
        Ok(manifest) => manifest,
        Err(refusal) => return refuse(&state_file, refusal.to_string(), version_seen),
    };
    let placed = layout.expect("a verified bundle has a layout");
    slot_file
        .sync()
        .map_err(|e| format!("{target_path}: {e}"))?;
    let header = Header {
        version: manifest.version.clone(),
        cmdline: manifest.cmdline.clone(),
        kernel: placed.kernel,
        kernel_size: manifest.parts[0].size,
        initrd: placed.initrd,
        initrd_size: manifest.parts[1].size,
        installed: Some(sys::unix_time()),
    };
    slot_file
        .write_all_at(&header.to_bytes(), placed.header)
        .and_then(|()| slot_file.sync())
        .map_err(|e| format!("{target_path}: {e}"))?;
    write_state(
        &state_file,
        &disk.state,
        &cleared.arm(target, settings.tries),
    )?;
    write_record(
        &state_file,
        &Record {
            outcome: Outcome::Installed,
            slot: target,
            version: manifest.version.to_string(),
            reason: String::new(),
        },
    );
    say!(
        "micros-update: version {} is in slot {target} ({received} bytes verified); it gets {} boot{} to pass its health check: reboot to try it",
        manifest.version,
        settings.tries,
        if settings.tries == 1 { "" } else { "s" }
    );
    Ok(0)
}

fn verifier_version(verifier: &Verifier) -> String {
    verifier
        .manifest()
        .map(|m| m.version.to_string())
        .unwrap_or_default()
}

fn status(json: bool) -> Result<i32, String> {
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = read_state(&disk)?;
    let record = read_record(&state_file);
    let slots: Vec<SlotStatus> = [Slot::A, Slot::B]
        .into_iter()
        .map(|slot| {
            device::slot_status(slot, read_header(disk.slot(slot)).as_ref(), &state, booted)
        })
        .collect();
    let status = Status {
        slots: &slots,
        record: record.as_ref(),
    };
    let text = if json {
        status.to_json()
    } else {
        status.to_string()
    };
    sys::write_all(1, text.as_bytes()).map_err(|e| format!("writing the status: {e}"))?;
    Ok(0)
}

/// At boot: 0 when this boot is a trial that must run its health check;
/// 1 otherwise, after recording a trial that ended without a verdict.
fn boot_check() -> Result<i32, String> {
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = read_state(&disk)?;
    let record = read_record(&state_file);
    let version = |slot: Slot| {
        read_header(disk.slot(slot))
            .map(|h| h.version.to_string())
            .unwrap_or_default()
    };
    if state.trying == Some(booted) {
        write_record(
            &state_file,
            &Record {
                outcome: Outcome::Checking,
                slot: booted,
                version: version(booted),
                reason: String::new(),
            },
        );
        say!("micros-update: slot {booted} runs on trial: checking its health");
        return Ok(0);
    }
    if let Some(failed) = state.trial_ended_unconfirmed(booted) {
        let reason = device::unconfirmed_reason(record.as_ref(), failed);
        let rejected = state.reject(failed).expect("the slot is on trial");
        write_state(&state_file, &disk.state, &rejected)?;
        write_record(
            &state_file,
            &Record {
                outcome: Outcome::RolledBack,
                slot: failed,
                version: version(failed),
                reason: reason.clone(),
            },
        );
        say!("micros-update: rolled back to slot {booted}: {reason}");
    }
    Ok(1)
}

fn confirm() -> Result<i32, String> {
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = read_state(&disk)?;
    let Some(confirmed) = state.confirm(booted) else {
        say!("micros-update: slot {booted} is not on trial: nothing to confirm");
        return Ok(0);
    };
    write_state(&state_file, &disk.state, &confirmed)?;
    let version = read_header(disk.slot(booted)).map(|h| h.version);
    write_record(
        &state_file,
        &Record {
            outcome: Outcome::Confirmed,
            slot: booted,
            version: version.as_ref().map(Version::to_string).unwrap_or_default(),
            reason: String::new(),
        },
    );
    say!("micros-update: slot {booted} passed its health check and is now the good slot");
    Ok(0)
}

fn reject(reason: &str) -> Result<i32, String> {
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = read_state(&disk)?;
    let Some(rejected) = state.reject(booted) else {
        return Err(format!("slot {booted} is not on trial: nothing to reject"));
    };
    write_state(&state_file, &disk.state, &rejected)?;
    let version = read_header(disk.slot(booted))
        .map(|h| h.version.to_string())
        .unwrap_or_default();
    write_record(
        &state_file,
        &Record {
            outcome: Outcome::RolledBack,
            slot: booted,
            version,
            reason: device::one_line(reason, 3000),
        },
    );
    say!(
        "micros-update: slot {booted} failed its trial ({}); the next boot returns to slot {}",
        device::one_line(reason, 200),
        rejected.good
    );
    Ok(0)
}
