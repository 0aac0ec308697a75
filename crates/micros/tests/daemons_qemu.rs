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
