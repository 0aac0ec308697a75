//! The root filesystem as an in-memory tree, and the writers that turn it
//! into images. Every writer is deterministic: the same tree gives the same
//! bytes, with no clock and no random source; every writer checks the tree
//! against its format's limits before writing, and writes through
//! [`atomic_write`] so an interrupted build never leaves half an image.
pub mod atomic;
pub mod compress;
pub mod cpio;
pub mod disk;
pub mod error;
pub mod fat;
pub mod host;
pub mod partition;
pub mod squashfs;
pub mod tar;
pub mod tree;

pub use atomic::atomic_write;
pub use compress::Compression;
pub use cpio::{write_cpio, write_cpio_to};
pub use disk::{
    minimum_size, partition_uuids, write_disk, DiskLayout, DiskSummary, PartitionSpec,
    PartitionTable,
};
pub use error::Error;
pub use fat::{write_fat32, FatOptions, FatSummary};
pub use partition::{Guid, PartitionType};
pub use squashfs::{write_squashfs, SquashfsCompressor, SquashfsOptions, SquashfsSummary};
pub use tar::{write_tar, write_tar_to};
pub use tree::{Content, Entry, Kind, Tree, TreeError, TreePath};
