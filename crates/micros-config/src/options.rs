//! The option declarations of the built-in modules: their paths, types,
//! docs and defaults, read from Nickel's field metadata.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::nickel::{Location, Session, LIBRARY_ROOT};
use crate::Error;

/// One declared option.
#[derive(Debug, Clone, Serialize)]
pub struct OptionDoc {
    /// The dotted path, e.g. `networking.hostName`.
    pub name: String,
    /// The contract(s), as written in the module (`types.Port`, `Bool`).
    #[serde(rename = "type")]
    pub type_: String,
    /// The default (for the default platform, where it depends on another option).
    pub default: Option<serde_json::Value>,
    pub description: String,
    /// The built-in module file that declares it, e.g. `networking.ncl`.
    pub declared_in: String,
}

impl OptionDoc {
    /// Is this option a set of names (`types.Set`, a record of booleans)?
    pub fn is_set(&self) -> bool {
        self.type_ == "types.Set"
    }
}

/// All declared options, by path.
#[derive(Debug, Clone)]
pub struct Options {
    pub options: BTreeMap<String, OptionDoc>,
}

impl Options {
    /// Reads the declarations from the built-in library.
    pub fn load() -> Result<Options, Error> {
        let mut session = Session::for_source(
            "<options>",
            "let micros = import \"micros\" in { options = micros.options, defaults = (micros.system { modules = [] }).config }",
        );
        let internal = |diagnostics: crate::nickel::Diagnostics| Error::Library {
            diagnostics: diagnostics.0,
        };
        let main = session.main_value().map_err(internal)?;
        let root = session.whnf(main).map_err(internal)?;
        let fields = session.fields(&root);
        let field = |name: &str| {
            fields
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.value.clone())
                .expect("options and defaults")
        };
        let defaults = session.export_json(field("defaults")).map_err(internal)?;
        let declarations = session.whnf(field("options")).map_err(internal)?;
        let mut options = BTreeMap::new();
        walk(
            &mut session,
            declarations,
            &mut Vec::new(),
            &defaults,
            &mut options,
        )
        .map_err(internal)?;
        Ok(Options { options })
    }

    /// Is `path` a declared option?
    pub fn is_option(&self, path: &str) -> bool {
        self.options.contains_key(path)
    }

    /// Is `path` a namespace holding options (`networking`, `boot.initrd`)?
    pub fn is_namespace(&self, path: &str) -> bool {
        let prefix = format!("{path}.");
        path.is_empty() || self.options.keys().any(|name| name.starts_with(&prefix))
    }

    /// The declared option closest to the unknown `path`, if any is close.
    pub fn closest(&self, path: &str) -> Option<&str> {
        let candidates = self.options.keys().flat_map(|name| {
            // Namespaces are candidates too: `netwrking` → `networking`.
            let parts: Vec<&str> = name.split('.').collect();
            (1..=parts.len()).map(move |n| parts[..n].join("."))
        });
        let mut best: Option<(f64, String)> = None;
        for candidate in candidates {
            let score = strsim::jaro_winkler(&candidate.to_lowercase(), &path.to_lowercase());
            if score > 0.85 && best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, candidate));
            }
        }
        best.and_then(|(_, name)| {
            self.options
                .get_key_value(&name)
                .map(|(k, _)| k.as_str())
                .or_else(|| {
                    self.options
                        .keys()
                        .find(|k| k.starts_with(&format!("{name}.")))
                        .map(|k| &k[..name.len()])
                })
        })
    }
}

fn walk(
    session: &mut Session,
    record: nickel_lang_core::eval::value::NickelValue,
    path: &mut Vec<String>,
    defaults: &serde_json::Value,
    out: &mut BTreeMap<String, OptionDoc>,
) -> Result<(), crate::nickel::Diagnostics> {
    for field in session.fields(&record) {
        path.push(field.name.clone());
        match field.value {
            // A namespace: a record of further declarations.
            Some(value) => {
                let value = session.whnf(value)?;
                walk(session, value, path, defaults, out)?;
            }
            None => {
                let name = path.join(".");
                let default = path
                    .iter()
                    .try_fold(defaults, |value, key| value.get(key))
                    .cloned();
                out.insert(
                    name.clone(),
                    OptionDoc {
                        name,
                        type_: field.contracts.join(" | "),
                        default,
                        description: field.doc.unwrap_or_default().trim().to_owned(),
                        declared_in: module_name(field.position.as_ref()),
                    },
                );
            }
        }
        path.pop();
    }
    Ok(())
}

fn module_name(position: Option<&Location>) -> String {
    match position {
        Some(location) => location
            .file
            .strip_prefix(LIBRARY_ROOT)
            .map(|f| f.trim_start_matches('/'))
            .unwrap_or(&location.file)
            .to_owned(),
        None => "<unknown>".to_owned(),
    }
}
