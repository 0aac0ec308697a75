//! Bad input stops with a message that names the option and the place.
mod common;

#[test]
fn a_type_error_names_the_option_and_both_places() {
    let message = common::error(r#"{ services.sshd.port = "twenty-two" }"#);
    assert!(
        message.starts_with("in option `services.sshd.port`:"),
        "{message}"
    );
    assert!(
        message.contains("expected a port number between 1 and 65535"),
        "{message}"
    );
    // Where the value was written, and where the option is declared.
    assert!(message.contains("system.ncl:4:"), "{message}");
    assert!(message.contains("services.ncl"), "{message}");
}

#[test]
fn conflicting_plain_definitions_show_both() {
    let message = common::error(
        r#"{ networking.hostName = "one" },
           { networking.hostName = "two" }"#,
    );
    assert!(
        message.starts_with("in option `networking.hostName`:"),
        "{message}"
    );
    assert!(message.contains("non mergeable"), "{message}");
    assert!(
        message.contains(r#""one""#) && message.contains(r#""two""#),
        "{message}"
    );
    // Both definitions are quoted, with their line numbers.
    assert!(message.contains("system.ncl:4:"), "{message}");
    assert!(
        message.contains(" 4 │ { networking.hostName = \"one\" }"),
        "{message}"
    );
    assert!(
        message.contains(" 5 │            { networking.hostName = \"two\" }"),
        "{message}"
    );
}

#[test]
fn a_failed_assertion_stops_with_its_message() {
    let message = common::error(
        r#"{ networking.interfaces.eth0 = { dhcp = true, ipv4.address = "10.0.2.15/24" } },
           fun config => { assertions = [{ assertion = false, message = "my own check failed" }] }"#,
    );
    assert!(message.contains("failed 2 assertions"), "{message}");
    assert!(
        message.contains("networking.interfaces.eth0: set either `dhcp = true` or a static"),
        "{message}"
    );
    assert!(message.contains("my own check failed"), "{message}");
}

#[test]
fn a_typo_is_an_unknown_option_with_a_suggestion() {
    let message = common::error(r#"{ networking.hostname = "demo" }"#);
    assert!(
        message.starts_with("unknown option `networking.hostname`"),
        "{message}"
    );
    assert!(message.contains("system.ncl:4:"), "{message}");
    assert!(
        message.contains("did you mean `networking.hostName`?"),
        "{message}"
    );
}

#[test]
fn an_unknown_namespace_is_reported_too() {
    let message = common::error(r#"{ netwroking.hostName = "demo" }"#);
    assert!(
        message.starts_with("unknown option `netwroking`"),
        "{message}"
    );
    assert!(message.contains("did you mean `networking`?"), "{message}");
}

#[test]
fn an_unknown_field_inside_a_service_is_a_contract_error() {
    let message =
        common::error(r#"{ runit.services.hello = { command = "true", onshot = true } }"#);
    assert!(message.contains("runit.services"), "{message}");
    assert!(message.contains("onshot"), "{message}");
}

#[test]
fn an_invalid_address_names_the_interface() {
    let message = common::error(r#"{ networking.interfaces.eth0.ipv4.address = "10.0.2.300/24" }"#);
    assert!(message.contains("networking.interfaces"), "{message}");
    assert!(
        message.contains("IPv4 address with a prefix length"),
        "{message}"
    );
}

#[test]
fn a_bad_platform_lists_the_accepted_ones() {
    let message = common::error(r#"{ platform.host = "mips-linux" }"#);
    assert!(message.contains("in option `platform.host`"), "{message}");
    assert!(
        message.contains("x86_64-linux, aarch64-linux, armv7l-linux, armv6l-linux, riscv64-linux"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_system_says_how_to_write_one() {
    let config = common::file("{ networking.hostName = \"demo\" }");
    let message = micros_config::evaluate(&config.path)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("does not evaluate to a system"),
        "{message}"
    );
    assert!(message.contains("micros.system"), "{message}");
}

#[test]
fn a_syntax_error_points_at_the_file() {
    let config =
        common::file("let micros = import \"micros\" in micros.system { modules = [ { a = } ] }");
    let message = micros_config::evaluate(&config.path)
        .unwrap_err()
        .to_string();
    assert!(message.contains("system.ncl:1:"), "{message}");
}

#[test]
fn a_missing_file_names_the_path() {
    let message = micros_config::evaluate(std::path::Path::new("/nonexistent/system.ncl"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("/nonexistent/system.ncl"), "{message}");
}

#[test]
fn bad_addresses_name_the_option() {
    let message = common::error(r#"{ networking.interfaces.eth0.ipv4.address = "10.0.2.15/33" }"#);
    assert!(
        message.starts_with("in option `networking.interfaces.eth0.ipv4.address`:"),
        "{message}"
    );
    assert!(
        message.contains("expected an IPv4 address with a prefix length"),
        "{message}"
    );
    let message = common::error(r#"{ networking.interfaces.eth0.ipv4.gateway = "10.0.2.256" }"#);
    assert!(
        message.starts_with("in option `networking.interfaces.eth0.ipv4.gateway`:"),
        "{message}"
    );
    let message = common::error(r#"{ networking.nameservers = ["1.1.1.1", "dns.example"] }"#);
    assert!(
        message.starts_with("in option `networking.nameservers`:"),
        "{message}"
    );
    assert!(message.contains("expected an IPv4 address"), "{message}");
    let message = common::error(r#"{ networking.hostName = "my_box" }"#);
    assert!(
        message.starts_with("in option `networking.hostName`:"),
        "{message}"
    );
    let message = common::error(r#"{ networking.interfaces."eth0 bad".dhcp = true }"#);
    assert!(
        message.starts_with("in option `networking.interfaces`:"),
        "{message}"
    );
    assert!(
        message.contains("\"eth0 bad\" is not an interface name"),
        "{message}"
    );
}

#[test]
fn a_data_overlay_needs_a_device() {
    let message = common::error(r#"{ boot.overlay = "data" }"#);
    assert!(
        message.contains("boot.overlay = \"data\" needs boot.dataDevice"),
        "{message}"
    );
}

#[test]
fn a_list_for_a_set_names_the_option_written_and_shows_the_set_form() {
    // The NixOS habit: a list. The base system adds to the same set, so
    // Nickel's merge fails before any contract could name the option.
    let message = common::error(r#"{ environment.packages = ["htop", "g++"] }"#);
    assert!(
        message.starts_with(
            "in option `environment.packages`: expected a set (a record of booleans), found a list\n"
        ),
        "{message}"
    );
    assert!(message.contains("system.ncl:4:"), "{message}");
    assert!(
        message.contains(r#"`environment.packages = micros.lib.set ["htop", "g++"]`"#),
        "{message}"
    );
    assert!(
        message.contains(r#"`environment.packages = { htop = true, "g++" = true }`"#),
        "{message}"
    );
    assert!(!message.contains("packages.exclude"), "{message}");
}

#[test]
fn every_set_option_says_so_wherever_the_list_is_written() {
    // A set some other module defines too, one nobody else does (so the
    // contract, not the merge, fails), in a function module and among
    // other modules.
    for (modules, option, line) in [
        (
            r#"micros.profiles.qemu, { boot.initrd.availableKernelModules = ["ext4"] }"#,
            "boot.initrd.availableKernelModules",
            4,
        ),
        (
            r#"{ networking.hostName = "box" },
           fun config => { boot.kernelModules = ["loop"] }"#,
            "boot.kernelModules",
            5,
        ),
        (
            r#"{ environment = { excludePaths = ["/usr/share/zoneinfo/**"] } }"#,
            "environment.excludePaths",
            4,
        ),
    ] {
        let message = common::error(modules);
        assert!(
            message.starts_with(&format!("in option `{option}`: expected a set")),
            "{message}"
        );
        assert!(
            message.contains(&format!("system.ncl:{line}:")),
            "{message}"
        );
        assert!(
            message.contains(&format!("`{option} = micros.lib.set [")),
            "{message}"
        );
    }
}

#[test]
fn a_list_that_is_not_at_fault_is_not_blamed() {
    // The list loses to a forced set, so the failure is elsewhere.
    let message = common::error(
        r#"{ environment.packages | default = ["htop"] },
           { environment.packages | force = { htop = true } },
           { services.sshd.port = "twenty-two" }"#,
    );
    assert!(
        message.starts_with("in option `services.sshd.port`:"),
        "{message}"
    );
}

#[test]
fn a_cron_job_is_checked_where_it_is_written() {
    let message = common::error(
        r#"{ services.cron.jobs.backup = { schedule = "every day", command = "true" } }"#,
    );
    assert!(
        message.starts_with("in option `services.cron.jobs.backup.schedule`"),
        "{message}"
    );
    assert!(
        message.contains("expected a cron schedule of five fields"),
        "{message}"
    );
    let message = common::error(
        r#"{ services.cron.jobs.backup = { schedule = "0 3 * * *", command = "true\n* * * * * reboot" } }"#,
    );
    assert!(
        message.starts_with("in option `services.cron.jobs.backup.command`"),
        "{message}"
    );
    let config = common::evaluate(
        r#"{ services.cron.jobs.backup = { schedule = "0 3 * * 1-5", command = "backup", user = "daemon" } }"#,
    )
    .config;
    assert_eq!(
        config.services["cron"]["enable"], true,
        "on when there is a job"
    );
    assert_eq!(
        config.environment.etc["crontabs/daemon"].text.as_deref(),
        Some("# Generated by MicrOS from services.cron.jobs.\n# backup\n0 3 * * 1-5 backup\n")
    );
    assert!(config.runit.services.contains_key("cron"));
}
