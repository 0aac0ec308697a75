use std::path::PathBuf;

use crate::nickel::Location;

/// Why a configuration could not be evaluated. Every variant names the file
/// or the option involved and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the configuration {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Nickel's own diagnostics (type errors, conflicting definitions,
    /// syntax errors), with the option path when it could be found.
    #[error("{}{diagnostics}", option.as_ref().map(|o| format!("in option `{o}`:\n")).unwrap_or_default())]
    Nickel {
        option: Option<String>,
        diagnostics: String,
    },

    #[error(
        "unknown option `{option}`{}{}",
        location.as_ref().map(|l| format!("\n  --> {l}")).unwrap_or_default(),
        suggestion.as_ref().map(|s| format!("\nhint: did you mean `{s}`? (`micros options {s}` describes it)")).unwrap_or_else(|| "\nhint: `micros options` lists every option".to_owned())
    )]
    UnknownOption {
        option: String,
        location: Option<Location>,
        suggestion: Option<String>,
    },

    /// A list written where the option takes a set: merging it with the
    /// other modules' records fails before any contract could say so, and
    /// Nickel's own message names neither the option nor the set form.
    #[error(
        "in option `{option}`: expected a set (a record of booleans), found a list{}\nhint: write `{option} = micros.lib.set [{}]` or `{option} = {{ {} }}`; every module can add to a set, and any entry can be switched off with `false`",
        location.as_ref().map(|l| format!("\n  --> {l}")).unwrap_or_default(),
        set_names(names).iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
        set_names(names).iter().map(|n| format!("{} = true", field_name(n))).collect::<Vec<_>>().join(", ")
    )]
    ListForSet {
        option: String,
        location: Option<Location>,
        /// The list's names, when they are strings.
        names: Vec<String>,
    },

    #[error("the configuration failed {} assertion{}:\n{}", messages.len(), if messages.len() == 1 { "" } else { "s" }, messages.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Assertions { messages: Vec<String> },

    #[error("{} does not evaluate to a system\nhint: a configuration ends with `micros.system {{ modules = [ ... ] }}` (run `micros init` for a starting point)", path.display())]
    NotASystem { path: PathBuf },

    #[error("the evaluated configuration does not fit MicrOS's typed model at `{path}`: {message}\nhint: this is a bug in MicrOS's modules, please report it")]
    Model { path: String, message: String },

    #[error("the built-in module library failed to evaluate (a bug in MicrOS):\n{diagnostics}")]
    Library { diagnostics: String },
}

/// The names to show in a set's example: the user's own, else a placeholder.
fn set_names(names: &[String]) -> Vec<&str> {
    if names.is_empty() {
        vec!["name"]
    } else {
        names.iter().map(String::as_str).collect()
    }
}

/// `name` as a Nickel record field: bare when it is an identifier, quoted
/// otherwise (`"g++"`).
fn field_name(name: &str) -> String {
    let mut chars = name.chars();
    let bare = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''));
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}
