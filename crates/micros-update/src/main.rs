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
//! micros-update check                                  fetch and install the repository's release
//! micros-update wait-window                            sleep until the reboot window opens
//! ```
//!
//! `check` (system.update.url) reads the repository's signed index, and
//! when it names a newer release for this device, downloads the bundle
//! (resuming after a cut connection) into the other slot while verifying
//! it. It exits 10 when it installed one (reboot to try it), 0 when there
//! was nothing to do, 2 when it refused what the repository served, and 1
//! when it could not reach it.
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

use core::time::Duration;

use micros_update::bundle::Verifier;
use micros_update::device::{self, Outcome, Record, Settings, SlotStatus, Status};
use micros_update::fleet::{self, Decision, FleetRecord, Index};
use micros_update::http::{self, DnsError, Head, Url};
use micros_update::slot::{self, Header};
use micros_update::state::{BootState, Slot, SECTOR};
use micros_update::version::Version;
use sha2::{Digest as _, Sha256};
use sys::File;

const SETTINGS: &str = "/etc/micros/update";
/// `check`'s exit status when it installed a release: reboot to try it.
const INSTALLED: i32 = 10;
/// The exit status when the bundle or index was refused.
const REFUSED: i32 = 2;

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
        ["check"] => check(),
        ["wait-window"] => wait_window(),
        _ => Err("usage: micros-update install [--allow-downgrade] < BUNDLE | status [--json] | boot-check | confirm | reject REASON | check | wait-window".into()),
    };
    match result {
        Ok(code) => sys::exit(code),
        Err(message) => {
            say!("micros-update: {message}");
            sys::exit(if message.starts_with("refused") {
                REFUSED
            } else {
                1
            })
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
    let state = read_state_sector(&file, &disk.state)?;
    Ok((file, state))
}

fn read_state_sector(file: &File, path: &str) -> Result<BootState, String> {
    let mut sector = [0u8; SECTOR];
    file.read_exact_at(&mut sector, 0)
        .map_err(|e| format!("{path}: {e}"))?;
    BootState::parse(&sector).map_err(|e| format!("{path}: {e}"))
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

fn read_settings() -> Result<Settings, String> {
    let text = sys::read_to_string(SETTINGS).map_err(|e| format!("{SETTINGS}: {e}"))?;
    Settings::parse(&text).map_err(|e| format!("{SETTINGS}: {e}"))
}

/// Where a bundle's bytes come from: standard input, or a download.
trait Source {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, String>;
}

impl Source for File {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, String> {
        File::read(self, buffer).map_err(|e| format!("reading the bundle: {e}"))
    }
}

/// The state partition, locked against another micros-update installing
/// at the same time (a deploy and a scheduled check), and the state read
/// once the lock is held.
fn lock_state(disk: &Disk) -> Result<(File, BootState), String> {
    let file = open(&disk.state)?;
    file.lock()
        .map_err(|e| format!("{}: locking: {e}", disk.state))?;
    let state = read_state_sector(&file, &disk.state)?;
    Ok((file, state))
}

fn install(allow_downgrade: bool) -> Result<i32, String> {
    let settings = read_settings()?;
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = lock_state(&disk)?;
    let mut input = File::standard_input();
    install_from(
        &settings,
        &disk,
        booted,
        (&state_file, state),
        &mut input,
        allow_downgrade,
    )
}

/// Verifies the bundle from `input` while writing it into the slot that is
/// not running, then arms that slot for a trial.
fn install_from(
    settings: &Settings,
    disk: &Disk,
    booted: Slot,
    (state_file, state): (&File, BootState),
    input: &mut dyn Source,
    allow_downgrade: bool,
) -> Result<i32, String> {
    let installed = read_header(disk.slot(booted)).map(|h| h.version);
    let (target, cleared) = state.begin_install(booted).map_err(|e| e.to_string())?;
    // From here the target slot is not bootable until it is whole again.
    write_state(state_file, &disk.state, &cleared)?;
    let target_path = disk.slot(target);
    let slot_file = open(target_path)?;
    let slot_size = slot_file
        .size()
        .map_err(|e| format!("{target_path}: {e}"))?;
    let mut verifier = Verifier::new(settings.expectations(installed, allow_downgrade));
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
        let n = match input.read(&mut buffer) {
            Ok(n) => n,
            Err(why) => {
                let version = verifier_version(&verifier);
                return refuse(state_file, why, version);
            }
        };
        if n == 0 {
            break;
        }
        received += n as u64;
        let verified = match verifier.feed(&buffer[..n]) {
            Ok(verified) => verified,
            Err(refusal) => {
                let version = verifier_version(&verifier);
                return refuse(state_file, refusal.to_string(), version);
            }
        };
        if layout.is_none() {
            if let Some(manifest) = verifier.manifest() {
                let size = |i: usize| manifest.parts.get(i).map_or(0, |p| p.size);
                match slot::layout(size(2), size(0), size(1), size(3), slot_size) {
                    Ok(placed) => layout = Some(placed),
                    Err(too_small) => {
                        let version = manifest.version.to_string();
                        return refuse(state_file, format!("slot {target}: {too_small}"), version);
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
            let base = [placed.kernel, placed.initrd, placed.root, placed.fdt][block.part];
            slot_file
                .write_all_at(&block.bytes, base + block.offset)
                .map_err(|e| format!("{target_path}: {e}"))?;
        }
    }
    let version_seen = verifier_version(&verifier);
    let manifest = match verifier.finish() {
        Ok(manifest) => manifest,
        Err(refusal) => return refuse(state_file, refusal.to_string(), version_seen),
    };
    let placed = layout.expect("a verified bundle has a layout");
    slot_file
        .sync()
        .map_err(|e| format!("{target_path}: {e}"))?;
    let header = Header::placed(
        manifest.version.clone(),
        manifest.cmdline.clone(),
        &placed,
        manifest.parts[0].size,
        manifest.parts[1].size,
        &manifest.trees,
        Some(sys::unix_time()),
    );
    slot_file
        .write_all_at(&header.to_bytes(), placed.header)
        .and_then(|()| slot_file.sync())
        .map_err(|e| format!("{target_path}: {e}"))?;
    write_state(
        state_file,
        &disk.state,
        &cleared.arm(target, settings.tries),
    )?;
    write_record(
        state_file,
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
    let (state_file, state) = lock_state(&disk)?;
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
    let (state_file, state) = lock_state(&disk)?;
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
    let (state_file, state) = lock_state(&disk)?;
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

/// Reads the repository's index and, when it names a newer release for
/// this device, installs it into the other slot.
fn check() -> Result<i32, String> {
    let settings = read_settings()?;
    let Some(base) = settings.url.clone() else {
        return Err("no update repository: set system.update.url".into());
    };
    let disk = find_disk()?;
    let booted = booted_slot()?;
    let (state_file, state) = lock_state(&disk)?;
    if state.good != booted {
        say!("micros-update: slot {booted} runs on trial: checking for updates after its verdict");
        return Ok(0);
    }
    let mut record = read_fleet_record(&state_file)?;
    let index_url = base.join(fleet::INDEX);
    let bytes = fetch_whole(&index_url, fleet::MAX_INDEX)?;
    let index = Index::verify(&bytes, &settings.keys)
        .map_err(|e| format!("refused the index at {index_url}: {e}"))?;
    let running = read_header(disk.slot(booted)).map(|h| h.version);
    let other = booted.other();
    let failed = (state.bad == Some(other))
        .then(|| read_header(disk.slot(other)).map(|h| h.version))
        .flatten();
    let decision = fleet::decide(
        &index,
        &fleet::Device {
            platform: &settings.platform,
            board: &settings.board,
            running: running.as_ref(),
            failed: failed.as_ref(),
            seen: record.seen,
            id: &record.id,
        },
    );
    if let Decision::Replay { serial, seen } = decision {
        return Err(format!(
            "refused the index at {index_url}: {}",
            fleet::IndexError::Replay { serial, seen }
        ));
    }
    if index.serial > record.seen {
        record.seen = index.serial;
        write_fleet_record(&state_file, &record)?;
    }
    let release = match decision {
        Decision::Replay { .. } => unreachable!("returned above"),
        Decision::NoRelease => {
            say!(
                "micros-update: the repository has no release for {} {}",
                settings.platform,
                settings.board
            );
            return Ok(0);
        }
        Decision::UpToDate(release) => {
            say!(
                "micros-update: up to date (the repository's release is version {})",
                release.version
            );
            return Ok(0);
        }
        Decision::FailedHere(release) => {
            say!(
                "micros-update: version {} failed its trial on this device; waiting for a newer release",
                release.version
            );
            return Ok(0);
        }
        Decision::NotSelected(release) => {
            say!(
                "micros-update: version {} goes to {} % of devices so far, not yet to this one",
                release.version,
                release.rollout.percent()
            );
            return Ok(0);
        }
        Decision::Install(release) => release,
    };
    let url = base.join(&release.bundle);
    say!(
        "micros-update: downloading version {} from {url} ({} bytes)",
        release.version,
        release.size
    );
    let mut download = Download::start(url, release.size, release.sha256).map_err(|e| match e {
        Fail::Stop(why) => format!("refused: {why}"),
        Fail::Retry(why) => why,
    })?;
    let code = install_from(
        &settings,
        &disk,
        booted,
        (&state_file, state),
        &mut download,
        false,
    )?;
    Ok(if code == 0 { INSTALLED } else { code })
}

/// Sleeps until the reboot window (system.update.window) is open, by the
/// device's clock; at once without a window.
fn wait_window() -> Result<i32, String> {
    let settings = read_settings()?;
    let Some(window) = settings.window else {
        return Ok(0);
    };
    let wait = window.wait(sys::unix_time());
    if wait > 0 {
        say!(
            "micros-update: rebooting in the window {window} (UTC), in {} min",
            wait.div_ceil(60)
        );
    }
    // Look again each minute: the clock may be set meanwhile.
    loop {
        let wait = window.wait(sys::unix_time());
        if wait == 0 {
            return Ok(0);
        }
        sys::sleep(Duration::from_secs(wait.min(60)));
    }
}

fn read_fleet_record(file: &File) -> Result<FleetRecord, String> {
    let mut bytes = alloc::vec![0u8; fleet::RECORD_SIZE];
    if file.read_exact_at(&mut bytes, fleet::RECORD_OFFSET).is_ok() {
        if let Some(record) = FleetRecord::parse(&bytes) {
            return Ok(record);
        }
    }
    // The first check: draw this device's identifier for rollouts.
    let mut id = [0u8; 16];
    sys::random(&mut id).map_err(|e| format!("drawing the device's identifier: {e}"))?;
    let record = FleetRecord { id, seen: 0 };
    write_fleet_record(file, &record)?;
    Ok(record)
}

fn write_fleet_record(file: &File, record: &FleetRecord) -> Result<(), String> {
    file.write_all_at(&record.to_bytes(), fleet::RECORD_OFFSET)
        .and_then(|()| file.sync())
        .map_err(|e| format!("writing the fleet record: {e}"))
}

/// Connecting, and each read and write, give up after this long.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries without a byte of progress before a download gives up.
const MAX_FAILURES: u32 = 8;

/// Why a request failed: worth trying again (the network, the server's
/// 5xx), or not (what the repository serves is wrong).
enum Fail {
    Retry(String),
    Stop(String),
}

/// A host's IPv4 address: a literal, `/etc/hosts`, or DNS.
fn resolve(host: &str) -> Result<[u8; 4], String> {
    if let Some(address) = http::parse_ipv4(host) {
        return Ok(address);
    }
    let hosts = sys::read_to_string("/etc/hosts").unwrap_or_default();
    if let Some(address) = http::hosts_lookup(&hosts, host) {
        return Ok(address);
    }
    let resolv = sys::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers = http::nameservers(&resolv);
    if servers.is_empty() {
        return Err(format!(
            "cannot resolve {host}: no name server in /etc/resolv.conf"
        ));
    }
    let mut id = [0u8; 2];
    sys::random(&mut id).map_err(|e| format!("resolving {host}: {e}"))?;
    let id = u16::from_ne_bytes(id);
    let query = http::dns_query(id, host).ok_or_else(|| format!("{host} is not a host name"))?;
    let mut last = String::new();
    for _ in 0..2 {
        for &server in &servers {
            let Ok(socket) = sys::connect(server, 53, false, Duration::from_secs(3)) else {
                continue;
            };
            if socket.write_all(&query).is_err() {
                continue;
            }
            let mut answer = [0u8; 1500];
            // Answers to other queries are skipped until the timeout.
            while let Ok(n) = socket.read(&mut answer) {
                match http::dns_answer(&answer[..n], id) {
                    Ok(address) => return Ok(address),
                    Err(DnsError::NotOurs) => continue,
                    Err(e) => {
                        last = e.to_string();
                        break;
                    }
                }
            }
        }
    }
    Err(if last.is_empty() {
        format!("cannot resolve {host}: no name server answered")
    } else {
        format!("cannot resolve {host}: {last}")
    })
}

/// A GET of `url` from byte `from`, following up to five redirects: the
/// connection, the response's head and the body bytes read with it.
fn get(url: &Url, from: u64) -> Result<(File, Head, Vec<u8>), Fail> {
    let mut url = url.clone();
    for _ in 0..5 {
        let address = resolve(&url.host).map_err(Fail::Retry)?;
        let socket = sys::connect(address, url.port, true, NETWORK_TIMEOUT)
            .map_err(|e| Fail::Retry(format!("cannot connect to {}: {e}", url.authority())))?;
        socket
            .write_all(http::request(&url, from).as_bytes())
            .map_err(|e| Fail::Retry(format!("{url}: {e}")))?;
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        let (head, body_at) = loop {
            let n = socket
                .read(&mut buffer)
                .map_err(|e| Fail::Retry(format!("{url}: {e}")))?;
            if n == 0 {
                return Err(Fail::Retry(format!(
                    "{url}: the server closed the connection without an answer"
                )));
            }
            received.extend_from_slice(&buffer[..n]);
            match http::parse_head(&received) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => return Err(Fail::Stop(format!("{url}: {e}"))),
            }
        };
        if head.coded {
            return Err(Fail::Stop(format!("{url}: the server sent a transfer coding (chunked); serve the repository as static files")));
        }
        if matches!(head.status, 301 | 302 | 303 | 307 | 308) {
            let location = head.location.as_deref().unwrap_or_default();
            url = Url::parse(location)
                .map_err(|e| Fail::Stop(format!("{url} redirects to `{location}`: {e}")))?;
            continue;
        }
        received.drain(..body_at);
        return Ok((socket, head, received));
    }
    Err(Fail::Stop(format!("{url}: more than five redirects")))
}

/// A small file (the index), whole.
fn fetch_whole(url: &Url, max: usize) -> Result<Vec<u8>, String> {
    let (socket, head, mut body) = get(url, 0).map_err(|e| match e {
        Fail::Retry(why) => format!("the update repository cannot be reached: {why}"),
        Fail::Stop(why) => format!("refused: {why}"),
    })?;
    if head.status != 200 {
        return Err(format!(
            "{url}: the server answered {} (is the repository published there?)",
            head.status
        ));
    }
    let mut buffer = [0u8; 4096];
    loop {
        if body.len() > max {
            return Err(format!("refused: {url} is larger than {max} bytes"));
        }
        match socket.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(format!("{url}: {e}")),
        }
    }
    if head
        .length
        .is_some_and(|length| length != body.len() as u64)
    {
        return Err(format!(
            "{url}: the connection closed after {} of {} bytes",
            body.len(),
            head.length.unwrap_or(0)
        ));
    }
    Ok(body)
}

/// A bundle's download: hands on exactly `size` bytes, resuming with a
/// Range request after a cut connection, and checks them against the
/// index's SHA-256 at the end.
struct Download {
    url: Url,
    size: u64,
    sha256: [u8; 32],
    hash: Sha256,
    received: u64,
    socket: Option<File>,
    /// Body bytes read with the head, not yet handed on.
    pending: Vec<u8>,
    /// Bytes to drop from a server that ignored the Range request.
    skip: u64,
    failures: u32,
}

impl Download {
    /// Starts the download: the first answer must promise the size the
    /// index names, so a truncated or replaced bundle is refused before
    /// any slot is touched.
    fn start(url: Url, size: u64, sha256: [u8; 32]) -> Result<Download, Fail> {
        let mut download = Download {
            url,
            size,
            sha256,
            hash: Sha256::new(),
            received: 0,
            socket: None,
            pending: Vec::new(),
            skip: 0,
            failures: 0,
        };
        download.connect()?;
        Ok(download)
    }

    fn connect(&mut self) -> Result<(), Fail> {
        let (socket, head, body) = get(&self.url, self.received)?;
        let url = &self.url;
        let (first, total) = match head.status {
            200 => (0, head.length),
            206 => head.range.ok_or_else(|| {
                Fail::Stop(format!("{url}: a partial answer without Content-Range"))
            })?,
            416 => {
                return Err(Fail::Stop(format!(
                    "{url} ends before byte {} of the {} the index names: a truncated bundle",
                    self.received, self.size
                )))
            }
            404 => {
                return Err(Fail::Stop(format!(
                    "{url}: not found (the index names a bundle the repository does not have)"
                )))
            }
            status if status >= 500 => {
                return Err(Fail::Retry(format!("{url}: the server answered {status}")))
            }
            status => return Err(Fail::Stop(format!("{url}: the server answered {status}"))),
        };
        if let Some(total) = total.filter(|&total| total != self.size) {
            return Err(Fail::Stop(format!(
                "{url} is {total} bytes, the index says {}: a truncated or replaced bundle",
                self.size
            )));
        }
        if first > self.received {
            return Err(Fail::Stop(format!(
                "{url}: the server sent bytes from {first}, not from {}",
                self.received
            )));
        }
        self.skip = self.received - first;
        self.pending = body;
        self.socket = Some(socket);
        Ok(())
    }

    /// Counts a failure and waits before the next try (1, 2, 4 … 30 s).
    fn retry(&mut self, why: String) -> Result<(), String> {
        self.socket = None;
        self.failures += 1;
        if self.failures > MAX_FAILURES {
            return Err(format!(
                "gave up after {MAX_FAILURES} tries without progress: {why}"
            ));
        }
        let wait = (1u64 << (self.failures - 1).min(5)).min(30);
        say!(
            "micros-update: {why}; resuming at byte {} of {} in {wait} s",
            self.received,
            self.size
        );
        sys::sleep(Duration::from_secs(wait));
        Ok(())
    }

    /// Takes `bytes` the server sent, past any it must skip; how many of
    /// them go on.
    fn take(&mut self, bytes: usize) -> (usize, usize) {
        let skipped = (self.skip.min(bytes as u64)) as usize;
        self.skip -= skipped as u64;
        let wanted = (self.size - self.received) as usize;
        (skipped, (bytes - skipped).min(wanted))
    }
}

impl Source for Download {
    fn read(&mut self, buffer: &mut [u8]) -> Result<usize, String> {
        loop {
            if self.received == self.size {
                let hash = core::mem::replace(&mut self.hash, Sha256::new()).finalize();
                if hash.as_slice() != self.sha256 {
                    return Err(format!(
                        "{}: the bundle's SHA-256 is not the one its index names",
                        self.url
                    ));
                }
                return Ok(0);
            }
            if !self.pending.is_empty() {
                let (skipped, n) = self.take(self.pending.len());
                let n = n.min(buffer.len());
                buffer[..n].copy_from_slice(&self.pending[skipped..skipped + n]);
                self.pending.drain(..skipped + n);
                if n == 0 {
                    continue;
                }
                return Ok(self.deliver(&buffer[..n]));
            }
            let Some(socket) = &self.socket else {
                match self.connect() {
                    Ok(()) => continue,
                    Err(Fail::Stop(why)) => return Err(why),
                    Err(Fail::Retry(why)) => {
                        self.retry(why)?;
                        continue;
                    }
                }
            };
            match socket.read(buffer) {
                Ok(0) => {
                    let why = format!(
                        "{}: the connection closed after {} of {} bytes",
                        self.url, self.received, self.size
                    );
                    self.retry(why)?;
                }
                Ok(n) => {
                    let (skipped, taken) = self.take(n);
                    if taken == 0 {
                        continue;
                    }
                    buffer.copy_within(skipped..skipped + taken, 0);
                    return Ok(self.deliver(&buffer[..taken]));
                }
                Err(e) => {
                    let why = format!("{}: {e}", self.url);
                    self.retry(why)?;
                }
            }
        }
    }
}

impl Download {
    fn deliver(&mut self, bytes: &[u8]) -> usize {
        self.hash.update(bytes);
        self.received += bytes.len() as u64;
        self.failures = 0;
        bytes.len()
    }
}
