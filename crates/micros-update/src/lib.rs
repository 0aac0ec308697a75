//! MicrOS update bundles, as pure parts shared by the host (which writes
//! and signs them) and the device (which verifies them while it writes):
//! the manifest ([`manifest`]), the version order ([`version`]), the
//! bundle's bytes ([`bundle`]), the boot state and its chooser ([`state`])
//! and the slot's layout and header ([`slot`]); for fleets, the signed
//! update repository and the device's decisions ([`fleet`]) and the pure
//! parts of its HTTP client ([`http`]).
//!
//! No step depends on the clock: a bundle has no expiry and the device
//! needs no time to check it, only its trusted keys, its platform and
//! board, and the version it runs.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod bundle;
pub mod device;
pub mod fleet;
pub mod http;
pub mod manifest;
pub mod slot;
pub mod state;
pub mod version;
