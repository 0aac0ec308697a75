use super::*;
use micros_config::model::{Log, LogTarget};

const MOSQUITTO: &str = "[Unit]
Description=Mosquitto MQTT Broker
Documentation=man:mosquitto.conf(5) man:mosquitto(8)
After=network.target
Wants=network.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
ExecStartPre=/bin/mkdir -m 740 -p /var/log/mosquitto
ExecStartPre=/bin/chown mosquitto /var/log/mosquitto
ExecStartPre=/bin/mkdir -m 740 -p /run/mosquitto
ExecStartPre=/bin/chown mosquitto /run/mosquitto

[Install]
WantedBy=multi-user.target
";

fn name(text: &str) -> ServiceName {
    ServiceName::parse(text).unwrap()
}

/// `runit.services.<name> = { fromUnit = unit }` and nothing else set.
fn from_unit(unit: &str) -> Service {
    Service {
        enable: true,
        from_unit: Some(unit.into()),
        command: None,
        user: None,
        group: None,
        environment: BTreeMap::new(),
        working_directory: None,
        after: vec![],
        ready: None,
        oneshot: None,
        log: Log {
            target: LogTarget::Console,
            max_size: 1_000_000,
            max_files: 5,
        },
    }
}

fn one(unit: &str, text: &str, service: Service) -> Result<(Unit, Vec<String>), UnitError> {
    let services = BTreeMap::from([(name("svc"), service)]);
    let (mut units, warnings) = resolve(&services, &[], |asked| {
        (asked == unit).then(|| text.to_owned())
    })?;
    Ok((units.remove("svc").unwrap(), warnings))
}

#[test]
fn debians_mosquitto_unit_becomes_a_supervised_service() {
    let (unit, warnings) = one(
        "mosquitto.service",
        MOSQUITTO,
        from_unit("mosquitto.service"),
    )
    .unwrap();
    assert_eq!(
        unit.command,
        "/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf"
    );
    assert_eq!(unit.user, "root");
    assert!(!unit.oneshot);
    assert!(unit.restart, "Restart=on-failure");
    let before: Vec<&str> = unit.before.iter().map(|b| b.command.as_str()).collect();
    assert_eq!(
        before,
        [
            "/bin/mkdir -m 740 -p /var/log/mosquitto",
            "/bin/chown mosquitto /var/log/mosquitto",
            "/bin/mkdir -m 740 -p /run/mosquitto",
            "/bin/chown mosquitto /run/mosquitto",
        ]
    );
    // Type=notify runs like simple; NotifyAccess and ExecReload mean
    // nothing under runit; network.target is not a service.
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn users_environment_directories_and_order_come_from_the_unit_and_the_configuration_wins() {
    let text = "[Unit]
After=network.target broker.service
Requires=broker.service other.service
[Service]
User=www-data
Group=adm
Environment=\"LANG=C.UTF-8\" MODE=fast
Environment=BAD-NAME=x
EnvironmentFile=-/etc/default/web
WorkingDirectory=/var/lib/web
RuntimeDirectory=web web/sockets
RuntimeDirectoryMode=0750
StateDirectory=web
Restart=no
ProtectSystem=strict
ExecStart=/usr/sbin/web --port ${PORT} $OPTIONS --name=%n --literal '$$HOME' \"two words\"
";
    let services = BTreeMap::from([
        (name("web"), {
            let mut s = from_unit("web.service");
            s.environment
                .insert(EnvName::parse("MODE").unwrap(), "slow".into());
            s
        }),
        (name("mqtt"), from_unit("broker.service")),
    ]);
    let (units, warnings) = resolve(&services, &[], |unit| match unit {
        "web.service" => Some(text.to_owned()),
        "broker.service" => Some("[Service]\nExecStart=/usr/sbin/broker\n".to_owned()),
        _ => None,
    })
    .unwrap();
    let web = &units["web"];
    assert_eq!(web.user, "www-data");
    assert_eq!(web.group.as_ref().unwrap(), "adm");
    assert_eq!(web.environment["LANG"], "C.UTF-8");
    assert_eq!(web.environment["MODE"], "slow", "the configuration wins");
    assert_eq!(
        web.environment_files,
        [("/etc/default/web".to_owned(), false)]
    );
    assert_eq!(web.working_directory, "/var/lib/web");
    assert_eq!(
        web.directories,
        [
            ("/run/web".to_owned(), 0o750),
            ("/run/web/sockets".to_owned(), 0o750),
            ("/var/lib/web".to_owned(), 0o755)
        ]
    );
    assert_eq!(web.after, [name("mqtt")]);
    assert!(!web.restart, "Restart=no");
    assert_eq!(
        web.command,
        "/usr/sbin/web --port \"${PORT}\" $OPTIONS --name=web.service --literal '$HOME' 'two words'"
    );
    assert_eq!(
        warnings,
        [
            "runit.services.web.fromUnit: web.service: Requires=other.service: not a unit another service runs (fromUnit); not waited for",
            "runit.services.web.fromUnit: web.service: Environment `BAD-NAME=x` is not NAME=value; left out",
            "runit.services.web.fromUnit: web.service: its sandboxing and limits are not applied under runit (ProtectSystem=)",
        ]
    );
}

#[test]
fn what_would_change_what_runs_is_an_error() {
    let error = |text: &str| {
        one("x.service", text, from_unit("x.service"))
            .unwrap_err()
            .to_string()
    };
    assert!(error("[Service]\nType=forking\nExecStart=/usr/sbin/d\n")
        .contains("Type=forking: the daemon puts itself in the background"));
    assert!(
        error("[Service]\nDynamicUser=yes\nExecStart=/usr/sbin/d\n").contains("DynamicUser=yes")
    );
    // A wrapper named like a known daemon is not that daemon.
    assert!(
        error("[Service]\nType=forking\nExecStart=/etc/init.d/dnsmasq systemd-exec\n")
            .contains("does not know its foreground flag")
    );
    assert!(error("[Service]\nExecStart=/usr/sbin/d %i\n").contains("the specifier %i"));
    assert!(error("[Service]\nRuntimeDirectory=../etc\nExecStart=/d\n")
        .contains("RuntimeDirectory=../etc is not a plain relative path"));
    assert!(error("[Service]\nUser=$(reboot)\nExecStart=/d\n").contains("is not a user name"));
    assert!(error("[Service]\nExecStart=/d 'unbalanced\n").contains("unbalanced quote"));
    assert!(error("[Service]\nExecStart=/a\nExecStart=/b\n").contains("several ExecStart="));
    assert!(error("[Unit]\nDescription=nothing\n").contains("it has no ExecStart="));
    // Forking is fine once the configuration names the foreground command.
    let mut own = from_unit("x.service");
    own.command = Some("/usr/sbin/d -f".into());
    let (unit, _) = one(
        "x.service",
        "[Service]\nType=forking\nExecStart=/usr/sbin/d\n",
        own,
    )
    .unwrap();
    assert_eq!(unit.command, "/usr/sbin/d -f");
    // Names the configuration gets wrong.
    let services = BTreeMap::from([(name("a"), from_unit("../etc/passwd"))]);
    assert!(resolve(&services, &[], |_| None)
        .unwrap_err()
        .to_string()
        .contains("is not a unit name"));
    let services = BTreeMap::from([(name("a"), from_unit("absent.service"))]);
    assert!(resolve(&services, &[], |_| None)
        .unwrap_err()
        .to_string()
        .contains("no package in the image ships absent.service"));
    let mut nothing = from_unit("x");
    nothing.from_unit = None;
    let services = BTreeMap::from([(name("a"), nothing)]);
    assert_eq!(
        resolve(&services, &[], |_| None).unwrap_err().to_string(),
        "runit.services.a: set `command`, or `fromUnit` to a package's systemd unit"
    );
}

#[test]
fn a_hostile_unit_reaches_the_run_script_as_single_words() {
    let text = "[Service]
Type=oneshot
ExecStartPre=-/bin/echo \"it's\" '$(touch pwned)' `touch pwned`
ExecStart=/bin/printf '<%%s>' \"a b\" \"it's\" '$(touch pwned)' ${VALUE} ;touch\\ pwned
Environment=\"VALUE=x $(touch pwned) y\"
WorkingDirectory=/tmp
";
    let (unit, _) = one("evil.service", text, from_unit("evil.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The run script's own lines, as runit would run them, minus sv and
    // the working directory.
    let mut script = String::new();
    for (key, value) in &unit.environment {
        script.push_str(&format!("export {key}={}\n", quote(value)));
    }
    for before in &unit.before {
        script.push_str(&format!("{} || true\n", before.command));
    }
    script.push_str(&unit.command);
    let output = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{script}\n{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "it's $(touch pwned) `touch pwned`\n<a b><it's><$(touch pwned)><x $(touch pwned) y><;touch pwned>"
    );
    assert!(!dir.path().join("pwned").exists(), "nothing ran");
}

#[test]
fn a_forking_daemon_whose_foreground_flag_is_known_runs_in_the_foreground() {
    let nginx = "[Service]
Type=forking
PIDFile=/run/nginx.pid
ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'
ExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'
ExecReload=/usr/sbin/nginx -g 'daemon on; master_process on;' -s reload
ExecStop=-/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/nginx.pid
TimeoutStopSec=5
KillMode=mixed
";
    let (unit, warnings) = one("nginx.service", nginx, from_unit("nginx.service")).unwrap();
    assert_eq!(
        unit.command,
        "/usr/sbin/nginx -g 'daemon off; master_process on;'"
    );
    assert_eq!(
        unit.before[0].command, "/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'",
        "the configuration test is left as it is"
    );
    assert_eq!(
        warnings,
        [
            "runit.services.svc.fromUnit: nginx.service: [Service] ExecStop= is not applied under runit",
            "runit.services.svc.fromUnit: nginx.service: Type=forking: run in the foreground (nginx -g 'daemon off;')",
        ]
    );
    let chrony = "[Service]\nType=forking\nEnvironmentFile=-/etc/default/chrony\nUser=_chrony\nExecStart=!/usr/sbin/chronyd $DAEMON_OPTS\nRuntimeDirectory=chrony\n";
    let (unit, _) = one("chrony.service", chrony, from_unit("chrony.service")).unwrap();
    assert_eq!(unit.command, "/usr/sbin/chronyd -n $DAEMON_OPTS");
    // `!`: chronyd starts as root and drops to _chrony itself, who owns
    // its directories.
    assert!(unit.main_as_root);
    assert_eq!(unit.user, "_chrony");
}

#[test]
fn a_oneshot_that_prepares_the_unit_runs_first_as_root() {
    let ssh = "[Unit]
Description=OpenBSD Secure Shell server

[Service]
ExecStartPre=/usr/sbin/sshd -t
ExecStart=/usr/sbin/sshd -D
Type=notify
RuntimeDirectory=sshd

[Install]
WantedBy=multi-user.target
Alias=sshd.service
";
    let keygen = "[Unit]
Description=Generate sshd host keys on first boot
ConditionFirstBoot=yes
Before=ssh.service sshd.service sshd@.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=ssh-keygen -A

[Install]
WantedBy=ssh.service sshd.service sshd@.service ssh.socket
";
    // Ordered before, but not wanted by it: not run.
    let unrelated = "[Unit]\nBefore=ssh.service\n[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n";
    // Wanted and ordered, but as another user: not run, and said.
    let as_user = "[Unit]\nBefore=sshd.service\n[Service]\nType=oneshot\nUser=nobody\nExecStart=/bin/true\n[Install]\nWantedBy=sshd.service\n";
    let services = BTreeMap::from([(name("ssh"), from_unit("ssh.service"))]);
    let names: Vec<String> = [
        "as-user.service",
        "ssh.service",
        "sshd-keygen.service",
        "unrelated.service",
    ]
    .map(String::from)
    .to_vec();
    let (units, warnings) = resolve(&services, &names, |asked| match asked {
        "ssh.service" => Some(ssh.to_owned()),
        "sshd-keygen.service" => Some(keygen.to_owned()),
        "unrelated.service" => Some(unrelated.to_owned()),
        "as-user.service" => Some(as_user.to_owned()),
        _ => None,
    })
    .unwrap();
    let unit = &units["ssh"];
    assert_eq!(
        unit.before,
        [
            Before {
                command: "ssh-keygen -A".into(),
                as_root: true,
                may_fail: false
            },
            Before {
                command: "/usr/sbin/sshd -t".into(),
                as_root: false,
                may_fail: false
            },
        ]
    );
    assert!(
        warnings.iter().any(|w| w.contains(
            "sshd-keygen.service runs first, as root (it is Before= and WantedBy= ssh.service)"
        )),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("as-user.service is not run first: it sets a user")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("unrelated")),
        "{warnings:?}"
    );
}

#[test]
fn dnsmasqs_wrapper_keeps_it_in_the_foreground() {
    let text = "[Service]
Type=forking
PIDFile=/run/dnsmasq/dnsmasq.pid
ExecStartPre=/usr/share/dnsmasq/systemd-helper checkconfig
ExecStart=/usr/share/dnsmasq/systemd-helper exec
";
    let (unit, warnings) = one("dnsmasq.service", text, from_unit("dnsmasq.service")).unwrap();
    assert_eq!(unit.command, "/usr/share/dnsmasq/systemd-helper exec");
    assert_eq!(
        unit.environment.get("DNSMASQ_OPTS").map(String::as_str),
        Some("--keep-in-foreground")
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Type=forking: run in the foreground")),
        "{warnings:?}"
    );
    // Another wrapper of the kind is still an error.
    let other = text.replace("dnsmasq/systemd-helper exec", "other/helper exec");
    assert!(one("dnsmasq.service", &other, from_unit("dnsmasq.service")).is_err());
}

#[test]
fn a_dbus_service_waits_for_the_bus_and_needs_one() {
    let text = "[Service]
Type=dbus
BusName=org.freedesktop.Avahi
ExecStart=/usr/sbin/avahi-daemon -s
";
    let error = one(
        "avahi-daemon.service",
        text,
        from_unit("avahi-daemon.service"),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("set services.dbus.enable = true"), "{error}");
    let mut bus = from_unit("x");
    bus.from_unit = None;
    bus.command = Some("dbus-daemon --system --nofork".into());
    let services = BTreeMap::from([
        (name("avahi"), from_unit("avahi-daemon.service")),
        (name("dbus"), bus),
    ]);
    let (units, _) = resolve(&services, &[], |asked| {
        (asked == "avahi-daemon.service").then(|| text.to_owned())
    })
    .unwrap();
    assert_eq!(units["avahi"].after, [name("dbus")]);
}
