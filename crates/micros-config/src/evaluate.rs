//! From a configuration file to a checked, typed [`Config`].
use std::path::Path;

use nickel_lang_core::eval::value::NickelValue;

use crate::model::Config;
use crate::nickel::{Location, Session};
use crate::options::Options;
use crate::Error;

/// An evaluated configuration.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub config: Config,
    /// The same configuration as JSON, as `micros eval --json` prints it.
    pub json: serde_json::Value,
    /// Warnings the modules raised, for the user to read.
    pub warnings: Vec<String>,
}

/// Evaluates the configuration at `path` (a file ending in
/// `micros.system { ... }`) and checks it.
pub fn evaluate(path: &Path) -> Result<Evaluation, Error> {
    let options = Options::load()?;
    evaluate_with(path, &options)
}

/// [`evaluate`] with option declarations already loaded.
pub fn evaluate_with(path: &Path, options: &Options) -> Result<Evaluation, Error> {
    let mut session = Session::for_file(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let main = session.main_value().map_err(|diagnostics| Error::Nickel {
        option: None,
        diagnostics: diagnostics.0,
    })?;
    let json = match session.export_json(main.clone()) {
        Ok(json) => json,
        Err(diagnostics) => {
            if let Some(error) = list_for_a_set(path, options, &diagnostics.0) {
                return Err(error);
            }
            let option = locate_failure(path, &diagnostics.0);
            return Err(Error::Nickel {
                option,
                diagnostics: diagnostics.0,
            });
        }
    };

    let (Some(config), Some(assertions), Some(warnings)) = (
        json.get("config"),
        json.get("assertions"),
        json.get("warnings"),
    ) else {
        return Err(Error::NotASystem {
            path: path.to_owned(),
        });
    };

    if let Some(unknown) = unknown_option(config, options, "") {
        let location = field_location(&mut session, main, &unknown);
        let suggestion = options.closest(&unknown).map(str::to_owned);
        return Err(Error::UnknownOption {
            option: unknown,
            location,
            suggestion,
        });
    }

    let failed: Vec<String> = assertions
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a.get("assertion") == Some(&serde_json::Value::Bool(false)))
        .filter_map(|a| a.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .collect();
    if !failed.is_empty() {
        return Err(Error::Assertions { messages: failed });
    }

    let config_value = config.clone();
    let typed: Config =
        serde_path_to_error::deserialize(config_value.clone()).map_err(|err| Error::Model {
            path: err.path().to_string(),
            message: err.inner().to_string(),
        })?;
    let warnings = warnings
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    Ok(Evaluation {
        config: typed,
        json: config_value,
        warnings,
    })
}

/// The first path in `value` that no module declares.
fn unknown_option(value: &serde_json::Value, options: &Options, prefix: &str) -> Option<String> {
    let object = value.as_object()?;
    for (key, child) in object {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if options.is_option(&path) {
            continue;
        }
        if options.is_namespace(&path) {
            if let Some(found) = unknown_option(child, options, &path) {
                return Some(found);
            }
            continue;
        }
        return Some(path);
    }
    None
}

/// Finds the option whose evaluation fails, so that an error can name it.
/// Evaluation stops at the first error and Nickel names only the last field;
/// this probes the configuration field by field instead. Several options can
/// fail from one cause (a default computed from a broken option): the one
/// Nickel's message names wins.
///
/// A failed evaluation can leave thunks behind in a state that no longer
/// fails (a contract already consumed), so every probe after a failure runs
/// in a fresh session. This costs a few re-evaluations, only on errors.
fn locate_failure(path: &Path, diagnostics: &str) -> Option<String> {
    let mut failing = Vec::new();
    collect_failures(path, &mut Vec::new(), &mut failing);
    let named = failing.iter().find(|option| {
        let last = option.rsplit('.').next().unwrap_or(option);
        diagnostics.contains(&format!("`{last}`"))
    });
    named.or(failing.first()).cloned()
}

/// A list the user wrote where a set is expected (`environment.packages =
/// ["htop"]`, a NixOS habit), when that list is what evaluation stumbled on.
///
/// Nickel merges definitions before any contract runs, so the list meets
/// another module's record in a merge that fails with "non mergeable terms"
/// and names neither the option nor a way forward; the options that read
/// the broken set fail with it, so probing the merged configuration names
/// whichever is found first. The modules as written (`modules` beside
/// `config`) say which definition it is: every set-typed option each of
/// them defines is looked at, and a list is reported if Nickel's message
/// points at it. Turning the list into a set instead would need the module
/// rebuilt before the merge, which loses what a record module reads from
/// the final configuration.
fn list_for_a_set(file: &Path, options: &Options, diagnostics: &str) -> Option<Error> {
    let sets: Vec<&str> = options
        .options
        .values()
        .filter(|option| option.is_set())
        .map(|option| option.name.as_str())
        .collect();
    let (_, written) = modules_of(file)?;
    // A failed evaluation can leave thunks that no longer fail: each module
    // is looked at in a fresh session. One that cannot be evaluated alone
    // (a function module that reads the broken configuration) is skipped.
    for index in 0..written.len() {
        let Some((mut session, modules)) = modules_of(file) else {
            continue;
        };
        let Ok(module) = session.whnf(modules[index].clone()) else {
            continue;
        };
        for set in &sets {
            if let Some(error) = list_in_module(&mut session, &module, set, diagnostics) {
                return Some(error);
            }
        }
    }
    None
}

/// A fresh session and the configuration's modules as written, unevaluated.
fn modules_of(file: &Path) -> Option<(Session, Vec<NickelValue>)> {
    let mut session = Session::for_file(file).ok()?;
    let main = session.main_value().ok()?;
    let system = session.whnf(main).ok()?;
    let modules = session
        .fields(&system)
        .into_iter()
        .find(|f| f.name == "modules")?
        .value?;
    let modules = session.whnf(modules).ok()?;
    let elements = session.elements(&modules)?;
    Some((session, elements))
}

/// The [`Error::ListForSet`] for `option` if `module` defines it as a list
/// that `diagnostics` point at.
fn list_in_module(
    session: &mut Session,
    module: &NickelValue,
    option: &str,
    diagnostics: &str,
) -> Option<Error> {
    let mut record = module.clone();
    let mut field = None;
    for name in option.split('.') {
        let found = session
            .fields(&record)
            .into_iter()
            .find(|f| f.name == name)?;
        record = session.whnf(found.value.clone()?).ok()?;
        field = Some(found);
    }
    let list = record;
    let elements = session.elements(&list)?;
    // The list Nickel's message quotes, not one a higher priority overrode.
    let written = session.value_location(&list)?;
    if !diagnostics.contains(&written.to_string()) {
        return None;
    }
    let mut names = Vec::new();
    for element in elements {
        match session.export_json(element) {
            Ok(serde_json::Value::String(name)) => names.push(name),
            _ => {
                names.clear();
                break;
            }
        }
    }
    Some(Error::ListForSet {
        option: option.to_owned(),
        location: field.and_then(|f| f.position),
        names,
    })
}

/// A fresh session positioned at the record at `path` under `config`.
fn record_at(file: &Path, path: &[String]) -> Option<(Session, NickelValue)> {
    let mut session = Session::for_file(file).ok()?;
    let main = session.main_value().ok()?;
    let mut record = session.whnf(main).ok()?;
    for name in std::iter::once("config").chain(path.iter().map(String::as_str)) {
        let field = session
            .fields(&record)
            .into_iter()
            .find(|f| f.name == name)?;
        record = session.whnf(field.value?).ok()?;
    }
    Some((session, record))
}

fn collect_failures(file: &Path, path: &mut Vec<String>, out: &mut Vec<String>) {
    let Some((session, record)) = record_at(file, path) else {
        return;
    };
    let names: Vec<String> = session
        .fields(&record)
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut fresh = Some((session, record));
    let mut failed = Vec::new();
    for name in names {
        let (session, record) = match fresh.take() {
            Some(current) => current,
            None => match record_at(file, path) {
                Some(current) => current,
                None => return,
            },
        };
        let mut session = session;
        let value = session
            .fields(&record)
            .into_iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value);
        let ok = value.is_none_or(|value| session.export_json(value).is_ok());
        if ok {
            fresh = Some((session, record));
        } else {
            failed.push(name);
        }
    }
    for name in failed {
        path.push(name);
        // Descend even into an option: a record of records
        // (`networking.interfaces`) fails at the field the user wrote.
        let option = path.join(".");
        let before = out.len();
        collect_failures(file, path, out);
        if out.len() == before {
            out.push(option);
        }
        path.pop();
    }
}

/// Where the field at the dotted `option` path was written.
fn field_location(session: &mut Session, main: NickelValue, option: &str) -> Option<Location> {
    let mut record = session.whnf(main).ok()?;
    let mut position = None;
    for name in std::iter::once("config").chain(option.split('.')) {
        let field = session
            .fields(&record)
            .into_iter()
            .find(|f| f.name == name)?;
        position = field.position;
        record = session.whnf(field.value?).ok()?;
    }
    position
}
