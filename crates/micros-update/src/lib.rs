//! MicrOS update bundles, as pure parts shared by the host (which writes
//! and signs them) and the device (which verifies them while it writes):
//! the manifest ([`manifest`]), the version order ([`version`]) and the
//! bundle's bytes ([`bundle`]).
//!
//! No step depends on the clock: a bundle has no expiry and the device
//! needs no time to check it, only its trusted keys, its platform and
//! board, and the version it runs.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod bundle;
pub mod manifest;
pub mod version;
