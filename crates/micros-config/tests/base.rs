//! The base system (busybox and runit) is part of every system unless a
//! module leaves it out, as not-os's base was.
mod common;

use micros_config::model::enabled;

#[test]
fn every_system_has_busybox_and_runit_without_asking() {
    let config = common::evaluate(r#"{ networking.hostName = "bare" }"#).config;
    assert!(config.system.base.enable);
    assert_eq!(
        enabled(&config.environment.packages),
        ["busybox-static", "runit"]
    );
    // runit's maintainer-script helpers are excluded along with it.
    assert!(config.packages.exclude.contains_key("sysuser-helper"));
}

#[test]
fn the_base_can_be_left_out() {
    let config = common::evaluate(
        r#"{ system.base.enable = false, environment.packages = micros.lib.set ["my-init"] }"#,
    )
    .config;
    assert!(!config.system.base.enable);
    assert_eq!(enabled(&config.environment.packages), ["my-init"]);
    assert!(!config.packages.exclude.contains_key("sysuser-helper"));
    // A plain definition wins over the minimal profile, which only says
    // `default`.
    let config =
        common::evaluate(r#"micros.profiles.minimal, { system.base.enable = false }"#).config;
    assert!(enabled(&config.environment.packages).is_empty());
}

#[test]
fn one_base_package_can_be_swapped() {
    let config = common::evaluate(
        r#"{ environment.packages = { busybox-static = false, busybox = true } }"#,
    )
    .config;
    assert_eq!(enabled(&config.environment.packages), ["busybox", "runit"]);
}

#[test]
fn the_minimal_profile_changes_nothing_any_more() {
    for modules in [
        "{}",
        r#"micros.profiles.qemu, { services.sshd.enable = true }"#,
        r#"{ platform.host = "armv7l-linux", hardware.raspberryPi.rpi2 = true }"#,
    ] {
        let without = common::evaluate(modules).json;
        let with = common::evaluate(&format!("micros.profiles.minimal, {modules}")).json;
        assert_eq!(with, without, "{modules}");
    }
}

#[test]
fn the_option_is_documented() {
    let options = micros_config::Options::load().expect("options load");
    let option = &options.options["system.base.enable"];
    assert_eq!(option.type_, "Bool");
    assert_eq!(option.default, Some(serde_json::Value::Bool(true)));
    assert_eq!(option.declared_in, "base.ncl");
    for needed in ["busybox-static", "runit", "/usr/bin/sh"] {
        assert!(
            option.description.contains(needed),
            "{}",
            option.description
        );
    }
}
