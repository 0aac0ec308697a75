//! Reads a directory of the host into a [`Tree`]: for benchmarks against
//! `mksquashfs` on the same files, and for tests that compare what a
//! reference tool extracted with what was written. File contents stay on
//! disk as extents.
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::tree::{Content, Entry, Kind, Tree, TreePath};

/// Loads `root` and everything below it, keeping modes, owners and mtimes.
/// A second name of a multiply-linked file becomes a [`Kind::Hardlink`] to
/// the first name in tree order; sockets are skipped (no image holds them).
pub fn tree_from_directory(root: &Path, origin: &str) -> Result<Tree> {
    let mut tree = Tree::new();
    let metadata = std::fs::symlink_metadata(root).map_err(input(root))?;
    if let Some(entry) = tree.get_mut(&TreePath::root()) {
        entry.mode = metadata.mode() & 0o7777;
        entry.uid = metadata.uid();
        entry.gid = metadata.gid();
        entry.mtime = metadata.mtime().max(0) as u64;
    }
    let mut links = HashMap::new();
    walk(root, &TreePath::root(), origin, &mut tree, &mut links)?;
    Ok(tree)
}

fn input(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Input {
        path: path.to_owned(),
        source,
    }
}

fn walk(
    dir: &Path,
    at: &TreePath,
    origin: &str,
    tree: &mut Tree,
    links: &mut HashMap<(u64, u64), TreePath>,
) -> Result<()> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(input(dir))? {
        let entry = entry.map_err(input(dir))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|name| Error::Input {
                path: dir.join(&name),
                source: io::Error::new(io::ErrorKind::InvalidData, "the name is not UTF-8"),
            })?;
        names.push(name);
    }
    // Tree order, so "the first name" of a hard link group is well defined.
    names.sort();
    for name in names {
        let host = dir.join(&name);
        let path = at.join(&name)?;
        let metadata = std::fs::symlink_metadata(&host).map_err(input(&host))?;
        let file_type = metadata.file_type();
        let kind = if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_file() {
            let key = (metadata.dev(), metadata.ino());
            match links.get(&key) {
                Some(first) if metadata.nlink() > 1 => Kind::Hardlink(first.clone()),
                _ => {
                    if metadata.nlink() > 1 {
                        links.insert(key, path.clone());
                    }
                    Kind::File(Content::whole_file(host.clone(), &metadata))
                }
            }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&host).map_err(input(&host))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| Error::Input {
                    path: host.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the link target is not UTF-8",
                    ),
                })?;
            Kind::Symlink(target)
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let (major, minor) = split_device(metadata.rdev());
            if file_type.is_char_device() {
                Kind::CharDevice { major, minor }
            } else {
                Kind::BlockDevice { major, minor }
            }
        } else if file_type.is_fifo() {
            Kind::Fifo
        } else {
            continue;
        };
        let mut entry = Entry::new(kind, metadata.mode() & 0o7777, origin)
            .owned(metadata.uid(), metadata.gid());
        entry.mtime = metadata.mtime().max(0) as u64;
        let is_dir = entry.is_dir();
        tree.insert(path.clone(), entry)?;
        if is_dir {
            walk(&host, &path, origin, tree, links)?;
        }
    }
    Ok(())
}

/// glibc's `major()`/`minor()` for a 64-bit `dev_t`.
fn split_device(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_like_glibc() {
        assert_eq!(split_device(0x0501), (5, 1));
        // major 259, minor 300000: both use the high bits.
        let (major, minor) = (259u64, 300_000u64);
        let rdev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12);
        assert_eq!(split_device(rdev), (259, 300000));
    }

    #[test]
    fn reads_files_links_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/a"), b"hello").unwrap();
        std::fs::hard_link(root.join("etc/a"), root.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("a", root.join("etc/c")).unwrap();
        let tree = tree_from_directory(root, "host").unwrap();
        let get = |p: &str| tree.get(&TreePath::parse(p).unwrap()).unwrap().kind.clone();
        assert!(matches!(get("/etc/a"), Kind::File(c) if c.read().unwrap() == b"hello"));
        assert_eq!(
            get("/etc/b"),
            Kind::Hardlink(TreePath::parse("/etc/a").unwrap())
        );
        assert_eq!(get("/etc/c"), Kind::Symlink("a".into()));
    }
}
