//! The module list the build writes into the initrd
//! (`/etc/micros/modules`): one module file per line, in load order (the
//! build resolved dependencies and soft dependencies), `#` comments, and an
//! optional parameter string after the path. A `?` before the path marks
//! a module that is only *available* (`boot.initrd.availableKernelModules`:
//! hardware this machine may lack): if it does not load, stage 1 says so
//! and goes on; any other module that does not load stops the boot.
//!
//! ```text
//! # virtio for the root disk
//! /lib/modules/6.12.43+deb13-cloud-amd64/kernel/drivers/virtio/virtio.ko
//! /lib/modules/6.12.43+deb13-cloud-amd64/kernel/fs/overlayfs/overlay.ko  redirect_dir=on
//! ?/lib/modules/6.12.43+deb13-cloud-amd64/kernel/drivers/net/virtio_net.ko
//! ```
use alloc::{borrow::ToOwned, string::String, vec::Vec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLine {
    pub path: String,
    pub parameters: String,
    /// Whether the boot goes on without it.
    pub optional: bool,
}

pub fn parse(text: &str) -> Vec<ModuleLine> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (optional, line) = match line.strip_prefix('?') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, line),
            };
            let (path, parameters) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            ModuleLine {
                path: path.to_owned(),
                parameters: parameters.trim().to_owned(),
                optional,
            }
        })
        .collect()
}

/// What stage 1 does when the kernel does not load a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFailure {
    /// It is loaded already (built in, or loaded before): nothing is wrong.
    AlreadyLoaded,
    /// An available module, for hardware this machine may lack (ENODEV, …):
    /// say so and go on.
    GoOn,
    /// A required module: the boot stops.
    StopBoot,
}

/// `EEXIST`, which `finit_module` returns for a module that is loaded
/// already; the same number on every Linux architecture.
pub const EEXIST: i32 = 17;

impl ModuleLine {
    /// What to do when `finit_module` fails for this module with `errno`.
    pub fn on_load_error(&self, errno: i32) -> LoadFailure {
        match errno {
            EEXIST => LoadFailure::AlreadyLoaded,
            _ if self.optional => LoadFailure::GoOn,
            _ => LoadFailure::StopBoot,
        }
    }
}

/// The module's name from its file name: `crc32c-intel.ko.xz` → `crc32c_intel`
/// (the kernel treats `-` and `_` alike and reports `_`).
pub fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_names() {
        let modules = parse("# comment\n\n/lib/modules/x/virtio.ko\n  /lib/modules/x/overlay.ko   redirect_dir=on  \n");
        assert_eq!(modules.len(), 2);
        assert_eq!(modules[1].parameters, "redirect_dir=on");
        assert!(!modules[0].optional && !modules[1].optional);
        let modules = parse("?/lib/modules/x/virtio_net.ko\n? /lib/modules/x/e1000.ko debug=1\n");
        assert!(modules.iter().all(|m| m.optional));
        assert_eq!(modules[0].path, "/lib/modules/x/virtio_net.ko");
        assert_eq!(modules[1].path, "/lib/modules/x/e1000.ko");
        assert_eq!(modules[1].parameters, "debug=1");
        assert_eq!(name_of("/lib/modules/x/crc32c-intel.ko.xz"), "crc32c_intel");
        assert_eq!(name_of("virtio_blk.ko"), "virtio_blk");
    }

    #[test]
    fn only_a_required_module_that_does_not_load_stops_the_boot() {
        const ENOENT: i32 = 2;
        const ENODEV: i32 = 19;
        const ENOEXEC: i32 = 8;
        let [required, available] = [false, true].map(|optional| ModuleLine {
            path: "/lib/modules/x/virtio_blk.ko".to_owned(),
            parameters: String::new(),
            optional,
        });
        for errno in [ENOENT, ENODEV, ENOEXEC] {
            assert_eq!(required.on_load_error(errno), LoadFailure::StopBoot);
            assert_eq!(available.on_load_error(errno), LoadFailure::GoOn);
        }
        for module in [&required, &available] {
            assert_eq!(module.on_load_error(EEXIST), LoadFailure::AlreadyLoaded);
        }
    }
}
