//! One model of a root filesystem, shared by the package unpacker (which
//! fills it) and every image writer (which reads it).
//!
//! Paths are relative to the root, split into components and kept in a
//! `BTreeMap`, so iteration is depth-first with each directory's children
//! sorted by name bytes: the order squashfs, cpio and tar writers want, and
//! the same on every run. File contents are references (bytes in memory, or
//! a byte range of a file on disk such as an unpacked package's data), so a
//! large tree costs memory for its metadata only.
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A path inside the tree: its components, no leading `/`. The root is the
/// empty path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreePath(Vec<String>);

impl TreePath {
    pub fn root() -> Self {
        TreePath(Vec::new())
    }

    /// Parses `/usr/bin/sh`, `usr/bin/sh` or `./usr/bin/sh`. `..` and empty
    /// or NUL-bearing components are refused: nothing may escape the root.
    pub fn parse(path: &str) -> Result<Self, TreeError> {
        let mut components = Vec::new();
        for component in path.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    return Err(TreeError::Escapes {
                        path: path.to_owned(),
                    })
                }
                name if name.contains('\0') => {
                    return Err(TreeError::Escapes {
                        path: path.to_owned(),
                    })
                }
                name => components.push(name.to_owned()),
            }
        }
        Ok(TreePath(components))
    }

    pub fn components(&self) -> &[String] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parent(&self) -> Option<TreePath> {
        (!self.0.is_empty()).then(|| TreePath(self.0[..self.0.len() - 1].to_vec()))
    }

    /// The last component; empty for the root.
    pub fn name(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or("")
    }

    pub fn join(&self, name: &str) -> Result<TreePath, TreeError> {
        let mut joined = self.0.clone();
        joined.extend(TreePath::parse(name)?.0);
        Ok(TreePath(joined))
    }

    pub fn starts_with(&self, prefix: &TreePath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub fn depth(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0.join("/"))
    }
}

impl fmt::Debug for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Where a regular file's bytes are.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// Bytes held in memory (generated files: `/etc/passwd`, run scripts).
    Bytes(Arc<[u8]>),
    /// `length` bytes at `offset` in `file` (an unpacked package's data).
    Extent {
        file: Arc<PathBuf>,
        offset: u64,
        length: u64,
    },
}

impl Content {
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Content::Bytes(Arc::from(bytes.into()))
    }

    /// All of the file at `path` as it is now, by reference (not read).
    pub fn whole_file(path: PathBuf, metadata: &std::fs::Metadata) -> Self {
        Content::Extent {
            file: Arc::new(path),
            offset: 0,
            length: metadata.len(),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(bytes) => bytes.len() as u64,
            Content::Extent { length, .. } => *length,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the whole content. Writers that stream large files should use
    /// [`Content::reader`] instead.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        std::io::Read::read_to_end(&mut self.reader()?, &mut out)?;
        Ok(out)
    }

    /// A reader over the content.
    pub fn reader(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        match self {
            Content::Bytes(bytes) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            Content::Extent {
                file,
                offset,
                length,
            } => {
                use std::io::{Read, Seek, SeekFrom};
                let mut handle = std::fs::File::open(file.as_ref()).map_err(|err| {
                    std::io::Error::new(err.kind(), format!("{}: {err}", file.display()))
                })?;
                // No seek for a whole file: it also lets a pipe stand in
                // for a file (the interruption test feeds one).
                if *offset > 0 {
                    handle.seek(SeekFrom::Start(*offset))?;
                }
                Ok(Box::new(handle.take(*length)))
            }
        }
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Content::Extent {
                file,
                offset,
                length,
            } => write!(f, "Extent({}@{offset}+{length})", file.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File(Content),
    Symlink(String),
    /// Another name for the regular file at the given path.
    Hardlink(TreePath),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

impl Kind {
    /// "a file", "a symlink", …: for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Directory => "a directory",
            Kind::File(_) => "a file",
            Kind::Symlink(_) => "a symlink",
            Kind::Hardlink(_) => "a hard link",
            Kind::CharDevice { .. } => "a character device",
            Kind::BlockDevice { .. } => "a block device",
            Kind::Fifo => "a fifo",
        }
    }
}

/// One node of the tree with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch; [`Tree::normalize`] sets one for all.
    pub mtime: u64,
    /// Extended attributes, for writers that keep them.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Who put it there: a package name or a module, for error messages and
    /// `micros why`.
    pub origin: Arc<str>,
}

impl Entry {
    pub fn new(kind: Kind, mode: u32, origin: &str) -> Self {
        Entry {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
            origin: Arc::from(origin),
        }
    }

    pub fn directory(mode: u32, origin: &str) -> Self {
        Entry::new(Kind::Directory, mode, origin)
    }

    pub fn file(content: Content, mode: u32, origin: &str) -> Self {
        Entry::new(Kind::File(content), mode, origin)
    }

    pub fn symlink(target: &str, origin: &str) -> Self {
        Entry::new(Kind::Symlink(target.to_owned()), 0o777, origin)
    }

    pub fn owned(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Directory)
    }

    /// The full `st_mode`: file type bits and permission bits.
    pub fn st_mode(&self) -> u32 {
        let kind = match self.kind {
            Kind::Directory => 0o040000,
            Kind::File(_) | Kind::Hardlink(_) => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::CharDevice { .. } => 0o020000,
            Kind::BlockDevice { .. } => 0o060000,
            Kind::Fifo => 0o010000,
        };
        kind | (self.mode & 0o7777)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("path `{path}` escapes the root (`..` or a NUL byte)")]
    Escapes { path: String },
    #[error("{path}: {new_origin} adds {new_kind} where {existing_origin} put {existing_kind}")]
    Conflict {
        path: TreePath,
        existing_origin: String,
        existing_kind: &'static str,
        new_origin: String,
        new_kind: &'static str,
    },
    #[error("{path}: {origin} needs {parent} to be a directory, but {parent_origin} put {parent_kind} there")]
    NotADirectory {
        path: TreePath,
        origin: String,
        parent: TreePath,
        parent_origin: String,
        parent_kind: &'static str,
    },
    #[error("{path}: the hard link from {origin} points at {target}, which is not a regular file in the tree")]
    DanglingHardlink {
        path: TreePath,
        origin: String,
        target: TreePath,
    },
}

/// A root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<TreePath, Entry>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// An empty tree: just the root directory (0755, root:root).
    pub fn new() -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(TreePath::root(), Entry::directory(0o755, "micros"));
        Tree { entries }
    }

    /// Adds an entry. Missing parent directories are created (0755,
    /// root:root). Adding a directory where one exists keeps the existing
    /// one. Any other collision is an error naming both contributors: use
    /// [`Tree::replace`] to override on purpose.
    pub fn insert(&mut self, path: TreePath, entry: Entry) -> Result<(), TreeError> {
        self.make_parents(&path, &entry.origin)?;
        if let Some(existing) = self.entries.get(&path) {
            if existing.is_dir() && entry.is_dir() {
                return Ok(());
            }
            if existing.kind == entry.kind
                && existing.mode == entry.mode
                && existing.uid == entry.uid
                && existing.gid == entry.gid
            {
                // The same file twice (e.g. two packages shipping one symlink).
                return Ok(());
            }
            return Err(TreeError::Conflict {
                path,
                existing_origin: existing.origin.to_string(),
                existing_kind: existing.kind.describe(),
                new_origin: entry.origin.to_string(),
                new_kind: entry.kind.describe(),
            });
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Adds or overrides an entry (a module replacing a package's file). A
    /// directory replaced by anything else takes its contents with it.
    pub fn replace(&mut self, path: TreePath, entry: Entry) -> Result<(), TreeError> {
        self.make_parents(&path, &entry.origin)?;
        if self
            .entries
            .get(&path)
            .is_some_and(|old| old.is_dir() && !entry.is_dir())
        {
            self.remove(&path);
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Removes an entry and everything below it; returns how many entries went.
    pub fn remove(&mut self, path: &TreePath) -> usize {
        let doomed: Vec<TreePath> = self
            .entries
            .range(path.clone()..)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect();
        for p in &doomed {
            self.entries.remove(p);
        }
        doomed.len()
    }

    fn make_parents(&mut self, path: &TreePath, origin: &str) -> Result<(), TreeError> {
        let mut current = TreePath::root();
        for component in &path.0[..path.0.len().saturating_sub(1)] {
            current.0.push(component.clone());
            match self.entries.get(&current) {
                Some(entry) if entry.is_dir() => {}
                Some(entry) => {
                    return Err(TreeError::NotADirectory {
                        path: path.clone(),
                        origin: origin.to_owned(),
                        parent: current.clone(),
                        parent_origin: entry.origin.to_string(),
                        parent_kind: entry.kind.describe(),
                    })
                }
                None => {
                    self.entries
                        .insert(current.clone(), Entry::directory(0o755, origin));
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, path: &TreePath) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Follows symbolic links (in every component, as the kernel would
    /// inside the image) to what `path` names: its real path and entry.
    /// `None` when something on the way is missing or the links loop.
    pub fn resolve(&self, path: &TreePath) -> Option<(TreePath, &Entry)> {
        let mut pending: Vec<String> = path.components().iter().rev().cloned().collect();
        let mut at = TreePath::root();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            match name.as_str() {
                "." => continue,
                ".." => {
                    at = at.parent().unwrap_or_else(TreePath::root);
                    continue;
                }
                _ => {}
            }
            let next = at.join(&name).ok()?;
            match &self.entries.get(&next)?.kind {
                Kind::Symlink(target) => {
                    links += 1;
                    if links > 40 {
                        return None;
                    }
                    if target.starts_with('/') {
                        at = TreePath::root();
                    }
                    pending.extend(
                        target
                            .split('/')
                            .filter(|c| !c.is_empty())
                            .rev()
                            .map(str::to_owned),
                    );
                }
                _ => at = next,
            }
        }
        let entry = self.entries.get(&at)?;
        Some((at, entry))
    }

    pub fn get_mut(&mut self, path: &TreePath) -> Option<&mut Entry> {
        self.entries.get_mut(path)
    }

    /// Every entry, root first, depth-first, children sorted by name bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&TreePath, &Entry)> {
        self.entries.iter()
    }

    /// The direct children of `dir`, sorted by name bytes.
    pub fn children<'a>(
        &'a self,
        dir: &'a TreePath,
    ) -> impl Iterator<Item = (&'a TreePath, &'a Entry)> + 'a {
        let depth = dir.depth() + 1;
        self.entries
            .range(dir.clone()..)
            .skip(1)
            .take_while(move |(path, _)| path.starts_with(dir))
            .filter(move |(path, _)| path.depth() == depth)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.len() <= 1
    }

    /// The total size of regular files' contents.
    pub fn content_size(&self) -> u64 {
        self.entries
            .values()
            .map(|e| {
                if let Kind::File(c) = &e.kind {
                    c.len()
                } else {
                    0
                }
            })
            .sum()
    }

    /// Makes the tree reproducible: one mtime for everything, and hard links
    /// checked to point at regular files.
    pub fn normalize(&mut self, epoch: u64) -> Result<(), TreeError> {
        for entry in self.entries.values_mut() {
            entry.mtime = epoch;
        }
        for (path, entry) in &self.entries {
            if let Kind::Hardlink(target) = &entry.kind {
                if !matches!(
                    self.entries.get(target).map(|e| &e.kind),
                    Some(Kind::File(_))
                ) {
                    return Err(TreeError::DanglingHardlink {
                        path: path.clone(),
                        origin: entry.origin.to_string(),
                        target: target.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The build's epoch: `SOURCE_DATE_EPOCH` when set and valid, else the
/// given fallback (a date the build derives from its inputs, never the clock).
pub fn source_date_epoch(fallback: u64) -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> TreePath {
        TreePath::parse(path).unwrap()
    }

    #[test]
    fn resolve_follows_links_in_every_component() {
        let mut tree = Tree::new();
        tree.insert(
            p("/usr/bin/busybox"),
            Entry::file(Content::bytes("x"), 0o755, "busybox"),
        )
        .unwrap();
        tree.insert(p("/usr/bin/sh"), Entry::symlink("busybox", "busybox"))
            .unwrap();
        tree.insert(p("/bin"), Entry::symlink("usr/bin", "micros"))
            .unwrap();
        tree.insert(p("/usr/sbin/nologin"), Entry::symlink("../bin/sh", "test"))
            .unwrap();
        tree.insert(p("/loop"), Entry::symlink("/loop", "test"))
            .unwrap();
        tree.insert(p("/dangling"), Entry::symlink("/usr/bin/zsh", "test"))
            .unwrap();
        let resolved = |path: &str| tree.resolve(&p(path)).map(|(at, _)| at.to_string());
        assert_eq!(resolved("/bin/sh").as_deref(), Some("/usr/bin/busybox"));
        assert_eq!(
            resolved("/usr/sbin/nologin").as_deref(),
            Some("/usr/bin/busybox")
        );
        assert_eq!(resolved("/bin").as_deref(), Some("/usr/bin"));
        assert_eq!(resolved("/loop"), None);
        assert_eq!(resolved("/dangling"), None);
        assert_eq!(resolved("/bin/zsh"), None);
    }

    #[test]
    fn paths_never_escape_the_root() {
        assert_eq!(p("/usr/bin/sh"), p("./usr//bin/sh"));
        assert!(matches!(
            TreePath::parse("usr/../../etc"),
            Err(TreeError::Escapes { .. })
        ));
        assert!(matches!(
            TreePath::parse("a\0b"),
            Err(TreeError::Escapes { .. })
        ));
        assert_eq!(p("/").to_string(), "/");
        assert_eq!(p("usr/bin").to_string(), "/usr/bin");
    }

    #[test]
    fn parents_are_created_and_iteration_is_depth_first_sorted() {
        let mut tree = Tree::new();
        tree.insert(
            p("/usr/bin/sh"),
            Entry::file(Content::bytes("x"), 0o755, "dash"),
        )
        .unwrap();
        tree.insert(p("/usr-local"), Entry::directory(0o755, "test"))
            .unwrap();
        tree.insert(p("/etc/a"), Entry::file(Content::bytes(""), 0o644, "test"))
            .unwrap();
        let order: Vec<String> = tree.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(
            order,
            [
                "/",
                "/etc",
                "/etc/a",
                "/usr",
                "/usr/bin",
                "/usr/bin/sh",
                "/usr-local"
            ]
        );
        let children: Vec<String> = tree
            .children(&TreePath::root())
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(children, ["/etc", "/usr", "/usr-local"]);
    }

    #[test]
    fn conflicts_name_both_contributors() {
        let mut tree = Tree::new();
        tree.insert(p("/bin"), Entry::symlink("usr/bin", "base-files"))
            .unwrap();
        let error = tree
            .insert(
                p("/bin/sh"),
                Entry::file(Content::bytes("x"), 0o755, "dash"),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "/bin/sh: dash needs /bin to be a directory, but base-files put a symlink there"
        );
        tree.insert(
            p("/etc/motd"),
            Entry::file(Content::bytes("a"), 0o644, "pkg-a"),
        )
        .unwrap();
        let error = tree
            .insert(p("/etc/motd"), Entry::directory(0o755, "pkg-b"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "/etc/motd: pkg-b adds a directory where pkg-a put a file"
        );
        // The same entry twice is fine; replace overrides on purpose.
        tree.insert(
            p("/etc/motd"),
            Entry::file(Content::bytes("a"), 0o644, "pkg-c"),
        )
        .unwrap();
        tree.replace(
            p("/etc/motd"),
            Entry::file(Content::bytes("b"), 0o644, "module"),
        )
        .unwrap();
        assert_eq!(
            tree.get(&p("/etc/motd")).unwrap().kind,
            Kind::File(Content::bytes("b"))
        );
    }

    #[test]
    fn extents_read_a_byte_range() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"0123456789").unwrap();
        let content = Content::Extent {
            file: Arc::new(file),
            offset: 3,
            length: 4,
        };
        assert_eq!(content.read().unwrap(), b"3456");
    }

    #[test]
    fn normalize_sets_one_mtime_and_checks_hardlinks() {
        let mut tree = Tree::new();
        tree.insert(p("/a"), Entry::file(Content::bytes("x"), 0o644, "t"))
            .unwrap();
        tree.insert(p("/b"), Entry::new(Kind::Hardlink(p("/a")), 0o644, "t"))
            .unwrap();
        tree.normalize(42).unwrap();
        assert!(tree.iter().all(|(_, e)| e.mtime == 42));
        tree.insert(
            p("/c"),
            Entry::new(Kind::Hardlink(p("/missing")), 0o644, "t"),
        )
        .unwrap();
        assert!(matches!(
            tree.normalize(42),
            Err(TreeError::DanglingHardlink { .. })
        ));
    }

    #[test]
    fn remove_takes_the_subtree() {
        let mut tree = Tree::new();
        tree.insert(
            p("/usr/share/doc/x/copyright"),
            Entry::file(Content::bytes("c"), 0o644, "x"),
        )
        .unwrap();
        tree.insert(p("/usr/share/docs"), Entry::directory(0o755, "x"))
            .unwrap();
        assert_eq!(tree.remove(&p("/usr/share/doc")), 3);
        assert!(tree.get(&p("/usr/share/docs")).is_some());
    }
}
