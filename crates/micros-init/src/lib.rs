//! Stage 1 of a MicrOS system, as pure parts the host can test: the kernel
//! command line, device specifications, partition tables (to find a root
//! by `PARTUUID=`), the module list the build writes into the initrd, and
//! the ext2 layout that stage 1 writes onto a blank data partition.
//! `main.rs` wires them to the system calls.
pub mod cmdline;
pub mod device;
pub mod ext2;
pub mod modules;
