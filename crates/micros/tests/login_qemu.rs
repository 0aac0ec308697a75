//! Needs the network (Debian's archive), QEMU and OpenSSH's client: systems
//! you log in to. The host's `ssh` talks to dropbear through QEMU's user
//! network; the serial console is typed into like a terminal.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;
use support::{boot_session, build, emulator_stopped, free_port, micros, project, shown, text, Vm};

/// An ed25519 key pair made by `ssh-keygen` in `dir`: (private key path,
/// public key line).
fn keypair(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (package openssh-client)");
    assert!(status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path.display().to_string(), public.trim().to_owned())
}

/// Runs `ssh` against the guest on `port` with `options`, as root.
fn ssh(port: u16, known_hosts: &Path, options: &[&str], command: &str) -> std::process::Output {
    let options = [&["-o", "BatchMode=yes"][..], options].concat();
    ssh_command(port, known_hosts, &options, "root", command)
        .output()
        .expect("ssh (package openssh-client)")
}

/// `ssh` as `user`, without BatchMode (which rules out passwords).
fn ssh_command(
    port: u16,
    known_hosts: &Path,
    options: &[&str],
    user: &str,
    command: &str,
) -> Command {
    let mut ssh = Command::new("ssh");
    ssh.args(["-F", "/dev/null", "-p", &port.to_string()])
        .args(["-o", "ConnectTimeout=10"])
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(options)
        .arg("-l")
        .arg(user)
        .arg("127.0.0.1")
        .arg(command)
        .env_remove("SSH_AUTH_SOCK");
    ssh
}

/// Logs in as `user` with `password` only (typed by an askpass script,
/// as a person would at the prompt) and runs `command`.
fn ssh_password(
    port: u16,
    known_hosts: &Path,
    user: &str,
    password: &str,
    command: &str,
) -> std::process::Output {
    let askpass = known_hosts.with_file_name("askpass");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    ssh_command(
        port,
        known_hosts,
        &[
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
        user,
        command,
    )
    .env("SSH_ASKPASS", &askpass)
    .env("SSH_ASKPASS_REQUIRE", "force")
    .stdin(std::process::Stdio::null())
    .output()
    .expect("ssh (package openssh-client)")
}

/// Polls until the guest's SSH server runs `command` for `key`; its output,
/// or why there is none (with the console).
fn first_answer(vm: &mut Vm, login: &dyn Fn() -> std::process::Output) -> Result<String, String> {
    let start = Instant::now();
    loop {
        let output = login();
        if output.status.success() {
            return Ok(text(&output.stdout));
        }
        if start.elapsed() > Duration::from_secs(240) || vm.exited().is_some() {
            return Err(format!(
                "ssh never answered; last error:\n{}\nconsole:\n{}",
                text(&output.stderr),
                shown(&vm.console())
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The host key the guest presented (from the known-hosts file ssh wrote).
fn host_key(known_hosts: &Path) -> String {
    let line = std::fs::read_to_string(known_hosts).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "one host key: {line}");
    fields[2].to_owned()
}

/// Boots the guest and waits for the SSH server's first answer: the guest,
/// the answer, and the consoles of boots the emulator brought down before
/// it (booted again, up to three in all).
fn boot_until_ssh(
    dir: &Path,
    port: u16,
    known_hosts: &Path,
    key: &str,
    command: &str,
) -> (Vm, String, String) {
    boot_until_login(dir, &|| {
        ssh(
            port,
            known_hosts,
            &["-i", key, "-o", "IdentitiesOnly=yes"],
            command,
        )
    })
}

/// [`boot_until_ssh`] for any way of logging in: `login` is tried until it
/// succeeds.
fn boot_until_login(dir: &Path, login: &dyn Fn() -> std::process::Output) -> (Vm, String, String) {
    let mut crashed = String::new();
    for attempt in 1..=support::BOOTS {
        let mut vm = Vm::boot(dir, &[]);
        crashed.push_str(&vm.earlier);
        match first_answer(&mut vm, login) {
            Ok(answer) => return (vm, answer, crashed),
            Err(why) => {
                let exit = vm.exited();
                let console = vm.console();
                if attempt == support::BOOTS
                    || !exit.is_some_and(|code| emulator_stopped(&console, code))
                {
                    panic!("{why}");
                }
                support::booting_again(&format!("the guest stopped under the emulator:\n{why}"));
                crashed.push_str(&console);
            }
        }
    }
    unreachable!()
}

#[test]
fn needs_network_and_qemu_the_sshd_example_lets_a_key_in_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "good");
    let (wrong, _) = keypair(dir.path(), "wrong");
    let port = free_port();
    // The example as a user would edit it: their key, a free port.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sshd.ncl"),
    )
    .unwrap();
    let placeholder = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1pY3JPUyBleGFtcGxlOiB1c2UgeW91ciBvd24ga2V5 replace-me@example";
    for needle in [
        placeholder,
        "host = 2222",
        "networking.hostName = \"micros-ssh\",",
    ] {
        assert!(
            example.contains(needle),
            "examples/sshd.ncl no longer has `{needle}`"
        );
    }
    let config = example
        .replace(placeholder, &public)
        .replace("host = 2222", &format!("host = {port}"));
    std::fs::write(dir.path().join("system.ncl"), config).unwrap();
    build(dir.path(), "result");
    // No host key is baked into the image: the root holds no key file.
    let listing = Command::new("unsquashfs")
        .args(["-lln"])
        .arg(dir.path().join("result/root.squashfs"))
        .output()
        .expect("unsquashfs (package squashfs-tools)");
    assert!(listing.status.success(), "{}", text(&listing.stderr));
    let listing = text(&listing.stdout);
    assert!(
        listing.contains("/usr/sbin/dropbear"),
        "the listing shows the root's files:\n{listing}"
    );
    let keys: Vec<&str> = listing
        .lines()
        .filter(|line| {
            line.contains("host_key")
                || line.contains("_host_")
                || line.contains("dropbear/dropbear_")
        })
        .collect();
    assert!(keys.is_empty(), "host key files in the image: {keys:?}");

    let known_hosts = dir.path().join("known_hosts");
    let (vm, answer, _) = boot_until_ssh(
        dir.path(),
        port,
        &known_hosts,
        &key,
        "id; hostname; ip addr; cat /proc/uptime",
    );
    let lines: Vec<&str> = answer.lines().collect();
    assert!(lines[0].starts_with("uid=0(root) gid=0(root)"), "{answer}");
    assert_eq!(lines[1], "micros-ssh", "{answer}");
    // QEMU's user network hands out 10.0.2.15/24 by DHCP.
    assert!(answer.contains("inet 10.0.2.15/24"), "{answer}");
    let uptime: f64 = lines
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("figure: guest uptime when SSH first answered: {uptime:.2} s");
    let first_key = host_key(&known_hosts);

    // No password login: the server offers public keys only.
    let output = ssh(
        port,
        &known_hosts,
        &[
            "-v",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
        "true",
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr).replace('\r', "");
    assert!(
        stderr.contains("Authentications that can continue: publickey\n"),
        "the server must offer only public keys:\n{stderr}"
    );
    // A key that is not authorized is refused.
    let output = ssh(
        port,
        &known_hosts,
        &["-i", &wrong, "-o", "IdentitiesOnly=yes"],
        "true",
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("Permission denied (publickey)"),
        "{}",
        text(&output.stderr)
    );
    drop(vm);

    // The same image boots with a new host key: none is baked in.
    let known_hosts = dir.path().join("known_hosts.2");
    let (vm, _, _) = boot_until_ssh(dir.path(), port, &known_hosts, &key, "true");
    drop(vm);
    let second_key = host_key(&known_hosts);
    assert_ne!(
        first_key, second_key,
        "two boots presented the same host key"
    );
}

#[test]
fn needs_network_and_qemu_over_a_data_disk_the_host_key_and_files_persist() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "good");
    let port = free_port();
    let project = project(&format!(
        r#"  {{
    networking.hostName = "keeper",
    services.sshd.enable = true,
    boot.overlay = "data",
    virtualisation.qemu.dataDiskSize = "64M",
    virtualisation.qemu.forwardPorts = [{{ host = {port}, guest = 22 }}],
    users.users.root.authorizedKeys = ["{public}"],
  }},"#
    ));
    build(project.path(), "result");
    let known_hosts = dir.path().join("known_hosts");
    let (vm, answer, crashed) = boot_until_ssh(
        project.path(),
        port,
        &known_hosts,
        &key,
        "grep ^/dev/vdb /proc/mounts; echo kept > /root/kept",
    );
    assert!(
        answer.contains("/dev/vdb /run/micros/rw ext4 rw"),
        "the data disk is mounted under the overlay: {answer}"
    );
    let first_key = host_key(&known_hosts);
    assert!(
        (crashed + &vm.console()).contains("preparing the data partition /dev/vdb (64 MiB)"),
        "a blank data disk is prepared at first boot:\n{}",
        shown(&vm.console())
    );
    // The connection ends with the guest: ssh's own status does not matter.
    let _ = ssh(
        port,
        &known_hosts,
        &["-i", &key, "-o", "IdentitiesOnly=yes"],
        "/usr/sbin/poweroff",
    );
    let boot = vm.finish(Duration::from_secs(120));
    assert_eq!(boot.exit, Some(0), "powered off:\n{}", shown(&boot.console));
    assert!(project.path().join("keeper-data.img").exists());

    let known_hosts = dir.path().join("known_hosts.2");
    let (vm, answer, crashed) =
        boot_until_ssh(project.path(), port, &known_hosts, &key, "cat /root/kept");
    assert_eq!(answer.trim(), "kept", "a file written on the first boot");
    assert_eq!(
        host_key(&known_hosts),
        first_key,
        "the host key made on the first boot is kept on the data disk"
    );
    assert!(
        !(crashed + &vm.console()).contains("preparing the data partition"),
        "a prepared data disk is not formatted again:\n{}",
        shown(&vm.console())
    );
}

#[test]
fn needs_network_users_the_image_cannot_serve_are_build_errors_naming_the_option() {
    let dir = project(
        r#"  { users.users.alice = { uid = 1000, home = "/home/alice", shell = "/bin/zsh" } },"#,
    );
    let output = micros(&["build"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "users.users.alice.shell: /bin/zsh is not in the image: no package provides it"
        ),
        "{stderr}"
    );
    let dir = project(
        r#"  { users.users.root.authorizedKeys = ["ssh-ed25519 this-is-not-a-key me@host"] },"#,
    );
    let output = micros(&["build"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("users.users.root.authorizedKeys[0]: not an SSH public key"),
        "{stderr}"
    );
    assert!(!dir.path().join("result").exists());
}

/// Replies to every NTP request on 127.0.0.1:123 (the guest's 10.0.2.2:123
/// through QEMU's user network) with the host's clock plus `offset`.
fn ntp_server(offset: Duration) -> std::net::UdpSocket {
    let socket = std::net::UdpSocket::bind("127.0.0.1:123")
        .expect("bind 127.0.0.1:123 for the test's NTP server (run the tests as root)");
    let server = socket.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut request = [0u8; 512];
        while let Ok((n, from)) = server.recv_from(&mut request) {
            if n < 48 {
                continue;
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + offset;
            let seconds = (now.as_secs() + 2_208_988_800) as u32;
            let fraction = ((u64::from(now.subsec_nanos()) << 32) / 1_000_000_000) as u32;
            let mut stamp = [0u8; 8];
            stamp[..4].copy_from_slice(&seconds.to_be_bytes());
            stamp[4..].copy_from_slice(&fraction.to_be_bytes());
            let mut reply = [0u8; 48];
            reply[0] = 0x24; // no leap warning, version 4, server
            reply[1] = 1; // stratum 1
            reply[2] = request[2]; // poll
            reply[3] = 0xec; // precision 2^-20
            reply[12..16].copy_from_slice(b"TEST");
            reply[16..24].copy_from_slice(&stamp); // reference
            reply[24..32].copy_from_slice(&request[40..48]); // originate
            reply[32..40].copy_from_slice(&stamp); // receive
            reply[40..48].copy_from_slice(&stamp); // transmit
            let _ = server.send_to(&reply, from);
        }
    });
    socket
}

/// The test password, as `openssl passwd -6 -salt consolesalt` hashes it.
const PASSWORD: &str = "micros-secret";
const PASSWORD_HASH: &str = "$6$consolesalt$7ribD70fjcF5m9VIhPHzUahWKR/oZb3Jyp8LYtufUHv.BtnEQ4q9u.GEXy9TSue48J2Uy3iw.T61CrbnF3vTz0";

#[test]
fn needs_network_and_qemu_console_login_syslog_and_ntp() {
    let _ntp = ntp_server(Duration::from_secs(3600));
    let dir = project(&format!(
        r#"  {{
    networking.hostName = "console-test",
    services.getty.enable = true,
    services.syslog = {{ enable = true, maxSize = 4096, maxFiles = 2 }},
    services.ntpd.enable = true,
    networking.timeServers = ["10.0.2.2"],
    # A second network card with a static address.
    virtualisation.qemu.extraArgs = ["-netdev", "user,id=net1,net=192.168.77.0/24", "-device", "virtio-net-pci,netdev=net1"],
    networking.interfaces.eth1.ipv4.address = "192.168.77.15/24",
    users.users.alice = {{ uid = 1000, home = "/home/alice", hashedPassword = "{PASSWORD_HASH}" }},
    users.users.bob = {{ uid = 1001, home = "/home/bob" }},
  }},"#
    ));
    build(dir.path(), "result");
    boot_session(dir.path(), console_session);
}

/// The console test's conversation with one booted guest.
fn console_session(vm: &mut Vm) {
    let minute = Duration::from_secs(60);
    let prompt = |vm: &mut Vm, n: usize| {
        assert!(
            vm.wait_for_nth("console-test login:", n, 4 * minute),
            "no login prompt #{n}:\n{}",
            shown(&vm.console())
        );
    };
    prompt(vm, 1);
    // A locked account (no hashedPassword) cannot log in, whatever it
    // types: the next thing is a login prompt again, not a shell.
    vm.send("bob\n");
    assert!(vm.wait_for("Password:", minute), "{}", shown(&vm.console()));
    vm.send("\n");
    prompt(vm, 2);
    // A wrong password is refused too.
    vm.send("alice\n");
    assert!(
        vm.wait_for_nth("Password:", 2, minute),
        "{}",
        shown(&vm.console())
    );
    vm.send("not-the-password\n");
    assert!(
        vm.wait_for("Login incorrect", minute),
        "{}",
        shown(&vm.console())
    );
    prompt(vm, 3);
    vm.send("alice\n");
    assert!(
        vm.wait_for_nth("Password:", 3, minute),
        "{}",
        shown(&vm.console())
    );
    vm.send("micros-secret\n");
    // Typing before the shell runs would go to login, which drops it.
    assert!(
        vm.wait_for("built-in shell (ash)", minute),
        "the configured password logs in:\n{}",
        shown(&vm.console())
    );
    assert_eq!(
        answer(vm, "user", "id -un"),
        "alice",
        "the configured password logs in:\n{}",
        shown(&vm.console())
    );

    // syslog: a message reaches the log, and the log stays within its bounds.
    assert_eq!(
        answer(
            vm,
            "eth1",
            "ip -4 addr show dev eth1 | grep -o 'inet [0-9./]*'"
        ),
        "inet 192.168.77.15/24",
        "the static address:\n{}",
        shown(&vm.console())
    );
    assert_eq!(
        answer(
            vm,
            "eth0",
            "ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*'"
        ),
        "inet 10.0.2.15/24",
        "the DHCP address:\n{}",
        shown(&vm.console())
    );

    // The log is written asynchronously, and with this small maxSize the
    // message may already be in a rotated file.
    vm.send("logger -t checker SYSLOG-$((6 * 7))\n");
    let found = answer(
        vm,
        "found",
        "n=0; until grep -q SYSLOG-42 /var/log/syslog/[c@]* 2>/dev/null || [ $n -ge 40 ]; do sleep 0.5; n=$((n + 1)); done; grep -q SYSLOG-42 /var/log/syslog/[c@]* 2>/dev/null && echo yes",
    );
    assert_eq!(
        found,
        "yes",
        "logger's message is in the log:\n{}",
        shown(&vm.console())
    );
    let filled = answer(
        vm,
        "filled",
        "for i in $(seq 1 100); do logger -t filler line-$i-to-fill-the-log; done; echo done",
    );
    assert_eq!(filled, "done");
    let rotated: usize = answer(vm, "rotated", "ls /var/log/syslog | grep -c '^@'")
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&rotated),
        "the log is rotated and at most maxFiles old logs are kept: {rotated}\n{}",
        shown(&vm.console())
    );
    let size: u64 = answer(vm, "size", "wc -c < /var/log/syslog/current")
        .parse()
        .unwrap();
    assert!(size <= 4096, "the current log stays under maxSize: {size}");

    // ntpd stepped the clock to the (test's) server, an hour ahead.
    let guest: i64 = answer(vm, "clock", "date +%s").parse().unwrap();
    let host = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ahead = guest - host;
    assert!(
        (3500..=3700).contains(&ahead),
        "the guest clock should follow the NTP server (an hour ahead), it is {ahead} s ahead:\n{}",
        shown(&vm.console())
    );
}

/// Runs `command` in the shell logged in on the console and returns its
/// output (one line). The answer is framed by markers the typed command
/// does not contain literally, so the terminal's echo never counts.
fn answer(vm: &mut Vm, name: &str, command: &str) -> String {
    let start = format!("ANSWER-{name}=");
    vm.send(&format!("echo ANSWER-{name}=$({command})=END\n"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let console = vm.console();
        let value = console
            .match_indices(&start)
            .map(|(at, _)| &console[at + start.len()..])
            .find(|rest| !rest.starts_with('$'))
            .and_then(|rest| rest.split_once("=END"))
            .map(|(value, _)| value.trim().to_owned());
        if let Some(value) = value {
            return value;
        }
        assert!(
            Instant::now() < deadline && vm.exited().is_none(),
            "no answer to `{command}`:\n{}",
            shown(&console)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `poweroff`, `reboot` and `halt` as a user types them at the console's
/// shell (busybox's ash, which prefers its own applets to anything on PATH;
/// those signal PID 1 the way busybox's init expects and runit ignores).
/// Each ends runit's way: stage 3 stops the services, then the kernel
/// powers off or restarts, and QEMU (`-no-reboot`) exits with status 0.
#[test]
fn needs_network_and_qemu_power_commands_typed_at_the_console_reach_runit() {
    let dir = project(&format!(
        r#"  {{
    networking.hostName = "power-test",
    services.getty.enable = true,
    users.users.root.hashedPassword = "{PASSWORD_HASH}",
  }},"#
    ));
    build(dir.path(), "result");
    for (command, kernel_says) in [
        ("poweroff", "reboot: Power down"),
        ("reboot", "reboot: Restarting system"),
        ("halt", "reboot: Power down"),
    ] {
        boot_session(dir.path(), |vm| power_session(vm, command, kernel_says));
    }
}

/// Logs in as root on the console, types `command` and watches the guest go.
fn power_session(vm: &mut Vm, command: &str, kernel_says: &str) {
    let minute = Duration::from_secs(60);
    assert!(
        vm.wait_for("power-test login:", 4 * minute),
        "no login prompt:\n{}",
        shown(&vm.console())
    );
    vm.send("root\n");
    assert!(vm.wait_for("Password:", minute), "{}", shown(&vm.console()));
    vm.send("micros-secret\n");
    assert!(
        vm.wait_for("built-in shell (ash)", minute),
        "root logs in:\n{}",
        shown(&vm.console())
    );
    assert_eq!(
        answer(vm, "kind", &format!("type {command}")),
        format!("{command} is a function"),
        "the login shell's `{command}` is MicrOS's, not busybox's applet:\n{}",
        shown(&vm.console())
    );
    vm.send(&format!("{command}\n"));
    let deadline = Instant::now() + 2 * minute;
    let exit = loop {
        if let Some(exit) = vm.exited() {
            break Some(exit);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Let the reader take in QEMU's last words.
    std::thread::sleep(Duration::from_millis(200));
    let console = vm.console();
    let typed = console.rfind("built-in shell (ash)").unwrap_or(0);
    let after = &console[typed..];
    assert!(
        after.contains("runit: enter stage: /etc/runit/3"),
        "`{command}` runs runit's stage 3:\n{}",
        shown(&console)
    );
    assert!(
        after.contains(kernel_says),
        "`{command}` ends with `{kernel_says}`:\n{}",
        shown(&console)
    );
    assert!(
        !console.contains("Kernel panic"),
        "`{command}` ends without a kernel panic:\n{}",
        shown(&console)
    );
    assert_eq!(
        exit,
        Some(Some(0)),
        "`{command}` ends QEMU with status 0:\n{}",
        shown(&console)
    );
}

/// The harness itself: a session whose guest crashes once MicrOS runs
/// (here on purpose, by sysrq) fails on that boot; only a crash before
/// MicrOS's code runs is the emulator's and booted again.
#[test]
fn needs_network_and_qemu_a_session_whose_kernel_crashes_after_init_fails() {
    let dir = project(
        r#"  { networking.hostName = "crashy", services.getty = { enable = true, autologinUser = "root" } },"#,
    );
    build(dir.path(), "result");
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let session = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        boot_session(dir.path(), |vm| {
            let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert!(
                vm.wait_for("built-in shell", Duration::from_secs(120)),
                "{}",
                shown(&vm.console())
            );
            if call == 0 {
                vm.send("echo c > /proc/sysrq-trigger\n");
                assert!(
                    vm.wait_for("never printed", Duration::from_secs(120)),
                    "crashed as planned"
                );
            }
        })
    }));
    assert!(session.is_err(), "the crash fails the test");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not booted again"
    );
}

/// `passwordAuthentication = true` and `permitRootLogin = "no"` hold at run
/// time: a user logs in with their password, a wrong one is refused, and
/// root is refused with an authorized key and with its password.
#[test]
fn needs_network_and_qemu_password_logins_and_the_root_policy_hold_in_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "good");
    let port = free_port();
    let project = project(&format!(
        r#"  {{
    networking.hostName = "policy",
    services.sshd.enable = true,
    services.sshd.passwordAuthentication = true,
    services.sshd.permitRootLogin = "no",
    virtualisation.qemu.forwardPorts = [{{ host = {port}, guest = 22 }}],
    users.users.root = {{ authorizedKeys = ["{public}"], hashedPassword = "{PASSWORD_HASH}" }},
    users.users.alice = {{ uid = 1000, home = "/home/alice", hashedPassword = "{PASSWORD_HASH}" }},
  }},"#
    ));
    build(project.path(), "result");
    let known_hosts = dir.path().join("known_hosts");
    let (vm, answer, _) = boot_until_login(project.path(), &|| {
        ssh_password(port, &known_hosts, "alice", PASSWORD, "id -un")
    });
    assert_eq!(answer.trim(), "alice", "alice logs in with her password");

    let output = ssh_password(port, &known_hosts, "alice", "not-the-password", "true");
    assert!(
        !output.status.success(),
        "a wrong password is refused:\n{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("Permission denied"),
        "{}",
        text(&output.stderr)
    );
    let output = ssh(
        port,
        &known_hosts,
        &["-i", &key, "-o", "IdentitiesOnly=yes"],
        "true",
    );
    assert!(
        !output.status.success(),
        "root is refused with an authorized key:\n{}",
        text(&output.stderr)
    );
    let output = ssh_password(port, &known_hosts, "root", PASSWORD, "true");
    assert!(
        !output.status.success(),
        "root is refused with its password:\n{}",
        text(&output.stderr)
    );
    // The refusals came from the policy, not from a server gone away.
    let output = ssh_password(port, &known_hosts, "alice", PASSWORD, "echo still");
    assert_eq!(
        text(&output.stdout).trim(),
        "still",
        "{}",
        shown(&vm.console())
    );
}
