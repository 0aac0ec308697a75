//! `micros run`: build, then boot the system in QEMU on this terminal.
use std::process::Command;

use anyhow::Context;
use micros_system::qemu;

use super::build::{build_system, Args};

pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, built) = build_system(&Args {
        attr: "toplevel".to_owned(),
        ..args
    })?;
    let config = &config;
    let (binary, package) = qemu::emulator(config.platform.host);
    let dir = built.directory.display().to_string();
    let cmdline =
        std::fs::read_to_string(built.directory.join("cmdline")).context("reading cmdline")?;
    let (accel, why) = qemu::probe_kvm(config, &built.directory);
    eprintln!("booting {} under {binary} with {why}; power it off with /usr/sbin/poweroff or press Ctrl-a x to quit", config.networking.host_name);
    let status = Command::new(binary)
        .args(qemu::arguments_with(config, &dir, accel))
        .args(["-append", cmdline.trim()])
        .status()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{binary} is not installed\nhint: install the Debian package {package} (`sudo apt-get install {package}`)"),
            _ => anyhow::anyhow!("cannot start {binary}: {error}"),
        })?;
    if !status.success() {
        anyhow::bail!("{binary} exited with {status}");
    }
    Ok(())
}
