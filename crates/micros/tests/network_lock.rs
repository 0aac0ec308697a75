//! Needs the network: locks real configurations against Debian's archive
//! (the mirror comes from MICROS_MIRROR or the host's apt sources).
use std::process::{Command, Output};

fn lock(dir: &std::path::Path, cache: &std::path::Path, suite: &str, platform: &str) -> Output {
    std::fs::write(
        dir.join("system.ncl"),
        format!(
            r#"let micros = import "micros" in
micros.system {{ modules = [
  micros.profiles.minimal,
  {{
    platform.host = "{platform}",
    packages.source.suite = "{suite}",
    environment.packages = micros.lib.set ["busybox-static", "runit", "dropbear-bin"],
  }},
] }}
"#
        ),
    )
    .unwrap();
    let _ = std::fs::remove_file(dir.join("micros.lock"));
    Command::new(env!("CARGO_BIN_EXE_micros"))
        .args(["lock"])
        .current_dir(dir)
        .env("MICROS_CACHE_DIR", cache)
        .output()
        .expect("run micros")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn needs_network_lock_runit_busybox_dropbear_on_trixie_for_amd64_and_armhf() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    for platform in ["x86_64-linux", "armv7l-linux"] {
        let mut output = lock(dir.path(), cache.path(), "trixie", platform);
        let stderr = text(&output.stderr);
        if stderr.contains("the mirror may be in the middle of an update") {
            // Seen on this project's mirror: `dists/trixie` was mid-update
            // (its binary-all index did not match the signed InRelease).
            // `stable` is the same release while trixie is stable, so lock
            // that, after checking it is trixie.
            let inrelease = ureq_get_codename(&stderr);
            assert_eq!(
                inrelease.as_deref(),
                Some("trixie"),
                "dists/stable is no longer trixie; the mirror problem was:\n{stderr}"
            );
            eprintln!("note: dists/trixie is mid-update on this mirror; locking dists/stable (codename trixie)");
            output = lock(dir.path(), cache.path(), "stable", platform);
        }
        assert!(
            output.status.success(),
            "{platform}: cannot lock (this test needs Debian's archive):\n{}",
            text(&output.stderr)
        );
        let lock = std::fs::read_to_string(dir.path().join("micros.lock")).unwrap();
        let names: Vec<&str> = lock
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .map(|l| l.trim_end_matches('"'))
            .collect();
        for wanted in ["busybox-static", "runit", "dropbear-bin", "libc6"] {
            assert!(
                names.contains(&wanted),
                "{platform}: {wanted} missing from {names:?}"
            );
        }
        for unwanted in [
            "perl-base",
            "perl",
            "adduser",
            "passwd",
            "debconf",
            "libpam0g",
            "libsystemd0",
            "systemd",
            "udev",
        ] {
            assert!(
                !lock.contains(&format!("\n[[package]]\nname = \"{unwanted}\"\n")),
                "{platform}: {unwanted} is in the lock:\n{lock}"
            );
        }
        assert!(
            lock.contains("name = \"sysuser-helper\"\nreason = \"runit:"),
            "{platform}: the exclusion and its module are recorded"
        );
        let arch = if platform == "x86_64-linux" {
            "amd64"
        } else {
            "armhf"
        };
        assert!(
            lock.contains(&format!("architecture = \"{arch}\"\n")),
            "{lock}"
        );
    }
}

/// The codename of `dists/stable` on the mirror named in `message`.
fn ureq_get_codename(message: &str) -> Option<String> {
    let start = message.find("http")?;
    let url = &message[start..];
    let root = &url[..url.find("/dists/")?];
    let output = Command::new("curl")
        .args(["-sf", &format!("{root}/dists/stable/InRelease")])
        .output()
        .ok()?;
    text(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Codename: ").map(str::to_owned))
}
