//! The Nickel declarations and the typed Rust model describe the same
//! options: nothing declared is ignored by Rust, nothing Rust reads is
//! undeclared.
mod common;

/// A configuration that gives every collection option at least one entry,
/// so that element types (users, services, interfaces, …) are compared too.
const EVERYTHING: &str = r#"
  micros.profiles.minimal,
  micros.profiles.qemu,
  {
    environment.etc."motd".text = "hi",
    environment.etc."issue".source = "./issue",
    environment.files."/usr/local/bin/app" = { source = "./app", mode = "0755", user = "app", group = "app" },
    environment.variables.EDITOR = "vi",
    boot.kernel.sysctl = { "net.ipv4.ip_forward" = 1, "kernel.panic" = "10", "vm.overcommit_memory" = true },
    boot.kernelParams = ["quiet"],
    boot.kernelModules.loop = true,
    boot.initrd.kernelModules.ext4 = true,
    runit.services.app = { command = "app", after = ["dhcp"], ready = "test -e /run/app", log.target = "file", environment.A = "b", group = "app" },
    services.sshd.enable = true,
    services.getty.enable = true,
    services.ntpd.enable = true,
    services.syslog.enable = true,
    users.users.app = { uid = 1000, extraGroups = ["wheel"], hashedPassword = "$6$x$y", authorizedKeys = ["ssh-ed25519 AAAA test"] },
    users.groups.app.gid = 1000,
    networking.interfaces.eth1.ipv4 = { address = "10.0.3.15/24", gateway = "10.0.3.2" },
    networking.nameservers = ["10.0.2.3"],
    fileSystems."/data" = { device = "LABEL=data", fsType = "ext4" },
    virtualisation.qemu.forwardPorts = [{ host = 2222, guest = 22 }],
    virtualisation.qemu.extraArgs = ["-nographic"],
    image.disk.size = "1G",
    packages.exclude.perl-base = "only maintainer scripts need it",
    packages.source.mirror = "http://mirror.invalid/debian",
    hardware.raspberryPi.firmware = "./firmware",
  },
"#;

#[test]
fn the_typed_model_round_trips_every_option() {
    for modules in ["{}", EVERYTHING] {
        let evaluation = common::evaluate(modules);
        let reserialised = serde_json::to_value(&evaluation.config).expect("serialise");
        assert_json_equal(&evaluation.json, &reserialised, "");
    }
}

#[test]
fn every_declared_option_has_a_type_a_description_and_a_value() {
    let options = micros_config::Options::load().expect("options load");
    assert!(
        options.options.len() > 60,
        "only {} options",
        options.options.len()
    );
    for option in options.options.values() {
        assert!(!option.type_.is_empty(), "{} has no type", option.name);
        assert!(
            !option.description.is_empty(),
            "{} has no description",
            option.name
        );
        assert!(
            option.default.is_some(),
            "{} has no default: every option needs one (null for unset)",
            option.name
        );
        assert!(
            option.declared_in.ends_with(".ncl"),
            "{} declared in {}",
            option.name,
            option.declared_in
        );
    }
    for name in [
        "platform.host",
        "services.sshd.enable",
        "runit.services",
        "nixpkgs.hostPlatform",
        "not-os.rpi1",
        "system.build.rpi-firmware",
    ] {
        assert!(options.is_option(name), "{name} is not declared");
    }
}

fn assert_json_equal(nickel: &serde_json::Value, rust: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (nickel, rust) {
        (Value::Object(left), Value::Object(right)) => {
            for key in left.keys() {
                assert!(
                    right.contains_key(key),
                    "`{path}.{key}` is declared in Nickel but the Rust model drops it"
                );
            }
            for key in right.keys() {
                assert!(
                    left.contains_key(key),
                    "`{path}.{key}` is in the Rust model but no module declares it"
                );
            }
            for (key, value) in left {
                assert_json_equal(value, &right[key], &format!("{path}.{key}"));
            }
        }
        (Value::Array(left), Value::Array(right)) => {
            assert_eq!(left.len(), right.len(), "`{path}` lengths differ");
            for (index, (l, r)) in left.iter().zip(right).enumerate() {
                assert_json_equal(l, r, &format!("{path}[{index}]"));
            }
        }
        (Value::Number(left), Value::Number(right)) => {
            assert_eq!(left.as_f64(), right.as_f64(), "`{path}` differs");
        }
        (left, right) => assert_eq!(left, right, "`{path}` differs"),
    }
}
