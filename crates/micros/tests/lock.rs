//! `micros lock` against a signed test archive on 127.0.0.1.
use std::path::Path;
use std::process::{Command, Output};

use micros_test_archive::{TestArchive, TestPackage};

struct Project {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    archive: TestArchive,
    url: String,
}

impl Project {
    fn new() -> Project {
        let mut archive = TestArchive::new("testing");
        archive
            .add(TestPackage::new("libc6", "2.41-12"))
            .add(TestPackage::new("busybox-static", "1:1.37.0-6"))
            .add(
                TestPackage::new("runit", "2.2.0-3")
                    .field("Depends", "libc6, runit-helper, sysuser-helper"),
            )
            .add(TestPackage::new("runit-helper", "2.16.4").arch("all"))
            .add(
                TestPackage::new("sysuser-helper", "1.6.0")
                    .arch("all")
                    .field("Depends", "perl-base"),
            )
            .add(TestPackage::new("perl-base", "5.40").file(
                "./usr/bin/perl",
                &[1u8; 50_000],
                0o755,
            ))
            .add(
                TestPackage::new("linux-image-test", "6.12")
                    .field("Depends", "initramfs-tools | linux-initramfs-tool, kmod"),
            )
            .add(
                TestPackage::new("initramfs-tools", "0.148")
                    .arch("all")
                    .field("Depends", "perl-base"),
            )
            .add(TestPackage::new("kmod", "34"))
            .add(TestPackage::new("htop", "3.4"));
        archive.publish();
        let url = archive.serve();
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
            archive,
            url,
        };
        project.write_config("");
        project
    }

    fn write_config(&self, extra: &str) {
        let keyring = self.archive.keyring();
        std::fs::write(
            self.dir.path().join("system.ncl"),
            format!(
                r#"let micros = import "micros" in
micros.system {{ modules = [
  micros.profiles.minimal,
  {{
    packages.source = {{ suite = "testing", mirror = "{}", keyring = "{}" }},
    boot.kernel.package = "linux-image-test",
  }},
  {{ {extra} }},
] }}
"#,
                self.url,
                keyring.display()
            ),
        )
        .unwrap();
    }

    fn micros(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_micros"))
            .args(args)
            .current_dir(self.dir.path())
            .env("MICROS_CACHE_DIR", self.cache.path())
            .env_remove("MICROS_MIRROR")
            .output()
            .expect("run micros")
    }

    fn lock_text(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("micros.lock")).ok()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn lock_writes_a_lock_with_the_modules_exclusions_and_reports_savings() {
    let project = Project::new();
    let stdout = ok(&project.micros(&["lock"]));
    assert!(
        stdout.contains("locked 4 packages for amd64 from testing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("excluded sysuser-helper (needed by runit): runit:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("excluded initramfs-tools (needed by linux-image-test): kernel:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the exclusions saved 5 packages"),
        "{stdout}"
    );
    let lock = project.lock_text().expect("micros.lock");
    for name in ["busybox-static", "libc6", "linux-image-test", "runit"] {
        assert!(
            lock.contains(&format!("name = \"{name}\"\nversion")),
            "{name} missing:\n{lock}"
        );
    }
    assert!(!lock.contains("perl-base\"\nversion"), "{lock}");
    assert!(!lock.contains(&project.url), "the lock names no mirror");

    // Identical inputs, identical bytes; the second run changes nothing.
    let stdout = ok(&project.micros(&["lock"]));
    assert!(stdout.starts_with("up to date:"), "{stdout}");
    std::fs::remove_file(project.dir.path().join("micros.lock")).unwrap();
    ok(&project.micros(&["lock"]));
    assert_eq!(project.lock_text().unwrap(), lock);
}

#[test]
fn locked_refuses_to_change_the_lock_and_offline_needs_no_network() {
    let project = Project::new();
    ok(&project.micros(&["lock"]));
    let before = project.lock_text().unwrap();

    ok(&project.micros(&["lock", "--offline"]));
    project.write_config("environment.packages.htop = true");
    let output = project.micros(&["lock", "--locked"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("micros.lock is out of date: the config asks for `htop`, which it lacks"),
        "{stderr}"
    );
    assert_eq!(
        project.lock_text().unwrap(),
        before,
        "--locked leaves the lock alone"
    );

    let output = project.micros(&["lock", "--offline"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--offline forbids reading the archive"),
        "{}",
        text(&output.stderr)
    );

    ok(&project.micros(&["lock"]));
    let after = project.lock_text().unwrap();
    assert!(after.contains("name = \"htop\""));
}

#[test]
fn a_bad_signature_writes_nothing() {
    let project = Project::new();
    let inrelease = project.archive.root().join("dists/testing/InRelease");
    let tampered = std::fs::read_to_string(&inrelease)
        .unwrap()
        .replace("Codename: testing", "Codename: evil");
    std::fs::write(&inrelease, tampered).unwrap();
    let output = project.micros(&["lock"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("bad signature"),
        "{}",
        text(&output.stderr)
    );
    assert!(project.lock_text().is_none());
}

#[test]
fn no_mirror_says_how_to_set_one() {
    let project = Project::new();
    std::fs::write(
        project.dir.path().join("system.ncl"),
        "let micros = import \"micros\" in micros.system { modules = [ { packages.source.suite = \"testing\" } ] }",
    )
    .unwrap();
    // The host's apt sources may name a mirror; this checks the message
    // only when they do not.
    if !Path::new("/etc/apt/sources.list.d").exists()
        && !Path::new("/etc/apt/sources.list").exists()
    {
        let output = project.micros(&["lock"]);
        assert!(text(&output.stderr).contains("MICROS_MIRROR"));
    }
    let output = project.micros(&["lock", "--mirror", "http://127.0.0.1:9/"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("cannot fetch http://127.0.0.1:9/dists/testing/InRelease"),
        "{}",
        text(&output.stderr)
    );
}
