//! Needs the network (Debian's archive), QEMU and OpenSSH's client: power
//! cuts during updates. One device on QEMU's aarch64 `virt` machine (the
//! A/B disk, U-Boot) is updated back and forth between versions 1 and 2,
//! and QEMU is killed (SIGKILL) at 20 points spread over `micros deploy`,
//! the install, the switch, the first boot of the new slot and its
//! confirmation. After each cut it boots again and must come up on version
//! 1 or 2 (the one each cut allows), settled and with its data.
//!
//! Every boot runs with its disk behind QEMU's `blklogwrites` driver, which
//! logs each write the guest makes (U-Boot's included). Each boot's log is
//! replayed onto a copy of the disk as that boot found it, and after every
//! write, as a power cut could leave the disk, the slot chooser's decision
//! (`micros_update::state::choose`, which a unit test holds the boot script
//! to) must name a slot holding a whole system, byte for byte one of the
//! builds, and so must the good slot it falls back to.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use micros_update::slot::{Header, HEADER_SIZE};
use micros_update::state::{choose, BootState, Slot, SECTOR};

mod support;
use support::device::{slot, Device};
use support::{micros, run, shown, text, Vm};

/// The parts of one version's slot, as built.
struct Build {
    kernel: Vec<u8>,
    initrd: Vec<u8>,
    root: Vec<u8>,
}

impl Build {
    fn read(dir: &Path) -> Build {
        let kernel = if dir.join("kernel.gz").exists() {
            "kernel.gz"
        } else {
            "kernel"
        };
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        Build {
            kernel: read(kernel),
            initrd: read("initrd"),
            root: read("root.squashfs"),
        }
    }
}

/// Where the disk's partitions are, in bytes, from its GPT.
struct Partitions {
    state: usize,
    a: Range<usize>,
    b: Range<usize>,
}

impl Partitions {
    fn read(disk: &[u8]) -> Partitions {
        assert_eq!(&disk[512..520], b"EFI PART", "a GPT disk");
        let u64_at = |at: usize| u64::from_le_bytes(disk[at..at + 8].try_into().unwrap()) as usize;
        let entries = u64_at(512 + 72) * 512;
        let size = u32::from_le_bytes(disk[512 + 84..512 + 88].try_into().unwrap()) as usize;
        let range = |index: usize| {
            let entry = entries + index * size;
            u64_at(entry + 32) * 512..(u64_at(entry + 40) + 1) * 512
        };
        Partitions {
            state: range(1).start,
            a: range(2),
            b: range(3),
        }
    }

    fn slot(&self, slot: Slot) -> &Range<usize> {
        match slot {
            Slot::A => &self.a,
            Slot::B => &self.b,
        }
    }
}

/// The version a slot holds whole, or why it does not.
fn whole(
    disk: &[u8],
    range: &Range<usize>,
    builds: &BTreeMap<String, Build>,
) -> Result<String, String> {
    let bytes = &disk[range.clone()];
    let header =
        Header::parse(&bytes[bytes.len() - HEADER_SIZE as usize..]).map_err(|e| e.to_string())?;
    let version = header.version.to_string();
    let build = builds
        .get(&version)
        .ok_or_else(|| format!("its header names version {version}, which was never built"))?;
    let part = |at: u64, expected: &[u8]| {
        bytes.get(at as usize..at as usize + expected.len()) == Some(expected)
    };
    if !part(0, &build.root) {
        return Err(format!("its root is not version {version}'s"));
    }
    if header.kernel_size != (build.kernel.len() as u64).div_ceil(512) * 512
        || !part(header.kernel, &build.kernel)
    {
        return Err(format!("its kernel is not version {version}'s"));
    }
    if header.initrd_size != build.initrd.len() as u64 || !part(header.initrd, &build.initrd) {
        return Err(format!("its initrd is not version {version}'s"));
    }
    Ok(version)
}

/// What replaying one boot's writes found.
#[derive(Default)]
struct Replayed {
    writes: usize,
    flushes: usize,
    /// How many prefixes chose each (slot, version), and how many chose a
    /// slot on trial.
    chosen: BTreeMap<String, usize>,
}

/// Replays the `blklogwrites` log (dm-log-writes' format: a superblock,
/// then per entry a sector of sector, count, flags, then the data) onto
/// `base`, checking the chooser's decision after every write.
fn replay(base: &Path, log: &Path, builds: &BTreeMap<String, Build>, replayed: &mut Replayed) {
    const FLUSH: u64 = 1;
    const DISCARD: u64 = 4;
    const MARK: u64 = 8;
    let mut disk = std::fs::read(base).unwrap();
    let partitions = Partitions::read(&disk);
    let log = std::fs::read(log).unwrap();
    let field = |at: usize| u64::from_le_bytes(log[at..at + 8].try_into().unwrap());
    assert_eq!(field(0), 0x006a_7366_7773_6872, "a write log");
    let sector_size = u32::from_le_bytes(log[24..28].try_into().unwrap()) as usize;
    assert_eq!(sector_size, SECTOR);
    let entries = field(16) as usize;
    // Verdicts per slot, dropped when a write touches the slot.
    let mut verdicts: [Option<Result<String, String>>; 2] = [None, None];
    let mut at = sector_size;
    for index in 0..entries {
        if at + sector_size > log.len() {
            break; // the last entry was cut with the power
        }
        let (sector, count, flags) = (field(at) as usize, field(at + 8) as usize, field(at + 16));
        let data = at + sector_size..at + sector_size + count * sector_size;
        at = data.end;
        if flags & FLUSH != 0 {
            replayed.flushes += 1;
        }
        if flags & MARK != 0 || count == 0 {
            continue;
        }
        if data.end > log.len() {
            break;
        }
        let target = sector * sector_size..(sector + count) * sector_size;
        if flags & DISCARD != 0 {
            disk[target.clone()].fill(0);
        } else {
            disk[target.clone()].copy_from_slice(&log[data]);
        }
        replayed.writes += 1;
        for (slot, verdict) in [Slot::A, Slot::B].iter().zip(verdicts.iter_mut()) {
            let range = partitions.slot(*slot);
            if target.start < range.end && range.start < target.end {
                *verdict = None;
            }
        }
        // The chooser's decision on the disk as it is now, and the good
        // slot it returns to after a trial.
        let sector_bytes = &disk[partitions.state..partitions.state + SECTOR];
        let state = BootState::parse(sector_bytes);
        let choice = choose(state);
        let mut slots = vec![choice.boot];
        if let Ok(state) = state {
            if state.good != choice.boot {
                slots.push(state.good);
            }
        }
        for slot in slots {
            let verdict = verdicts[slot as usize]
                .get_or_insert_with(|| whole(&disk, partitions.slot(slot), builds));
            match verdict {
                Ok(version) if slot == choice.boot => {
                    let trial = if choice.write.is_some() { ", on trial" } else { "" };
                    *replayed
                        .chosen
                        .entry(format!("slot {slot} (version {version}{trial})"))
                        .or_default() += 1;
                }
                Ok(_) => {}
                Err(why) => panic!(
                    "after write {index} of {} (sector {sector}, {count} sectors), the boot state {:?} makes slot {slot} {}, but it is not whole: {why}",
                    log.len(),
                    String::from_utf8_lossy(sector_bytes).trim_end_matches('\0'),
                    if slot == choice.boot { "the one to boot" } else { "the fallback" },
                ),
            }
        }
    }
}

/// One boot of the device, its disk's writes logged.
struct Boot {
    vm: Vm,
    base: PathBuf,
    log: PathBuf,
}

struct Lab {
    device: Device,
    disk: PathBuf,
    script: PathBuf,
    builds: BTreeMap<String, Build>,
    boots: usize,
    replayed: Replayed,
}

impl Lab {
    /// Boots the device from its disk as it is, keeping a copy of the disk
    /// to replay this boot's writes onto.
    fn boot(&mut self) -> Boot {
        self.boots += 1;
        let base = self.device.path(&format!("base-{}.img", self.boots));
        let log = self.device.path(&format!("writes-{}.log", self.boots));
        copy_sparse(&self.disk, &base);
        std::fs::File::create(&log).unwrap();
        let mut command = Command::new(&self.script);
        command
            .env("MICROS_DISK", &self.disk)
            .env("MICROS_WRITE_LOG", &log)
            .current_dir(self.device.dir.path());
        Boot {
            vm: Vm::start_command(command),
            base,
            log,
        }
    }

    /// Cuts the power (SIGKILL), then replays what the boot wrote; returns
    /// what its console showed.
    fn cut(&mut self, mut boot: Boot) -> String {
        boot.vm.kill();
        std::thread::sleep(Duration::from_millis(200));
        let console = boot.vm.console();
        drop(boot.vm);
        replay(&boot.base, &boot.log, &self.builds, &mut self.replayed);
        let _ = std::fs::remove_file(&boot.base);
        let _ = std::fs::remove_file(&boot.log);
        console
    }

    /// Boots after a cut and waits until the device answers and has
    /// settled (its booted slot is the good one); returns the boot and the
    /// version it runs.
    fn recover(&mut self, what: &str, earlier: &str) -> (Boot, String) {
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

    let mut lab = Lab {
        device,
        disk,
        script: script_path,
        builds,
        boots: 0,
        replayed: Replayed::default(),
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
    let replayed = &lab.replayed;
    assert!(
        replayed.chosen.keys().any(|k| k.contains("on trial")),
        "some prefix chose a slot on trial: {:?}",
        replayed.chosen
    );
    eprintln!(
        "figure: {kills} power cuts, every one came back on a whole version with its data; {} boots",
        lab.boots
    );
    eprintln!(
        "figure: replayed {} writes ({} flushes) of {} boots; the chooser's decision after each: {:?}",
        replayed.writes, replayed.flushes, lab.boots, replayed.chosen
    );
}

/// A copy of a disk image that keeps its holes.
fn copy_sparse(from: &Path, to: &Path) {
    run(Command::new("cp").arg("--sparse=always").arg(from).arg(to));
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

/// Waits for `marker` on the console after byte `from`.
fn wait_for_after(vm: &mut Vm, marker: &str, from: usize, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(300) {
        if vm.console().get(from..).is_some_and(|c| c.contains(marker)) {
            return;
        }
        assert!(
            vm.exited().is_none(),
            "{what}: QEMU exited:\n{}",
            shown(&vm.console())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what}: \"{marker}\" never showed:\n{}",
        shown(&vm.console())
    );
}
