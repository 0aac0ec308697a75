//! Needs the network (Debian's archive), QEMU and OpenSSH's client: updates
//! that cannot brick, on QEMU's aarch64 `virt` machine booting the A/B disk
//! with U-Boot. One device (one disk, kept across reboots inside one QEMU)
//! refuses every bad bundle without touching its slots, takes version 2
//! with `micros deploy` and keeps its data, then rolls back on its own from
//! four broken versions: a failed health check, a kernel panic, a stage 1
//! that cannot find its root, and an init that hangs (the watchdog).
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use micros_update::bundle;
use micros_update::manifest::Manifest;

mod support;
use support::{micros, run, shown, text, Vm};

struct Device {
    dir: tempfile::TempDir,
    port: u16,
    public_key: String,
    ssh_key: String,
}

impl Device {
    fn ssh_command(&self, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args(["-F", "/dev/null", "-p", &self.port.to_string()])
            .args(self.ssh_options().iter().flat_map(|o| ["-o", o.as_str()]))
            .args(["root@127.0.0.1", command])
            .env_remove("SSH_AUTH_SOCK");
        ssh
    }

    fn ssh_options(&self) -> Vec<String> {
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
    fn ssh(&self, command: &str) -> Option<String> {
        let output = self
            .ssh_command(command)
            .stdin(Stdio::null())
            .output()
            .expect("ssh (package openssh-client)");
        output.status.success().then(|| text(&output.stdout))
    }

    /// `micros-update install` with `bundle` on its input.
    fn install(&self, bundle: &[u8]) -> Output {
        let path = self.dir.path().join("sent.bundle");
        std::fs::write(&path, bundle).unwrap();
        self.ssh_command("micros-update install")
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let json = self
            .ssh("micros-update status --json")
            .expect("the device answers");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// The config of version `version`, with `extra` Nickel fields.
    fn write_config(&self, name: &str, version: &str, extra: &str) {
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

    fn deploy(&self, config: &str) -> Output {
        let mut args = vec![
            "deploy".to_owned(),
            "--to".into(),
            format!("root@127.0.0.1:{}", self.port),
            "--key".into(),
            "update.key".into(),
            "--timeout".into(),
            "600".into(),
            "-o".into(),
            format!("out-{config}"),
        ];
        for option in self.ssh_options() {
            args.extend(["--ssh-option".into(), option]);
        }
        args.push(config.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_micros"));
        command
            .args(&args)
            .current_dir(self.dir.path())
            .env("MICROS_CACHE_DIR", support::cache())
            .env_remove("SSH_AUTH_SOCK");
        command.output().unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Polls `check` every second for up to `limit` while QEMU runs.
fn poll<T>(vm: &mut Vm, limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit && vm.exited().is_none() {
        if let Some(value) = check() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

/// The bundle with its manifest changed by `change` and signed by `key`.
fn resigned(bundle_bytes: &[u8], key: &SigningKey, change: impl Fn(&mut Manifest)) -> Vec<u8> {
    let length = u32::from_le_bytes(bundle_bytes[12..16].try_into().unwrap()) as usize;
    let text = std::str::from_utf8(&bundle_bytes[16..16 + length]).unwrap();
    let mut manifest = Manifest::parse(text).unwrap();
    change(&mut manifest);
    let text = manifest.to_text();
    let signature = key.sign(&bundle::signed_message(&text)).to_bytes();
    let mut out = bundle::header(&text, &signature);
    out.extend_from_slice(&bundle_bytes[16 + length + 64..]);
    out
}

fn slot<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap()
}

fn keys(dir: &Path) -> (String, String, SigningKey) {
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

#[test]
fn needs_network_and_qemu_a_device_takes_good_updates_refuses_bad_bundles_and_rolls_back_broken_ones(
) {
    let dir = tempfile::tempdir().unwrap();
    let (public_key, ssh_key, signing) = keys(dir.path());
    let device = Device {
        dir,
        port: support::free_port(),
        public_key,
        ssh_key,
    };

    // Version 1, flashed: the disk, and U-Boot to boot it.
    device.write_config("v1.ncl", "1", "{}");
    let output = micros(&["build", "-A", "disk", "v1.ncl"], device.dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    for file in [
        "disk.img",
        "u-boot.bin",
        "kernel",
        "initrd",
        "root.squashfs",
    ] {
        assert!(device.path("result").join(file).exists(), "{file}");
    }
    let boot_started = Instant::now();
    let mut vm = Vm::start_in(device.dir.path(), &[]);
    let first = poll(&mut vm, Duration::from_secs(300), || {
        device.ssh("micros-update status --json")
    });
    assert!(
        first.is_some(),
        "version 1 never answered SSH:\n{}",
        shown(&vm.console())
    );
    eprintln!(
        "figure: first boot from the A/B disk to SSH: {:.1} s",
        boot_started.elapsed().as_secs_f64()
    );
    let status = device.status();
    assert_eq!(slot(&status, "a")["state"], "good");
    assert_eq!(slot(&status, "a")["booted"], true);
    assert_eq!(slot(&status, "a")["version"], "1");
    assert_eq!(slot(&status, "b")["state"], "empty");
    assert!(status["last"].is_null());
    assert!(vm
        .console()
        .contains("micros-init: watchdog armed for 30 s"));
    device
        .ssh("echo kept > /root/data-file && sync")
        .expect("writes to the data partition");

    // Version 2's bundle, then everything a device must refuse, each with
    // one line and the running slot untouched.
    device.write_config("v2.ncl", "2", "{}");
    let output = micros(
        &[
            "build",
            "-A",
            "update",
            "--key",
            "update.key",
            "-o",
            "v2",
            "v2.ncl",
        ],
        device.dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let good = std::fs::read(device.path("v2/update.bundle")).unwrap();
    eprintln!(
        "figure: update bundle for the test system: {} bytes",
        good.len()
    );
    let length = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let mut unsigned = good.clone();
    unsigned[16 + length..16 + length + 64].fill(0);
    let stranger = SigningKey::from_bytes(&[42; 32]);
    let mut corrupted = good.clone();
    let middle = good.len() / 2;
    corrupted[middle] ^= 0x55;
    let refusals: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unsigned", unsigned, "not signed"),
        (
            "wrong key",
            resigned(&good, &stranger, |_| {}),
            "does not trust",
        ),
        (
            "truncated",
            good[..good.len() - 100_000].to_vec(),
            "truncated",
        ),
        ("corrupted in the middle", corrupted, "corrupt"),
        (
            "wrong platform",
            resigned(&good, &signing, |m| m.platform = "x86_64-linux".into()),
            "is for x86_64-linux",
        ),
        (
            "older version",
            resigned(&good, &signing, |m| {
                m.version = micros_update::version::Version::parse("0.9").unwrap()
            }),
            "older than the installed 1",
        ),
        (
            "not a bundle",
            b"hello".to_vec(),
            "not a MicrOS update bundle",
        ),
    ];
    for (what, bytes, expected) in &refusals {
        let output = device.install(bytes);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{what}: installed?\n{stderr}");
        assert!(
            stderr.contains("refused:") && stderr.contains(expected),
            "{what}: {stderr}"
        );
        let status = device.status();
        assert_eq!(slot(&status, "a")["state"], "good", "{what}");
        assert_eq!(slot(&status, "a")["booted"], true, "{what}");
        assert_ne!(slot(&status, "b")["state"], "trying", "{what}");
        assert_eq!(status["last"]["outcome"], "refused", "{what}");
        eprintln!("figure: refused {what}: {}", stderr.trim());
    }

    // Version 2, deployed: confirmed, and the data is still there.
    let started = Instant::now();
    let output = device.deploy("v2.ncl");
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\n{}",
        shown(&vm.console())
    );
    assert!(
        stderr.contains("runs version 2 (slot b), confirmed"),
        "{stderr}"
    );
    eprintln!(
        "figure: deploy of version 2 (build, send, install, reboot, health check): {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        stderr.lines().last().unwrap_or_default()
    );
    let status = device.status();
    assert_eq!(slot(&status, "b")["state"], "good");
    assert_eq!(slot(&status, "b")["booted"], true);
    assert_eq!(slot(&status, "b")["version"], "2");
    assert_eq!(status["last"]["outcome"], "confirmed");
    assert_eq!(
        device.ssh("cat /root/data-file").as_deref(),
        Some("kept\n"),
        "the data partition survives the update"
    );

    // Four broken versions 3: each gets its one boot, fails, and the
    // device is back on version 2 with no one touching it.
    let broken = [
        (
            "a failed health check",
            r#"{ system.update.healthCheck = { command = "echo disk full >&2; false", timeout = 5 } }"#,
            "health check failed after 5 s: the health command failed: disk full",
            "micros-update: slot a failed its trial",
        ),
        (
            "a kernel panic",
            r#"{ boot.kernelParams = ["rdinit=/no-such-init"] }"#,
            "never reached its health check",
            "Kernel panic",
        ),
        (
            "a stage 1 that cannot find its root",
            r#"{ boot.initrd.availableKernelModules.virtio_blk = false, boot.rootWait = 3 }"#,
            "never reached its health check",
            "micros-init: rebooting in 10 seconds",
        ),
        (
            "an init that hangs",
            r#"{ boot.kernelParams = ["micros.init=/usr/bin/sh"] }"#,
            "never reached its health check",
            "micros-init: watchdog armed for 30 s",
        ),
    ];
    for (index, (what, extra, reason, console_shows)) in broken.iter().enumerate() {
        let name = format!("v3-{index}.ncl");
        device.write_config(&name, "3", extra);
        let console_before = vm.console().len();
        let started = Instant::now();
        let output = device.deploy(&name);
        let stderr = text(&output.stderr);
        let console = vm.console()[console_before..].to_owned();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {stderr}\n{}",
            shown(&console)
        );
        assert!(
            stderr.contains("version 3 failed") && stderr.contains(reason),
            "{what}: {stderr}"
        );
        assert!(
            stderr.contains("runs version 2 (slot b)"),
            "{what}: {stderr}"
        );
        assert!(
            console.contains(console_shows)
                && console.contains("micros: booting slot a, version 3"),
            "{what}: the console shows it:\n{}",
            shown(&console)
        );
        let status = device.status();
        assert_eq!(slot(&status, "b")["booted"], true, "{what}");
        assert_eq!(slot(&status, "b")["state"], "good", "{what}");
        assert_eq!(slot(&status, "a")["state"], "bad", "{what}");
        assert_eq!(status["last"]["outcome"], "rolled-back", "{what}");
        assert_eq!(
            device.ssh("cat /root/data-file").as_deref(),
            Some("kept\n"),
            "{what}: the data partition survives the rollback"
        );
        eprintln!(
            "figure: {what}: deploy to rollback {:.1} s; {}",
            started.elapsed().as_secs_f64(),
            stderr
                .lines()
                .find(|l| l.contains("rolled back"))
                .unwrap_or_default()
        );
    }
}
