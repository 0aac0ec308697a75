//! systemd units as runit services: `runit.services.<name>.fromUnit =
//! "mosquitto.service"` runs what the package's unit says how to run.
//!
//! A unit file is package data: its words reach the run script only
//! through [`crate::shell`], its names and paths are checked, and a
//! directive the conversion cannot honour is a warning naming it (or an
//! error, where ignoring it would change what runs: `Type=forking`
//! without a `command` of one's own, `DynamicUser=yes`, an unknown
//! specifier).
use std::collections::BTreeMap;

use micros_config::model::{EnvName, Service, ServiceName, UserName};

use crate::runit::{Before, Unit};
use crate::shell::quote;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("runit.services.{service}: set `command`, or `fromUnit` to a package's systemd unit")]
    NoCommand { service: String },
    #[error(
        "runit.services.{service}.fromUnit: `{unit}` is not a unit name (like `mosquitto.service`)"
    )]
    BadName { service: String, unit: String },
    #[error("runit.services.{service}.fromUnit: no package in the image ships {unit} (looked in /usr/lib/systemd/system)\nhint: add the package that ships it to environment.packages")]
    Missing { service: String, unit: String },
    #[error("runit.services.{service}.fromUnit: {unit}: {message}")]
    Unsupported {
        service: String,
        unit: String,
        message: String,
    },
}

/// Where packages put their units (Debian's /lib/systemd/system, under
/// merged /usr).
pub const UNIT_DIRECTORY: &str = "/usr/lib/systemd/system";

/// One `Key=value` of a unit, with its section.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    section: String,
    key: String,
    value: String,
}

/// The directives of a unit file, in order (continuation lines joined,
/// comments dropped).
fn directives(text: &str) -> Vec<Directive> {
    let mut found = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines().take(10_000) {
        let line = raw.trim();
        if pending.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let whole = whole.trim();
        if let Some(name) = whole.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = whole.split_once('=') {
            found.push(Directive {
                section: section.clone(),
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }
    found
}

/// Splits a unit's command line or list into words, as systemd does:
/// whitespace separates, "double" and 'single' quotes group, a backslash
/// escapes. `None` for an unbalanced quote.
fn words(value: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        q if q == c => break,
                        '\\' if c == '"' => current.push(chars.next()?),
                        other => current.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                current.push(chars.next()?);
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Some(words)
}

/// Directives that mean nothing under runit, dropped without a word.
const IGNORED: &[&str] = &[
    "Description",
    "Documentation",
    "DefaultDependencies",
    "Before",
    "PartOf",
    "ReloadPropagatedFrom",
    "Alias",
    "WantedBy",
    "RequiredBy",
    "Also",
    "DefaultInstance",
    "PIDFile",
    "RemainAfterExit",
    "RestartSec",
    "RestartPreventExitStatus",
    "SuccessExitStatus",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "StartLimitIntervalSec",
    "StartLimitInterval",
    "StartLimitBurst",
    "NotifyAccess",
    "KillMode",
    "KillSignal",
    "SendSIGKILL",
    "ExecReload",
    "SyslogIdentifier",
    "StandardOutput",
    "StandardError",
    "RuntimeDirectoryPreserve",
];

/// Converts the unit `unit` (its text) for `runit.services.<service>`.
/// `converted` maps the other converted units to their services, for
/// `After=`/`Requires=`. Returns the service and its warnings.
pub fn convert(
    service_name: &str,
    unit: &str,
    text: &str,
    service: &Service,
    converted: &BTreeMap<String, ServiceName>,
) -> Result<(Unit, Vec<String>), UnitError> {
    let unsupported = |message: String| UnitError::Unsupported {
        service: service_name.to_owned(),
        unit: unit.to_owned(),
        message,
    };
    let mut warnings = Vec::new();
    let mut warn = |message: String| warnings.push(format!("{unit}: {message}"));
    let mut sandboxing: Vec<String> = Vec::new();
    let mut exec_start: Vec<Vec<String>> = Vec::new();
    // `ExecStart=!…`/`+…`: as root, whatever `User=` says (the daemon drops
    // its privileges itself; `User=` still owns its directories).
    let mut main_as_root = false;
    let mut before: Vec<Before> = Vec::new();
    let mut user = None;
    let mut group = None;
    let mut environment = BTreeMap::new();
    let mut environment_files = Vec::new();
    let mut working_directory = None;
    let mut kind = "simple".to_owned();
    let mut restart = "no".to_owned();
    let mut after = Vec::new();
    let mut directories: Vec<(String, Vec<String>)> = Vec::new();
    let mut modes: BTreeMap<String, u32> = BTreeMap::new();
    let stem = unit.rsplit_once('.').map_or(unit, |(stem, _)| stem);
    let specifiers = |word: &str| -> Result<String, UnitError> {
        let mut out = String::new();
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('n') => out.push_str(unit),
                Some('N') | Some('p') => out.push_str(stem),
                Some('t') => out.push_str("/run"),
                Some('S') => out.push_str("/var/lib"),
                Some('L') => out.push_str("/var/log"),
                Some('C') => out.push_str("/var/cache"),
                other => {
                    return Err(unsupported(format!(
                        "the specifier %{} in `{word}` is not one MicrOS fills in",
                        other.map(String::from).unwrap_or_default()
                    )))
                }
            }
        }
        Ok(out)
    };

    for directive in directives(text) {
        let value = directive.value.as_str();
        let key = directive.key.as_str();
        match (directive.section.as_str(), key) {
            (_, k) if IGNORED.contains(&k) => {}
            ("Install", _) => {}
            ("Service", "ExecStart") if value.is_empty() => exec_start.clear(),
            ("Service", "ExecStart") => {
                let (_, as_root, words) = command_words(value, &specifiers, &unsupported)?;
                main_as_root = as_root;
                exec_start.push(words);
            }
            ("Service", "ExecStartPre") if value.is_empty() => before.clear(),
            ("Service", "ExecStartPre") => {
                let (may_fail, as_root, words) =
                    command_words(value, &specifiers, &unsupported)?;
                before.push(Before {
                    command: shell_words(&words),
                    as_root,
                    may_fail,
                });
            }
            ("Service", "Type") => kind = value.to_owned(),
            ("Service", "Restart") => restart = value.to_owned(),
            ("Service", "User") => {
                user = Some(UserName::parse(value).map_err(|_| {
                    unsupported(format!("User={value} is not a user name MicrOS takes"))
                })?)
            }
            ("Service", "Group") => {
                group = Some(UserName::parse(value).map_err(|_| {
                    unsupported(format!("Group={value} is not a group name MicrOS takes"))
                })?)
            }
            ("Service", "DynamicUser") if is_true(value) => {
                return Err(unsupported(
                    "DynamicUser=yes needs a user made at start; set runit.services.<name>.user to one of users.users".into(),
                ))
            }
            ("Service", "Environment") => {
                for pair in words(value).unwrap_or_default() {
                    match pair.split_once('=').map(|(k, v)| (EnvName::parse(k), v)) {
                        Some((Ok(name), value)) => {
                            environment.insert(name, value.to_owned());
                        }
                        _ => warn(format!("Environment `{pair}` is not NAME=value; left out")),
                    }
                }
            }
            ("Service", "EnvironmentFile") => {
                let (required, path) = match value.strip_prefix('-') {
                    Some(path) => (false, path),
                    None => (true, value),
                };
                if !micros_debian::maintscript::is_valid_path(path) {
                    return Err(unsupported(format!("EnvironmentFile={value} is not a plain absolute path")));
                }
                environment_files.push((path.to_owned(), required));
            }
            ("Service", "WorkingDirectory") => {
                let path = value.trim_start_matches('-');
                if !micros_debian::maintscript::is_valid_path(path) {
                    return Err(unsupported(format!(
                        "WorkingDirectory={value} is not a plain absolute path"
                    )));
                }
                working_directory = Some(path.to_owned());
            }
            ("Service", k @ ("RuntimeDirectory" | "StateDirectory" | "LogsDirectory" | "CacheDirectory" | "ConfigurationDirectory")) => {
                let names = words(value).unwrap_or_default();
                for name in &names {
                    if name.starts_with('/') || !micros_debian::maintscript::is_valid_path(&format!("/{name}")) {
                        return Err(unsupported(format!("{k}={name} is not a plain relative path")));
                    }
                }
                directories.push((k.to_owned(), names));
            }
            ("Service", k @ ("RuntimeDirectoryMode" | "StateDirectoryMode" | "LogsDirectoryMode" | "CacheDirectoryMode" | "ConfigurationDirectoryMode")) => {
                match u32::from_str_radix(value, 8) {
                    Ok(mode) if mode <= 0o7777 => {
                        modes.insert(k.trim_end_matches("Mode").to_owned(), mode);
                    }
                    _ => return Err(unsupported(format!("{k}={value} is not an octal mode"))),
                }
            }
            ("Unit", "After" | "Requires" | "Wants" | "BindsTo" | "Requisite") => {
                for other in value.split_whitespace() {
                    if let Some(service) = converted.get(other) {
                        if !after.contains(service) {
                            after.push(service.clone());
                        }
                    } else if key != "After" && key != "Wants" && !other.ends_with(".target") {
                        warn(format!("{key}={other}: not a unit another service runs (fromUnit); not waited for"));
                    }
                }
            }
            ("Service", k) if is_sandboxing(k) => {
                if !sandboxing.contains(&directive.key) {
                    sandboxing.push(directive.key.clone());
                }
            }
            (section, key) => warn(format!("[{section}] {key}= is not applied under runit")),
        }
    }

    if !sandboxing.is_empty() {
        warn(format!(
            "its sandboxing and limits are not applied under runit ({}=)",
            sandboxing.join("=, ")
        ));
    }
    let oneshot = match kind.as_str() {
        "oneshot" => true,
        "simple" | "exec" | "notify" | "notify-reload" | "idle" => false,
        "dbus" => {
            warn("Type=dbus: started without waiting for its bus name".into());
            false
        }
        "forking" if service.command.is_some() => false,
        "forking" => {
            // Known daemons' foreground flags; any other daemon is an error.
            let last = exec_start
                .last_mut()
                .ok_or_else(|| unsupported("it has no ExecStart=".into()))?;
            let how = match in_foreground(last) {
                Some(how) => how,
                None => {
                    let (variable, flag, how) = wrapper_in_foreground(last).ok_or_else(|| unsupported(
                        "Type=forking: the daemon puts itself in the background, where runsv cannot supervise it, and MicrOS does not know its foreground flag; set runit.services.<name>.command to its foreground form (its -f, -D or --nodaemon flag)".into(),
                    ))?;
                    let name = EnvName::parse(variable).expect("a valid name");
                    let value = environment
                        .get(&name)
                        .map_or(flag.to_owned(), |options: &String| {
                            format!("{options} {flag}")
                        });
                    environment.insert(name, value);
                    how
                }
            };
            warn(format!("Type=forking: run in the foreground ({how})"));
            false
        }
        other => return Err(unsupported(format!("Type={other} is not one MicrOS runs"))),
    };
    // Several ExecStart= lines: a one-shot's steps, in order.
    let command = match (service.command.clone(), exec_start.pop()) {
        (Some(command), _) => command,
        (None, Some(last)) => {
            if !exec_start.is_empty() && !oneshot {
                return Err(unsupported(
                    "several ExecStart= lines, but it is not Type=oneshot".into(),
                ));
            }
            for step in exec_start {
                before.push(Before {
                    command: shell_words(&step),
                    as_root: false,
                    may_fail: false,
                });
            }
            shell_words(&last)
        }
        (None, None) => return Err(unsupported("it has no ExecStart=".into())),
    };
    let directories = directories
        .into_iter()
        .flat_map(|(kind, names)| {
            let (base, default_mode) = match kind.as_str() {
                "RuntimeDirectory" => ("/run", 0o755),
                "StateDirectory" => ("/var/lib", 0o755),
                "LogsDirectory" => ("/var/log", 0o755),
                "CacheDirectory" => ("/var/cache", 0o755),
                _ => ("/etc", 0o755),
            };
            let mode = modes.get(&kind).copied().unwrap_or(default_mode);
            names
                .into_iter()
                .map(move |name| (format!("{base}/{name}"), mode))
        })
        .collect();

    // What the configuration sets wins over the unit.
    let mut merged_environment = environment;
    merged_environment.extend(service.environment.clone());
    for other in &service.after {
        if !after.contains(other) {
            after.push(other.clone());
        }
    }
    let unit_value = Unit {
        command,
        user: service
            .user
            .clone()
            .or(user)
            .unwrap_or_else(|| UserName::parse("root").expect("a valid name")),
        group: service.group.clone().or(group),
        environment: merged_environment,
        environment_files,
        working_directory: service
            .working_directory
            .clone()
            .or(working_directory)
            .unwrap_or_else(|| "/".to_owned()),
        after,
        ready: service.ready.clone(),
        oneshot: service.oneshot.unwrap_or(oneshot),
        restart: oneshot || restart != "no",
        main_as_root: main_as_root && service.command.is_none() && service.user.is_none(),
        log: service.log.clone(),
        directories,
        before,
    };
    Ok((unit_value, warnings))
}

/// systemd's sandboxing and resource limits: runit has none, and their
/// absence leaves a daemon less confined, not running differently. Said
/// in one warning.
fn is_sandboxing(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "NoNewPrivileges",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "CapabilityBoundingSet",
        "AmbientCapabilities",
        "KeyringMode",
        "ReadWritePaths",
        "ReadOnlyPaths",
        "InaccessiblePaths",
        "DevicePolicy",
        "DeviceAllow",
        "RemoveIPC",
        "UMask",
        "Nice",
        "OOMScoreAdjust",
        "IOSchedulingClass",
        "IOSchedulingPriority",
        "CPUSchedulingPolicy",
        "TasksMax",
        "MemoryMax",
        "MemoryHigh",
        "CPUQuota",
    ];
    EXACT.contains(&key)
        || [
            "Protect",
            "Private",
            "Restrict",
            "SystemCall",
            "IPAddress",
            "Limit",
            "ProcSubset",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

fn is_true(value: &str) -> bool {
    matches!(value, "yes" | "true" | "1" | "on")
}

/// Debian's wrappers that start a forking daemon with options from an
/// environment variable: the variable and the daemon's foreground flag.
/// (dnsmasq's unit runs `/usr/share/dnsmasq/systemd-helper exec`, which
/// passes `$DNSMASQ_OPTS` to dnsmasq.)
fn wrapper_in_foreground(words: &[String]) -> Option<(&'static str, &'static str, &'static str)> {
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["/usr/share/dnsmasq/systemd-helper", "exec"] => Some((
            "DNSMASQ_OPTS",
            "--keep-in-foreground",
            "DNSMASQ_OPTS=--keep-in-foreground for dnsmasq's systemd-helper",
        )),
        _ => None,
    }
}

/// Rewrites a forking daemon's command line to keep it in the foreground,
/// for daemons whose flag MicrOS knows; says how, or `None`.
fn in_foreground(words: &mut Vec<String>) -> Option<&'static str> {
    // The daemon itself, not a wrapper of the same name (an init script).
    let first = words.first()?;
    if !["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"]
        .iter()
        .any(|dir| first.starts_with(dir))
    {
        return None;
    }
    let program = first.rsplit('/').next()?.to_owned();
    let add = |words: &mut Vec<String>, flag: &str| {
        if !words.iter().any(|w| w == flag) {
            words.insert(1, flag.to_owned());
        }
    };
    let (flag, how) = match program.as_str() {
        "nginx" => {
            // `-g 'daemon on; …'` in Debian's unit: say off instead.
            match words.iter_mut().find(|w| w.contains("daemon on;")) {
                Some(directives) => *directives = directives.replace("daemon on;", "daemon off;"),
                None => {
                    words.push("-g".into());
                    words.push("daemon off;".into());
                }
            }
            return Some("nginx -g 'daemon off;'");
        }
        "chronyd" => ("-n", "chronyd -n"),
        "rsyslogd" => ("-n", "rsyslogd -n"),
        "sshd" => ("-D", "sshd -D"),
        "dnsmasq" => ("-k", "dnsmasq -k"),
        "ntpd" => ("-n", "ntpd -n"),
        "named" => ("-f", "named -f"),
        "cron" => ("-f", "cron -f"),
        "php-fpm8.4" | "php-fpm" => ("-F", "php-fpm -F"),
        _ => return None,
    };
    add(words, flag);
    Some(how)
}

/// A unit's words (after its specifiers) as one shell command line.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| shell_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A unit's command line: its prefixes (`-` may fail, `+` or `!` as root)
/// and its words, specifiers filled in. As shell ([`shell_words`]) each is
/// one word, with `$NAME` (split, as systemd does) and `${NAME}` (one word)
/// taken from the environment.
fn command_words(
    value: &str,
    specifiers: &dyn Fn(&str) -> Result<String, UnitError>,
    unsupported: &dyn Fn(String) -> UnitError,
) -> Result<(bool, bool, Vec<String>), UnitError> {
    let mut rest = value;
    let (mut may_fail, mut as_root) = (false, false);
    while let Some(c) = rest.chars().next().filter(|c| "-@:+!".contains(*c)) {
        match c {
            '-' => may_fail = true,
            '+' | '!' => as_root = true,
            '@' => {
                return Err(unsupported(format!(
                    "`{value}` names argv[0] separately (@), which MicrOS does not do"
                )))
            }
            _ => {}
        }
        rest = &rest[1..];
    }
    let words =
        words(rest).ok_or_else(|| unsupported(format!("`{value}` has an unbalanced quote")))?;
    if words.is_empty() {
        return Err(unsupported(format!("`{value}` has no command")));
    }
    let words = words
        .iter()
        .map(|word| specifiers(word))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((may_fail, as_root, words))
}

/// One word of a unit's command line as shell: literal text quoted, and
/// environment references kept (a word that is just `$NAME` splits, as
/// in systemd; `${NAME}` inside a word stays one word). `$$` is a `$`.
fn shell_word(word: &str) -> String {
    if let Some(name) = word.strip_prefix('$') {
        if EnvName::parse(name).is_ok() {
            return format!("${name}");
        }
    }
    let mut out = String::new();
    let mut literal = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
            continue;
        }
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.split_once('}') {
                Some((name, tail)) if EnvName::parse(name).is_ok() => (name, tail),
                _ => {
                    literal.push('$');
                    rest = after;
                    continue;
                }
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            match EnvName::parse(&after[..end]) {
                Ok(_) => (&after[..end], &after[end..]),
                Err(_) => {
                    literal.push('$');
                    rest = after;
                    continue;
                }
            }
        };
        if !literal.is_empty() {
            out.push_str(&quote(&std::mem::take(&mut literal)));
        }
        out.push_str(&format!("\"${{{name}}}\""));
        rest = tail;
    }
    literal.push_str(rest);
    if !literal.is_empty() || out.is_empty() {
        out.push_str(&quote(&literal));
    }
    out
}

/// Every enabled service as runit runs it: fromUnit services converted
/// from the unit `read_unit` finds, the others with their defaults. Returns
/// the services and the conversion's warnings, each naming its service.
///
/// `unit_names` are the units in the image: a one-shot unit the package
/// ships to prepare another (openssh-server's `sshd-keygen.service`, with
/// `Before=ssh.service` and `WantedBy=ssh.service`) runs, as root, before
/// the converted unit's own commands.
pub fn resolve(
    services: &BTreeMap<ServiceName, Service>,
    unit_names: &[String],
    read_unit: impl Fn(&str) -> Option<String>,
) -> Result<(BTreeMap<ServiceName, Unit>, Vec<String>), UnitError> {
    let converted: BTreeMap<String, ServiceName> = services
        .iter()
        .filter(|(_, s)| s.enable)
        .filter_map(|(name, s)| Some((s.from_unit.clone()?, name.clone())))
        .collect();
    let mut units = BTreeMap::new();
    let mut warnings = Vec::new();
    for (name, service) in services.iter().filter(|(_, s)| s.enable) {
        let Some(unit) = &service.from_unit else {
            let unit = Unit::from_service(service).ok_or_else(|| UnitError::NoCommand {
                service: name.to_string(),
            })?;
            units.insert(name.clone(), unit);
            continue;
        };
        let plain = !unit.is_empty()
            && unit.len() <= 255
            && unit.contains('.')
            && unit
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@._-:".contains(c))
            && !unit.starts_with('.');
        if !plain {
            return Err(UnitError::BadName {
                service: name.to_string(),
                unit: unit.clone(),
            });
        }
        let text = read_unit(unit).ok_or_else(|| UnitError::Missing {
            service: name.to_string(),
            unit: unit.clone(),
        })?;
        let (mut converted_unit, mut unit_warnings) =
            convert(name, unit, &text, service, &converted)?;
        // A daemon on the D-Bus system bus starts once the bus runs.
        let on_the_bus = directives(&text).iter().any(|d| {
            d.section == "Service" && ((d.key == "Type" && d.value == "dbus") || d.key == "BusName")
        });
        if on_the_bus {
            let bus = services
                .iter()
                .find(|(other, s)| other.as_str() == "dbus" && s.enable)
                .map(|(other, _)| other.clone())
                .ok_or_else(|| UnitError::Unsupported {
                    service: name.to_string(),
                    unit: unit.clone(),
                    message: "it is a D-Bus service and needs the system bus; set services.dbus.enable = true".into(),
                })?;
            if !converted_unit.after.contains(&bus) {
                converted_unit.after.push(bus);
            }
        }
        let mut first = Vec::new();
        let answers_to = names(unit, &text);
        for companion in unit_names {
            if companion == unit {
                continue;
            }
            let Some(companion_text) = read_unit(companion) else {
                continue;
            };
            if !prepares(&companion_text, &answers_to) {
                continue;
            }
            match companion_commands(name, companion, &companion_text, &converted) {
                Ok((commands, companion_warnings)) => {
                    unit_warnings.push(format!(
                        "{companion} runs first, as root (it is Before= and WantedBy= {unit})"
                    ));
                    unit_warnings.extend(companion_warnings);
                    first.extend(commands);
                }
                Err(why) => unit_warnings.push(format!("{companion} is not run first: {why}")),
            }
        }
        first.append(&mut converted_unit.before);
        converted_unit.before = first;
        warnings.extend(
            unit_warnings
                .into_iter()
                .map(|w| format!("runit.services.{name}.fromUnit: {w}")),
        );
        units.insert(name.clone(), converted_unit);
    }
    Ok((units, warnings))
}

/// The names a unit answers to: its own and its `Alias=`es.
fn names(unit: &str, text: &str) -> Vec<String> {
    let mut names = vec![unit.to_owned()];
    for directive in directives(text) {
        if directive.section == "Install" && directive.key == "Alias" {
            names.extend(directive.value.split_whitespace().map(str::to_owned));
        }
    }
    names
}

/// Whether the unit `text` is a one-shot that orders itself before one
/// of `names` (a unit's own and its aliases) and is wanted by it.
fn prepares(text: &str, names: &[String]) -> bool {
    let directives = directives(text);
    let listed = |section: &str, keys: &[&str]| {
        directives.iter().any(|d| {
            d.section == section
                && keys.contains(&d.key.as_str())
                && d.value
                    .split_whitespace()
                    .any(|v| names.iter().any(|n| n == v))
        })
    };
    let oneshot = directives
        .iter()
        .any(|d| d.section == "Service" && d.key == "Type" && d.value == "oneshot");
    oneshot && listed("Unit", &["Before"]) && listed("Install", &["WantedBy", "RequiredBy"])
}

/// A preparing unit's commands, run as root before the service's: its
/// `ExecStartPre` and `ExecStart` lines. It must run as root with nothing
/// else set (no `User=`, environment or working directory), since its
/// commands run in the service's run script.
fn companion_commands(
    service: &str,
    companion: &str,
    text: &str,
    converted: &BTreeMap<String, ServiceName>,
) -> Result<(Vec<Before>, Vec<String>), String> {
    let blank = Service {
        enable: true,
        from_unit: Some(companion.to_owned()),
        command: None,
        user: None,
        group: None,
        environment: BTreeMap::new(),
        working_directory: None,
        after: Vec::new(),
        ready: None,
        oneshot: None,
        log: micros_config::model::Log {
            target: micros_config::model::LogTarget::Console,
            max_size: 0,
            max_files: 0,
        },
    };
    let (unit, warnings) =
        convert(service, companion, text, &blank, converted).map_err(|e| e.to_string())?;
    if unit.user.as_str() != "root"
        || !unit.environment.is_empty()
        || !unit.environment_files.is_empty()
        || unit.working_directory != "/"
        || !unit.directories.is_empty()
    {
        return Err("it sets a user, environment, working directory or directories".into());
    }
    let mut commands: Vec<Before> = unit
        .before
        .into_iter()
        .map(|before| Before {
            as_root: true,
            ..before
        })
        .collect();
    commands.push(Before {
        command: unit.command,
        as_root: true,
        may_fail: false,
    });
    Ok((commands, warnings))
}

#[cfg(test)]
mod tests;
