//! The root filesystem as an in-memory tree, and the writers that turn it
//! into images. Every writer is deterministic: the same tree gives the same
//! bytes.
pub mod tree;

pub use tree::{Content, Entry, Kind, Tree, TreeError, TreePath};
