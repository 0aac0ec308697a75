//! Needs the network (Debian's archive, non-free-firmware), QEMU and
//! OpenSSH's client: devices find their drivers without the configuration
//! listing a module. A Pi 3 card on QEMU's `raspi3b` with a USB network
//! adapter gets an address and answers SSH, then sees a USB stick plugged
//! in from QEMU's monitor; an x86_64 guest brings up a second adapter of a
//! model no profile names, unless its driver is blacklisted.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::{boot, build, build_card, card_qemu, micros, project, run, shown, text, Vm};

/// Runs `command` on the guest over SSH as root; None until it answers.
fn ssh(port: u16, dir: &Path, command: &str) -> Option<String> {
    let output = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &port.to_string()])
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .arg("-i")
        .arg(dir.join("key"))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-l",
            "root",
            "127.0.0.1",
            command,
        ])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("ssh (package openssh-client)");
    output.status.success().then(|| text(&output.stdout))
}

/// Sends one command to QEMU's human monitor on `socket`; its answer.
fn monitor(socket: &Path, command: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("QEMU's monitor socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(format!("{command}\n").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut answer = vec![0u8; 64 * 1024];
    let n = stream.read(&mut answer).unwrap_or(0);
    text(&answer[..n])
}

#[test]
fn needs_network_and_qemu_a_pi_3_finds_its_usb_adapter_and_a_stick_plugged_in_later() {
    let keys = tempfile::tempdir().unwrap();
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(keys.path().join("key")));
    let public = std::fs::read_to_string(keys.path().join("key.pub")).unwrap();
    // The seed's Pi with SSH: no module, no interface is named. The Pi
    // profile's eth0 is what a Pi's own Ethernet (or this adapter) is.
    let (dir, summary) = build_card(&format!(
        r#"let micros = import "micros" in
micros.system {{ modules = [ {{
  platform.host = "aarch64-linux",
  hardware.raspberryPi.rpi3 = true,
  services.sshd.enable = true,
  users.users.root.authorizedKeys = [{public:?}],
}} ] }}
"#,
        public = public.trim()
    ));
    eprintln!("figure: rpi3 build:\n{summary}");

    // What the image holds for its hardware: the table, the Pi's drivers
    // and only the radios' firmware files.
    let why = |target: &str| {
        let output = micros(&["why", target], dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("result/manifest.json")).unwrap(),
    )
    .unwrap();
    let version = manifest["kernel"]["version"].as_str().unwrap().to_owned();
    let dwc2 = why(&format!("/usr/lib/modules/{version}/dwc2.ko"));
    assert!(
        dwc2.contains("boot.availableKernelModules.dwc2"),
        "micros why names the list that brought dwc2:\n{dwc2}"
    );
    let usbnet = why("usbnet");
    assert!(
        usbnet.contains("drivers/net/usb"),
        "usbnet came with the directory of USB network adapters:\n{usbnet}"
    );
    let firmware = why("/usr/lib/firmware/brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt");
    assert!(
        firmware.contains("firmware for brcmfmac") && firmware.contains("firmware-brcm80211"),
        "{firmware}"
    );
    let other_chip = micros(
        &["why", "/usr/lib/firmware/brcm/brcmfmac4356-pcie.bin"],
        dir.path(),
    );
    assert!(
        !other_chip.status.success(),
        "a chip no Pi has stays out of the image:\n{}",
        text(&other_chip.stdout)
    );

    // Boot the card with a USB network adapter (with a Raspberry Pi MAC
    // address, so the kernel names it eth0 as it would the board's own),
    // a USB stick to plug in later, and QEMU's monitor.
    let (mut command, _) = card_qemu(
        dir.path(),
        "qemu-system-aarch64",
        "raspi3b",
        "kernel8.img",
        "bcm2837-rpi-3-b.dtb",
    );
    let stick = dir.path().join("stick.img");
    std::fs::write(&stick, vec![0u8; 8 << 20]).unwrap();
    let socket = dir.path().join("monitor.sock");
    let port = support::free_port();
    command
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,id=stick",
            stick.display()
        ))
        .args(["-usb", "-device", "usb-net,netdev=n0,mac=b8:27:eb:12:34:56"])
        .arg("-netdev")
        .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"))
        .arg("-monitor")
        .arg(format!("unix:{},server,nowait", socket.display()));
    let mut vm = Vm::start_command(command);
    let answer = vm.poll(Duration::from_secs(420), || {
        ssh(
            port,
            keys.path(),
            "ip -4 -o addr show dev eth0; cat /proc/modules; echo LOADED; cat /run/micros/modules",
        )
    });
    let Some(answer) = answer else {
        panic!(
            "the Pi never answered SSH on its USB adapter:\n{}",
            shown(&vm.console())
        );
    };
    let console = vm.console();
    assert!(
        answer.contains("inet 10.0.2.15/24"),
        "eth0 got its address from QEMU's DHCP server:\n{answer}"
    );
    let (modules, loaded) = answer.split_once("LOADED").unwrap();
    let names: Vec<&str> = modules
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for driver in ["dwc2", "usbnet"] {
        assert!(names.contains(&driver), "{driver} is loaded:\n{modules}");
    }
    assert!(
        names.contains(&"cdc_ether") || names.contains(&"rndis_host"),
        "the adapter's driver is loaded:\n{modules}"
    );
    assert!(
        loaded.contains("usb:v0525pA4A2"),
        "/run/micros/modules names the device a module was loaded for:\n{loaded}"
    );
    let coldplug = console
        .lines()
        .find(|l| l.contains("micros: coldplug loaded"))
        .unwrap_or_else(|| panic!("stage 1 coldplugged:\n{}", shown(&console)));
    eprintln!("figure: raspi3b: {coldplug}");
    eprintln!(
        "figure: raspi3b: modules loaded at boot: {}",
        names.join(" ")
    );

    // A USB stick plugged into the running Pi.
    let before = ssh(port, keys.path(), "ls /sys/block").unwrap_or_default();
    assert!(!before.contains("sda"), "no stick yet:\n{before}");
    let said = monitor(&socket, "device_add usb-storage,drive=stick,id=stick0");
    let stick_seen = vm.poll(Duration::from_secs(180), || {
        ssh(
            port,
            keys.path(),
            "cat /sys/block/sda/size 2>/dev/null && grep -E '^(usb_storage|sd_mod) ' /proc/modules",
        )
        .filter(|out| out.contains("usb_storage"))
    });
    let Some(stick_seen) = stick_seen else {
        panic!(
            "the stick never became a block device (monitor said {said:?}):\n{}",
            shown(&vm.console())
        );
    };
    assert_eq!(
        stick_seen.lines().next(),
        Some("16384"),
        "sda is the 8 MiB stick:\n{stick_seen}"
    );
}

/// An x86_64 guest with a second adapter, vmxnet3, which no profile names
/// (Debian's cloud kernel has no e1000 or rtl8139).
fn second_adapter(blacklist: bool) -> (String, String) {
    let dir = project(&format!(
        r#"  {{
    networking.interfaces.eth1 = {{ dhcp = true }},
    boot.blacklistedKernelModules.vmxnet3 = {blacklist},
    runit.services.adapters = {{
      oneshot = true,
      command = "sh -c 'i=0; while [ $i -lt 60 ] && ! ip -4 -o addr show dev eth1 2>/dev/null | grep -q inet; do i=$((i+1)); sleep 0.5; done; echo ADAPTERS $(ls /sys/class/net) MODULES $(cut -d\" \" -f1 /proc/modules) PCI $(cat /sys/bus/pci/devices/*/vendor) ADDRESS $(ip -4 -o addr show dev eth1 2>/dev/null | cut -d\" \" -f7) END'",
    }},
  }}"#
    ));
    build(dir.path(), "result");
    let booted = boot(
        dir.path(),
        &[
            "-netdev",
            "user,id=n1,net=10.0.3.0/24",
            "-device",
            "vmxnet3,netdev=n1",
        ],
        " END",
        Duration::from_secs(180),
    );
    let line = booted
        .console
        .lines()
        .find(|l| l.starts_with("ADAPTERS"))
        .unwrap_or_else(|| panic!("no marker:\n{}", shown(&booted.console)))
        .to_owned();
    (line, booted.console)
}

#[test]
fn needs_network_and_qemu_an_adapter_no_profile_names_comes_up_unless_blacklisted() {
    let (line, console) = second_adapter(false);
    assert!(
        line.contains(" eth1 ") && line.contains("vmxnet3"),
        "vmxnet3 was loaded for its device and eth1 exists: {line}"
    );
    assert!(
        line.contains("ADDRESS 10.0.3.15/24"),
        "eth1 got an address: {line}\n{}",
        shown(&console)
    );
    if let Some(coldplug) = console
        .lines()
        .find(|l| l.contains("micros: coldplug loaded"))
    {
        eprintln!("figure: x86_64: {coldplug}");
    }

    let (line, console) = second_adapter(true);
    assert!(
        line.contains("0x15ad"),
        "the VMware adapter is on the PCI bus: {line}"
    );
    assert!(
        !line.contains("vmxnet3") && !line.contains(" eth1 "),
        "a blacklisted driver is not loaded although its device is present: {line}\n{}",
        shown(&console)
    );
}
