//! What the service modules render from their options: configuration
//! files, packages, runit services. (Each is booted in
//! crates/micros/tests/daemons_qemu.rs.)
mod common;

fn etc(config: &micros_config::Config, name: &str) -> String {
    config.environment.etc[name]
        .text
        .clone()
        .unwrap_or_else(|| panic!("/etc/{name} has no text"))
}

#[test]
fn the_firewall_allows_the_listed_ports_and_holds_the_interfaces_back() {
    let config = common::evaluate(
        r#"micros.profiles.qemu,
           { networking.firewall = { enable = true, allowedTCPPorts = [22, 80], allowedUDPPorts = [] } }"#,
    )
    .config;
    let rules = etc(&config, "nftables.conf");
    assert!(rules.contains("policy drop;"), "{rules}");
    assert!(
        rules.contains("    tcp dport { 22, 80 } accept\n"),
        "{rules}"
    );
    assert!(!rules.contains("udp dport"), "no empty set: {rules}");
    assert!(rules.contains("icmp type echo-request accept"), "{rules}");
    assert!(config.environment.packages["nftables"]);
    assert!(config.boot.kernel_modules["nf_tables"]);
    assert_eq!(config.runit.services["firewall"].oneshot, Some(true));
    assert_eq!(
        config.runit.services["dhcp-eth0"].after,
        ["firewall"],
        "no interface is up before the rules are loaded"
    );

    let config = common::evaluate(
        r#"micros.profiles.qemu,
           { networking.firewall = { enable = true, allowedUDPPorts = [53], allowPing = false } }"#,
    )
    .config;
    let rules = etc(&config, "nftables.conf");
    assert!(rules.contains("    udp dport { 53 } accept\n"), "{rules}");
    assert!(!rules.contains("tcp dport"), "{rules}");
    assert!(!rules.contains("echo-request"), "{rules}");

    let config = common::evaluate("micros.profiles.qemu").config;
    assert!(!config.runit.services.contains_key("firewall"));
    assert!(config.runit.services["dhcp-eth0"].after.is_empty());
    assert!(!config.environment.packages.contains_key("nftables"));
}

#[test]
fn a_firewall_port_is_checked_where_it_is_written() {
    let message = common::error(r#"{ networking.firewall.allowedTCPPorts = [80, 70000] }"#);
    assert!(
        message.contains("networking.firewall.allowedTCPPorts"),
        "{message}"
    );
    assert!(message.contains("between 1 and 65535"), "{message}");
}

#[test]
fn mosquitto_listeners_and_users_become_its_configuration() {
    let config = common::evaluate(
        r#"{ services.mosquitto = {
               enable = true,
               listeners = [{ port = 1883 }, { port = 8883, address = "127.0.0.1" }],
               users.sensor.password = "plain",
               users.viewer.hashedPassword = "$7$101$salt$hash",
             } }"#,
    )
    .config;
    let conf = etc(&config, "mosquitto/mosquitto.conf");
    for line in [
        "user mosquitto",
        "allow_anonymous false",
        "password_file /run/mosquitto/passwd",
        "listener 1883",
        "listener 8883 127.0.0.1",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line:?} in:\n{conf}");
    }
    assert_eq!(etc(&config, "mosquitto/passwd.plain"), "sensor:plain\n");
    assert_eq!(
        config.environment.etc["mosquitto/passwd.plain"].mode,
        "0600"
    );
    assert_eq!(
        etc(&config, "mosquitto/passwd.hashed"),
        "viewer:$7$101$salt$hash\n"
    );
    assert!(config.environment.packages["mosquitto"]);

    // Without users, anonymous clients are let in and there is no password file.
    let config = common::evaluate(r#"{ services.mosquitto.enable = true }"#).config;
    let conf = etc(&config, "mosquitto/mosquitto.conf");
    assert!(conf.contains("allow_anonymous true\n"), "{conf}");
    assert!(!conf.contains("password_file"), "{conf}");
}

#[test]
fn a_mosquitto_user_needs_exactly_one_password() {
    let message = common::error(
        r#"{ services.mosquitto = { enable = true, users.sensor = { password = "a", hashedPassword = "b" } } }"#,
    );
    assert!(
        message.contains(
            "services.mosquitto.users.sensor: set one of `password` and `hashedPassword`"
        ),
        "{message}"
    );
    let message = common::error(
        r#"{ services.mosquitto = { enable = true, users.sensor.password = "a\nviewer:b" } }"#,
    );
    assert!(
        message.contains("services.mosquitto.users.sensor.password"),
        "{message}"
    );
    let message =
        common::error(r#"{ services.mosquitto = { enable = true, users."a:b".password = "a" } }"#);
    assert!(message.contains("no `:`"), "{message}");
}

#[test]
fn dnsmasq_serves_only_the_named_interfaces() {
    let config = common::evaluate(
        r#"{
             networking.hostName = "gadget",
             networking.interfaces.usb0.ipv4.address = "192.168.7.1/24",
             networking.nameservers = ["9.9.9.9"],
             services.dnsmasq = {
               enable = true,
               interfaces = ["usb0"],
               dhcp.range = { start = "192.168.7.50", end = "192.168.7.99" },
               hosts."printer.lan" = "192.168.7.9",
             },
           }"#,
    )
    .config;
    let conf = etc(&config, "dnsmasq.conf");
    for line in [
        "no-resolv",
        "bind-dynamic",
        "interface=usb0",
        "server=9.9.9.9",
        "interface-name=gadget,usb0",
        "host-record=printer.lan,192.168.7.9",
        "dhcp-range=192.168.7.50,192.168.7.99,1h",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line:?} in:\n{conf}");
    }
    assert_eq!(config.runit.services["dnsmasq"].after, ["network-usb0"]);
    assert!(config.environment.packages["dnsmasq-base"]);

    // DNS only.
    let config =
        common::evaluate(r#"{ services.dnsmasq = { enable = true, interfaces = ["usb0"] } }"#)
            .config;
    assert!(!etc(&config, "dnsmasq.conf").contains("dhcp-range"));

    let message = common::error(r#"{ services.dnsmasq.enable = true }"#);
    assert!(
        message.contains("services.dnsmasq.interfaces: name the interfaces it serves"),
        "{message}"
    );
    let message = common::error(
        r#"{ services.dnsmasq = { enable = true, interfaces = ["usb0"], dhcp.leaseTime = "1 hour" } }"#,
    );
    assert!(
        message.contains("services.dnsmasq.dhcp.leaseTime"),
        "{message}"
    );
}

#[test]
fn avahi_brings_the_system_bus() {
    let config = common::evaluate(
        r#"{ networking.hostName = "sensor", services.avahi = { enable = true, interfaces = ["eth0"] } }"#,
    )
    .config;
    let conf = etc(&config, "avahi/avahi-daemon.conf");
    assert!(conf.contains("\nhost-name=sensor\n"), "{conf}");
    assert!(conf.contains("\nallow-interfaces=eth0\n"), "{conf}");
    assert_eq!(config.services["dbus"]["enable"], true);
    assert!(config.runit.services["dbus"].enable);
    assert_eq!(config.runit.services["avahi"].after, ["dbus"]);
    assert!(config.environment.packages["avahi-daemon"]);
    assert!(config.environment.packages["dbus-daemon"]);

    // The bus on its own, without avahi.
    let config = common::evaluate(r#"{ services.dbus.enable = true }"#).config;
    assert!(config.runit.services.contains_key("dbus"));
    assert!(!config.runit.services.contains_key("avahi"));
}

#[test]
fn hostapd_and_wpa_supplicant_write_their_networks() {
    let config = common::evaluate(
        r#"{
             services.hostapd = { enable = true, interface = "wlan0", ssid = "gadget", passphrase = "pass phrase", countryCode = "DE" },
             services.wpa_supplicant = {
               interfaces = ["wlan1", "wlan2"],
               networks = { home.psk = "home \"secret\"", cafe = {} },
             },
           }"#,
    )
    .config;
    let ap = etc(&config, "hostapd/hostapd.conf");
    for line in [
        "interface=wlan0",
        "ssid=gadget",
        "wpa=2",
        "wpa_passphrase=pass phrase",
        "country_code=DE",
    ] {
        assert!(ap.lines().any(|l| l == line), "{line:?} in:\n{ap}");
    }
    assert_eq!(config.environment.etc["hostapd/hostapd.conf"].mode, "0600");
    let client = etc(&config, "wpa_supplicant/wpa_supplicant.conf");
    assert!(
        client.contains(
            "  ssid=\"home\"\n  priority=0\n  key_mgmt=WPA-PSK\n  psk=\"home \"secret\"\"\n"
        ),
        "{client}"
    );
    assert!(
        client.contains("  ssid=\"cafe\"\n  priority=0\n  key_mgmt=NONE\n"),
        "an open network: {client}"
    );
    assert_eq!(
        config.runit.services["wpa_supplicant"].command.as_deref(),
        Some(
            "wpa_supplicant -i wlan1 -D nl80211 -c /etc/wpa_supplicant/wpa_supplicant.conf \
             -N -i wlan2 -D nl80211 -c /etc/wpa_supplicant/wpa_supplicant.conf"
        )
    );
    assert!(config.boot.kernel_modules["ccm"], "WPA2's cipher");

    let message =
        common::error(r#"{ services.hostapd = { enable = true, passphrase = "short" } }"#);
    assert!(message.contains("services.hostapd.passphrase"), "{message}");
    assert!(message.contains("8 to 63 characters"), "{message}");
    let message = common::error(r#"{ services.hostapd = { enable = true, channel = 14 } }"#);
    assert!(
        message.contains("services.hostapd.channel: expected a 2.4 GHz channel from 1 to 13"),
        "{message}"
    );
    let message = common::error(
        r#"{ services.hostapd.enable = true, services.wpa_supplicant.networks.x = {} }"#,
    );
    assert!(
        message.contains("wlan0 cannot be an access point and a client at once"),
        "{message}"
    );
    let message = common::error(r#"{ services.wpa_supplicant.networks."a\nb" = {} }"#);
    assert!(message.contains("SSID"), "{message}");
}
