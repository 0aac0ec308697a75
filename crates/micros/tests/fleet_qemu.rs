//! Needs the network (Debian's archive) and QEMU: a device updates itself
//! from a static update repository (`micros publish`) served on the host,
//! which QEMU's user network shows the guest as 10.0.2.2. On one aarch64
//! device booted from its A/B disk: a release for 0 % of devices leaves it
//! alone; an index with a stranger's signature or a forged rollout, a
//! truncated bundle and a replayed older index are refused and change
//! nothing; then the release for everyone arrives through the scheduled
//! check, its download resumes after the server stops and starts again
//! mid-transfer, and the device reboots into it and confirms it.
use std::path::Path;
use std::time::{Duration, Instant};

use micros_update::fleet::Index;

mod support;
use support::device::{slot, Device};
use support::repo_server::RepoServer;
use support::{micros, shown, text, Vm};

/// Copies the published repository to where the server serves it: the
/// bundles first, then the index, as a careful upload would.
fn serve(repo: &Path, served: &Path, index: &[u8], bundle: impl Fn(&[u8]) -> Vec<u8>) {
    for entry in std::fs::read_dir(repo).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bundle") {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(served.join(path.file_name().unwrap()), bundle(&bytes)).unwrap();
        }
    }
    std::fs::write(served.join("index"), index).unwrap();
}

/// `micros-update check` on the device: its exit status and what it said.
fn check(device: &Device) -> (Option<i32>, String) {
    let output = device
        .ssh_command("micros-update check")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (output.status.code(), text(&output.stderr))
}

/// A check that refuses (exit 2) with `expected`, and changes no slot.
fn refused(device: &Device, what: &str, expected: &str) {
    let (code, stderr) = check(device);
    assert_eq!(code, Some(2), "{what}: {stderr}");
    assert!(stderr.contains(expected), "{what}: {stderr}");
    let status = device.status();
    assert_eq!(slot(&status, "a")["booted"], true, "{what}");
    assert_eq!(slot(&status, "a")["state"], "good", "{what}");
    assert_ne!(slot(&status, "b")["state"], "trying", "{what}");
    eprintln!("figure: refused {what}: {}", stderr.trim());
}

#[test]
fn needs_network_and_qemu_a_device_updates_itself_from_a_published_repository() {
    let (device, signing) = Device::new();
    let served = device.path("www/fleet");
    std::fs::create_dir_all(&served).unwrap();
    let server = RepoServer::start(device.path("www"));
    let fleet = format!(
        r#"{{ system.update = {{ url = "http://10.0.2.2:{}/fleet", interval = 5 }} }}"#,
        server.port
    );

    device.write_config("v1.ncl", "1", &fleet);
    let output = micros(&["build", "-A", "disk", "v1.ncl"], device.dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    device.write_config("v2.ncl", "2", &fleet);
    device.build_bundle("v2.ncl", "v2");

    let mut vm = Vm::start_in(device.dir.path(), &[]);
    let up = vm.poll(Duration::from_secs(300), || {
        device.ssh("micros-update status --json")
    });
    assert!(
        up.is_some(),
        "version 1 never answered SSH:\n{}",
        shown(&vm.console())
    );

    // Version 2 for 0 % of devices: published, served, and left alone.
    let publish = |args: &[&str]| {
        let mut all = vec!["publish", "--repo", "repo", "--key", "update.key"];
        all.extend_from_slice(args);
        let output = micros(&all, device.dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let listed = publish(&["--rollout", "0", "v2/update.bundle"]);
    assert!(
        listed.contains("aarch64-linux generic: version 2 to 0 % of devices"),
        "{listed}"
    );
    let nobody = std::fs::read(device.path("repo/index")).unwrap();
    serve(&device.path("repo"), &served, &nobody, |b| b.to_vec());
    let (code, stderr) = check(&device);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("version 2 goes to 0 % of devices so far, not yet to this one"),
        "{stderr}"
    );

    // Indexes the device must refuse, each leaving both slots as they were.
    let trusted = micros_update::bundle::public_key(&signing.to_bytes());
    let current = Index::verify(&nobody, &[trusted]).unwrap();
    let stranger = current.sign(&[42; 32]);
    let forged = String::from_utf8(nobody.clone())
        .unwrap()
        .replace(" 2 0 ", " 2 1 ");
    assert_ne!(forged.as_bytes(), &nobody[..]);
    for (what, index) in [
        ("an index signed by a stranger", stranger.as_bytes()),
        ("an index with a forged rollout", forged.as_bytes()),
    ] {
        std::fs::write(served.join("index"), index).unwrap();
        refused(&device, what, "is not signed by a key this device trusts");
    }

    // Version 2 for everyone, but the bundle on the server is cut short.
    let listed = publish(&["--rollout", "1"]);
    assert!(listed.contains("version 2 to 100 % of devices"), "{listed}");
    let everyone = std::fs::read(device.path("repo/index")).unwrap();
    serve(&device.path("repo"), &served, &everyone, |b| {
        b[..b.len() / 2].to_vec()
    });
    refused(
        &device,
        "a truncated bundle",
        "a truncated or replaced bundle",
    );

    // The older index again (the device has seen the newer one).
    std::fs::write(served.join("index"), &nobody).unwrap();
    refused(
        &device,
        "a replayed index",
        "older than one this device has seen",
    );

    // The whole bundle for everyone; the server stops 8 MB into it and
    // comes back. The scheduled check downloads, resumes, installs and
    // reboots; the new slot confirms itself.
    server.cut_next_bundle_after(8 << 20);
    let console_before = vm.console().len();
    let published = Instant::now();
    serve(&device.path("repo"), &served, &everyone, |b| b.to_vec());
    let confirmed = vm.poll(Duration::from_secs(600), || {
        let status = device.ssh("micros-update status --json")?;
        let status: serde_json::Value = serde_json::from_str(&status).ok()?;
        (slot(&status, "b")["booted"] == true && status["last"]["outcome"] == "confirmed")
            .then_some(status)
    });
    let console = vm.console()[console_before..].to_owned();
    let status = confirmed.unwrap_or_else(|| {
        panic!(
            "version 2 never confirmed; requests {:?}\n{}",
            server.log(),
            shown(&console)
        )
    });
    eprintln!(
        "figure: publish to confirmed update (scheduled check every 5 s, a 3 s server outage): {:.1} s",
        published.elapsed().as_secs_f64()
    );
    assert_eq!(slot(&status, "b")["version"], "2");
    assert_eq!(slot(&status, "b")["state"], "good");
    let log = server.log();
    let resumed = log
        .iter()
        .any(|l| l.contains(".bundle from ") && !l.ends_with(".bundle from 0"));
    assert!(resumed, "no Range request after the cut: {log:?}");
    assert!(
        console.contains("micros-update: downloading version 2")
            && console.contains("resuming at byte"),
        "{}",
        shown(&console)
    );
    let (code, stderr) = check(&device);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("up to date"), "{stderr}");
}
