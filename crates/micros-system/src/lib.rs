//! The assembler: from a typed configuration and unpacked packages to the
//! rootfs tree, the initrd and the artifacts. This first part computes,
//! at build time, which kernel modules the initrd needs and in which order
//! to load them, since kernel `.deb` files carry no `modules.dep`.
pub mod kmod;
