//! Debian's daemons as a user adds them, booted: the users their
//! maintainer scripts would have made exist, alternatives point where
//! Debian's would. Needs the network (Debian's archive) and QEMU.
use std::time::Duration;

mod support;
use support::{boot, build, project, shown};

/// The issue's system: mosquitto (its postinst makes the `mosquitto` user
/// it drops privileges to; its systemd unit says how to run it), lighttpd
/// (by its module), python3-minimal and mawk (its postinst makes it `awk`),
/// with a probe that publishes and receives a message and fetches a page.
const DAEMONS: &str = r#"  {
    networking.hostName = "daemons",
    environment.packages = { mosquitto = true, mosquitto-clients = true, mawk = true, python3-minimal = true },
    services.lighttpd.enable = true,
    environment.files."/var/www/html/index.html".text = "LIGHTTPD-PAGE\n",
    # Debian's own unit, converted: ExecStartPre makes its directories,
    # ExecStart runs it with the package's configuration.
    runit.services.mosquitto = {
      fromUnit = "mosquitto.service",
      ready = "netstat -ltn | grep -q 127.0.0.1:1883",
    },
    runit.services.probe = {
      oneshot = true,
      after = ["mosquitto", "lighttpd"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        echo "USER-$(stat -c %U /proc/$(pidof mosquitto))"
        echo "HTTP-$(wget -q -O - http://127.0.0.1/)"
        echo "PYTHON-$(python3 -c 'print(6 * 7)')"
        echo "AWK-$(readlink /usr/bin/awk)-$(echo 2 3 | awk '{ print $1 * $2 }')"
        mosquitto_sub -h 127.0.0.1 -t micros/test -C 1 > /tmp/received &
        sleep 2
        mosquitto_pub -h 127.0.0.1 -t micros/test -m MQTT-HELLO
        wait
        echo "RECEIVED-$(cat /tmp/received)"
        grep -q 'mosquitto version' /var/log/mosquitto/mosquitto.log && echo "LOG-$(stat -c %U /var/log/mosquitto)-logged"
        echo MARKER-DONE
        /usr/sbin/poweroff
      "%],
    },
  },"#;

#[test]
fn needs_network_and_qemu_mosquitto_runs_as_its_own_user_and_awk_is_mawk() {
    let dir = project(DAEMONS);
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-DONE", Duration::from_secs(300));
    let console = &boot.console;
    assert!(
        console.contains("USER-mosquitto"),
        "mosquitto dropped its privileges to the user its postinst declares:\n{}",
        shown(console)
    );
    assert!(
        !console.contains("Unable to drop privileges"),
        "{}",
        shown(console)
    );
    assert!(
        console.contains("AWK-/usr/bin/mawk-6"),
        "awk is mawk:\n{}",
        shown(console)
    );
    assert!(
        console.contains("LOG-mosquitto-logged"),
        "the unit's ExecStartPre made its log directory, and it logs there:\n{}",
        shown(console)
    );
    assert!(
        console.contains("RECEIVED-MQTT-HELLO"),
        "a message published to mosquitto reaches a subscriber:\n{}",
        shown(console)
    );
    assert!(
        console.contains("HTTP-LIGHTTPD-PAGE"),
        "lighttpd serves its page beside mosquitto:\n{}",
        shown(console)
    );
    assert!(console.contains("PYTHON-42"), "{}", shown(console));
}

/// Asserts the console shows each marker, saying what it stands for.
fn has_markers(console: &str, markers: &[(&str, &str)]) {
    for (marker, what) in markers {
        assert!(console.contains(marker), "{what}:\n{}", shown(console));
    }
}

/// GETs `path` from 127.0.0.1:`port` over plain HTTP/1.0: the whole answer,
/// or why there is none.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: micros\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer.is_empty() {
        return Err("an empty answer".into());
    }
    Ok(answer)
}

/// services.lighttpd: Debian's lighttpd with the configuration MicrOS
/// writes (no perl), serving a page over QEMU's forwarded port; and
/// networking.firewall, which lets that port through and drops a second
/// one lighttpd also listens on.
#[test]
fn needs_network_and_qemu_lighttpd_serves_a_page_through_the_firewall() {
    let port = support::free_port();
    let closed = support::free_port();
    let dir = project(&format!(
        r#"  {{
    networking.hostName = "web",
    services.lighttpd.enable = true,
    services.lighttpd.extraConfig = m%"
      $SERVER["socket"] == ":8080" {{ }}
    "%,
    networking.firewall = {{ enable = true, allowedTCPPorts = [80] }},
    environment.files."/var/www/html/index.html".text = "<p>MICROS-HTTP-OK</p>\n",
    virtualisation.qemu.forwardPorts = [{{ host = {port}, guest = 80 }}, {{ host = {closed}, guest = 8080 }}],
    runit.services.probe = {{
      oneshot = true,
      after = ["lighttpd"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        netstat -ltn | grep -q ':8080 ' && echo "LISTENING-8080"
        nft list ruleset | grep -q 'policy drop' && echo "RULES-LOADED"
      "%],
    }},
  }},"#
    ));
    build(dir.path(), "result");
    let mut vm = support::Vm::boot(dir.path(), &[]);
    let start = std::time::Instant::now();
    let answer = loop {
        match http_get(port, "/") {
            Ok(answer) if answer.starts_with("HTTP/1.0 200") => break answer,
            outcome => {
                if start.elapsed() > Duration::from_secs(240) || vm.exited().is_some() {
                    panic!("no page: {outcome:?}\nconsole:\n{}", shown(&vm.console()));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    assert!(answer.contains("<p>MICROS-HTTP-OK</p>"), "{answer}");
    assert!(
        answer.contains("Content-Type: text/html"),
        "MicrOS's mime types: {answer}"
    );
    let missing = http_get(port, "/nothing-here").unwrap();
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
    assert!(
        vm.wait_for("LISTENING-8080", Duration::from_secs(60)),
        "lighttpd listens on the port the firewall drops:\n{}",
        shown(&vm.console())
    );
    assert!(
        vm.wait_for("RULES-LOADED", Duration::from_secs(30)),
        "{}",
        shown(&vm.console())
    );
    let dropped = http_get(closed, "/");
    assert!(
        dropped.is_err(),
        "the firewall drops a port it does not allow: {dropped:?}"
    );
    let console = vm.console();
    assert!(
        !console.contains("include_shell") && !console.contains("perl"),
        "{}",
        shown(&console)
    );
}

/// services.mosquitto: listeners and users from the configuration; a
/// client without a password, or with a wrong one, is refused.
#[test]
fn needs_network_and_qemu_mosquitto_module_checks_passwords() {
    let dir = project(
        r#"  {
    networking.hostName = "broker",
    services.mosquitto = {
      enable = true,
      listeners = [{ port = 1883 }, { port = 1884, address = "127.0.0.1" }],
      users.sensor.password = "s3cret 'quoted'",
    },
    environment.packages.mosquitto-clients = true,
    runit.services.probe = {
      oneshot = true,
      after = ["mosquitto"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        netstat -ltn | grep -q '127.0.0.1:1884 ' && echo "LISTENERS-2"
        mosquitto_pub -h 127.0.0.1 -t micros/test -m anonymous || echo "ANONYMOUS-REFUSED"
        mosquitto_pub -h 127.0.0.1 -u sensor -P wrong -t micros/test -m wrong || echo "WRONG-REFUSED"
        mosquitto_sub -h 127.0.0.1 -u sensor -P "s3cret 'quoted'" -t micros/test -C 1 > /tmp/received &
        sleep 2
        mosquitto_pub -h 127.0.0.1 -p 1884 -u sensor -P "s3cret 'quoted'" -t micros/test -m MQTT-AUTH-OK
        wait
        echo "RECEIVED-$(cat /tmp/received)"
        echo "PASSWD-$(stat -c %U-%a /run/mosquitto/passwd)-$(grep -c 's3cret' /run/mosquitto/passwd)"
        echo MARKER-DONE
        /usr/sbin/poweroff
      "%],
    },
  },"#,
    );
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-DONE", Duration::from_secs(300));
    let console = &boot.console;
    has_markers(
        console,
        &[
            ("LISTENERS-2", "the second listener, on 127.0.0.1 only"),
            (
                "ANONYMOUS-REFUSED",
                "a client without a user name is refused",
            ),
            ("WRONG-REFUSED", "a wrong password is refused"),
            (
                "RECEIVED-MQTT-AUTH-OK",
                "a user with its password publishes and subscribes",
            ),
            (
                "PASSWD-mosquitto-600-0",
                "the password file is hashed and the broker's alone",
            ),
        ],
    );
}

/// services.dnsmasq: a client on the gadget's network (a second NIC of the
/// same guest, on a QEMU hub with the first) gets a DHCP lease, and asks
/// the names dnsmasq answers.
#[test]
fn needs_network_and_qemu_dnsmasq_leases_an_address_and_answers_names() {
    let dir = project(
        r#"  {
    networking.hostName = "gadget",
    networking.interfaces.eth1.ipv4.address = "192.168.7.1/24",
    networking.interfaces.eth2.dhcp = true,
    services.dnsmasq = {
      enable = true,
      interfaces = ["eth1"],
      dhcp.range = { start = "192.168.7.50", end = "192.168.7.99" },
      hosts."printer.lan" = "192.168.7.9",
    },
    virtualisation.qemu.extraArgs = [
      "-netdev", "hubport,id=gadget,hubid=7", "-device", "virtio-net-pci,netdev=gadget,mac=52:54:00:00:07:01",
      "-netdev", "hubport,id=client,hubid=7", "-device", "virtio-net-pci,netdev=client,mac=52:54:00:00:07:02",
    ],
    runit.services.probe = {
      oneshot = true,
      after = ["dnsmasq", "dhcp-eth2"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        echo "LEASE-$(ip -4 addr show dev eth2 | sed -n 's/.*inet \(192\.168\.7\.[0-9]*\).*/\1/p')"
        nslookup printer.lan 192.168.7.1 | grep -q '192.168.7.9' && echo "DNS-HOST-ANSWERED"
        nslookup gadget 192.168.7.1 | grep -q '192.168.7.1$' && echo "DNS-SELF-ANSWERED"
        echo MARKER-DONE
        /usr/sbin/poweroff
      "%],
    },
  },"#,
    );
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-DONE", Duration::from_secs(300));
    let console = &boot.console;
    let lease = console
        .split("LEASE-")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("");
    let host: u8 = lease
        .strip_prefix("192.168.7.")
        .and_then(|host| host.parse().ok())
        .unwrap_or_else(|| panic!("no lease on eth2 ({lease:?}):\n{}", shown(console)));
    assert!((50..=99).contains(&host), "a lease from the range: {lease}");
    assert!(
        console.contains("DNS-HOST-ANSWERED"),
        "services.dnsmasq.hosts:\n{}",
        shown(console)
    );
    assert!(
        console.contains("DNS-SELF-ANSWERED"),
        "the host name resolves to its gadget address:\n{}",
        shown(console)
    );
}

/// services.avahi: `avahi.local` resolves in the guest (avahi-resolve asks
/// the daemon over D-Bus), and a multicast DNS query sent over a wire
/// answers with its address. The wire is a QEMU hub between two NICs of
/// the guest: avahi answers on eth1 only, the query goes out of eth2 (a
/// one-shot query, RFC 6762 6.7: from a port other than 5353, so the
/// answer comes back by unicast).
#[test]
fn needs_network_and_qemu_avahi_answers_for_its_local_name() {
    let dir = project(
        r#"  {
    networking.hostName = "avahi",
    networking.interfaces.eth1.ipv4.address = "192.168.9.1/24",
    networking.interfaces.eth2.ipv4.address = "192.168.9.2/24",
    # eth1 accepts what eth2 (an address of this same system) sends it.
    boot.kernel.sysctl = { "net.ipv4.conf.all.accept_local" = 1, "net.ipv4.conf.all.rp_filter" = 0 },
    services.avahi = { enable = true, interfaces = ["eth1"] },
    environment.packages = { avahi-utils = true, python3-minimal = true },
    virtualisation.qemu.extraArgs = [
      "-netdev", "hubport,id=a,hubid=9", "-device", "virtio-net-pci,netdev=a,mac=52:54:00:00:09:01",
      "-netdev", "hubport,id=b,hubid=9", "-device", "virtio-net-pci,netdev=b,mac=52:54:00:00:09:02",
    ],
    environment.etc."mdns-query.py".text = m%"
      import socket, struct
      query = struct.pack(">6H", 0x4D53, 0, 1, 0, 0, 0) + b"\x05avahi\x05local\x00" + struct.pack(">2H", 1, 1)
      s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
      s.bind(("192.168.9.2", 0))
      s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("192.168.9.2"))
      s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
      s.settimeout(2)
      for attempt in range(15):
          s.sendto(query, ("224.0.0.251", 5353))
          try:
              answer, source = s.recvfrom(1500)
          except OSError:
              continue
          print("MDNS-ANSWER-" + answer.hex() + "-FROM-" + source[0])
          break
      else:
          print("MDNS-NO-ANSWER")
    "%,
    runit.services.probe = {
      oneshot = true,
      after = ["avahi", "network-eth2"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        sleep 3
        echo "RESOLVED-$(avahi-resolve -4 -n avahi.local | cut -f2)"
        python3 /etc/mdns-query.py
        echo MARKER-DONE
        /usr/sbin/poweroff
      "%],
    },
  },"#,
    );
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-DONE", Duration::from_secs(300));
    let console = &boot.console;
    assert!(
        console.contains("RESOLVED-192.168.9.1"),
        "avahi-resolve finds the system's own name, on the interface avahi serves:\n{}",
        shown(console)
    );
    let answer = console
        .split("MDNS-ANSWER-")
        .nth(1)
        .and_then(|rest| rest.split("-FROM-").next())
        .unwrap_or_else(|| panic!("no answer to a multicast DNS query:\n{}", shown(console)));
    let answer: Vec<u8> = (0..answer.len() / 2)
        .map(|i| u8::from_str_radix(&answer[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(answer[..2], [0x4d, 0x53], "the query's id: {answer:?}");
    assert_eq!(answer[2] & 0x80, 0x80, "a response: {answer:?}");
    let answers = u16::from_be_bytes([answer[6], answer[7]]);
    assert!(answers >= 1, "{answer:?}");
    assert!(
        answer.windows(4).any(|w| w == [192, 168, 9, 1]),
        "the answer holds the address on eth1: {answer:?}"
    );
}

/// services.hostapd and services.wpa_supplicant on the kernel's simulated
/// radios (mac80211_hwsim, in Debian's generic kernel): wlan1 joins the
/// WPA2 network wlan0 offers and gets a DHCP lease over it from dnsmasq.
#[test]
fn needs_network_and_qemu_wifi_client_joins_the_access_point() {
    let dir = project(
        r#"  {
    networking.hostName = "wifi",
    boot.kernel.package = "linux-image-amd64",
    boot.kernelModules.mac80211_hwsim = true,
    networking.interfaces.wlan0.ipv4.address = "192.168.10.1/24",
    networking.interfaces.wlan1.dhcp = true,
    services.hostapd = { enable = true, interface = "wlan0", ssid = "micros \"test\"", passphrase = "correct horse 'battery'" },
    services.wpa_supplicant = { interfaces = ["wlan1"], networks."micros \"test\"".psk = "correct horse 'battery'" },
    services.dnsmasq = {
      enable = true,
      interfaces = ["wlan0"],
      dhcp.range = { start = "192.168.10.50", end = "192.168.10.99" },
    },
    runit.services.probe = {
      oneshot = true,
      after = ["hostapd", "dhcp-wlan1"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        wpa_cli -p /run/wpa_supplicant -i wlan1 status | sed -n 's/^\(wpa_state\|key_mgmt\|ssid\)=/WIFI-\1=/p'
        echo "LEASE-$(ip -4 addr show dev wlan1 | sed -n 's/.*inet \(192\.168\.10\.[0-9]*\).*/\1/p')"
        echo MARKER-DONE
        /usr/sbin/poweroff
      "%],
    },
  },"#,
    );
    build(dir.path(), "result");
    let boot = boot(dir.path(), &[], "MARKER-DONE", Duration::from_secs(400));
    let console = &boot.console;
    has_markers(
        console,
        &[
            ("WIFI-wpa_state=COMPLETED", "the client is associated"),
            ("WIFI-key_mgmt=WPA2-PSK", "with WPA2 and the passphrase"),
            // wpa_cli escapes the quotes it prints.
            (
                r#"WIFI-ssid=micros \"test\""#,
                "to the access point's network",
            ),
            (
                "LEASE-192.168.10.",
                "and has a lease from dnsmasq over the air",
            ),
        ],
    );
}

/// services.cron: jobs from the configuration run on time, as their user.
#[test]
fn needs_network_and_qemu_cron_runs_the_jobs_as_their_users() {
    let dir = project(
        r#"  {
    networking.hostName = "cron",
    services.cron.jobs = {
      as-daemon = { schedule = "* * * * *", command = "id -un > /tmp/cron-daemon", user = "daemon" },
      report = { schedule = "* * * * *", command = "echo CRON-RAN-$(id -un)-$(cat /tmp/cron-daemon) > /dev/console" },
    },
  },"#,
    );
    build(dir.path(), "result");
    let mut vm = support::Vm::boot(dir.path(), &[]);
    // Every minute: by the second one, the daemon's job has run too.
    let ran = vm.wait_for("CRON-RAN-root-daemon", Duration::from_secs(300));
    assert!(ran, "{}", shown(&vm.console()));
}
