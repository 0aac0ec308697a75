//! MicrOS's Debian archive client: where packages come from (apt sources,
//! mirrors), whether they are genuine (InRelease signatures, SHA-256 of
//! every index and `.deb`), which ones a system needs (a SAT solver over
//! Depends, Pre-Depends, Provides, Conflicts, Breaks), the lock that pins
//! them, the content-addressed cache, and unpacking `.deb` files into the
//! rootfs tree.
pub mod ar;
pub mod archive;
pub mod cache;
pub mod deb;
pub mod deb822;
pub mod digest;
pub mod fetch;
pub mod index;
pub mod lock;
pub mod maintscript;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod signature;
pub mod solver;
pub mod sources;
pub mod sysusers;
pub mod tar;
pub mod tmpfiles;
pub mod version;
