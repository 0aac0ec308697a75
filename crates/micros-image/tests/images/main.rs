//! Every writer checked against the tool people trust for its format.
//! Needs the Debian packages listed in `tools/test.sh` (squashfs-tools,
//! cpio, dosfstools, mtools, fdisk, gdisk, zstd, xz-utils).
mod common;
mod cpio;
mod disk;
mod fat;
mod process;
mod squashfs;
mod tar;
