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
];

/// Where each kind of name is written in a configuration.
struct Place {
    option: &'static str,
    module: fn(&str) -> String,
    rust: fn(&str) -> bool,
}

fn quoted(name: &str) -> String {
    serde_json::to_string(name).unwrap()
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
        rust: |name| ServiceName::parse(name).is_ok(),
    },
    Place {
        option: "users.users",
        module: |name| {
            format!(
                "{{ users.users = {{ {} = {{ uid = 1000, group = \"users\" }} }} }}",
                quoted(name)
            )
        },
        rust: |name| UserName::parse(name).is_ok(),
    },
    Place {
        option: "runit.services.web.user",
        module: |name| {
            format!(
                "{{ runit.services.web = {{ command = \"true\", user = {} }} }}",
                quoted(name)
            )
        },
        rust: |name| UserName::parse(name).is_ok(),
    },
    Place {
        option: "runit.services.web.environment",
        module: |name| {
            format!(
                "{{ runit.services.web = {{ command = \"true\", environment = {{ {} = \"x\" }} }} }}",
                quoted(name)
            )
        },
        rust: |name| EnvName::parse(name).is_ok(),
    },
    Place {
        option: "environment.variables",
        module: |name| {
            format!(
                "{{ environment.variables = {{ {} = \"x\" }} }}",
                quoted(name)
            )
        },
        rust: |name| EnvName::parse(name).is_ok(),
    },
    Place {
        option: "boot.kernel.sysctl",
        module: |name| format!("{{ boot.kernel.sysctl = {{ {} = 1 }} }}", quoted(name)),
        rust: |name| SysctlKey::parse(name).is_ok(),
    },
];

#[test]
fn the_modules_and_the_rust_types_accept_the_same_names() {
    for place in PLACES {
        for name in NAMES {
            let config = common::system(&(place.module)(name));
            let nickel = micros_config::evaluate(&config.path);
            let rust = (place.rust)(name);
            match nickel {
                Ok(_) => assert!(
                    rust,
                    "{}: Nickel accepts {name:?}, Rust does not",
                    place.option
                ),
                Err(error) => {
                    let message = error.to_string();
                    assert!(
                        !rust,
                        "{}: Rust accepts {name:?}, Nickel does not:\n{message}",
                        place.option
                    );
                    assert!(
                        message.starts_with(&format!("in option `{}", place.option)),
                        "{}: {name:?}: {message}",
                        place.option
                    );
                }
            }
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
