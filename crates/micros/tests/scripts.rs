//! What packages' maintainer scripts and sysusers.d files declare becomes
//! part of the image at build time (system users and groups, alternatives),
//! and what MicrOS does not do is said: against a signed test archive on
//! 127.0.0.1, with the real `micros` binary and `unsquashfs` to look inside.
use std::process::Command;

use micros_test_archive::{TestArchive, TestPackage};

mod support;
use support::{ok, text, ArchiveProject};

const MOSQUITTO_POSTINST: &str = r#"#!/bin/sh
set -e

setup_mosquitto_user() {
	if ! getent group mosquitto >/dev/null; then
		addgroup --quiet --system mosquitto
	fi

	if ! getent passwd mosquitto >/dev/null; then
		adduser --quiet --system --no-create-home --ingroup mosquitto --home /var/lib/mosquitto --shell /usr/sbin/nologin mosquitto
	fi
}

fix_permissions() {
	chown mosquitto /var/lib/mosquitto
	chown mosquitto /var/log/mosquitto/*.log
	if ! dpkg-statoverride --list /usr/sbin/mosquitto >/dev/null; then
		dpkg-statoverride --update --add root mosquitto 4750 /usr/sbin/mosquitto
	fi
}

case "$1" in
	configure)
		setup_mosquitto_user
		fix_permissions
	;;
esac
"#;

const MAWK_POSTINST: &str = r#"#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \
            --slave /usr/bin/nawk nawk /usr/bin/mawk
fi
"#;

fn project(extra: &str) -> ArchiveProject {
    let mut archive = TestArchive::new("testing");
    archive
        .add(TestPackage::new("libc6", "2.41-12"))
        .add(TestPackage::new("busybox-static", "1:1.37.0-6").file(
            "./usr/bin/busybox",
            &[1u8; 3_000],
            0o755,
        ))
        .add(
            TestPackage::new("runit", "2.2.0-3")
                .field("Depends", "libc6")
                .file("./usr/sbin/runit", &[2u8; 500], 0o755)
                .file("./usr/bin/runsvdir", &[3u8; 500], 0o755),
        )
        .add(
            TestPackage::new("linux-image-test", "6.12")
                .file("./boot/vmlinuz-6.12-test", &[4u8; 2_000], 0o644)
                .file("./usr/lib/modules/6.12-test/modules.builtin", b"", 0o644),
        )
        // Its scripts need adduser; MicrOS leaves adduser out.
        .add(
            TestPackage::new("mosquitto", "2.0.21-1")
                .field("Depends", "libc6, adduser")
                .file("./usr/sbin/mosquitto", &[5u8; 1_000], 0o755)
                .file("./var/lib/mosquitto/.placeholder", b"", 0o644)
                .script("postinst", MOSQUITTO_POSTINST),
        )
        .add(
            TestPackage::new("adduser", "3.152")
                .arch("all")
                .field("Depends", "passwd")
                .file("./usr/sbin/adduser", &[6u8; 50_000], 0o755),
        )
        .add(TestPackage::new("passwd", "1:4.17.4-2").file(
            "./usr/sbin/useradd",
            &[6u8; 50_000],
            0o755,
        ))
        .add(
            TestPackage::new("mawk", "1.3.4")
                .file("./usr/bin/mawk", &[7u8; 1_000], 0o755)
                .script("postinst", MAWK_POSTINST),
        )
        .add(
            TestPackage::new("thingd", "1.0")
                .file("./usr/sbin/thingd", &[8u8; 1_000], 0o755)
                .file("./usr/share/thingd/thingd.conf", b"port 790\n", 0o644)
                .file("./etc/thingd/available/default", b"site\n", 0o644)
                .file("./etc/thingd/enabled/.keep", b"", 0o644)
                .script(
                    "postinst",
                    "#!/bin/sh\nset -e\nucf --three-way /usr/share/thingd/thingd.conf /etc/thingd/thingd.conf\nln -s /etc/thingd/available/default /etc/thingd/enabled/default\nKEEPER=\"keeper\"\nadduser --system --home /var/lib/keeper --group ${KEEPER}\nfor DIR in /var/log/thingd /etc/thingd/available; do\n  chown -R thingd: \"$DIR\"\n  chmod 750 \"$DIR\"\ndone\n",
                )
                .file("./var/log/thingd/.placeholder", b"", 0o644)
                .file(
                    "./usr/lib/systemd/system/thingd.service",
                    b"[Service]\nExecStart=/usr/sbin/thingd --foreground\n[Install]\nAlias=thing.service\n",
                    0o644,
                )
                // Prepares thingd (as sshd-keygen.service does ssh.service).
                .file(
                    "./usr/lib/systemd/system/thingd-keys.service",
                    b"[Unit]\nBefore=thing.service\n[Service]\nType=oneshot\nExecStart=/usr/sbin/thingd --make-keys\n[Install]\nWantedBy=thingd.service\n",
                    0o644,
                )
                .file(
                    "./usr/lib/sysusers.d/thingd.conf",
                    b"# thingd's user\nu thingd 790 \"Thing daemon\" /var/lib/thingd\nm thingd mosquitto\n",
                    0o644,
                )
                .file(
                    "./usr/lib/tmpfiles.d/thingd.conf",
                    b"d /run/thingd 0750 thingd thingd -\nd /var/lib/thingd 0700 thingd - -\nf /run/ghost 0644 ghost - -\n",
                    0o644,
                ),
        );
    ArchiveProject::new(
        archive,
        &format!(
            r#"environment.packages = {{ mosquitto = true, mawk = true, thingd = true }},
    runit.services.mqtt = {{ command = "mosquitto -v", user = "mosquitto" }},
    runit.services.thing.fromUnit = "thingd.service",
    {extra}"#
        ),
    )
}

/// `unsquashfs -cat` of a file in the built root.
fn cat(project: &ArchiveProject, file: &str) -> String {
    let output = Command::new("unsquashfs")
        .args(["-cat"])
        .arg(project.path("result/root.squashfs"))
        .arg(file)
        .output()
        .expect("unsquashfs (package squashfs-tools)");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

fn line<'a>(database: &'a str, name: &str) -> &'a str {
    database
        .lines()
        .find(|line| line.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in:\n{database}"))
}

#[test]
fn package_users_alternatives_and_what_was_not_done() {
    let project = project("");
    let output = project.micros(&["build"]);
    ok(&output);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("note: mosquitto: 1 maintainer-script line MicrOS does not do, e.g. `chown mosquitto /var/log/mosquitto/*.log` (`micros why mosquitto` lists them)"),
        "{stderr}"
    );
    assert!(!stderr.contains("note: mawk"), "{stderr}");

    // The scripts' users and groups, and Debian's fixed ones.
    let passwd = cat(&project, "etc/passwd");
    let group = cat(&project, "etc/group");
    let mosquitto: Vec<&str> = line(&passwd, "mosquitto").split(':').collect();
    let uid: u32 = mosquitto[2].parse().unwrap();
    assert!((100..=999).contains(&uid), "{passwd}");
    let gid = line(&group, "mosquitto").split(':').nth(2).unwrap();
    assert_eq!(mosquitto[3], gid, "in its own group");
    assert_eq!(mosquitto[5..], ["/var/lib/mosquitto", "/usr/sbin/nologin"]);
    assert_eq!(line(&passwd, "thingd").split(':').nth(2), Some("790"));
    assert!(
        line(&group, "mosquitto").ends_with(":thingd"),
        "sysusers' `m` line: {group}"
    );
    assert_eq!(
        line(&passwd, "www-data"),
        "www-data:x:33:33::/var/www:/usr/sbin/nologin"
    );
    assert!(line(&passwd, "nobody").starts_with("nobody:x:65534:65534:"));
    // dpkg-statoverride's owner and mode, with the package's group.
    let listing = Command::new("unsquashfs")
        .args(["-lln"])
        .arg(project.path("result/root.squashfs"))
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    let mosquitto_binary = listing
        .lines()
        .find(|l| l.ends_with(" squashfs-root/usr/sbin/mosquitto"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        mosquitto_binary.starts_with(&format!("-rwsr-x--- 0/{gid} ")),
        "{mosquitto_binary}"
    );
    // tmpfiles.d: /var/lib/thingd is made in the image, /run/thingd by
    // stage 1 at every boot, owned by thingd's ids.
    let thingd_dir = listing
        .lines()
        .find(|l| l.ends_with(" squashfs-root/var/lib/thingd"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(thingd_dir.starts_with("drwx------ 790/0 "), "{thingd_dir}");
    let stage_one = cat(&project, "etc/runit/1");
    let thingd_gid = line(&group, "thingd").split(':').nth(2).unwrap();
    assert!(
        stage_one.contains(&format!(
            "{{ mkdir -p /run/thingd && chown 790:{thingd_gid} /run/thingd && chmod 0750 /run/thingd; }} || "
        )),
        "{stage_one}"
    );
    assert!(!stage_one.contains("ghost"), "{stage_one}");
    assert!(
        stderr.contains("note: thingd: 1 maintainer-script line MicrOS does not do, e.g. `tmpfiles.d: /run/ghost for ghost:root, a user or group the image does not have`"),
        "{stderr}"
    );
    // adduser --home makes the home, owned by the user; ${KEEPER} is the
    // constant the script gives it.
    let keeper: Vec<&str> = line(&passwd, "keeper").split(':').collect();
    let keeper_home = listing
        .lines()
        .find(|l| l.ends_with(" squashfs-root/var/lib/keeper"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        keeper_home.starts_with(&format!("drwxr-xr-x {}/{} ", keeper[2], keeper[3])),
        "{keeper_home}"
    );
    // What thingd's postinst puts in place with ucf and ln -s.
    assert_eq!(cat(&project, "etc/thingd/thingd.conf"), "port 790\n");
    assert!(
        listing.contains("/etc/thingd/enabled/default -> /etc/thingd/available/default"),
        "{listing}"
    );
    // chown and chmod, in a loop over known paths: each path the package
    // ships gets the owner and mode (`-R`: and what is in it).
    let owned = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" squashfs-root{path}")))
            .unwrap_or_else(|| panic!("no {path} in {listing}"))
            .to_owned()
    };
    let thingd_ids = format!("790/{thingd_gid} ");
    assert!(
        owned("/var/log/thingd").starts_with(&format!("drwxr-x--- {thingd_ids}")),
        "{}",
        owned("/var/log/thingd")
    );
    assert!(
        owned("/etc/thingd/available").starts_with(&format!("drwxr-x--- {thingd_ids}")),
        "{}",
        owned("/etc/thingd/available")
    );
    assert!(
        owned("/etc/thingd/available/default").starts_with(&format!("-rw-r--r-- {thingd_ids}")),
        "recursive: {}",
        owned("/etc/thingd/available/default")
    );
    assert!(
        owned("/etc/thingd/enabled").starts_with("drwxr-xr-x 0/0 "),
        "{}",
        owned("/etc/thingd/enabled")
    );
    assert!(
        owned("/var/lib/mosquitto").starts_with(&format!("drwxr-xr-x {uid}/0 ")),
        "{}",
        owned("/var/lib/mosquitto")
    );
    // The unit that prepares thingd's runs first, as root.
    let run = cat(&project, "etc/sv/thing/run");
    let keys = run
        .find("/usr/sbin/thingd --make-keys || exit 1\n")
        .unwrap_or_else(|| panic!("{run}"));
    let main = run
        .find("exec /usr/sbin/thingd --foreground")
        .unwrap_or_else(|| panic!("{run}"));
    assert!(keys < main, "{run}");
    assert!(
        stderr.contains(
            "thingd-keys.service runs first, as root (it is Before= and WantedBy= thingd.service)"
        ),
        "{stderr}"
    );
    // The service runs as the package's user.
    let run = cat(&project, "etc/sv/mqtt/run");
    assert!(run.contains("chpst -u mosquitto:mosquitto"), "{run}");

    // awk is mawk, by its alternative; the man page's slave link is not made
    // (man pages are left out).
    assert!(
        listing.contains("/usr/bin/awk -> /usr/bin/mawk"),
        "{listing}"
    );
    assert!(
        listing.contains("/usr/bin/nawk -> /usr/bin/mawk"),
        "{listing}"
    );
    assert!(!listing.contains("awk.1.gz"), "{listing}");

    // adduser and passwd, for scripts only, are left out and the lock says why.
    assert!(!listing.contains("/usr/sbin/adduser"), "{listing}");
    let lock = std::fs::read_to_string(project.path("micros.lock")).unwrap();
    assert!(
        lock.contains("name = \"adduser\"\nreason = \"maintainer scripts only: MicrOS makes the system users and groups packages declare at build time\"\nrequired_by = [\"mosquitto\"]"),
        "{lock}"
    );

    let why = ok(&project.micros(&["why", "thingd"]));
    assert!(
        why.contains(
            "  tmpfiles.d: /run/ghost for ghost:root, a user or group the image does not have\n"
        ),
        "{why}"
    );
    let why = ok(&project.micros(&["why", "mosquitto"]));
    assert!(
        why.contains("its maintainer scripts ask for what MicrOS does at build time:\n  makes the system group mosquitto\n  makes the system user mosquitto\n  gives /var/lib/mosquitto to mosquitto\n  gives /usr/sbin/mosquitto to root:mosquitto, mode 4750\n"),
        "{why}"
    );
}

#[test]
fn the_configuration_chooses_alternatives_and_overrides_package_users() {
    let project = project(
        r#"environment.alternatives.awk = "/usr/bin/mawk",
    users.users.mosquitto = { uid = 1883, group = "users", home = "/srv/mqtt", isSystemUser = true },
    packages.scriptsHandled.mosquitto = "the test owns /var/lib/mosquitto","#,
    );
    let output = project.micros(&["build"]);
    ok(&output);
    assert!(
        !text(&output.stderr).contains("note: mosquitto"),
        "scriptsHandled: no note\n{}",
        text(&output.stderr)
    );
    let why = ok(&project.micros(&["why", "mosquitto"]));
    assert!(
        why.contains("chown mosquitto /var/log/mosquitto/*.log\nMicrOS does their work already (packages.scriptsHandled): the test owns /var/lib/mosquitto\n"),
        "{why}"
    );
    let passwd = cat(&project, "etc/passwd");
    assert_eq!(
        line(&passwd, "mosquitto"),
        "mosquitto:x:1883:100::/srv/mqtt:/bin/sh"
    );

    // An alternative no package offers is an error naming the option.
    project.write_config(
        r#"environment.packages = { mosquitto = true, mawk = true },
    environment.alternatives.awk = "/usr/bin/gawk","#,
    );
    let output = project.micros(&["build"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("environment.alternatives.awk: /usr/bin/gawk is not one of the alternatives the packages offer for `awk` (/usr/bin/mawk)"),
        "{}",
        text(&output.stderr)
    );
    // A package the configuration asks for itself is not left out.
    project.write_config(r#"environment.packages = { mosquitto = true, adduser = true },"#);
    ok(&project.micros(&["build"]));
    let lock = std::fs::read_to_string(project.path("micros.lock")).unwrap();
    assert!(lock.contains("name = \"adduser\"\nversion"), "{lock}");
}
