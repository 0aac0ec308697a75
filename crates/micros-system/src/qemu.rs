//! How a built system boots under QEMU: the arguments, the `run-vm` script
//! `micros build` writes, and the Debian package that provides QEMU.
use micros_config::model::{Config, Platform};

/// The QEMU binary for a platform and the Debian package providing it.
pub fn emulator(platform: Platform) -> (&'static str, &'static str) {
    match platform {
        Platform::X86_64 => ("qemu-system-x86_64", "qemu-system-x86"),
        Platform::Aarch64 => ("qemu-system-aarch64", "qemu-system-arm"),
        Platform::Armv7l | Platform::Armv6l => ("qemu-system-arm", "qemu-system-arm"),
        Platform::Riscv64 => ("qemu-system-riscv64", "qemu-system-misc"),
    }
}

/// QEMU's arguments, with the artifacts in `dir` (a path or a shell
/// expression such as `"$dir"`), before the kernel command line.
pub fn arguments(config: &Config, dir: &str) -> Vec<String> {
    let qemu = &config.virtualisation.qemu;
    let mut args: Vec<String> = vec!["-accel".into(), "tcg".into()];
    match config.platform.host {
        Platform::Aarch64 => args.extend([
            "-M".into(),
            "virt".into(),
            "-cpu".into(),
            "cortex-a57".into(),
        ]),
        Platform::Armv7l | Platform::Armv6l => args.extend(["-M".into(), "virt".into()]),
        Platform::Riscv64 => args.extend(["-M".into(), "virt".into()]),
        Platform::X86_64 => {}
    }
    args.extend([
        "-m".into(),
        qemu.memory.to_string(),
        "-smp".into(),
        qemu.cores.to_string(),
        "-nographic".into(),
        "-no-reboot".into(),
    ]);
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
    let forwards: String = qemu
        .forward_ports
        .iter()
        .map(|f| format!(",hostfwd={}:127.0.0.1:{}-:{}", f.protocol, f.host, f.guest))
        .collect();
    args.extend([
        "-netdev".into(),
        format!("user,id=net0{forwards}"),
        "-device".into(),
        "virtio-net-pci,netdev=net0".into(),
    ]);
    args.extend(qemu.extra_args.iter().cloned());
    args
}

/// The `run-vm` script: boots the system next to it, passing its own
/// arguments on to QEMU.
pub fn run_vm_script(config: &Config) -> String {
    let (binary, package) = emulator(config.platform.host);
    let args: Vec<String> = arguments(config, "$dir")
        .into_iter()
        .map(|a| {
            if a.contains("$dir") {
                format!("\"{a}\"")
            } else {
                crate::runit::shell_quote(&a)
            }
        })
        .collect();
    format!(
        "#!/bin/sh\n# Boots this MicrOS system in QEMU (software emulation); written by `micros build`.\n\
         # The serial console is this terminal; power the guest off (or press Ctrl-a x) to quit.\n\
         dir=$(dirname \"$(readlink -f \"$0\")\")\n\
         command -v {binary} >/dev/null || {{ echo \"run-vm: {binary} is missing: install the Debian package {package}\" >&2; exit 1; }}\n\
         exec {binary} {} -append \"$(cat \"$dir/cmdline\")\" \"$@\"\n",
        args.join(" ")
    )
}
