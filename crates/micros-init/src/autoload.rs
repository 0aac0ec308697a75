//! `micros-init coldplug` and `micros-init hotplug`: the same binary as
//! stage 1, copied into the root as `/usr/lib/micros/micros-init`, loads
//! the modules the present devices need.
//!
//! - `coldplug` (runit's stage 1, before any service starts): every
//!   device's `modalias` under `/sys/bus/*/devices/*` is matched against
//!   the hardware table and its modules loaded, dependencies first; again
//!   while loading made new devices appear (a USB host controller brings
//!   its hub), so `networking.interfaces` find their interfaces.
//! - `hotplug` (the runit service `hotplug`): listens on the kernel's
//!   uevent socket and does the same for each device that is added later
//!   (a USB stick). It opens the socket before it scans `/sys` once more,
//!   so no device that appeared in between is missed.
//!
//! Why not busybox's `mdev` as the kernel's hotplug helper: the kernel
//! would fork a process per event (hundreds at boot), mdev loads modules
//! only through `modprobe`, which needs depmod's `modules.dep` and
//! `modules.alias` (Debian's kernel packages carry neither), and coldplug
//! would still need every device's `uevent` re-triggered. The matching
//! here is the pure, host-tested [`micros_init::hardware`].
//!
//! Each module loaded is logged in `/run/micros/modules` with the device
//! that asked for it (`smsc95xx usb:v0424pEC00… /devices/…`).
use alloc::borrow::ToOwned;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::time::Duration;

use micros_init::hardware::{self, Table};

use crate::sys::{self, File};

const TABLE: &str = "/usr/lib/micros/hardware";
const LOG: &str = "/run/micros/modules";
/// ENOBUFS: the socket's buffer overflowed and events were lost.
const ENOBUFS: i32 = 105;

macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(sys::Console, $($arg)*);
    }};
}

/// Runs the tool named by `arguments[1]`; never returns.
pub fn run(arguments: &[String]) -> ! {
    let mode = arguments.get(1).map(String::as_str).unwrap_or("");
    if mode != "coldplug" && mode != "hotplug" {
        say!("usage: micros-init coldplug | hotplug (stage 1 runs as PID 1 only)");
        sys::exit(2);
    }
    let table = match sys::read_to_string(TABLE) {
        Ok(text) => Table::parse(&text),
        Err(error) => {
            say!("micros: cannot read the hardware table {TABLE}: {error}; no modules are loaded for devices");
            sys::exit(1);
        }
    };
    let mut loader = Loader {
        table,
        tried: BTreeSet::new(),
    };
    if mode == "coldplug" {
        let start = sys::now();
        let (devices, loaded) = loader.coldplug();
        let took = sys::now().saturating_sub(start);
        say!(
            "micros: coldplug loaded {} kernel module{} for {devices} devices in {} ms{}{}",
            loaded.len(),
            if loaded.len() == 1 { "" } else { "s" },
            took.as_millis(),
            if loaded.is_empty() { "" } else { ": " },
            loaded.join(" ")
        );
        sys::exit(0);
    }
    let socket = match sys::uevent_socket() {
        Ok(socket) => socket,
        Err(error) => {
            say!("micros: cannot listen for devices (uevent socket): {error}");
            sys::exit(1);
        }
    };
    // Devices added between stage 1's coldplug and now.
    loader.coldplug();
    let mut buffer = alloc::vec![0u8; 16 * 1024];
    loop {
        match socket.read(&mut buffer) {
            Ok(length) => {
                let Some(event) = hardware::parse_uevent(&buffer[..length]) else {
                    continue;
                };
                if let (Some(modalias), "add") = (event.modalias, event.action) {
                    for module in loader.load_for(modalias, event.devpath) {
                        say!("micros: loaded {module} for {modalias}");
                    }
                }
            }
            Err(error) if error.0 == ENOBUFS => {
                loader.coldplug();
            }
            Err(error) => {
                say!("micros: reading device events failed: {error}");
                sys::sleep(Duration::from_secs(1));
            }
        }
    }
}

struct Loader {
    table: Table,
    /// Modules loaded or tried by this process: each is tried once.
    tried: BTreeSet<String>,
}

impl Loader {
    /// Loads modules for every device present, again while that made new
    /// devices appear: (devices seen, modules loaded).
    fn coldplug(&mut self) -> (usize, Vec<String>) {
        let mut loaded = Vec::new();
        let mut seen = BTreeSet::new();
        for _round in 0..8 {
            let before = loaded.len();
            for (device, modalias) in devices() {
                if seen.insert((device.clone(), modalias.clone())) {
                    loaded.extend(self.load_for(&modalias, &device));
                }
            }
            if loaded.len() == before {
                break;
            }
            // Let drivers that just bound register their children.
            sys::sleep(Duration::from_millis(20));
        }
        (seen.len(), loaded)
    }

    /// Loads what `modalias` needs; the names of the modules loaded.
    fn load_for(&mut self, modalias: &str, device: &str) -> Vec<String> {
        let mut loaded = Vec::new();
        let wanted: Vec<String> = self
            .table
            .modules_for(modalias)
            .into_iter()
            .map(str::to_owned)
            .collect();
        for module in wanted {
            let order: Vec<String> = self
                .table
                .load_order(&module)
                .into_iter()
                .map(str::to_owned)
                .collect();
            for name in order {
                if !self.tried.insert(name.clone()) || sys::exists(&format!("/sys/module/{name}")) {
                    continue;
                }
                let path = self.table.path(&name);
                let result = File::open(&path).and_then(|file| sys::finit_module(&file, ""));
                match result {
                    Ok(()) => {
                        log(&name, modalias, device);
                        loaded.push(name);
                    }
                    Err(sys::EEXIST) => {}
                    Err(error) => {
                        say!("micros: kernel module {name} (for {modalias}) did not load: {error}")
                    }
                }
            }
        }
        loaded
    }
}

/// Every device that has a `modalias`: (its path under /sys, the alias).
fn devices() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for bus in sys::read_dir("/sys/bus").unwrap_or_default() {
        let dir = format!("/sys/bus/{bus}/devices");
        for device in sys::read_dir(&dir).unwrap_or_default() {
            let path = format!("{dir}/{device}");
            if let Ok(text) = sys::read_to_string(&format!("{path}/modalias")) {
                let modalias = text.trim();
                if !modalias.is_empty() {
                    found.push((path, modalias.to_string()));
                }
            }
        }
    }
    found
}

fn log(module: &str, modalias: &str, device: &str) {
    let _ = sys::create_dir_all("/run/micros");
    if let Ok(file) = File::open_for_appending(LOG) {
        let _ = file.write_all(format!("{module} {modalias} {device}\n").as_bytes());
    }
}
