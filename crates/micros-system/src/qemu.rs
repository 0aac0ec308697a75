//! How a built system boots under QEMU: the arguments, the `run-vm` script
//! `micros build` writes, and the Debian package that provides QEMU.
use micros_config::model::{Config, Overlay, Platform};

use crate::shell;

/// The QEMU binary for a platform and the Debian package providing it.
pub fn emulator(platform: Platform) -> (&'static str, &'static str) {
    match platform {
        Platform::X86_64 => ("qemu-system-x86_64", "qemu-system-x86"),
        Platform::Aarch64 => ("qemu-system-aarch64", "qemu-system-arm"),
        Platform::Armv7l | Platform::Armv6l => ("qemu-system-arm", "qemu-system-arm"),
        Platform::Riscv64 => ("qemu-system-riscv64", "qemu-system-misc"),
    }
}

/// How QEMU runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation.
    Tcg,
}

/// QEMU's arguments, with the artifacts in `dir` (a path or a shell
/// expression such as `"$dir"`), before the kernel command line.
pub fn arguments(config: &Config, dir: &str) -> Vec<String> {
    let data = (config.boot.overlay == Overlay::Data).then_some("$data");
    arguments_with(config, dir, Accel::Tcg, data)
}

/// The data disk `micros run` and `run-vm` attach for `boot.overlay =
/// "data"`, relative to the working directory (`$MICROS_DATA_DISK`
/// overrides it), and its size in bytes.
pub fn data_disk(config: &Config) -> Option<(String, u64)> {
    (config.boot.overlay == Overlay::Data).then(|| {
        (
            format!("{}-data.img", config.networking.host_name),
            micros_config::model::size_bytes(&config.virtualisation.qemu.data_disk_size),
        )
    })
}

/// The disk a system built for updates boots from under `micros run` and
/// `run-vm`: the device's own copy, relative to the working directory
/// (`$MICROS_DISK` overrides it), flashed from the build's `disk.img` on
/// first run and kept across runs, as a device keeps its disk. An update
/// (`micros deploy`) changes it; deleting it flashes afresh.
pub fn device_disk(config: &Config) -> Option<String> {
    config
        .system
        .update
        .enable
        .then(|| format!("{}-disk.img", config.networking.host_name))
}

/// QEMU's arguments for a system built for updates: U-Boot from `dir`
/// boots the A/B disk `disk`, the i6300esb watchdog resets the machine
/// when it fires, and a reboot restarts the machine instead of ending
/// QEMU (a rollback is a reboot).
pub fn disk_arguments(config: &Config, dir: &str, disk: &str) -> Vec<String> {
    let mut args = machine(config, Accel::Tcg);
    let disk = if disk.starts_with('$') {
        disk.to_owned()
    } else {
        disk.replace(',', ",,")
    };
    args.extend([
        "-bios".into(),
        format!("{dir}/u-boot.bin"),
        "-drive".into(),
        format!("file={disk},format=raw,if=none,id=disk"),
        "-device".into(),
        "virtio-blk-pci,drive=disk".into(),
        "-device".into(),
        "i6300esb".into(),
        "-action".into(),
        "watchdog=reset".into(),
    ]);
    args.extend(network(config));
    args
}

/// The machine, its memory and console, for `accel`.
fn machine(config: &Config, accel: Accel) -> Vec<String> {
    let qemu = &config.virtualisation.qemu;
    let mut args: Vec<String> = vec![
        "-accel".into(),
        if accel == Accel::Kvm {
            "kvm".into()
        } else {
            "tcg".into()
        },
    ];
    match config.platform.host {
        Platform::Aarch64 => args.extend([
            "-M".into(),
            "virt".into(),
            "-cpu".into(),
            "cortex-a57".into(),
        ]),
        // A 32-bit kernel cannot reach the PCIe window above 4 GiB.
        Platform::Armv7l | Platform::Armv6l => {
            args.extend(["-M".into(), "virt,highmem=off".into()])
        }
        Platform::Riscv64 => args.extend(["-M".into(), "virt".into()]),
        Platform::X86_64 => {}
    }
    args.extend([
        "-m".into(),
        qemu.memory.to_string(),
        "-smp".into(),
        qemu.cores.to_string(),
        "-nographic".into(),
    ]);
    args
}

/// The user network with the forwarded ports, and the user's extra
/// arguments, last.
fn network(config: &Config) -> Vec<String> {
    let qemu = &config.virtualisation.qemu;
    let forwards: String = qemu
        .forward_ports
        .iter()
        .map(|f| format!(",hostfwd={}:127.0.0.1:{}-:{}", f.protocol, f.host, f.guest))
        .collect();
    let mut args: Vec<String> = vec![
        "-netdev".into(),
        format!("user,id=net0{forwards}"),
        "-device".into(),
        "virtio-net-pci,netdev=net0".into(),
    ];
    args.extend(qemu.extra_args.iter().cloned());
    args
}

/// QEMU's arguments; `data` is the data disk file, if one is attached.
pub fn arguments_with(config: &Config, dir: &str, accel: Accel, data: Option<&str>) -> Vec<String> {
    let mut args = machine(config, accel);
    args.push("-no-reboot".into());
    args.extend([
        "-kernel".into(),
        format!("{dir}/kernel"),
        "-initrd".into(),
        format!("{dir}/initrd"),
    ]);
    args.extend([
        "-drive".into(),
        format!("file={dir}/root.squashfs,format=raw,if=none,id=root,readonly=on"),
        "-device".into(),
        "virtio-blk-pci,drive=root".into(),
    ]);
    // The second virtio disk, /dev/vdb.
    if let Some(data) = data {
        let file = if data.starts_with('$') {
            format!("file={data}")
        } else {
            format!("file={}", data.replace(',', ",,"))
        };
        args.extend([
            "-drive".into(),
            format!("{file},format=raw,if=none,id=data"),
            "-device".into(),
            "virtio-blk-pci,drive=data".into(),
        ]);
    }
    args.extend(network(config));
    args
}

/// The `run-vm` script: boots the system next to it, passing its own
/// arguments on to QEMU.
pub fn run_vm_script(config: &Config) -> String {
    let (binary, package) = emulator(config.platform.host);
    if let Some(name) = device_disk(config) {
        let mut args = disk_arguments(config, "$dir", "$disk");
        let user = args.split_off(args.len() - config.virtualisation.qemu.extra_args.len());
        let args: Vec<String> = args
            .iter()
            .map(|a| shell::quote_with_variables(a, &["dir", "disk"]))
            .chain(user.iter().map(|a| shell::quote(a)))
            .collect();
        return format!(
            "#!/bin/sh\n# Boots this MicrOS system's A/B disk in QEMU (software emulation) with U-Boot;\n\
             # written by `micros build`. The serial console is this terminal; press Ctrl-a x to quit.\n\
             dir=$(dirname \"$(readlink -f \"$0\")\")\n\
             command -v {binary} >/dev/null || {{ echo \"run-vm: {binary} is missing: install the Debian package {package}\" >&2; exit 1; }}\n\
             # The device's own disk: flashed from disk.img on first run, then kept\n\
             # (updates change it; delete it to flash afresh).\n\
             disk=${{MICROS_DISK:-$PWD/{name}}}\n\
             [ -e \"$disk\" ] || {{ cp \"$dir/disk.img\" \"$disk\" && chmod u+w \"$disk\" && echo \"run-vm: flashed $disk from disk.img\" >&2; }} || exit 1\n\
             exec {binary} {} \"$@\"\n",
            args.join(" ")
        );
    }
    // MicrOS's own arguments name the artifacts by `$dir` and the data
    // disk by `$data`, which the script expands; the user's extraArgs,
    // which come last, are passed on as written.
    let mut args = arguments(config, "$dir");
    let user = args.split_off(args.len() - config.virtualisation.qemu.extra_args.len());
    let args: Vec<String> = args
        .iter()
        .map(|a| shell::quote_with_variables(a, &["dir", "data"]))
        .chain(user.iter().map(|a| shell::quote(a)))
        .collect();
    let data = match data_disk(config) {
        Some((name, size)) => format!(
            "# Changes are kept on this disk file (boot.overlay = \"data\"); it is\n\
             # created, empty, on first run and prepared by the guest at first boot.\n\
             data=${{MICROS_DATA_DISK:-$PWD/{name}}}\n\
             [ -e \"$data\" ] || {{ truncate -s {size} \"$data\" && echo \"run-vm: created the data disk $data\" >&2; }} || exit 1\n"
        ),
        None => String::new(),
    };
    format!(
        "#!/bin/sh\n# Boots this MicrOS system in QEMU (software emulation); written by `micros build`.\n\
         # The serial console is this terminal; power the guest off (or press Ctrl-a x) to quit.\n\
         dir=$(dirname \"$(readlink -f \"$0\")\")\n\
         command -v {binary} >/dev/null || {{ echo \"run-vm: {binary} is missing: install the Debian package {package}\" >&2; exit 1; }}\n\
         {data}exec {binary} {} -append \"$(cat \"$dir/cmdline\")\" \"$@\"\n",
        args.join(" ")
    )
}

/// Whether KVM can boot this kernel: `/dev/kvm` must be usable, the guest
/// must be the host's architecture, and the kernel must actually print its
/// banner under KVM within a few seconds (a nested KVM may accept the
/// guest and then run nothing). Returns the choice and why, for the user.
pub fn probe_kvm(config: &Config, dir: &std::path::Path) -> (Accel, String) {
    use std::io::Read;
    let native = matches!(
        (config.platform.host, std::env::consts::ARCH),
        (Platform::X86_64, "x86_64") | (Platform::Aarch64, "aarch64")
    );
    if !native {
        return (
            Accel::Tcg,
            "software emulation (TCG): the guest is not this machine's architecture".into(),
        );
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return (
            Accel::Tcg,
            "software emulation (TCG): /dev/kvm is not available".into(),
        );
    }
    let (binary, _) = emulator(config.platform.host);
    let cmdline = std::fs::read_to_string(dir.join("cmdline")).unwrap_or_default();
    let Ok(mut child) = std::process::Command::new(binary)
        .args(arguments_with(
            config,
            &dir.display().to_string(),
            Accel::Kvm,
            None,
        ))
        .args(["-append", cmdline.trim()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return (
            Accel::Tcg,
            "software emulation (TCG): QEMU could not start with KVM".into(),
        );
    };
    let mut stdout = child.stdout.take().expect("piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
            if seen.windows(13).any(|w| w == b"Linux version") {
                let _ = sender.send(());
                break;
            }
        }
    });
    let booted = receiver
        .recv_timeout(std::time::Duration::from_secs(5))
        .is_ok();
    let _ = child.kill();
    let _ = child.wait();
    if booted {
        (Accel::Kvm, "KVM".into())
    } else {
        (Accel::Tcg, "software emulation (TCG): KVM is present but cannot boot this kernel (the kernel printed nothing under it)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run-vm`, run with a stand-in for QEMU that prints its arguments:
    /// the artifacts' directory and the data disk may hold any character,
    /// and the user's extraArgs arrive exactly as written.
    #[test]
    fn run_vm_passes_every_argument_as_one_word() {
        let place = tempfile::tempdir().unwrap();
        let extra = ["-name", "it's $dir `touch x` $(touch y) \"z\" a\nb"];
        std::fs::write(
            place.path().join("system.ncl"),
            format!(
                "let micros = import \"micros\" in micros.system {{ modules = [ micros.profiles.qemu, {{ boot.overlay = \"data\", virtualisation.qemu.extraArgs = {} }} ] }}",
                serde_json::to_string(&extra).unwrap()
            ),
        )
        .unwrap();
        let config = micros_config::evaluate(&place.path().join("system.ncl"))
            .unwrap()
            .config;
        let result = place.path().join("it's a $(dir) `x`");
        let bin = place.path().join("bin");
        for dir in [&result, &bin] {
            std::fs::create_dir(dir).unwrap();
        }
        let (binary, _) = emulator(config.platform.host);
        let executable = |path: std::path::PathBuf, text: String| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        executable(bin.join(binary), "#!/bin/sh\nprintf '<%s>' \"$@\"\n".into());
        executable(result.join("run-vm"), run_vm_script(&config));
        std::fs::write(result.join("cmdline"), "console=ttyS0").unwrap();
        let data = place.path().join("data $HOME 'disk'.img");
        let output = std::process::Command::new(result.join("run-vm"))
            .current_dir(place.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("MICROS_DATA_DISK", &data)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let printed = String::from_utf8(output.stdout).unwrap();
        let dir = result.display();
        for word in [
            format!("<-kernel><{dir}/kernel>"),
            format!("<file={dir}/root.squashfs,format=raw,if=none,id=root,readonly=on>"),
            format!("<file={},format=raw,if=none,id=data>", data.display()),
            format!("<{}><{}><-append><console=ttyS0>", extra[0], extra[1]),
        ] {
            assert!(printed.contains(&word), "{word} in {printed}");
        }
        assert!(data.exists(), "run-vm creates the data disk it was given");
        assert!(!place.path().join("x").exists() && !place.path().join("y").exists());
    }
}
