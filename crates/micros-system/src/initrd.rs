//! The initrd: stage 1 and the kernel modules it needs to reach the root.
//!
//! ```text
//! /init                     micros-init for the platform (static)
//! /dev/console              so the kernel can open the console before devtmpfs
//! /proc /sys /run /newroot  mount points
//! /lib/modules/<name>.ko    uncompressed, in the order of…
//! /etc/micros/modules       …this list
//! /bin/busybox              a shell for micros.onfailure=shell, when given
//! ```
use micros_image::{Content, Entry, Kind, Tree, TreePath};

use crate::kernel::{Kernel, KernelError};

#[derive(Debug, thiserror::Error)]
pub enum InitrdError {
    #[error("this micros has no stage 1 for {platform}")]
    NoInit { platform: String },
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Tree(#[from] micros_image::TreeError),
}

fn path(text: &str) -> TreePath {
    TreePath::parse(text).expect("a valid built-in path")
}

/// Builds the initrd tree for `platform` with the `required` modules, the
/// `available` ones (whose failure to load does not stop the boot), and
/// their dependencies from `kernel`, and `shell` (a static busybox) if
/// given.
pub fn build(
    platform: &str,
    kernel: &Kernel,
    required: &[String],
    available: &[String],
    shell: Option<Content>,
) -> Result<Tree, InitrdError> {
    let init = crate::init::binary(platform).ok_or_else(|| InitrdError::NoInit {
        platform: platform.to_owned(),
    })?;
    let mut tree = Tree::new();
    tree.insert(
        path("/init"),
        Entry::file(Content::bytes(init), 0o755, "micros-init"),
    )?;
    tree.insert(
        path("/dev/console"),
        Entry::new(Kind::CharDevice { major: 5, minor: 1 }, 0o600, "micros"),
    )?;
    for dir in [
        "/proc",
        "/sys",
        "/run",
        "/newroot",
        "/etc/micros",
        "/lib/modules",
    ] {
        tree.insert(path(dir), Entry::directory(0o755, "micros"))?;
    }
    let mut list = String::from("# Kernel modules stage 1 loads, in order (written by micros).\n");
    // What the required modules need is required; the rest is available.
    let needed = kernel.load_order(required)?;
    let all: Vec<String> = required.iter().chain(available).cloned().collect();
    for name in kernel.load_order(&all)? {
        let file = format!("/lib/modules/{name}.ko");
        tree.insert(
            path(&file),
            Entry::file(
                Content::bytes(kernel.module_bytes(&name)?),
                0o644,
                &format!("kernel module {name}"),
            ),
        )?;
        if !needed.contains(&name) {
            list.push('?');
        }
        list.push_str(&file);
        list.push('\n');
    }
    tree.insert(
        path("/etc/micros/modules"),
        Entry::file(Content::bytes(list), 0o644, "micros"),
    )?;
    if let Some(shell) = shell {
        tree.insert(
            path("/bin/busybox"),
            Entry::file(shell, 0o755, "busybox-static"),
        )?;
    }
    Ok(tree)
}
