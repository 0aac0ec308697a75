//! `micros lock` against a signed test archive on 127.0.0.1.
use std::path::Path;

use micros_test_archive::{TestArchive, TestPackage};

mod support;
use support::{ok, text, ArchiveProject};

fn project() -> ArchiveProject {
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
        .add(TestPackage::new("perl-base", "5.40").file("./usr/bin/perl", &[1u8; 50_000], 0o755))
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
    ArchiveProject::new(archive, "")
}

fn lock_text(project: &ArchiveProject) -> Option<String> {
    std::fs::read_to_string(project.path("micros.lock")).ok()
}

#[test]
fn lock_writes_a_lock_with_the_modules_exclusions_and_reports_savings() {
    let project = project();
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
    let lock = lock_text(&project).expect("micros.lock");
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
    assert_eq!(lock_text(&project).unwrap(), lock);
}

#[test]
fn locked_refuses_to_change_the_lock_and_offline_needs_no_network() {
    let project = project();
    ok(&project.micros(&["lock"]));
    let before = lock_text(&project).unwrap();

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
        lock_text(&project).unwrap(),
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
    let after = lock_text(&project).unwrap();
    assert!(after.contains("name = \"htop\""));
}

#[test]
fn a_bad_signature_writes_nothing() {
    let project = project();
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
    assert!(lock_text(&project).is_none());
}

#[test]
fn no_mirror_says_how_to_set_one() {
    let project = project();
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

#[test]
fn each_configuration_file_has_its_own_lock() {
    let project = project();
    // Two configurations in one directory: system.ncl keeps micros.lock,
    // another file NAME.ncl gets NAME.lock, and neither disturbs the other.
    let system = std::fs::read_to_string(project.path("system.ncl")).unwrap();
    std::fs::write(
        project.path("htop.ncl"),
        system.replace("{  }", "{ environment.packages.htop = true }"),
    )
    .unwrap();
    ok(&project.micros(&["lock"]));
    let stdout = ok(&project.micros(&["lock", "htop.ncl"]));
    assert!(stdout.contains("wrote htop.lock"), "{stdout}");
    let htop = std::fs::read_to_string(project.path("htop.lock")).unwrap();
    assert!(htop.contains("name = \"htop\""), "{htop}");
    let system_lock = lock_text(&project).unwrap();
    assert!(!system_lock.contains("name = \"htop\""), "{system_lock}");
    // Both stay up to date: building one does not rewrite the other's.
    assert!(ok(&project.micros(&["lock", "--locked"])).starts_with("up to date:"));
    assert!(ok(&project.micros(&["lock", "--locked", "htop.ncl"])).starts_with("up to date:"));
}

#[test]
fn a_suite_caught_mid_update_is_locked_through_its_alias_and_said_in_one_line() {
    let mut archive = TestArchive::new("trixie");
    archive.aliases = vec!["stable".to_owned()];
    archive.point_release = Some("13.7".to_owned());
    archive
        .add(TestPackage::new("libc6", "2.41-12"))
        .add(TestPackage::new("busybox-static", "1:1.37.0-6"))
        .add(TestPackage::new("runit", "2.2.0-3").field("Depends", "libc6"))
        .add(TestPackage::new("linux-image-test", "6.12"));
    let project = ArchiveProject::new(archive, "");
    let config = std::fs::read_to_string(project.path("system.ncl")).unwrap();
    std::fs::write(
        project.path("system.ncl"),
        config.replace("suite = \"testing\"", "suite = \"trixie\""),
    )
    .unwrap();
    project.archive.set_fault(
        "dists/trixie/main/binary-amd64/Packages.xz",
        Some(micros_test_archive::Fault::Corrupt),
    );
    let output = project.micros(&["lock"]);
    let stdout = ok(&output);
    let notes: Vec<String> = text(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("note:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        notes,
        ["note: dists/trixie is in the middle of an update on this mirror: read trixie 13.7 through dists/stable, which is consistent"]
    );
    assert!(
        stdout.contains("locked 4 packages for amd64 from trixie 13.7"),
        "{stdout}"
    );
    let lock = lock_text(&project).unwrap();
    assert!(
        lock.contains("suite = \"trixie\"\nrelease = \"13.7\"\n"),
        "{lock}"
    );
    // With the lock in place, a build reads no index at all.
    let before = project.archive.requests().len();
    ok(&project.micros(&["lock", "--locked"]));
    assert_eq!(project.archive.requests().len(), before);
}

#[test]
fn a_package_the_mirror_dropped_is_fetched_from_the_configured_snapshot() {
    let project = project();
    ok(&project.micros(&["lock"]));
    let pool = project.archive.deb_path("busybox-static");
    let deb = std::fs::read(project.archive.root().join(&pool)).unwrap();
    std::fs::remove_file(project.archive.root().join(&pool)).unwrap();

    // No snapshot archive configured: the error names the package and
    // how to configure one.
    let output = project.micros(&["fetch"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("busybox-static 1:1.37.0-6"), "{stderr}");
    assert!(stderr.contains("packages.source.snapshot"), "{stderr}");

    // The test Release's date is Sat, 01 Jan 2028 00:00:00 UTC.
    let copy = project
        .archive
        .root()
        .join("snapshot/20280101T000000Z")
        .join(&pool);
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, &deb).unwrap();
    project.write_config(&format!(
        "packages.source.snapshot = \"{}/snapshot\"",
        project.url
    ));
    let output = project.micros(&["fetch", "--locked"]);
    let stdout = ok(&output);
    assert!(stdout.contains("4 packages"), "{stdout}");
    assert!(
        text(&output.stderr).contains("note: the mirror no longer has busybox-static 1:1.37.0-6: fetched from the snapshot archive at 20280101T000000Z"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_hostile_lock_is_refused_before_it_touches_a_file() {
    let project = project();
    ok(&project.micros(&["lock"]));
    let lock = lock_text(&project).unwrap();
    // What a malicious repository could commit: a "hash" that walks out
    // of the cache to a file of the user's. (Before the fix, the cache
    // took it as an entry name and deleted that "damaged entry".)
    let victim = project.dir.path().join("precious.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let walk = format!(
        "{}{}",
        "../".repeat(30),
        victim.display().to_string().trim_start_matches('/')
    );
    let first_hash = lock
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    std::fs::write(
        project.path("micros.lock"),
        lock.replacen(&first_hash, &walk, 1),
    )
    .unwrap();
    for args in [&["build", "--offline"][..], &["fetch"][..], &["lock"][..]] {
        let output = project.micros(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("is not a valid lock file"), "{stderr}");
        assert!(stderr.contains("is not a SHA-256 digest"), "{stderr}");
        assert!(stderr.contains("line "), "names the line: {stderr}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    }
    // A pool path that climbs out of the mirror is refused the same way.
    std::fs::write(
        project.path("micros.lock"),
        lock.replacen("filename = \"pool/", "filename = \"pool/../../", 1),
    )
    .unwrap();
    let stderr = text(&project.micros(&["fetch"]).stderr);
    assert!(
        stderr.contains("is not a path below the archive's pool/"),
        "{stderr}"
    );
}

/// `micros lock` keeps what is locked when the archive moves on;
/// `micros lock --update` solves afresh, and says when the suite's name now
/// means another release (`stable` moving from trixie to forky).
#[test]
fn update_solves_afresh_and_says_when_the_suite_moved_on() {
    let mut archive = TestArchive::new("stable");
    archive.codename = "trixie".to_owned();
    archive.point_release = Some("13.7".to_owned());
    archive.date = "Sat, 01 Jan 2028 00:00:00 UTC".to_owned();
    archive
        .add(TestPackage::new("libc6", "2.41-12"))
        .add(TestPackage::new("busybox-static", "1:1.37.0-6"))
        .add(TestPackage::new("runit", "2.2.0-3").field("Depends", "libc6"))
        .add(TestPackage::new("linux-image-test", "6.12"));
    let mut project = ArchiveProject::new(archive, "");
    let config = std::fs::read_to_string(project.path("system.ncl")).unwrap();
    std::fs::write(
        project.path("system.ncl"),
        config.replace("suite = \"testing\"", "suite = \"stable\""),
    )
    .unwrap();
    ok(&project.micros(&["lock"]));
    let before = lock_text(&project).unwrap();
    assert!(
        before.contains("suite = \"trixie\"\nrelease = \"13.7\"\nalias = \"stable\"\n"),
        "{before}"
    );
    assert!(
        before.contains("name = \"libc6\"\nversion = \"2.41-12\""),
        "{before}"
    );

    // A year on, `stable` is forky, with a newer libc6.
    project.archive.codename = "forky".to_owned();
    project.archive.point_release = Some("14.0".to_owned());
    project.archive.date = "Mon, 01 Jan 2029 00:00:00 UTC".to_owned();
    project.archive.add(TestPackage::new("libc6", "2.42-1"));
    project.archive.publish();

    let stdout = ok(&project.micros(&["lock"]));
    assert!(stdout.starts_with("up to date:"), "{stdout}");
    assert_eq!(
        lock_text(&project).unwrap(),
        before,
        "without --update the lock stays"
    );

    let output = project.micros(&["lock", "--update"]);
    let stdout = ok(&output);
    assert!(
        stdout.contains("locked 4 packages for amd64 from forky 14.0"),
        "{stdout}"
    );
    let said = format!("{stdout}{}", text(&output.stderr));
    assert!(
        said.contains("stable is now forky 14.0: the lock moves on from trixie 13.7"),
        "{said}"
    );
    let after = lock_text(&project).unwrap();
    assert!(
        after.contains("suite = \"forky\"\nrelease = \"14.0\"\nalias = \"stable\"\n"),
        "{after}"
    );
    assert!(
        after.contains("name = \"libc6\"\nversion = \"2.42-1\""),
        "{after}"
    );
}
