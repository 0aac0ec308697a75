//! Debian's daemons as a user adds them, booted: the users their
//! maintainer scripts would have made exist, alternatives point where
//! Debian's would. Needs the network (Debian's archive) and QEMU.
use std::time::Duration;

mod support;
use support::{boot, build, project, shown};

/// mosquitto (its postinst makes the `mosquitto` user it drops privileges
/// to; its systemd unit says how to run it) and mawk (its postinst makes it
/// `awk`), with a probe that publishes and receives a message.
const DAEMONS: &str = r#"  {
    networking.hostName = "daemons",
    environment.packages = { mosquitto = true, mosquitto-clients = true, mawk = true },
    # Debian's own unit, converted: ExecStartPre makes its directories,
    # ExecStart runs it with the package's configuration.
    runit.services.mosquitto = {
      fromUnit = "mosquitto.service",
      ready = "netstat -ltn | grep -q 127.0.0.1:1883",
    },
    runit.services.probe = {
      oneshot = true,
      after = ["mosquitto"],
      command = micros.lib.shell.command ["sh", "-c", m%"
        echo "USER-$(stat -c %U /proc/$(pidof mosquitto))"
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
/// writes (no perl), serving a page over QEMU's forwarded port.
#[test]
fn needs_network_and_qemu_lighttpd_serves_a_page() {
    let port = support::free_port();
    let dir = project(&format!(
        r#"  {{
    networking.hostName = "web",
    services.lighttpd.enable = true,
    environment.files."/var/www/html/index.html".text = "<p>MICROS-HTTP-OK</p>\n",
    virtualisation.qemu.forwardPorts = [{{ host = {port}, guest = 80 }}],
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
    let console = vm.console();
    assert!(
        !console.contains("include_shell") && !console.contains("perl"),
        "{}",
        shown(&console)
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
