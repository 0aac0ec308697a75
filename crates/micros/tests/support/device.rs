//! A device under test for updates: its directory (keys, configs, builds),
//! its SSH port, and the keys it trusts; used by `update_qemu.rs` and
//! `power_cut_qemu.rs`.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ed25519_dalek::{Signer, SigningKey};
use micros_update::bundle;
use micros_update::manifest::Manifest;

use super::{micros, run, text};

pub struct Device {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub public_key: String,
    pub ssh_key: String,
}

impl Device {
    pub fn ssh_command(&self, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args(["-F", "/dev/null", "-p", &self.port.to_string()])
            .args(self.ssh_options().iter().flat_map(|o| ["-o", o.as_str()]))
            .args(["root@127.0.0.1", command])
            .env_remove("SSH_AUTH_SOCK");
        ssh
    }

    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            "BatchMode=yes".into(),
            "ConnectTimeout=10".into(),
            "StrictHostKeyChecking=no".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "LogLevel=ERROR".into(),
            format!("IdentityFile={}", self.dir.path().join("ssh-key").display()),
            "IdentitiesOnly=yes".into(),
        ]
    }

    /// Runs `command` on the device; None until it answers.
    pub fn ssh(&self, command: &str) -> Option<String> {
        let output = self
            .ssh_command(command)
            .stdin(Stdio::null())
            .output()
            .expect("ssh (package openssh-client)");
        output.status.success().then(|| text(&output.stdout))
    }

    /// `micros-update install` with `bundle` on its input.
    pub fn install(&self, bundle: &[u8], allow_downgrade: bool) -> Output {
        let path = self.dir.path().join("sent.bundle");
        std::fs::write(&path, bundle).unwrap();
        self.ssh_command(if allow_downgrade {
            "micros-update install --allow-downgrade"
        } else {
            "micros-update install"
        })
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        let json = self
            .ssh("micros-update status --json")
            .expect("the device answers");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// The config of version `version`, with `extra` Nickel fields.
    pub fn write_config(&self, name: &str, version: &str, extra: &str) {
        let config = format!(
            r#"let micros = import "micros" in
micros.system {{ modules = [ micros.profiles.qemu, {{
  networking.hostName = "ab",
  platform.host = "aarch64-linux",
  services.sshd.enable = true,
  boot.overlay = "data",
  virtualisation.qemu.forwardPorts = [{{ host = {port}, guest = 22 }}],
  users.users.root.authorizedKeys = [{ssh:?}],
  system.update = {{
    enable = true,
    version = "{version}",
    trustedKeys = [{key:?}],
    watchdog = 30,
    healthCheck.services = ["sshd"],
  }},
}}, {extra} ] }}
"#,
            port = self.port,
            ssh = self.ssh_key,
            key = self.public_key,
        );
        std::fs::write(self.dir.path().join(name), config).unwrap();
    }

    /// A fresh device: its directory with an update key (`update.key`)
    /// and an SSH key, a free port; and the update key's signing half.
    pub fn new() -> (Device, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let (public_key, ssh_key, signing) = keys(dir.path());
        let device = Device {
            dir,
            port: super::free_port(),
            public_key,
            ssh_key,
        };
        (device, signing)
    }

    /// `micros build -A update` of `config` into `out`, signed with
    /// `update.key`; the bundle's bytes.
    pub fn build_bundle(&self, config: &str, out: &str) -> Vec<u8> {
        build_bundle(self.dir.path(), config, out)
    }

    pub fn deploy(&self, config: &str) -> Output {
        self.deploy_command(config, &format!("out-{config}"), &[])
            .output()
            .unwrap()
    }

    /// `micros deploy` of `config` to the device, built into `out`.
    pub fn deploy_command(&self, config: &str, out: &str, extra: &[&str]) -> Command {
        let mut args = vec![
            "deploy".to_owned(),
            "--to".into(),
            format!("root@127.0.0.1:{}", self.port),
            "--key".into(),
            "update.key".into(),
            "--timeout".into(),
            "600".into(),
            "-o".into(),
            out.into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        for option in self.ssh_options() {
            args.extend(["--ssh-option".into(), option]);
        }
        args.push(config.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_micros"));
        command
            .args(&args)
            .current_dir(self.dir.path())
            .env("MICROS_CACHE_DIR", super::cache())
            .env_remove("SSH_AUTH_SOCK");
        command
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The bundle with its manifest changed by `change` and signed by `key`.
pub fn resigned(bundle_bytes: &[u8], key: &SigningKey, change: impl Fn(&mut Manifest)) -> Vec<u8> {
    let (mut manifest, payload) = bundle_manifest(bundle_bytes);
    change(&mut manifest);
    let text = manifest.to_text();
    let signature = key.sign(&bundle::signed_message(&text)).to_bytes();
    let mut out = bundle::header(&text, &signature);
    out.extend_from_slice(&bundle_bytes[payload..]);
    out
}

/// A bundle's manifest (unchecked: the test made the bundle), and where
/// its payload starts (after the manifest and its signature).
pub fn bundle_manifest(bundle_bytes: &[u8]) -> (Manifest, usize) {
    let length = u32::from_le_bytes(bundle_bytes[12..16].try_into().unwrap()) as usize;
    let text = std::str::from_utf8(&bundle_bytes[16..16 + length]).unwrap();
    (Manifest::parse(text).unwrap(), 16 + length + 64)
}

/// `micros build -A update` of `config` in `dir` into `out`, signed with
/// `dir`'s `update.key`; the bundle's bytes.
pub fn build_bundle(dir: &Path, config: &str, out: &str) -> Vec<u8> {
    let args = [
        "build",
        "-A",
        "update",
        "--key",
        "update.key",
        "-o",
        out,
        config,
    ];
    let output = micros(&args, dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::read(dir.join(out).join("update.bundle")).unwrap()
}

pub fn slot<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap()
}

pub fn keys(dir: &Path) -> (String, String, SigningKey) {
    let output = micros(&["keygen", "update.key"], dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let public = std::fs::read_to_string(dir.join("update.key.pub"))
        .unwrap()
        .trim()
        .to_owned();
    let seed = bundle::parse_secret_key(&std::fs::read_to_string(dir.join("update.key")).unwrap())
        .unwrap();
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(dir.join("ssh-key")));
    let ssh = std::fs::read_to_string(dir.join("ssh-key.pub"))
        .unwrap()
        .trim()
        .to_owned();
    (public, ssh, SigningKey::from_bytes(&seed))
}
