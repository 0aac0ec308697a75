//! MicrOS's module system: evaluates a Nickel configuration against the
//! built-in module library and returns a typed [`Config`].
//!
//! ```text
//! system.ncl ──import "micros"──► modules/ (embedded) ──► merged config
//!            ──► checks (unknown options, assertions) ──► model::Config
//! ```
mod error;
mod evaluate;
mod library;
pub mod model;
pub mod names;
mod nickel;
mod options;

pub use error::Error;
pub use evaluate::{evaluate, Evaluation};
pub use model::Config;
pub use nickel::Location;
pub use options::{OptionDoc, Options};

/// The embedded module library, as (path relative to `modules/`, source).
pub fn library_files() -> &'static [(&'static str, &'static str)] {
    library::FILES
}
