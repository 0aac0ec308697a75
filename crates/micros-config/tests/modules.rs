//! The module system: priorities, defaults, modules that read other options.
mod common;

#[test]
fn declared_defaults_apply_when_nothing_is_defined() {
    let config = common::evaluate("{}").config;
    assert_eq!(config.networking.host_name, "micros");
    assert_eq!(config.packages.source.suite, "trixie");
    assert_eq!(config.boot.kernel.package, "linux-image-amd64");
    assert_eq!(config.services["sshd"]["enable"], false);
    // root exists and is locked.
    assert_eq!(config.users.users["root"].uid, 0);
    assert_eq!(config.users.users["root"].hashed_password, None);
}

#[test]
fn a_default_definition_overrides_the_declared_default() {
    // NixOS's mkDefault sits above an option's own default: a profile's
    // `| default` must not conflict with the declaration.
    let config = common::evaluate(r#"{ networking.hostName | default = "from-profile" }"#).config;
    assert_eq!(config.networking.host_name, "from-profile");
}

#[test]
fn plain_beats_default() {
    let config = common::evaluate(
        r#"{ networking.hostName | default = "from-profile" },
           { networking.hostName = "plain" }"#,
    )
    .config;
    assert_eq!(config.networking.host_name, "plain");
}

#[test]
fn priority_beats_plain_and_higher_priority_wins() {
    let config = common::evaluate(
        r#"{ services.sshd.port = 23 },
           { services.sshd.port | priority 10 = 2222 },
           { services.sshd.port | priority 5 = 2200 }"#,
    )
    .config;
    assert_eq!(config.services["sshd"]["port"], 2222);
}

#[test]
fn force_beats_everything() {
    let config = common::evaluate(
        r#"{ boot.root | force = "/dev/sda" },
           { boot.root | priority 1000 = "/dev/vdb" },
           { boot.root = "/dev/vdc" }"#,
    )
    .config;
    assert_eq!(config.boot.root, "/dev/sda");
}

#[test]
fn a_profile_default_yields_to_the_user() {
    let config = common::evaluate(
        r#"micros.profiles.qemu,
           { boot.kernel.package = "linux-image-amd64" }"#,
    )
    .config;
    assert_eq!(config.boot.kernel.package, "linux-image-amd64");
    // The rest of the profile stays.
    assert_eq!(config.boot.console, ["ttyS0,115200"]);
}

#[test]
fn enabling_sshd_adds_a_service_and_a_package() {
    // The sshd module reads the merged `services.sshd.enable`, set here by
    // another module.
    let config =
        common::evaluate(r#"{ services.sshd.enable = true, services.sshd.port = 2022 }"#).config;
    let command = config.runit.services["sshd"].command.clone().unwrap();
    assert!(command.contains("exec dropbear -F"));
    assert!(command.contains("-p 2022"), "{command}");
    // Keys only, root by key only; the host key is made at first start, in /run.
    assert!(command.ends_with(" -s -g'"), "{command}");
    assert!(
        command.contains("dropbearkey -t ed25519 -f /run/dropbear/"),
        "{command}"
    );
    assert!(config.environment.packages["dropbear-bin"]);

    // Over a data partition the key lives where it persists.
    let config = common::evaluate(
        r#"{ services.sshd.enable = true, boot.overlay = "data", boot.dataDevice = "/dev/vdb", services.sshd.permitRootLogin = "no" }"#,
    )
    .config;
    let command = config.runit.services["sshd"].command.clone().unwrap();
    assert!(
        command.contains("-r /var/lib/dropbear/dropbear_ed25519_host_key"),
        "{command}"
    );
    assert!(command.ends_with(" -s -w'"), "{command}");

    let config = common::evaluate("{}").config;
    assert!(!config.runit.services.contains_key("sshd"));
    assert!(!config.environment.packages.contains_key("dropbear-bin"));
}

#[test]
fn interfaces_become_services() {
    let config = common::evaluate(
        r#"{ networking.hostName = "box", networking.nameservers = ["192.0.2.53"] },
           { networking.interfaces.eth0.dhcp = true },
           { networking.interfaces.eth1.ipv4 = { address = "192.168.7.2/24", gateway = "192.168.7.1" } }"#,
    )
    .config;
    let dhcp = &config.runit.services["dhcp-eth0"];
    assert!(dhcp.enable);
    // It waits for its interface (a driver loaded for a USB adapter may
    // bring it after the services start), then runs udhcpc in its place.
    let command = dhcp.command.as_deref().unwrap();
    assert!(command.starts_with("sh -c '"), "{command}");
    assert!(
        command.contains("while [ ! -e /sys/class/net/eth0 ]"),
        "{command}"
    );
    assert!(
        command.ends_with(
            " && exec udhcpc -f -i eth0 -s /etc/micros/udhcpc -x hostname:box -t 3 -T 2 -A 5'"
        ),
        "{command}"
    );
    let hook = config.environment.etc["micros/udhcpc"]
        .text
        .as_deref()
        .unwrap();
    assert!(hook.contains("for server in 192.0.2.53 $dns; do"), "{hook}");
    let static_one = &config.runit.services["network-eth1"];
    assert_eq!(static_one.oneshot, Some(true));
    let command = static_one.command.clone().unwrap();
    assert!(
        command.contains(
            "ip addr add 192.168.7.2/24 dev eth1 && ip route add default via 192.168.7.1 dev eth1"
        ),
        "{command}"
    );
    assert!(!config.runit.services.contains_key("dhcp-eth1"));
}

#[test]
fn ntpd_syslog_and_getty() {
    let config = common::evaluate(
        r#"{ services.ntpd.enable = true, services.syslog = { enable = true, maxSize = 4096, maxFiles = 3 } },
           { services.getty.enable = true, boot.console = ["ttyAMA0,115200"], networking.timeServers = ["10.0.2.2"] }"#,
    )
    .config;
    assert!(config.environment.packages["openntpd"]);
    assert_eq!(
        config.environment.etc["openntpd/ntpd.conf"].text.as_deref(),
        Some("# Generated by MicrOS from networking.timeServers.\nservers 10.0.2.2\n")
    );
    assert_eq!(config.users.users["ntpd"].group, "ntpd");
    let syslog = &config.runit.services["syslog"];
    assert_eq!((syslog.log.max_size, syslog.log.max_files), (4096, 3));
    assert_eq!(config.runit.services["klogd"].after, ["syslog"]);
    assert_eq!(
        config.runit.services["getty"].command.as_deref(),
        Some("getty -L 115200 ttyAMA0 vt100")
    );
}

#[test]
fn function_modules_see_the_final_configuration() {
    let config = common::evaluate(
        r#"fun config => { networking.timeServers = ["ntp.%{config.networking.hostName}.lan"] },
           { networking.hostName = "box" }"#,
    )
    .config;
    assert_eq!(config.networking.time_servers, ["ntp.box.lan"]);
}

#[test]
fn record_modules_may_read_other_options_they_declare() {
    let config = common::evaluate(
        r#"{ networking.hostName | String, environment.etc."hostname-copy".text = networking.hostName },
           { networking.hostName = "box" }"#,
    )
    .config;
    assert_eq!(
        config.environment.etc["hostname-copy"].text.as_deref(),
        Some("box")
    );
}

#[test]
fn sets_merge_across_modules_and_entries_can_be_switched_off() {
    let config = common::evaluate(
        r#"micros.profiles.minimal,
           { environment.packages = micros.lib.set ["htop", "curl"] },
           { environment.packages.busybox-static | force = false }"#,
    )
    .config;
    let enabled = micros_config::model::enabled(&config.environment.packages);
    assert_eq!(enabled, ["curl", "htop", "runit"]);
}

#[test]
fn warnings_from_modules_are_reported() {
    let evaluation = common::evaluate(
        r#"fun config => { warnings = ["careful: %{config.networking.hostName}"] }"#,
    );
    assert_eq!(evaluation.warnings, ["careful: micros"]);
}

#[test]
fn a_raspberry_pi_gets_its_kernel_console_card_driver_and_firmware_component() {
    for (host, model, kernel) in [
        ("armv7l-linux", "rpi2", "linux-image-armmp"),
        ("aarch64-linux", "rpi3", "linux-image-arm64"),
        ("armv6l-linux", "rpi1", "linux-image-rpi"),
    ] {
        let config = common::evaluate(&format!(
            r#"{{ platform.host = "{host}", hardware.raspberryPi.{model} = true }}"#
        ))
        .config;
        assert_eq!(config.boot.kernel.package, kernel, "{host}");
        assert_eq!(config.boot.console, ["ttyAMA0,115200"]);
        assert!(config.boot.initrd.available_kernel_modules["bcm2835"]);
        assert!(config.boot.initrd.available_kernel_modules["mmc_block"]);
        assert_eq!(
            config.packages.source.components,
            ["main", "non-free-firmware"]
        );
    }
    // Plain definitions win; firmware from a directory needs no extra component.
    let config = common::evaluate(
        r#"{ platform.host = "armv7l-linux", hardware.raspberryPi = { rpi2 = true, firmware = "./firmware" } },
           { boot.kernel.package = "linux-image-rpi" }"#,
    )
    .config;
    assert_eq!(config.boot.kernel.package, "linux-image-rpi");
    assert_eq!(config.packages.source.components, ["main"]);
    // No Pi, no change.
    let config = common::evaluate("{}").config;
    assert_eq!(config.packages.source.components, ["main"]);
    assert!(!config
        .boot
        .initrd
        .available_kernel_modules
        .contains_key("bcm2835"));
}

#[test]
fn debians_fixed_users_and_groups_exist_and_a_configuration_changes_them() {
    let config = common::evaluate("{}").config;
    let users = &config.users;
    for (name, uid, group) in [
        ("daemon", 1, "daemon"),
        ("www-data", 33, "www-data"),
        ("nobody", 65534, "nogroup"),
    ] {
        assert_eq!(users.users[name].uid, uid, "{name}");
        assert_eq!(users.users[name].group, group, "{name}");
        assert_eq!(users.users[name].shell, "/usr/sbin/nologin", "{name}");
        assert_eq!(users.users[name].hashed_password, None, "{name} is locked");
    }
    for (name, gid) in [
        ("shadow", 42),
        ("www-data", 33),
        ("nogroup", 65534),
        ("users", 100),
    ] {
        assert_eq!(users.groups[name].gid, gid, "{name}");
    }
    // A configuration's own values win, field by field.
    let config = common::evaluate(
        r#"{ users.users.www-data.uid = 1033, users.users.nobody.shell = "/bin/false", users.groups.audio.gid = 63 }"#,
    )
    .config;
    assert_eq!(config.users.users["www-data"].uid, 1033);
    assert_eq!(config.users.users["www-data"].home, "/var/www");
    assert_eq!(config.users.users["nobody"].shell, "/bin/false");
    assert_eq!(config.users.groups["audio"].gid, 63);
}
