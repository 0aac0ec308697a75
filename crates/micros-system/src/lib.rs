//! The assembler: from a typed configuration and unpacked packages to the
//! rootfs tree, the initrd and the artifacts. The parts here so far are
//! pure: which kernel modules the initrd needs and in which order (kernel
//! `.deb` files carry no `modules.dep`), the user database, and runit's
//! service directories.
pub mod build;
pub mod declared;
pub mod glob;
pub mod hardware;
pub mod init;
pub mod initrd;
pub mod kernel;
pub mod kmod;
pub mod qemu;
pub mod report;
pub mod rootfs;
pub mod runit;
pub mod sdimage;
pub mod shell;
pub mod unit;
pub mod users;
