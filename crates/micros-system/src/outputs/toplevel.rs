//! `cmdline` and `run-vm`: the kernel command line, and the script that
//! boots the system in QEMU from the build's directory.
use std::path::Path;

use micros_config::model::{Config, Overlay};

use crate::error::{io, BuildError};
use crate::system::System;

/// The kernel command line.
pub fn cmdline(config: &Config) -> String {
    let mut words: Vec<String> = config
        .boot
        .console
        .iter()
        .map(|c| format!("console={c}"))
        .collect();
    words.push(format!("root={}", config.boot.root));
    words.push(format!("micros.rootwait={}", config.boot.root_wait));
    if config.boot.overlay == Overlay::Data {
        words.push("micros.overlay=data".to_owned());
        if let Some(device) = &config.boot.data_device {
            words.push(format!("micros.data={device}"));
        }
    }
    words.push("panic=10".to_owned());
    let update = &config.system.update;
    if update.enable && update.watchdog > 0 {
        words.push(format!("micros.watchdog={}", update.watchdog));
    }
    words.extend(config.boot.kernel_params.iter().cloned());
    words.join(" ")
}

pub fn write(system: &System<'_>, dir: &Path) -> Result<(), BuildError> {
    let cmdline_path = dir.join("cmdline");
    std::fs::write(&cmdline_path, format!("{}\n", cmdline(system.config)))
        .map_err(io(&cmdline_path))?;
    let run_vm = dir.join("run-vm");
    std::fs::write(&run_vm, crate::qemu::run_vm_script(system.config)).map_err(io(&run_vm))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run_vm, std::fs::Permissions::from_mode(0o755)).map_err(io(&run_vm))
}
