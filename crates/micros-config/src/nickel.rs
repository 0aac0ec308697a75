//! Everything that touches `nickel-lang-core`: one evaluation session with the
//! module library mounted in memory, and a lazy walk over records that keeps
//! field metadata and source positions (which a JSON export loses).
//!
//! The library is mounted under a virtual directory that import resolution
//! searches after the importing file's own directory:
//!
//! ```text
//! /<micros>/
//! ├── micros              ← modules/micros.ncl, so `import "micros"` finds it
//! ├── lib/system.ncl      ← the fixpoint
//! ├── networking.ncl …    ← one file per built-in module
//! └── profiles/qemu.ncl …
//! ```
use std::path::{Path, PathBuf};

use nickel_lang_core::cache::{CacheHub, InputFormat, SourcePath};
use nickel_lang_core::error::report::{report_as_str, ColorOpt};
use nickel_lang_core::error::{Error as NickelError, IntoDiagnostics, NullReporter};
use nickel_lang_core::eval::cache::CacheImpl;
use nickel_lang_core::eval::value::NickelValue;
use nickel_lang_core::eval::{VirtualMachine, VmContext};
use nickel_lang_core::files::FileId;
use nickel_lang_core::position::TermPos;
use nickel_lang_core::serialize::{self, ExportFormat};
use nickel_lang_core::term::RuntimeContract;

use crate::library;

/// Where the module library is mounted (it never touches the disk).
pub const LIBRARY_ROOT: &str = "/<micros>";

/// One field of an evaluated record.
pub struct FieldInfo {
    pub name: String,
    /// The field's value, unevaluated; `None` for a declaration without value.
    pub value: Option<NickelValue>,
    pub doc: Option<String>,
    /// The contracts and type annotations, as written.
    pub contracts: Vec<String>,
    /// Where the field's name was written.
    pub position: Option<Location>,
}

/// A place in a source file, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

pub struct Session {
    context: VmContext<CacheHub, CacheImpl>,
    main: FileId,
}

/// A Nickel failure, already rendered as diagnostics with source snippets.
#[derive(Debug)]
pub struct Diagnostics(pub String);

impl Session {
    fn with_library() -> CacheHub {
        let mut cache = CacheHub::new();
        for (name, source) in library::FILES {
            // `micros.ncl` is the entry point, imported as `"micros"`.
            let name = if *name == "micros.ncl" {
                "micros"
            } else {
                name
            };
            cache.sources.add_string(
                SourcePath::Path(Path::new(LIBRARY_ROOT).join(name), InputFormat::Nickel),
                (*source).to_owned(),
            );
        }
        cache
            .sources
            .add_import_paths(std::iter::once(PathBuf::from(LIBRARY_ROOT)));
        cache
    }

    /// A session whose main program is the file at `path`.
    pub fn for_file(path: &Path) -> std::io::Result<Self> {
        let mut cache = Self::with_library();
        let main = cache.sources.add_file(path, InputFormat::Nickel)?;
        Ok(Self::new(cache, main))
    }

    /// A session whose main program is `source`, resolved as if it were a file
    /// named `name` in the library's directory.
    pub fn for_source(name: &str, source: &str) -> Self {
        let mut cache = Self::with_library();
        let main = cache.sources.add_string(
            SourcePath::Path(Path::new(LIBRARY_ROOT).join(name), InputFormat::Nickel),
            source.to_owned(),
        );
        Self::new(cache, main)
    }

    fn new(cache: CacheHub, main: FileId) -> Self {
        let context = VmContext::new(cache, std::io::sink(), NullReporter {});
        Session { context, main }
    }

    fn render<E: IntoDiagnostics>(&self, error: E) -> Diagnostics {
        let mut files = self.context.import_resolver.sources.files().clone();
        Diagnostics(report_as_str(&mut files, error, ColorOpt::Never))
    }

    /// Parses, typechecks and prepares the main program; returns it unevaluated.
    pub fn main_value(&mut self) -> Result<NickelValue, Diagnostics> {
        self.context
            .prepare_eval(self.main)
            .map_err(|error| self.render(error))
    }

    /// Evaluates `value` to weak head normal form (records: fields known,
    /// values not yet evaluated).
    pub fn whnf(&mut self, value: NickelValue) -> Result<NickelValue, Diagnostics> {
        let result = {
            let mut vm = VirtualMachine::new(&mut self.context);
            let result = vm.eval(value);
            vm.reset();
            result
        };
        result.map_err(|error| self.render(NickelError::from(error)))
    }

    /// Evaluates `value` completely and exports it as JSON.
    pub fn export_json(&mut self, value: NickelValue) -> Result<serde_json::Value, Diagnostics> {
        let result = {
            let mut vm = VirtualMachine::new(&mut self.context);
            let result = vm.eval_full_for_export(value);
            vm.reset();
            result
        };
        let value = result.map_err(|error| self.render(NickelError::from(error)))?;
        let text = serialize::to_string(ExportFormat::Json, &value).map_err(|error| {
            self.render(NickelError::export_error(
                self.context.pos_table.clone(),
                error,
            ))
        })?;
        Ok(serde_json::from_str(&text).expect("Nickel exports valid JSON"))
    }

    /// The fields of a record in weak head normal form, in source order; an
    /// empty list for anything that is not a record.
    pub fn fields(&self, record: &NickelValue) -> Vec<FieldInfo> {
        let Some(data) = record
            .as_record()
            .and_then(|container| container.into_opt())
        else {
            return Vec::new();
        };
        data.fields
            .iter()
            .map(|(ident, field)| {
                let metadata = field.metadata.clone().into_inner();
                let mut contracts: Vec<String> = metadata
                    .annotation
                    .typ
                    .iter()
                    .map(|t| self.type_text(t))
                    .collect();
                contracts.extend(
                    metadata
                        .annotation
                        .contracts
                        .iter()
                        .map(|t| self.type_text(t)),
                );
                // Contracts from the declarations travel with the field and
                // apply when the value leaves the record, as a field access
                // would; without them a wrong value would look fine.
                let value = field.value.clone().map(|value| {
                    let position = value.pos_idx();
                    RuntimeContract::apply_all(
                        value,
                        field.pending_contracts.iter().cloned(),
                        position,
                    )
                });
                FieldInfo {
                    name: ident.label().to_owned(),
                    value,
                    doc: metadata.doc.as_deref().map(str::to_owned),
                    contracts,
                    position: self.location(ident.pos),
                }
            })
            .collect()
    }

    /// The elements of an array in weak head normal form, unevaluated;
    /// `None` for anything that is not an array.
    pub fn elements(&self, value: &NickelValue) -> Option<Vec<NickelValue>> {
        let array = value.as_array()?;
        Some(array.iter_with_pending_contracts(value.pos_idx()).collect())
    }

    /// Where `value` was written, if Nickel knows.
    pub fn value_location(&self, value: &NickelValue) -> Option<Location> {
        self.location(self.context.pos_table.get(value.pos_idx()))
    }

    fn type_text(&self, labeled: &nickel_lang_core::term::LabeledType) -> String {
        // The annotation as the module author wrote it (`types.Port`), which
        // reads better than Nickel's internal form of the contract.
        let position = self.context.pos_table.get(labeled.label.span);
        match position.into_opt() {
            Some(span) => self
                .context
                .import_resolver
                .sources
                .files()
                .source_slice(span)
                .trim()
                .to_owned(),
            None => labeled.typ.to_string(),
        }
    }

    pub fn location(&self, position: TermPos) -> Option<Location> {
        let span = position.into_opt()?;
        let files = self.context.import_resolver.sources.files();
        let location = files.location(span.src_id, span.start).ok()?;
        Some(Location {
            file: files.name(span.src_id).to_string_lossy().into_owned(),
            line: location.line.to_usize() + 1,
            column: location.column.to_usize() + 1,
        })
    }
}
