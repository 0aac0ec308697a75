//! The content-addressed download cache, shared by every `micros` process
//! of a user.
//!
//! ```text
//! $MICROS_CACHE_DIR, else $XDG_CACHE_HOME/micros, else ~/.cache/micros
//! ├── CACHEDIR.TAG           (backup tools skip the directory)
//! ├── debs-v1/<sha256>       .deb files, named by their SHA-256
//! ├── indexes-v1/<sha256>    compressed Packages indexes, by SHA-256
//! ├── data-v1/<sha256>.tar   decompressed data.tar of a .deb, which tree
//! │                          entries point into
//! └── kvm-v1/<sha256>        whether KVM boots that kernel here (micros run)
//! ```
//!
//! Entries are named by a [`Sha256`] and nothing else, so no name from a
//! lock or an index can point outside these directories. They are written
//! to a temporary file in the same directory, synced and renamed into
//! place, so a reader sees a whole entry or none, and two processes writing
//! the same entry both write the same bytes. Downloads are checked against
//! their hash when used; a corrupt or truncated one is deleted and fetched
//! again. A `data-v1` entry is not hashed again: it is written only from a
//! `.deb` just verified, and only by renaming a complete file, so it can
//! be wrong only if something else changes the cache directory (which is
//! the user's own, like `~/.cargo`).
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::Digest;

use crate::digest::Sha256;

const TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This directory is a cache made by micros (MicrOS).\n# For information about cache directory tags see https://bford.info/cachedir/\n";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot use the cache directory {}: {source}\nhint: set MICROS_CACHE_DIR to a writable directory", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cache directory: neither MICROS_CACHE_DIR, XDG_CACHE_HOME nor HOME is set\nhint: set MICROS_CACHE_DIR")]
    NoHome,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Which kind of entry: each is its own versioned directory.
#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    Debs,
    Indexes,
    Data,
    Kvm,
}

impl Bucket {
    fn dir(self) -> &'static str {
        match self {
            Bucket::Debs => "debs-v1",
            Bucket::Indexes => "indexes-v1",
            Bucket::Data => "data-v1",
            Bucket::Kvm => "kvm-v1",
        }
    }
}

impl Cache {
    /// The user's cache: `MICROS_CACHE_DIR`, `XDG_CACHE_HOME/micros` or
    /// `~/.cache/micros`.
    pub fn from_environment() -> Result<Cache, CacheError> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = var("MICROS_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("micros")))
            .or_else(|| var("HOME").map(|p| p.join(".cache/micros")))
            .ok_or(CacheError::NoHome)?;
        Cache::open(root)
    }

    pub fn open(root: PathBuf) -> Result<Cache, CacheError> {
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(&tag, TAG.as_bytes())?;
        }
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the entry `key` of `bucket` lives.
    pub fn path(&self, bucket: Bucket, key: &Sha256) -> PathBuf {
        let dir = self.root.join(bucket.dir());
        match bucket {
            Bucket::Data => dir.join(format!("{key}.tar")),
            _ => dir.join(key.as_str()),
        }
    }

    /// The entry `sha256` in `bucket` if it is there and intact; a damaged
    /// entry is removed so that it is fetched again.
    pub fn get_verified(&self, bucket: Bucket, sha256: &Sha256, size: u64) -> Option<PathBuf> {
        let path = self.path(bucket, sha256);
        let metadata = std::fs::metadata(&path).ok()?;
        if metadata.len() == size && hash_file(&path).ok().as_ref() == Some(sha256) {
            return Some(path);
        }
        let _ = std::fs::remove_file(&path);
        None
    }

    /// A writer for a new entry; [`PendingEntry::commit`] renames it into place.
    pub fn create(&self, bucket: Bucket, key: &Sha256) -> Result<PendingEntry, CacheError> {
        let path = self.path(bucket, key);
        let dir = self.root.join(bucket.dir());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        PendingEntry::new(path)
    }

    pub fn write(&self, bucket: Bucket, key: &Sha256, bytes: &[u8]) -> Result<PathBuf, CacheError> {
        let mut entry = self.create(bucket, key)?;
        entry
            .file()
            .write_all(bytes)
            .map_err(io(&entry.temporary))?;
        entry.commit()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written next to its final name.
pub struct PendingEntry {
    file: std::fs::File,
    temporary: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl PendingEntry {
    fn new(target: PathBuf) -> Result<PendingEntry, CacheError> {
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("entry");
        let temporary = target.with_file_name(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&temporary).map_err(io(&temporary))?;
        Ok(PendingEntry {
            file,
            temporary,
            target,
            committed: false,
        })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    pub fn commit(mut self) -> Result<PathBuf, CacheError> {
        self.file.sync_all().map_err(io(&self.temporary))?;
        std::fs::rename(&self.temporary, &self.target).map_err(io(&self.target))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Write for PendingEntry {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut entry = PendingEntry::new(path.to_owned())?;
    entry.file().write_all(bytes).map_err(io(path))?;
    entry.commit()?;
    Ok(())
}

pub fn hash_file(path: &Path) -> std::io::Result<Sha256> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(Sha256::from_hasher(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_verified_and_damaged_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("c")).unwrap();
        assert!(dir.path().join("c/CACHEDIR.TAG").exists());
        let sha = Sha256::of(b"hello");
        cache.write(Bucket::Debs, &sha, b"hello").unwrap();
        assert!(cache.get_verified(Bucket::Debs, &sha, 5).is_some());
        std::fs::write(cache.path(Bucket::Debs, &sha), b"hellO").unwrap();
        assert!(cache.get_verified(Bucket::Debs, &sha, 5).is_none());
        assert!(
            !cache.path(Bucket::Debs, &sha).exists(),
            "a corrupt entry is removed"
        );
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().to_owned()).unwrap();
        {
            let mut entry = cache.create(Bucket::Debs, &Sha256::of(b"x")).unwrap();
            entry.write_all(b"partial").unwrap();
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join("debs-v1"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }
}
