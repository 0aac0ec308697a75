//! Stage 1 of a MicrOS system, as pure parts the host can test: the kernel
//! command line, device specifications, partition tables (to find a root
//! by `PARTUUID=`), and the module list the build writes into the initrd.
//! `main.rs` wires them to the system calls.
pub mod cmdline;
pub mod device;
pub mod modules;
