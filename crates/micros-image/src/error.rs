//! The one error type of the image writers. Every variant names what a
//! person needs to act on: the output file, the tree path, or the partition.
use std::io;
use std::path::PathBuf;

use crate::tree::{TreeError, TreePath};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, writing, syncing or renaming an output file failed.
    #[error("{}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading a file's content (an extent in the package cache) failed.
    #[error("{path} (from {origin}): cannot read its content: {source}")]
    Content {
        path: TreePath,
        origin: String,
        #[source]
        source: io::Error,
    },
    /// Reading an input image (a partition's content) failed.
    #[error("{}: {source}", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: the name is {length} bytes long; {format} allows at most {max}")]
    NameTooLong {
        format: &'static str,
        path: TreePath,
        length: usize,
        max: usize,
    },
    #[error("{path}: {format} cannot store this name: {reason}")]
    InvalidName {
        format: &'static str,
        path: TreePath,
        reason: String,
    },
    #[error("{path}: {format} cannot hold {what}")]
    Unsupported {
        format: &'static str,
        path: TreePath,
        what: String,
    },
    #[error("{path}: {what} is {value}, more than {format} allows ({max})")]
    TooLarge {
        format: &'static str,
        path: TreePath,
        what: &'static str,
        value: u64,
        max: u64,
    },
    /// A whole-image limit (the FAT volume is full, too many uids).
    #[error("{}: {message}", path.display())]
    ImageTooSmall { path: PathBuf, message: String },
    #[error("{}: invalid {format} option: {message}", path.display())]
    InvalidOption {
        format: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("partition `{partition}`: {message}")]
    Partition { partition: String, message: String },
    #[error("{}: compressing with {compressor} failed: {message}", path.display())]
    Compress {
        path: PathBuf,
        compressor: &'static str,
        message: String,
    },
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl Error {
    pub(crate) fn output(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Output { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
