//! `micros why`, the size report and the size budget, against a signed test
//! archive on 127.0.0.1 whose packages are small enough to reason about.
use std::path::Path;

use micros_test_archive::TestPackage;

mod support;
use support::{ok, text, ArchiveProject};

/// runit and busybox as the minimal profile wants them, a kernel package
/// micros can build from, and htop with a library of its own.
fn project() -> ArchiveProject {
    let mut archive = support::base_archive();
    archive
        .add(
            TestPackage::new("htop", "3.4")
                .field("Depends", "libc6, libncursesw6")
                .file("./usr/bin/htop", &[5u8; 10_000], 0o755),
        )
        .add(
            TestPackage::new("libncursesw6", "6.5")
                .field("Depends", "libc6")
                .file(
                    "./usr/lib/x86_64-linux-gnu/libncursesw.so.6",
                    &[6u8; 60_000],
                    0o644,
                ),
        )
        .add(
            TestPackage::new("passwd", "1:4.17.4-2")
                .field("Depends", "libc6")
                .file("./usr/bin/passwd", &[8u8; 1_000], 0o4755)
                .file("./usr/bin/chage", &[9u8; 1_000], 0o2755),
        );
    ArchiveProject::new(archive, "environment.packages.htop = true")
}

#[test]
fn why_a_package_shows_the_chain_and_what_dropping_it_saves() {
    let project = project();
    let out = ok(&project.micros(&["why", "libncursesw6"]));
    assert!(
        out.starts_with(
            "libncursesw6 6.5 is in the image because\n  the configuration asks for htop (environment.packages.htop)\n  htop depends on libncursesw6\nneeded by: htop\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "excluding it (packages.exclude.libncursesw6 = \"why\") would drop libncursesw6: "
        ),
        "{out}"
    );
    assert!(out.contains("and leave htop without it"), "{out}");

    // htop takes its library with it, but not libc6 (runit needs that).
    let out = ok(&project.micros(&["why", "htop"]));
    assert!(
        out.contains("removing it from the configuration would drop htop and what only it needs (libncursesw6): "),
        "{out}"
    );
    let out = ok(&project.micros(&["why", "libc6"]));
    assert!(
        out.contains("needed by: htop, libncursesw6, runit\n"),
        "{out}"
    );

    // Excluded and unknown packages.
    let out = ok(&project.micros(&["why", "sysuser-helper"]));
    assert!(
        out.starts_with("sysuser-helper is not in the image: it is excluded (packages.exclude.sysuser-helper: runit: "),
        "{out}"
    );
    let output = project.micros(&["why", "libncurses6"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("libncurses6 is not in the image"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `libncursesw6`?"), "{stderr}");
}

#[test]
fn why_a_path_names_the_package_or_the_option() {
    let project = project();
    project
        .write_config(r#"environment.packages.htop = true, environment.etc."motd".text = "hello""#);
    let out = ok(&project.micros(&["why", "/usr/bin/htop"]));
    assert_eq!(out, "/usr/bin/htop (a file) comes from the package htop\n");
    // busybox's applet link, also through the merged-/usr link.
    let applet = "/usr/bin/sh (a symlink) comes from MicrOS (busybox (applet link))\n  it points to busybox, that is /usr/bin/busybox (a file), from the package busybox-static\n";
    let out = ok(&project.micros(&["why", "/usr/bin/sh"]));
    assert_eq!(out, applet);
    let out = ok(&project.micros(&["why", "/bin/busybox"]));
    assert_eq!(
        out,
        "/bin/busybox is /usr/bin/busybox through symbolic links\n/usr/bin/busybox (a file) comes from the package busybox-static\n"
    );
    let out = ok(&project.micros(&["why", "/etc/motd"]));
    assert_eq!(
        out,
        "/etc/motd (a file) comes from MicrOS (environment.etc)\n"
    );
    let out = ok(&project.micros(&["why", "/etc/passwd"]));
    assert_eq!(
        out,
        "/etc/passwd (a file) comes from MicrOS (users.users)\n"
    );
    let output = project.micros(&["why", "/usr/share/doc/htop/README"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(
            "/usr/share/doc/htop/README is not in the image: environment.excludePaths.\"/usr/share/doc/**\" leaves it out"
        ),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_build_reports_sizes_by_package_and_a_budget_stops_it() {
    let project = project();
    let out = ok(&project.micros(&["build"]));
    // The largest first, with its share: libncursesw6's 60 kB of about 150 kB.
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("root filesystem by package, before compression ("),
        "{out}"
    );
    assert!(lines[1].ends_with("libncursesw6"), "{out}");
    assert!(lines[1].contains("60.0 kB"), "{out}");
    assert!(lines[2].ends_with("libc6"), "{out}");
    assert!(lines[3].ends_with("busybox-static"), "{out}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.path("result/manifest.json")).unwrap())
            .unwrap();
    let report = manifest["rootBySource"].as_array().unwrap();
    assert_eq!(report[0]["source"], "libncursesw6");
    // The library, and the marker every test package carries.
    assert_eq!(report[0]["files"], 2);
    assert_eq!(
        report[0]["bytes"].as_u64().unwrap(),
        60_000 + "libncursesw6 6.5\n".len() as u64
    );
    let shares: f64 = report.iter().map(|s| s["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 0.001, "shares add up to 1: {shares}");
    let before = std::fs::read(project.path("result/root.squashfs")).unwrap();

    // A budget the root cannot meet: the build fails with the report and
    // the previous result stays.
    project
        .write_config(r#"environment.packages.htop = true, image.maxSize."root.squashfs" = "1K""#);
    let output = project.micros(&["build"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("root.squashfs is ")
            && stderr.contains("over its budget image.maxSize.\"root.squashfs\" = \"1K\""),
        "{stderr}"
    );
    assert!(stderr.contains("root filesystem by package"), "{stderr}");
    assert!(stderr.contains("libncursesw6"), "{stderr}");
    assert_eq!(
        std::fs::read(project.path("result/root.squashfs")).unwrap(),
        before
    );

    // A budget it meets.
    project.write_config(
        r#"environment.packages.htop = true, image.maxSize."root.squashfs" = "10M", image.maxSize.initrd = "10M""#,
    );
    ok(&project.micros(&["build"]));

    // A budget for an artifact that does not exist.
    project.write_config(r#"image.maxSize."root.img" = "1M""#);
    let output = project.micros(&["build"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("image.maxSize.\"root.img\": no such artifact"),
        "{}",
        text(&output.stderr)
    );
    assert!(Path::new(&project.path("result/manifest.json")).exists());
}

#[test]
fn the_build_lists_setuid_and_setgid_files_from_packages() {
    let project = project();
    let manifest = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(project.path("result/manifest.json")).unwrap())
            .unwrap()
    };
    // None in the base system: no section, an empty list.
    let out = ok(&project.micros(&["build"]));
    assert!(!out.contains("setuid"), "{out}");
    assert_eq!(manifest()["specialFiles"], serde_json::json!([]));

    project.write_config("environment.packages.passwd = true");
    let out = ok(&project.micros(&["build"]));
    assert!(
        out.contains(
            "setuid/setgid files (2):\n  /usr/bin/chage (setgid root, 2755, from passwd)\n  /usr/bin/passwd (setuid root, 4755, from passwd)\n"
        ),
        "{out}"
    );
    assert!(!out.contains("device nodes"), "{out}");
    assert_eq!(
        manifest()["specialFiles"],
        serde_json::json!([
            {"path": "/usr/bin/chage", "kind": "setgid", "mode": "2755", "owner": 0, "group": 0, "source": "passwd"},
            {"path": "/usr/bin/passwd", "kind": "setuid", "mode": "4755", "owner": 0, "group": 0, "source": "passwd"},
        ])
    );
}
