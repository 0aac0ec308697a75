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
        // The product reads trixie through a consistent alias by itself
        // when this mirror serves dists/trixie mid-update.
        let output = lock(dir.path(), cache.path(), "trixie", platform);
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
        // Named by codename and point release, whichever name was read.
        assert!(
            lock.contains("\nsuite = \"trixie\"\nrelease = \"13."),
            "{lock}"
        );
    }
}
