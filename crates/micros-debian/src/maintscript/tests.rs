use super::*;

fn user(name: &str) -> Action {
    Action::AddUser {
        name: name.to_owned(),
        group: None,
        own_group: false,
        home: None,
        shell: None,
        uid: None,
        create_home: false,
    }
}

fn with(
    action: Action,
    group: Option<&str>,
    own: bool,
    home: Option<&str>,
    shell: Option<&str>,
) -> Action {
    let Action::AddUser { name, uid, .. } = action else {
        unreachable!()
    };
    Action::AddUser {
        name,
        group: group.map(str::to_owned),
        own_group: own,
        home: home.map(str::to_owned),
        shell: shell.map(str::to_owned),
        uid,
        create_home: false,
    }
}

/// `action` (an AddUser) with its home made, as adduser does.
fn homed(action: Action) -> Action {
    match action {
        Action::AddUser {
            name,
            group,
            own_group,
            home,
            shell,
            uid,
            ..
        } => Action::AddUser {
            name,
            group,
            own_group,
            home,
            shell,
            uid,
            create_home: true,
        },
        other => other,
    }
}

fn group(name: &str) -> Action {
    Action::AddGroup {
        name: name.to_owned(),
        gid: None,
    }
}

#[test]
fn mosquitto() {
    let script = "#!/bin/sh

set -e

setup_mosquitto_user() {
\tif ! getent group mosquitto >/dev/null; then
\t\taddgroup --quiet --system mosquitto
\tfi

\tif ! getent passwd mosquitto >/dev/null; then
\t\tadduser --quiet --system --no-create-home --ingroup mosquitto --home /var/lib/mosquitto --shell /usr/sbin/nologin mosquitto
\tfi
}

if [ \"$1\" = \"configure\" ]; then
\tsetup_mosquitto_user
\tchown mosquitto /var/lib/mosquitto
fi

# Automatically added by dh_installsystemd/13.11.4
if [ \"$1\" = \"configure\" ] || [ \"$1\" = \"abort-upgrade\" ] || [ \"$1\" = \"abort-deconfigure\" ] || [ \"$1\" = \"abort-remove\" ] ; then
\t# This will only remove masks created by d-s-h on package removal.
\tdeb-systemd-helper unmask 'mosquitto.service' >/dev/null || true

\t# was-enabled defaults to true, so new installations run enable.
\tif deb-systemd-helper --quiet was-enabled 'mosquitto.service'; then
\t\tdeb-systemd-helper enable 'mosquitto.service' >/dev/null || true
\telse
\t\tdeb-systemd-helper update-state 'mosquitto.service' >/dev/null || true
\tfi
fi
# End automatically added section
# Automatically added by dh_installinit/13.11.4
if [ \"$1\" = \"configure\" ] || [ \"$1\" = \"abort-upgrade\" ] || [ \"$1\" = \"abort-deconfigure\" ] || [ \"$1\" = \"abort-remove\" ] ; then
\tif [ -z \"${DPKG_ROOT:-}\" ] && [ -x \"/etc/init.d/mosquitto\" ]; then
\t\tupdate-rc.d mosquitto defaults >/dev/null
\t\tif [ -n \"$2\" ]; then
\t\t\t_dh_action=restart
\t\telse
\t\t\t_dh_action=start
\t\tfi
\t\tinvoke-rc.d --skip-systemd-native mosquitto $_dh_action || exit 1
\tfi
fi
# End automatically added section
";
    let parsed = parse(script);
    assert_eq!(
        parsed.actions,
        [
            group("mosquitto"),
            with(
                user("mosquitto"),
                Some("mosquitto"),
                false,
                Some("/var/lib/mosquitto"),
                Some("/usr/sbin/nologin")
            ),
            Action::Chown {
                path: "/var/lib/mosquitto".into(),
                user: Some("mosquitto".into()),
                group: None,
                login_group: false,
                recursive: false,
            },
        ]
    );
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn avahi() {
    let script = "#! /bin/sh
set -e

case \"$1\" in
    configure)
        if ! id avahi > /dev/null 2>&1; then
            adduser --disabled-password  --quiet --system \\
      --home /run/avahi-daemon --no-create-home \\
      --gecos \"Avahi mDNS daemon\" --group avahi
        fi
        addgroup --quiet --system netdev || true
        ;;
esac
";
    let parsed = parse(script);
    assert_eq!(
        parsed.actions,
        [
            with(user("avahi"), None, true, Some("/run/avahi-daemon"), None),
            group("netdev"),
        ]
    );
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn dnsmasq() {
    let script = "#!/bin/sh
set -e

if [ \"$1\" = \"configure\" ]; then
    if [ -z \"`id -u dnsmasq 2> /dev/null`\" ]; then
        useradd --system \\
 --gid nogroup \\
 --comment dnsmasq \\
 --home-dir /var/lib/misc --no-create-home \\
 --shell /usr/sbin/nologin \\
 dnsmasq
    fi
fi
";
    let parsed = parse(script);
    assert_eq!(
        parsed.actions,
        [with(
            user("dnsmasq"),
            Some("nogroup"),
            false,
            Some("/var/lib/misc"),
            Some("/usr/sbin/nologin")
        )]
    );
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn mawk() {
    let script = "#!/bin/sh
set -e

if [ \"$1\" = \"configure\" ] || [ \"$1\" = \"abort-upgrade\" ]; then
    update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\
 --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\
 --slave /usr/bin/nawk nawk /usr/bin/mawk
fi
";
    let parsed = parse(script);
    assert_eq!(
        parsed.actions,
        [Action::Alternative {
            link: "/usr/bin/awk".into(),
            name: "awk".into(),
            path: "/usr/bin/mawk".into(),
            priority: 5,
            slaves: vec![
                Slave {
                    link: "/usr/share/man/man1/awk.1.gz".into(),
                    name: "awk.1.gz".into(),
                    path: "/usr/share/man/man1/mawk.1.gz".into(),
                },
                Slave {
                    link: "/usr/bin/nawk".into(),
                    name: "nawk".into(),
                    path: "/usr/bin/mawk".into(),
                },
            ],
        }]
    );
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn debian_boilerplate_is_silent() {
    let script = "#!/bin/sh
# postinst script for foo
#
# see: dh_installdeb(1)

set -e

# summary of how this script can be called:
#        * <postinst> `configure' <most-recently-configured-version>
#        * <old-postinst> `abort-upgrade' <new version>

. /usr/share/debconf/confmodule

case \"$1\" in
    configure)
        db_get foo/enable || true
        adduser --system --group --home /var/lib/foo foo
    ;;

    abort-upgrade|abort-remove|abort-deconfigure)
    ;;

    *)
        echo \"postinst called with unknown argument \\`$1'\" >&2
        exit 1
    ;;
esac

if [ -d /run/systemd/system ]; then
\tsystemctl --system daemon-reload >/dev/null || true
fi
if which ldconfig >/dev/null 2>&1; then ldconfig; fi
dpkg-maintscript-helper rm_conffile /etc/foo.conf 1.0~ foo -- \"$@\"
if dpkg --compare-versions \"$2\" lt 1.2; then :; fi
DEBIAN_FRONTEND=noninteractive dpkg-trigger --no-await foo
if [ -x \"/etc/init.d/foo\" ]; then
\tchmod +x \"/etc/init.d/foo\" >/dev/null || true
fi

# dh_installdeb will replace this with shell code automatically
# generated by other debhelper scripts.

#DEBHELPER#

exit 0
";
    let parsed = parse(script);
    assert_eq!(
        parsed.actions,
        [homed(with(
            user("foo"),
            None,
            true,
            Some("/var/lib/foo"),
            None
        ))]
    );
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn commands_that_do_something_else_are_listed_once_per_line() {
    let script = "chown -R foo:foo $(ls) \\
    /var/lib/foo
touch /var/log/foo; chmod 750 /var/log/foo
adduser --system bar && lighty-enable-mod fastcgi
echo hello > /etc/motd
cat > /etc/foo.conf <<EOF
adduser --system fake
EOF
";
    let parsed = parse(script);
    let chmod = Action::Chmod {
        path: "/var/log/foo".into(),
        mode: 0o750,
        recursive: false,
    };
    assert_eq!(parsed.actions, [chmod, user("bar")]);
    assert_eq!(
        parsed.skipped,
        [
            "chown -R foo:foo $(ls) /var/lib/foo",
            "touch /var/log/foo; chmod 750 /var/log/foo",
            "adduser --system bar && lighty-enable-mod fastcgi",
            "echo hello > /etc/motd",
            "cat > /etc/foo.conf <<EOF",
        ]
    );
}

#[test]
fn groups_overrides_and_other_account_tools() {
    let script = "adduser --quiet foo dialout
addgroup foo video
usermod -aG audio,plugdev foo
groupadd -r -f --gid 120 netdev
useradd -r -U -u 120 -s /bin/false -d /nonexistent svc
if ! dpkg-statoverride --list /usr/bin/crontab > /dev/null; then
    dpkg-statoverride --update --add root crontab 2755 /usr/bin/crontab
fi
";
    let parsed = parse(script);
    let member = |user: &str, group: &str| Action::AddToGroup {
        user: user.into(),
        group: group.into(),
    };
    assert_eq!(
        parsed.actions,
        [
            member("foo", "dialout"),
            member("foo", "video"),
            member("foo", "audio"),
            member("foo", "plugdev"),
            Action::AddGroup {
                name: "netdev".into(),
                gid: Some(120)
            },
            Action::AddUser {
                name: "svc".into(),
                group: None,
                own_group: true,
                home: Some("/nonexistent".into()),
                shell: Some("/bin/false".into()),
                uid: Some(120),
                create_home: false,
            },
            Action::StatOverride {
                user: "root".into(),
                group: "crontab".into(),
                mode: 0o2755,
                path: "/usr/bin/crontab".into(),
            },
        ]
    );
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn forms_not_understood_are_skipped() {
    for line in [
        "adduser --system --home /var/../etc x",
        "adduser --system \"$(reboot)\"",
        "adduser --system $NAME",
        "adduser --system --frobnicate x",
        "adduser --system 0day",
        "adduser --system --group --ingroup staff x",
        "adduser plainuser",
        "addgroup notsystem",
        "useradd -m x",
        "adduser --system --home relative/home x",
        "adduser --system --uid 99999999999 x",
        "update-alternatives --set awk /usr/bin/mawk",
        "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk high",
        "update-alternatives --install /usr/bin/awk a/b /usr/bin/mawk 5",
        "dpkg-statoverride --add root root 0999 /x",
        "dpkg-statoverride --add root root 755 /x/../y",
        "dpkg-statoverride --remove /x",
        "usermod -G audio foo",
        ". /usr/share/foo/functions",
        "$CMD --system x",
    ] {
        let parsed = parse(line);
        assert_eq!(parsed.actions, [], "{line}");
        assert_eq!(parsed.skipped, [line], "{line}");
    }
}

#[test]
fn unbalanced_quotes_cost_one_line() {
    let parsed = parse("echo \"unterminated\nadduser --system ok\n");
    assert_eq!(parsed.actions, [user("ok")]);
    assert_eq!(parsed.skipped, ["echo \"unterminated"]);

    let parsed = parse("adduser --system 'oops\naddgroup --system g\n");
    assert_eq!(parsed.actions, [group("g")]);
    assert_eq!(parsed.skipped, ["adduser --system 'oops"]);

    // A string that does close on a later line is one statement.
    let parsed = parse("echo 'a\nb' >/dev/null\naddgroup --system h\n");
    assert_eq!(parsed.actions, [group("h")]);
    assert_eq!(parsed.skipped, Vec::<String>::new());
}

#[test]
fn a_huge_script_is_cut_and_says_so() {
    let mut script = String::from("addgroup --system first\n");
    while script.len() < 10 << 20 {
        script.push_str("touch /b\n");
    }
    script.push_str("addgroup --system last\n");
    let parsed = parse(&script);
    assert_eq!(parsed.actions, [group("first")]);
    assert_eq!(parsed.skipped.len(), MAX_SKIPPED + 2);
    assert!(parsed.skipped[MAX_SKIPPED].ends_with("more lines not understood)"));
    let note = parsed.skipped.last().unwrap();
    assert!(note.contains(&format!("{} bytes", script.len())), "{note}");
}

#[test]
fn hostile_text_never_panics() {
    let long_line = "x".repeat(5000);
    let shown = &parse(&long_line).skipped[0];
    assert!(shown.chars().count() <= MAX_SHOWN + 1);
    for script in [
        "\"".repeat(3 << 20),
        "$(".repeat(1 << 20),
        "`".to_owned() + &"\\".repeat(1 << 20),
        "case in\n".repeat(1000) + &")".repeat(1000),
        "'\n\"\n`\n$(\n${\n".repeat(100_000),
        "é".repeat(1 << 20),
        "a() {\n}\n;;\nesac\n)\n(\n|| && ; &".to_owned(),
        "\\".to_owned(),
        "<<".to_owned(),
        "x <<-".to_owned(),
        "adduser --system\\".to_owned(),
        "\0\u{feff}adduser --system \0".to_owned(),
    ] {
        let parsed = parse(&script);
        assert!(parsed.actions.is_empty());
    }
}

#[test]
fn links_and_files_put_in_place() {
    let parsed = parse(
        "ln -s /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
ln -sf ../mods-available/x.conf /etc/app/mods-enabled/x.conf
ucf --three-way /usr/share/chrony/chrony.conf /etc/chrony/chrony.conf
ucf --three-way --debconf-ok --sum-file /usr/share/openssh/sshd_config.md5sum \"$new_config\" /etc/ssh/sshd_config
cp /usr/share/nginx/html/index.html /var/www/html/index.nginx-debian.html
ln /etc/a /etc/b
ln -s /etc/a /etc/../b
cp -r /usr/share/x /etc/x
",
    );
    assert_eq!(
        parsed.actions,
        [
            Action::Symlink {
                target: "/etc/nginx/sites-available/default".into(),
                link: "/etc/nginx/sites-enabled/default".into()
            },
            Action::Symlink {
                target: "../mods-available/x.conf".into(),
                link: "/etc/app/mods-enabled/x.conf".into()
            },
            Action::CopyFile {
                source: "/usr/share/chrony/chrony.conf".into(),
                dest: "/etc/chrony/chrony.conf".into()
            },
            Action::CopyFile {
                source: "/usr/share/nginx/html/index.html".into(),
                dest: "/var/www/html/index.nginx-debian.html".into()
            },
        ]
    );
    // A run-time value, a hard link, `..` and options not known: said.
    assert_eq!(parsed.skipped.len(), 4, "{:?}", parsed.skipped);
}

#[test]
fn a_variable_given_one_constant_value_is_known() {
    // redis-tools' postinst.
    let parsed = parse(
        "#!/bin/sh
set -eu
USER=\"redis\"
GROUP=\"$USER\"
HOME=/var/lib/redis
if [ \"$1\" = \"configure\" ]; then
\tadduser --system --home \"${HOME}\" --quiet --group ${USER} || true
\tif ! dpkg-statoverride --list /etc/redis/redis.conf >/dev/null 2>&1; then
\t\tdpkg-statoverride --update --add $USER ${GROUP}x 640 /etc/redis/redis.conf
\tfi
fi
TWICE=a
TWICE=b
adduser --system $TWICE
adduser --system $(whoami)
",
    );
    assert_eq!(
        parsed.actions,
        [
            homed(with(
                user("redis"),
                None,
                true,
                Some("/var/lib/redis"),
                None
            )),
            // GROUP is USER's value.
            Action::StatOverride {
                user: "redis".into(),
                group: "redisx".into(),
                mode: 0o640,
                path: "/etc/redis/redis.conf".into(),
            },
        ]
    );
    // TWICE is unknown, `$(…)` never.
    assert_eq!(parsed.skipped.len(), 2, "{:?}", parsed.skipped);
    // A variable given a static value and one from another variable is
    // not known.
    let parsed = parse("A=x\nB=y\nB=$A\nadduser --system $B\n");
    assert!(parsed.actions.is_empty(), "{:?}", parsed.actions);
}

fn chown(
    path: &str,
    user: Option<&str>,
    group: Option<&str>,
    login: bool,
    recursive: bool,
) -> Action {
    Action::Chown {
        path: path.to_owned(),
        user: user.map(str::to_owned),
        group: group.map(str::to_owned),
        login_group: login,
        recursive,
    }
}

#[test]
fn owners_and_modes() {
    let parsed = parse(
        "chown -R redis:redis /var/lib/redis /var/log/redis
chown -h www-data: /var/cache/lighttpd
chown :adm /var/log/foo
chown --quiet bar.baz /srv
chmod 2750 /var/log/redis
chmod -R 0640 /etc/foo
chmod u+x /usr/bin/foo
chmod 750 ../etc
chown nobody /etc/../shadow
chown $(whoami) /x
chown foo '/var/log/foo/*.log'
",
    );
    assert_eq!(
        parsed.actions,
        [
            chown("/var/lib/redis", Some("redis"), Some("redis"), false, true),
            chown("/var/log/redis", Some("redis"), Some("redis"), false, true),
            chown("/var/cache/lighttpd", Some("www-data"), None, true, false),
            chown("/var/log/foo", None, Some("adm"), false, false),
            chown("/srv", Some("bar"), Some("baz"), false, false),
            Action::Chmod {
                path: "/var/log/redis".into(),
                mode: 0o2750,
                recursive: false
            },
            Action::Chmod {
                path: "/etc/foo".into(),
                mode: 0o640,
                recursive: true
            },
        ]
    );
    // Symbolic modes, paths that are not plain, run-time values, globs.
    assert_eq!(parsed.skipped.len(), 5, "{:?}", parsed.skipped);
}

#[test]
fn a_loop_over_known_words_is_read_once_per_word() {
    // redis-server's postinst.
    let parsed = parse(
        "#!/bin/sh
set -eu
USER=\"redis\"
if [ \"$1\" = \"configure\" ]; then
\tfor DIR in /var/lib/redis /var/log/redis /etc/redis
\tdo
\t\tif ! dpkg-statoverride --list ${DIR} >/dev/null 2>&1; then
\t\t\tchown \"${USER}\":\"${USER}\" \"${DIR}\"
\t\t\tchmod 750 \"$DIR\"
\t\tfi
\tdone
fi
for f in a b; do for g in 1 2; do chmod 700 /x/$f$g; done; done
for f in $(ls /etc); do chown root $f; done
for glob in /etc/*; do chmod 700 $glob; done
",
    );
    let mut expected = Vec::new();
    for dir in ["/var/lib/redis", "/var/log/redis", "/etc/redis"] {
        expected.push(chown(dir, Some("redis"), Some("redis"), false, false));
        expected.push(Action::Chmod {
            path: dir.into(),
            mode: 0o750,
            recursive: false,
        });
    }
    for path in ["/x/a1", "/x/a2", "/x/b1", "/x/b2"] {
        expected.push(Action::Chmod {
            path: path.into(),
            mode: 0o700,
            recursive: false,
        });
    }
    assert_eq!(parsed.actions, expected);
    // The loops over run-time words are read once, their variable unknown.
    assert_eq!(
        parsed.skipped,
        [
            "for f in $(ls /etc); do chown root $f; done",
            "for glob in /etc/*; do chmod 700 $glob; done"
        ]
    );
}

#[test]
fn nested_loops_cannot_blow_up() {
    // 10 nested loops of 10 words would be 10^10 commands.
    let mut script = String::new();
    for depth in 0..10 {
        script.push_str(&format!("for v{depth} in 0 1 2 3 4 5 6 7 8 9; do "));
    }
    script.push_str("chmod 700 /x/$v0$v1$v2$v3$v4$v5$v6$v7$v8$v9; ");
    for _ in 0..10 {
        script.push_str("done; ");
    }
    script.push_str("\nadduser --system last\n");
    let parsed = parse(&script);
    assert!(
        parsed.actions.len() <= MAX_UNROLLED,
        "{}",
        parsed.actions.len()
    );
    assert_eq!(parsed.actions.last(), Some(&user("last")));
    // A loop longer than the budget is read once.
    let long = format!(
        "for x in {}; do chmod 700 /x/$x; done\n",
        vec!["a"; MAX_UNROLLED].join(" ")
    );
    let parsed = parse(&long);
    assert!(parsed.actions.is_empty());
    assert_eq!(parsed.skipped.len(), 1);
}

#[test]
fn a_temporary_copy_put_in_place_is_its_source() {
    // openssh-server's postinst.
    let parsed = parse(
        "create_sshdconfig() {
\ttrap cleanup EXIT
\tnew_config=\"$(mktemp)\"
\tcp -aZ /usr/share/openssh/sshd_config \"$new_config\"
\tif [ \"$permit_root_login\" != true ]; then
\t\tsed -i 's/^#*PermitRootLogin .*/PermitRootLogin yes/' \\
\t\t\t\"$new_config\"
\tfi
\tucf --three-way --debconf-ok \\
\t\t--sum-file /usr/share/openssh/sshd_config.md5sum \\
\t\t\"$new_config\" /etc/ssh/sshd_config
}
other=$(mktemp)
cp /a \"$other\"
cp /b \"$other\"
ucf \"$other\" /etc/two-sources
",
    );
    let copy = |source: &str, dest: &str| Action::CopyFile {
        source: source.into(),
        dest: dest.into(),
    };
    assert_eq!(
        parsed.actions,
        [
            copy(
                "/usr/share/openssh/sshd_config",
                "/usr/share/openssh/sshd_config"
            ),
            copy("/usr/share/openssh/sshd_config", "/etc/ssh/sshd_config"),
        ]
    );
    // The edit to the copy is not done, and says so; a file filled twice
    // is not known.
    assert_eq!(
        parsed.skipped,
        [
            "trap cleanup EXIT",
            "sed -i 's/^#*PermitRootLogin .*/PermitRootLogin yes/' \"$new_config\"",
            "cp /a \"$other\"",
            "cp /b \"$other\"",
            "ucf \"$other\" /etc/two-sources",
        ]
    );
}

#[test]
fn a_function_called_with_known_arguments_is_read_at_each_call() {
    // redis-tools' postinst.
    let parsed = parse(
        "#!/bin/sh
set -eu
USER=\"redis\"
Setup_dir () {
\tDIR=\"${1}\"
\tMODE=\"${2}\"
\tGROUP=\"${3}\"

\tmkdir -p ${DIR}

\tif ! dpkg-statoverride --list ${DIR} >/dev/null 2>&1
\tthen
\t\tchown ${USER}:${GROUP} ${DIR}
\t\tchmod ${MODE} ${DIR}
\tfi
}
if [ \"$1\" = \"configure\" ]
then
\tadduser --system --home /var/lib/redis --quiet --group ${USER} || true
\tSetup_dir /var/log/redis 2750 adm
\tSetup_dir /var/lib/redis 750 ${USER}
fi
called_with_a_run_time_value() {
\tmkdir -p \"$1\"
}
called_with_a_run_time_value \"$(pwd)\"
",
    );
    let directory = |path: &str| Action::Directory {
        path: path.into(),
        mode: None,
    };
    let chmod = |path: &str, mode: u32| Action::Chmod {
        path: path.into(),
        mode,
        recursive: false,
    };
    assert_eq!(
        parsed.actions,
        [
            homed(with(
                user("redis"),
                None,
                true,
                Some("/var/lib/redis"),
                None
            )),
            directory("/var/log/redis"),
            chown("/var/log/redis", Some("redis"), Some("adm"), false, false),
            chmod("/var/log/redis", 0o2750),
            directory("/var/lib/redis"),
            chown("/var/lib/redis", Some("redis"), Some("redis"), false, false),
            chmod("/var/lib/redis", 0o750),
        ]
    );
    // The other function is read where it stands, its $1 unknown.
    assert_eq!(parsed.skipped, ["mkdir -p \"$1\""]);
}

#[test]
fn directories() {
    let parsed = parse("mkdir -p -m 0750 /var/lib/a /var/lib/b\nmkdir /etc/*.d\nmkdir -m u+x /c\n");
    assert_eq!(
        parsed.actions,
        [
            Action::Directory {
                path: "/var/lib/a".into(),
                mode: Some(0o750)
            },
            Action::Directory {
                path: "/var/lib/b".into(),
                mode: Some(0o750)
            },
        ]
    );
    assert_eq!(parsed.skipped.len(), 2);
}

#[test]
fn many_loops_functions_and_constants_are_read_in_one_pass_each() {
    // Shapes that would take quadratic work if each loop, call or
    // variable were looked for across the whole script: 20 000 unclosed
    // loops, 10 000 functions each called once, 10 000 constants.
    let mut script = String::new();
    for i in 0..10_000 {
        script.push_str(&format!(
            "V{i}=/v{i}\nf{i}() {{\n  chmod 700 \"$1\"\n}}\nf{i} $V{i}\n"
        ));
    }
    script.push_str(&"for x in a; do\n".repeat(20_000));
    let parsed = parse(&script);
    assert_eq!(parsed.actions.len(), 10_000);
    assert_eq!(
        parsed.actions[9_999],
        Action::Chmod {
            path: "/v9999".into(),
            mode: 0o700,
            recursive: false
        }
    );
}
