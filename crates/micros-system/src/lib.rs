//! The assembler: from a typed configuration and its locked packages to
//! the artifacts, as a pipeline (`build.rs`):
//!
//! ```text
//! config + lock + .debs ─► System (system.rs: unpacked once)
//!                       ─► outputs/ (one file each: kernel, initrd,
//!                          squashfs, toplevel, sdimage, manifest)
//! ```
//!
//! The parts the outputs share are pure where they can be: which kernel
//! modules and firmware go where and in which order (`kmod.rs`,
//! `kernel.rs`, `hardware.rs`; kernel `.deb` files carry no
//! `modules.dep`), the user database, systemd units as runit services,
//! and runit's stages and service directories.
pub mod build;
pub mod declared;
pub mod error;
pub mod glob;
pub mod hardware;
pub mod init;
pub mod initrd;
pub mod kernel;
pub mod kmod;
pub mod outputs;
pub mod qemu;
pub mod report;
pub mod rootfs;
pub mod runit;
pub mod shell;
pub mod system;
pub mod unit;
pub mod users;
