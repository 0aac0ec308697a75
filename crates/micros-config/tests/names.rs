//! Names that become file names, passwd fields and shell words are checked
//! twice: by the modules' Nickel contracts, which name the option, and by
//! the Rust types the configuration is read into. Both must agree, and a
//! hostile name must stop the evaluation with the option in the message.
mod common;

use micros_config::names::{EnvName, ServiceName, SysctlKey, UserName};

/// Good and bad names for every kind; each kind accepts some of them.
const NAMES: &[&str] = &[
    "sshd",
    "dhcp-eth0",
    "www-data",
    "_apt",
    "Debian-exim",
    "LANG",
    "net.ipv4.ip_forward",
    "net/ipv4/conf/eth0.100/forwarding",
    "a.b",
    "0day",
    "",
    ".",
    "..",
    ".hidden",
    "-rf",
    "a/../../x",
    "net/../x",
    "a b",
    "a'b",
    "a\"b",
    "$(reboot)",
    "`reboot`",
    "a;b",
    "a\nb",
    "a:b",
    "A-B",
    "0day.d",
    "_LANG1",
    "net/ipv4/ip_forward",
    "net/../x",
];

/// The kinds of names, as `micros.lib.names` calls them, and their Rust
/// types.
const KINDS: &[(&str, fn(&str) -> bool)] = &[
    ("service", |name| ServiceName::parse(name).is_ok()),
    ("user", |name| UserName::parse(name).is_ok()),
    ("env", |name| EnvName::parse(name).is_ok()),
    ("sysctl", |name| SysctlKey::parse(name).is_ok()),
];

fn quoted(name: &str) -> String {
    serde_json::to_string(name).unwrap()
}

#[test]
fn the_modules_and_the_rust_types_accept_the_same_names() {
    // One evaluation: every rule applied to every name, as JSON in a file.
    let names = serde_json::to_string(NAMES).unwrap();
    let config = common::file(&format!(
        "let micros = import \"micros\" in
let names = {names} in
let verdicts = std.record.map (fun _kind rule => std.array.map rule.valid names) micros.lib.names in
micros.system {{ modules = [ {{ environment.etc.\"verdicts\".text = std.serialize 'Json verdicts }} ] }}"
    ));
    let evaluation = micros_config::evaluate(&config.path).unwrap();
    let text = evaluation.config.environment.etc["verdicts"]
        .text
        .clone()
        .unwrap();
    let verdicts: std::collections::BTreeMap<String, Vec<bool>> =
        serde_json::from_str(&text).unwrap();
    for (kind, rust) in KINDS {
        let nickel = &verdicts[*kind];
        for (name, nickel) in NAMES.iter().zip(nickel) {
            assert_eq!(
                *nickel,
                rust(name),
                "{kind} {name:?}: Nickel says {nickel}, Rust says {}",
                rust(name)
            );
        }
    }
}

/// Where each kind of name is written in a configuration, a name the
/// option takes and one it refuses (that another kind of name takes, so a
/// contract for the wrong kind shows).
struct Place {
    option: &'static str,
    module: fn(&str) -> String,
    good: &'static str,
    bad: &'static str,
}

const PLACES: &[Place] = &[
    Place {
        option: "runit.services",
        module: |name| {
            format!(
                "{{ runit.services = {{ {} = {{ command = \"true\" }} }} }}",
                quoted(name)
            )
        },
        good: "0day.d",
        bad: "net/ipv4/ip_forward",
    },
    Place {
        option: "users.users",
        module: |name| {
            format!(
                "{{ users.users = {{ {} = {{ uid = 1000, group = \"users\" }} }} }}",
                quoted(name)
            )
        },
        good: "www-data",
        bad: "0day",
    },
    Place {
        option: "runit.services.web.user",
        module: |name| {
            format!(
                "{{ users.users = {{ {} = {{ uid = 1000, group = \"users\" }} }}, runit.services.web = {{ command = \"true\", user = {} }} }}",
                quoted(name),
                quoted(name)
            )
        },
        good: "Debian-exim",
        bad: "0day",
    },
    Place {
        option: "services.getty.autologinUser",
        module: |name| format!("{{ services.getty.autologinUser = {} }}", quoted(name)),
        good: "root",
        bad: "0day",
    },
    Place {
        option: "runit.services.web.environment",
        module: |name| {
            format!(
                "{{ runit.services.web = {{ command = \"true\", environment = {{ {} = \"x\" }} }} }}",
                quoted(name)
            )
        },
        good: "_LANG1",
        bad: "A-B",
    },
    Place {
        option: "environment.variables",
        module: |name| {
            format!(
                "{{ environment.variables = {{ {} = \"x\" }} }}",
                quoted(name)
            )
        },
        good: "LANG",
        bad: "a.b",
    },
    Place {
        option: "boot.kernel.sysctl",
        module: |name| format!("{{ boot.kernel.sysctl = {{ {} = 1 }} }}", quoted(name)),
        good: "net/ipv4/conf/eth0.100/forwarding",
        bad: "net/../x",
    },
];

#[test]
fn every_place_a_name_is_written_checks_it_and_names_the_option() {
    for place in PLACES {
        let config = common::system(&(place.module)(place.good));
        if let Err(error) = micros_config::evaluate(&config.path) {
            panic!("{}: {:?} is refused:\n{error}", place.option, place.good);
        }
        for bad in [place.bad, "$(reboot)", "a\nb"] {
            let config = common::system(&(place.module)(bad));
            let message = match micros_config::evaluate(&config.path) {
                Ok(_) => panic!("{}: {bad:?} is accepted", place.option),
                Err(error) => error.to_string(),
            };
            assert!(
                message.starts_with(&format!("in option `{}", place.option)),
                "{}: {bad:?}: {message}",
                place.option
            );
        }
    }
}

#[test]
fn a_hostile_name_is_named_in_the_error() {
    let message = common::error(r#"{ runit.services."$(reboot)" = { command = "true" } }"#);
    assert!(
        message.starts_with("in option `runit.services`"),
        "{message}"
    );
    assert!(
        message.contains("\"$(reboot)\" is not a service name"),
        "{message}"
    );
}
