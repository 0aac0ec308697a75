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
    if let Some(name) = qemu::device_disk(config) {
        return run_disk(config, &built, &name);
    }
    let cmdline =
        std::fs::read_to_string(built.directory.join("cmdline")).context("reading cmdline")?;
    let (accel, why) = accelerator(config, &built)?;
    let data = match qemu::data_disk(config) {
        Some((name, size)) => {
            let path = std::env::var_os("MICROS_DATA_DISK")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::path::PathBuf::from(name));
            if !path.exists() {
                let file = std::fs::File::create_new(&path)
                    .with_context(|| format!("creating the data disk {}", path.display()))?;
                file.set_len(size)
                    .with_context(|| format!("sizing the data disk {}", path.display()))?;
                eprintln!(
                    "created the data disk {} ({}); the guest prepares it at first boot",
                    path.display(),
                    config.virtualisation.qemu.data_disk_size
                );
            }
            Some(path.display().to_string())
        }
        None => None,
    };
    eprintln!("booting {} under {binary} with {why}; power it off with /usr/sbin/poweroff or press Ctrl-a x to quit", config.networking.host_name);
    let mut command = Command::new(binary);
    command
        .args(qemu::arguments_with(config, &dir, accel, data.as_deref()))
        .args(["-append", cmdline.trim()]);
    emulate(command, binary, package)
}

/// Runs QEMU on this terminal until it exits; a missing emulator names the
/// Debian package to install.
fn emulate(mut command: Command, binary: &str, package: &str) -> anyhow::Result<()> {
    let status = command.status().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("{binary} is not installed\nhint: install the Debian package {package} (`sudo apt-get install {package}`)"),
        _ => anyhow::anyhow!("cannot start {binary}: {error}"),
    })?;
    if !status.success() {
        anyhow::bail!("{binary} exited with {status}");
    }
    Ok(())
}

/// Boots the device's A/B disk with U-Boot, flashing it from the build's
/// `disk.img` the first time.
fn run_disk(
    config: &micros_config::Config,
    built: &micros_system::build::Built,
    name: &str,
) -> anyhow::Result<()> {
    let (binary, package) = qemu::emulator(config.platform.host);
    let path = std::env::var_os("MICROS_DISK")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(name));
    if !path.exists() {
        std::fs::copy(built.directory.join("disk.img"), &path)
            .with_context(|| format!("flashing the device disk {}", path.display()))?;
        eprintln!(
            "flashed the device disk {} from {}/disk.img; it is kept across runs (micros deploy updates it; delete it to flash afresh)",
            path.display(),
            built.directory.display()
        );
    }
    eprintln!(
        "booting {} from {} under {binary} with U-Boot (software emulation); press Ctrl-a x to quit",
        config.networking.host_name,
        path.display()
    );
    let mut command = Command::new(binary);
    command.args(qemu::disk_arguments(
        config,
        &built.directory.display().to_string(),
        &path.display().to_string(),
    ));
    emulate(command, binary, package)
}

/// The KVM probe boots the kernel for up to 5 s; its verdict depends only
/// on the kernel and this machine, so it is kept in the cache per kernel.
/// The cheap checks (architecture, /dev/kvm) are never cached.
fn accelerator(
    config: &micros_config::Config,
    built: &micros_system::build::Built,
) -> anyhow::Result<(qemu::Accel, String)> {
    let (accel, why) = match built.artifacts.get("kernel") {
        Some((_, sha256)) => {
            let sha256 = &micros_debian::digest::Sha256::parse(sha256)
                .context("the kernel's SHA-256 in the manifest")?;
            let cache = micros_debian::cache::Cache::from_environment()?;
            let path = cache.path(micros_debian::cache::Bucket::Kvm, sha256);
            match std::fs::read_to_string(&path).ok().and_then(|v| {
                v.split_once('\n')
                    .map(|(a, w)| (a.to_owned(), w.to_owned()))
            }) {
                Some((accel, why)) => (
                    if accel == "kvm" {
                        qemu::Accel::Kvm
                    } else {
                        qemu::Accel::Tcg
                    },
                    why,
                ),
                None => {
                    let (accel, why) = qemu::probe_kvm(config, &built.directory);
                    if why == "KVM" || why.contains("KVM is present but") {
                        let verdict = format!(
                            "{}\n{why}",
                            if accel == qemu::Accel::Kvm {
                                "kvm"
                            } else {
                                "tcg"
                            }
                        );
                        let _ = cache.write(
                            micros_debian::cache::Bucket::Kvm,
                            sha256,
                            verdict.as_bytes(),
                        );
                    }
                    (accel, why)
                }
            }
        }
        None => qemu::probe_kvm(config, &built.directory),
    };
    Ok((accel, why))
}
