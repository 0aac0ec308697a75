//! Stage 1 of a MicrOS system, as pure parts the host can test: the kernel
//! command line, device specifications, partition tables (to find a root
//! by `PARTUUID=`), the module list the build writes into the initrd, the
//! hardware table that picks modules for devices (coldplug and hotplug), and
//! the ext2 layout that stage 1 writes onto a blank data partition.
//! `main.rs` wires them to the system calls.
// The parsers are pure and run on the device, where there is no standard
// library (see main.rs): `core` and `alloc` only; the host's tests use std.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod cmdline;
pub mod device;
pub mod ext2;
pub mod hardware;
pub mod modules;
