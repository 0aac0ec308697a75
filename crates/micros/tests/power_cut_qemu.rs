//! Needs the network (Debian's archive), QEMU and OpenSSH's client: power
//! cuts during updates. One device on QEMU's aarch64 `virt` machine (the
//! A/B disk, U-Boot) is updated back and forth between versions 1 and 2,
//! and QEMU is killed (SIGKILL) at 20 points spread over `micros deploy`,
//! the install, the switch, the first boot of the new slot and its
//! confirmation. After each cut it boots again and must come up on version
//! 1 or 2 (the one each cut allows), settled and with its data.
//!
//! Every boot's writes are logged and replayed, and the slot chooser's
//! decision checked after each (`support::power_cut`).
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;
use support::device::{slot, Device};
use support::power_cut::{copy_sparse, wait_for_after, Build, LoggedBoot, LoggedDisk};
use support::{micros, shown, text};

struct Lab {
    device: Device,
    logged: LoggedDisk,
    script: PathBuf,
}

impl Lab {
    /// Boots the device from its disk as it is, its writes logged.
    fn boot(&mut self) -> LoggedBoot {
        let (script, dir) = (&self.script, self.device.dir.path());
        self.logged.boot(|disk, log| {
            let mut command = Command::new(script);
            command
                .env("MICROS_DISK", disk)
                .env("MICROS_WRITE_LOG", log)
                .current_dir(dir);
            command
        })
    }

    fn cut(&mut self, boot: LoggedBoot) -> String {
        self.logged.cut(boot)
    }

    /// Boots after a cut and waits until the device answers and has
    /// settled (its booted slot is the good one); returns the boot and the
    /// version it runs.
    fn recover(&mut self, what: &str, earlier: &str) -> (LoggedBoot, String) {
        let mut boot = self.boot();
        let device = &self.device;
        let settled = boot.vm.poll(Duration::from_secs(400), || {
            let json = device.ssh("micros-update status --json")?;
            let status: serde_json::Value = serde_json::from_str(&json).ok()?;
            let booted = status["slots"]
                .as_array()?
                .iter()
                .find(|s| s["booted"] == true)?
                .clone();
            (booted["state"] == "good")
                .then(|| booted["version"].as_str().unwrap_or("?").to_owned())
        });
        let Some(version) = settled else {
            panic!(
                "{what}: the device did not come back settled\nbefore the cut:\n{}\nafter:\n{}",
                shown(earlier),
                shown(&boot.vm.console())
            );
        };
        assert_eq!(
            self.device.ssh("cat /root/data-file").as_deref(),
            Some("kept\n"),
            "{what}: the data partition survives"
        );
        (boot, version)
    }
}

/// How a cut is reached once the update of `from` to the other version
/// has begun.
enum Cut {
    /// `micros-update install` over ssh, after this share of the bundle.
    Streamed(f64),
    /// `micros deploy`, this long after it starts sending.
    Sending(Duration),
    /// `micros deploy`, when the device's console shows this after the
    /// reboot; the deploy waits for the device to come back and reports.
    Deploying(&'static str),
    /// A whole install, a reboot, and the console showing this.
    Console(&'static str),
    /// As `Console`, then again at this during the boot after the cut.
    Twice(&'static str, &'static str),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    Old,
    New,
    Either,
}

#[test]
fn needs_network_and_qemu_power_cuts_anywhere_in_an_update_leave_a_whole_slot_and_the_data() {
    let (device, _) = Device::new();
    device.write_config("v1.ncl", "1", "{}");
    device.write_config("v2.ncl", "2", "{}");
    let output = micros(&["build", "-A", "disk", "v1.ncl"], device.dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut builds = BTreeMap::new();
    let mut bundles = BTreeMap::new();
    for version in ["1", "2"] {
        let out = format!("v{version}-update");
        let bundle = device.build_bundle(&format!("v{version}.ncl"), &out);
        builds.insert(version.to_owned(), Build::read(&device.path(&out)));
        bundles.insert(version.to_owned(), bundle);
    }

    // run-vm, with the disk behind blklogwrites.
    let run_vm = std::fs::read_to_string(device.path("result/run-vm")).unwrap();
    let drive = r#"-drive file="$disk",format=raw,if=none,id=disk"#;
    assert!(
        run_vm.contains(drive),
        "run-vm attaches the disk as expected:\n{run_vm}"
    );
    let result = device.path("result");
    let script = run_vm
        .replace(
            drive,
            r#"-blockdev driver=file,filename="$disk",node-name=disk0 -blockdev driver=file,filename="$MICROS_WRITE_LOG",node-name=log0 -blockdev driver=blklogwrites,file=disk0,log=log0,log-super-update-interval=1,node-name=disk"#,
        )
        .replace(
            r#"dir=$(dirname "$(readlink -f "$0")")"#,
            &format!("dir='{}'", result.display()),
        );
    let script_path = device.path("run-vm-logged");
    std::fs::write(&script_path, script).unwrap();
    std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let disk = device.path("ab-disk.img");
    copy_sparse(&result.join("disk.img"), &disk);

    let logged = LoggedDisk::new(disk, device.dir.path(), builds);
    let mut lab = Lab {
        device,
        logged,
        script: script_path,
    };
    let mut boot = lab.boot();
    let device = &lab.device;
    let up = boot
        .vm
        .poll(Duration::from_secs(300), || device.ssh("true"));
    assert!(
        up.is_some(),
        "version 1 never answered SSH:\n{}",
        shown(&boot.vm.console())
    );
    device
        .ssh("echo kept > /root/data-file && sync")
        .expect("writes to the data partition");

    let cuts: Vec<(Cut, Expect)> = vec![
        (Cut::Streamed(0.0), Expect::Old),
        (Cut::Streamed(0.02), Expect::Old),
        (Cut::Streamed(0.1), Expect::Old),
        (Cut::Streamed(0.25), Expect::Old),
        (Cut::Streamed(0.45), Expect::Old),
        (Cut::Streamed(0.6), Expect::Old),
        (Cut::Streamed(0.8), Expect::Old),
        (Cut::Streamed(0.95), Expect::Old),
        (Cut::Streamed(1.0), Expect::Either),
        (Cut::Sending(Duration::from_secs(2)), Expect::Old),
        (Cut::Deploying("micros: trying slot"), Expect::Old),
        (Cut::Console("reboot: Restarting system"), Expect::New),
        (Cut::Console("micros: choosing a slot"), Expect::Either),
        (Cut::Console("micros: trying slot"), Expect::Old),
        (Cut::Console("Starting kernel"), Expect::Old),
        (Cut::Console("micros-init: watchdog armed"), Expect::Old),
        (Cut::Console("enter stage: /etc/runit/2"), Expect::Old),
        (
            Cut::Console("runs on trial: checking its health"),
            Expect::Old,
        ),
        (Cut::Console("passed its health check"), Expect::New),
        (
            Cut::Twice("micros: trying slot", "micros-update: rolled back to slot"),
            Expect::Old,
        ),
    ];
    let mut running = "1".to_owned();
    let mut kills = 0;
    let mut outcomes = Vec::new();
    for (cut, expect) in cuts {
        let target = if running == "1" { "2" } else { "1" };
        let bundle = &bundles[target];
        let console_before = boot.vm.console().len();
        let device = &lab.device;
        let what = match &cut {
            Cut::Streamed(share) => format!("installing, {:.0}% of the bundle sent", share * 100.0),
            Cut::Sending(after) => format!("micros deploy, {} s into sending", after.as_secs()),
            Cut::Deploying(marker) => format!("micros deploy, at \"{marker}\""),
            Cut::Console(marker) => format!("at \"{marker}\""),
            Cut::Twice(first, second) => format!("at \"{first}\", then at \"{second}\""),
        };
        let mut deploy: Option<Child> = None;
        let earlier = match &cut {
            Cut::Streamed(share) => {
                let mut ssh = device
                    .ssh_command("micros-update install --allow-downgrade")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut stdin = ssh.stdin.take().unwrap();
                let end = ((bundle.len() as f64 * share) as usize).max(16);
                stdin.write_all(&bundle[..end]).unwrap();
                stdin.flush().unwrap();
                if *share >= 1.0 {
                    drop(stdin);
                    // The install may or may not have armed the slot.
                    std::thread::sleep(Duration::from_millis(300));
                } else {
                    // Let the device take in what it was sent.
                    std::thread::sleep(Duration::from_millis(500));
                }
                let earlier = lab.cut(boot);
                let _ = ssh.kill();
                let _ = ssh.wait();
                earlier
            }
            Cut::Sending(after) => {
                let mut child = spawn_deploy(device, target, &running);
                let stderr = child.stderr.take().unwrap();
                let mut lines = BufReader::new(stderr).lines();
                let mut seen = String::new();
                for line in lines.by_ref() {
                    let line = line.unwrap();
                    seen += &line;
                    seen += "\n";
                    if line.starts_with("sending ") {
                        break;
                    }
                }
                assert!(seen.contains("sending "), "{what}: {seen}");
                std::thread::sleep(*after);
                let earlier = lab.cut(boot);
                let rest: Vec<String> = lines.map_while(Result::ok).collect();
                let status = child.wait().unwrap();
                let said = seen + &rest.join("\n");
                assert!(!status.success(), "{what}: deploy succeeded?\n{said}");
                assert!(said.contains("lost the connection to"), "{what}: {said}");
                earlier
            }
            Cut::Deploying(marker) => {
                let child = spawn_deploy(device, target, &running);
                wait_for_after(&mut boot.vm, marker, console_before, &what);
                deploy = Some(child);
                lab.cut(boot)
            }
            Cut::Console(marker) | Cut::Twice(marker, _) => {
                let output = device.install(bundle, true);
                assert!(output.status.success(), "{what}: {}", text(&output.stderr));
                let _ = device.ssh("sync; /usr/sbin/reboot");
                wait_for_after(&mut boot.vm, marker, console_before, &what);
                lab.cut(boot)
            }
        };
        kills += 1;
        if let Cut::Twice(_, second) = &cut {
            let mut again = lab.boot();
            wait_for_after(&mut again.vm, second, 0, &what);
            lab.cut(again);
            kills += 1;
        }
        let (recovered, version) = lab.recover(&what, &earlier);
        boot = recovered;
        if let Some(child) = deploy {
            let output = child.wait_with_output().unwrap();
            let said = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{what}: {said}");
            assert!(
                said.contains(&format!("version {target} failed"))
                    && said.contains(&format!("runs version {running}")),
                "{what}: {said}"
            );
        }
        let expected = match expect {
            Expect::Old => Some(running.as_str()),
            Expect::New => Some(target),
            Expect::Either => None,
        };
        if let Some(expected) = expected {
            assert_eq!(
                version, expected,
                "{what}: the device runs version {version}"
            );
        }
        assert!(
            version == running || version == target,
            "{what}: version {version}"
        );
        let status = lab.device.status();
        let booted = if slot(&status, "a")["booted"] == true {
            "a"
        } else {
            "b"
        };
        outcomes.push(format!(
            "{what}: came back on version {version} (slot {booted})"
        ));
        eprintln!("cut {}: {}", outcomes.len(), outcomes.last().unwrap());
        running = version;
    }
    lab.cut(boot);
    assert!(kills >= 20);
    lab.logged.report(kills);
}

fn spawn_deploy(device: &Device, target: &str, running: &str) -> Child {
    let config = format!("v{target}.ncl");
    let out = format!("v{target}-deploy");
    let downgrade: &[&str] = if target < running {
        &["--allow-downgrade"]
    } else {
        &[]
    };
    device
        .deploy_command(&config, &out, downgrade)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
