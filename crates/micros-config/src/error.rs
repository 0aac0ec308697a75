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

    #[error("the configuration failed {} assertion{}:\n{}", messages.len(), if messages.len() == 1 { "" } else { "s" }, messages.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Assertions { messages: Vec<String> },

    #[error("{} does not evaluate to a system\nhint: a configuration ends with `micros.system {{ modules = [ ... ] }}` (run `micros init` for a starting point)", path.display())]
    NotASystem { path: PathBuf },

    #[error("the evaluated configuration does not fit MicrOS's typed model at `{path}`: {message}\nhint: this is a bug in MicrOS's modules, please report it")]
    Model { path: String, message: String },

    #[error("the built-in module library failed to evaluate (a bug in MicrOS):\n{diagnostics}")]
    Library { diagnostics: String },
}
