//! `micros deploy`: build a signed update bundle, stream it over SSH into the
//! device's other slot (`micros-update install`), reboot the device, and
//! wait for its verdict: confirmed on the new version, or rolled back.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::build::{build_system, Args as BuildArgs};

#[derive(clap::Args)]
#[group(skip)]
pub struct Args {
    /// The device: [user@]host[:port] (the system's own dropbear)
    #[arg(long)]
    pub to: String,
    /// Show both slots and the last update's outcome, and deploy nothing
    #[arg(long)]
    pub status: bool,
    /// With --status: as JSON
    #[arg(long)]
    pub json: bool,
    /// Install even when the bundle's version is older than the device's
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Seconds to wait for the device's verdict after the reboot
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// An option for ssh (`-o`), e.g. `--ssh-option StrictHostKeyChecking=accept-new`
    #[arg(long = "ssh-option", value_name = "KEY=VALUE")]
    pub ssh_options: Vec<String>,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Where the device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user_host: String,
    pub port: Option<u16>,
}

impl Target {
    pub fn parse(text: &str) -> anyhow::Result<Target> {
        let (user_host, port) = match text.rsplit_once(':') {
            Some((left, port)) => (
                left,
                Some(
                    port.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .with_context(|| format!("--to {text}: `{port}` is not a port number"))?,
                ),
            ),
            None => (text, None),
        };
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._@[]".contains(c);
        if host.is_empty() || user_host.starts_with('-') || !user_host.chars().all(allowed) {
            anyhow::bail!("--to {text}: expected [user@]host[:port], e.g. root@192.168.1.20:22");
        }
        Ok(Target {
            user_host: user_host.to_owned(),
            port,
        })
    }
}

/// The device's status, as `micros-update status --json` prints it.
#[derive(Debug, serde::Deserialize)]
struct Status {
    slots: Vec<SlotStatus>,
    last: Option<Last>,
}

#[derive(Debug, serde::Deserialize)]
struct SlotStatus {
    slot: String,
    booted: bool,
    version: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Last {
    outcome: String,
    slot: String,
    version: String,
    reason: String,
}

impl Status {
    fn booted(&self) -> Option<&SlotStatus> {
        self.slots.iter().find(|s| s.booted)
    }
}

struct Ssh<'a> {
    target: &'a Target,
    options: &'a [String],
}

impl Ssh<'_> {
    fn command(&self, remote: &str) -> Command {
        let mut command = Command::new("ssh");
        command.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]);
        if let Some(port) = self.target.port {
            command.args(["-p", &port.to_string()]);
        }
        for option in self.options {
            command.args(["-o", option]);
        }
        command.arg("--").arg(&self.target.user_host).arg(remote);
        command
    }

    /// Runs `remote`; its stdout, or what went wrong.
    fn run(&self, remote: &str) -> anyhow::Result<std::process::Output> {
        self.command(remote)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "ssh is not installed\nhint: install the Debian package openssh-client"
                ),
                _ => anyhow::anyhow!("cannot run ssh: {error}"),
            })
    }

    fn status(&self) -> anyhow::Result<Status> {
        let output = self.run("micros-update status --json")?;
        if !output.status.success() {
            anyhow::bail!(
                "{}",
                String::from_utf8_lossy(&output.stderr).trim().to_owned()
            );
        }
        serde_json::from_slice(&output.stdout)
            .context("the device's status is not what micros-update prints")
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.to)?;
    let ssh = Ssh {
        target: &target,
        options: &args.ssh_options,
    };
    if args.status {
        let output = ssh.run(if args.json {
            "micros-update status --json"
        } else {
            "micros-update status"
        })?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            anyhow::bail!("could not read the status of {}", args.to);
        }
        return Ok(());
    }
    let before = ssh
        .status()
        .with_context(|| format!("asking {} for its slots (is it a MicrOS system built with system.update.enable, reachable over SSH?)", args.to))?;
    let running = before
        .booted()
        .and_then(|s| s.version.clone())
        .unwrap_or_else(|| "?".into());
    let (_, built) = build_system(&BuildArgs {
        attr: "update".to_owned(),
        ..args.build
    })?;
    let bundle: PathBuf = built.directory.join("update.bundle");
    let size = std::fs::metadata(&bundle)
        .with_context(|| format!("reading {}", bundle.display()))?
        .len();
    eprintln!(
        "sending {} ({:.1} MB) to {}, which runs version {running}",
        bundle.display(),
        size as f64 / 1e6,
        args.to
    );
    let start = Instant::now();
    let file =
        std::fs::File::open(&bundle).with_context(|| format!("opening {}", bundle.display()))?;
    let install = if args.allow_downgrade {
        "micros-update install --allow-downgrade"
    } else {
        "micros-update install"
    };
    let output = ssh
        .command(install)
        .stdin(file)
        .output()
        .context("running ssh")?;
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    // ssh exits 255 for its own failures: the device may have gone down.
    if output.status.code() == Some(255) {
        anyhow::bail!(
            "lost the connection to {} while it installed; a device that did not finish installing keeps running version {running} (see `micros deploy --status --to {}`)",
            args.to,
            args.to
        );
    }
    if !output.status.success() {
        anyhow::bail!(
            "{} did not install the bundle; it still runs version {running}",
            args.to
        );
    }
    let sent = start.elapsed();
    eprintln!(
        "installed in {:.1} s; rebooting {} into the new slot",
        sent.as_secs_f64(),
        args.to
    );
    let reboot = Instant::now();
    // The connection may drop as the device goes down: that is success.
    let _ = ssh.run("sync; /usr/sbin/reboot");
    let deadline = reboot + Duration::from_secs(args.timeout);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        if Instant::now() > deadline {
            anyhow::bail!(
                "{} gave no verdict within {} s of its reboot (is it up? `micros deploy --status --to {}`)",
                args.to,
                args.timeout,
                args.to
            );
        }
        let Ok(status) = ssh.status() else { continue };
        let Some(last) = &status.last else { continue };
        match last.outcome.as_str() {
            "confirmed" if status.booted().is_some_and(|s| s.slot == last.slot) => {
                eprintln!(
                    "{} runs version {} (slot {}), confirmed by its health check; deploy {:.1} s, downtime {:.1} s (reboot to healthy)",
                    args.to,
                    last.version,
                    last.slot,
                    sent.as_secs_f64(),
                    reboot.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            "rolled-back" => {
                let now = status
                    .booted()
                    .map(|s| {
                        format!(
                            "version {} (slot {})",
                            s.version.as_deref().unwrap_or("?"),
                            s.slot
                        )
                    })
                    .unwrap_or_else(|| "?".into());
                // A rejected trial reboots on its own: wait until the
                // device is back on the good slot to say so.
                if status.booted().is_some_and(|s| s.slot == last.slot) {
                    continue;
                }
                anyhow::bail!(
                    "version {} failed on {}: {}\nthe device rolled back after {:.1} s and runs {now}",
                    last.version,
                    args.to,
                    last.reason,
                    reboot.elapsed().as_secs_f64()
                );
            }
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("root@10.0.0.2:2222").unwrap(),
            Target {
                user_host: "root@10.0.0.2".into(),
                port: Some(2222)
            }
        );
        assert_eq!(Target::parse("device").unwrap().port, None);
        for bad in [
            "-oProxyCommand=x",
            "root@host:0",
            "root@host:x",
            "",
            "a b",
            "root@",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
