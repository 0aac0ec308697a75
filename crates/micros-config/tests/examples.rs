//! Every configuration in `examples/` evaluates, and the seed's means what
//! the seed meant.
mod common;

use micros_config::model::Platform;

#[test]
fn every_example_evaluates() {
    let dir = common::workspace().join("examples");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "ncl") {
            if let Err(error) = micros_config::evaluate(&path) {
                panic!("{} does not evaluate:\n{error}", path.display());
            }
            count += 1;
        }
    }
    assert!(count >= 4, "expected the examples, found {count}");
}

#[test]
fn the_seed_example_is_an_armv7l_system_for_pi_1_and_2() {
    let path = common::workspace().join("examples/seed-rpi.ncl");
    let evaluation = micros_config::evaluate(&path).expect("seed-rpi.ncl evaluates");
    let config = &evaluation.config;
    assert_eq!(config.platform.host, Platform::Armv7l);
    assert_eq!(config.platform.host.debian_arch(), "armhf");
    assert_eq!(config.platform.build, Platform::X86_64);
    assert!(config.hardware.raspberry_pi.rpi1);
    assert!(config.hardware.raspberry_pi.rpi2);
    assert!(!config.hardware.raspberry_pi.rpi3);
    assert_eq!(config.boot.kernel.package, "linux-image-armmp");
    // The seed's `raspi-firmware` is Debian's package, which the card's boot
    // partition gets its firmware from.
    assert_eq!(config.hardware.raspberry_pi.firmware, None);
    assert!(config.environment.packages["raspi-firmware"]);
    // Nothing in the module asks for them: the base system is part of every
    // system, as it was of every not-os system.
    assert!(config.system.base.enable);
    assert!(config.environment.packages["busybox-static"]);
    assert!(config.environment.packages["runit"]);
    // A Pi 1 cannot run armv7l userland: the user is told how to build for it.
    assert!(
        evaluation
            .warnings
            .iter()
            .any(|w| w.contains("rpi1") && w.contains("armv6l-linux")),
        "warnings: {:?}",
        evaluation.warnings
    );
}

/// The module of the seed's README (`lib.microsSystem { modules = [ … ] }`),
/// as the seed wrote it.
const SEED_MODULE: &str = r#"
      not-os.rpi1 = true;
      not-os.rpi2 = true;

      system.build.rpi-firmware = raspi-firmware;

      nixpkgs.hostPlatform = {system = "armv7l-linux";};
      nixpkgs.buildPlatform = {system = "x86_64-linux";};
"#;

/// A module's option lines with Nix's syntax written as Nickel's: `;` ends
/// a definition where Nickel has `,`, and a record's last `;` has no
/// counterpart. Spaces and blank lines do not matter.
fn definitions(module: &str) -> Vec<String> {
    module
        .lines()
        .map(|line| line.split_whitespace().collect::<String>())
        .filter(|line| !line.is_empty())
        .map(|line| line.replace(';', ",").replace(",}", "}"))
        .collect()
}

#[test]
fn the_seed_example_is_the_seeds_module_and_nothing_else() {
    let path = common::workspace().join("examples/seed-rpi.ncl");
    let source = std::fs::read_to_string(&path).expect("seed-rpi.ncl");
    // The code, without the comments that quote the seed.
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    // The only module in the list is the seed's, with nothing added.
    let (_, list) = code.split_once("modules = [").expect("a module list");
    let (list, _) = list.rsplit_once(']').expect("the list's end");
    let list = list.trim();
    let module = list
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("one record module, nothing else:\n{list}"));
    assert_eq!(definitions(module), definitions(SEED_MODULE));
    // `raspi-firmware` is bound, as the seed's package set bound it, to
    // Debian's package.
    assert!(
        code.contains("let raspi-firmware = micros.pkgs.raspi-firmware in"),
        "{code}"
    );
}

#[test]
fn the_qemu_example_uses_the_cloud_kernel_and_virtio() {
    let path = common::workspace().join("examples/qemu.ncl");
    let config = micros_config::evaluate(&path)
        .expect("qemu.ncl evaluates")
        .config;
    assert_eq!(config.boot.kernel.package, "linux-image-cloud-amd64");
    assert_eq!(config.boot.console, ["ttyS0,115200"]);
    assert!(config.boot.initrd.available_kernel_modules["virtio_blk"]);
    assert!(config.environment.packages["busybox-static"]);
    assert!(config.environment.packages["runit"]);
}

#[test]
fn the_starter_config_evaluates() {
    // `micros init` writes this file.
    let path = common::workspace().join("examples/starter.ncl");
    let config = micros_config::evaluate(&path)
        .expect("starter.ncl evaluates")
        .config;
    assert_eq!(config.networking.host_name, "my-device");
}

#[test]
fn seed_aliases_accept_plain_strings_too() {
    let config =
        common::evaluate(r#"{ nixpkgs.hostPlatform = "aarch64-linux", not-os.rpi2 = false }"#)
            .config;
    assert_eq!(config.platform.host, Platform::Aarch64);
    assert_eq!(config.boot.kernel.package, "linux-image-arm64");
}

#[test]
fn the_firmware_options_take_debians_package_or_a_directory() {
    let pi = r#"platform.host = "armv7l-linux", hardware.raspberryPi.rpi2 = true"#;
    for firmware in [
        "hardware.raspberryPi.firmware = micros.pkgs.raspi-firmware",
        "system.build.rpi-firmware = micros.pkgs.raspi-firmware",
        "hardware.raspberryPi.firmware = null",
    ] {
        let config = common::evaluate(&format!("{{ {pi}, {firmware} }}")).config;
        assert_eq!(config.hardware.raspberry_pi.firmware, None, "{firmware}");
        assert!(config.environment.packages["raspi-firmware"], "{firmware}");
    }
    let config = common::evaluate(&format!(
        r#"{{ {pi}, system.build.rpi-firmware = "./firmware" }}"#
    ))
    .config;
    assert_eq!(
        config.hardware.raspberry_pi.firmware.as_deref(),
        Some("./firmware")
    );
    assert!(!config.environment.packages.contains_key("raspi-firmware"));
    let message =
        common::error(r#"{ hardware.raspberryPi.firmware = { package = "firmware-brcm80211" } }"#);
    assert!(
        message.contains("expected a directory (a string), or `micros.pkgs.raspi-firmware`"),
        "{message}"
    );
}

#[test]
fn the_library_is_embedded_whole() {
    let on_disk = walk(&common::workspace().join("modules"));
    let embedded: Vec<String> = micros_config::library_files()
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(on_disk, embedded);
    for (name, source) in micros_config::library_files() {
        let disk = std::fs::read_to_string(common::workspace().join("modules").join(name))
            .expect("module file");
        assert_eq!(&disk, source, "{name} is stale in the binary");
    }
}

fn walk(root: &std::path::Path) -> Vec<String> {
    fn go(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                go(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "ncl") {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out
}
