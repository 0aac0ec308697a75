//! Unpacking `.deb` files into the rootfs tree, without running any
//! maintainer script.
//!
//! A `.deb` is an ar archive: `debian-binary`, `control.tar.*` and
//! `data.tar.{xz,zst,gz}`. The data tar is decompressed once into the cache
//! (`data-v1/<sha256 of the .deb>.tar`) and the tree's file entries point
//! into it, so unpacking costs no memory for file contents. Of the control
//! tar only the maintainer scripts are read ([`control_scripts`]), as text
//! for [`crate::maintscript`] to understand, never to run.
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use micros_image::tree::{Content, Entry, Kind, Tree, TreeError, TreePath};

use crate::ar::{self, ArError};
use crate::cache::{Bucket, Cache, CacheError};
use crate::digest::Sha256;
use crate::tar::{self, EntryKind, TarError};

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{package}: cannot read {}", path.display())]
    Io {
        package: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{package}: not a valid .deb: {source}")]
    Ar {
        package: String,
        #[source]
        source: ArError,
    },
    #[error("{package}: the .deb has no data.tar member")]
    NoData { package: String },
    #[error("{package}: the .deb has no control.tar member")]
    NoControl { package: String },
    #[error("{package}: {member} uses a compression MicrOS does not know\nhint: MicrOS reads .tar.xz, .tar.zst, .tar.gz and plain .tar members")]
    UnknownCompression { package: String, member: String },
    #[error("{package}: {member} is larger than {limit} bytes, more than any real package needs; MicrOS does not read it")]
    TooLarge {
        package: String,
        member: String,
        limit: u64,
    },
    #[error("{package}: cannot decompress {member}: {source}")]
    Decompress {
        package: String,
        member: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{package}: bad data.tar: {source}")]
    Tar {
        package: String,
        #[source]
        source: TarError,
    },
    #[error("{package}: bad control.tar: {source}")]
    ControlTar {
        package: String,
        #[source]
        source: TarError,
    },
    #[error("{package}: {source}")]
    Tree {
        package: String,
        #[source]
        source: Box<TreeError>,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// How paths are placed.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Put `/bin`, `/sbin`, `/lib*` contents under `/usr` (Debian's merged
    /// /usr; the symlinks themselves come from a module).
    pub merged_usr: bool,
}

/// What an unpack added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: usize,
    pub bytes: u64,
}

/// `bin/x` → `usr/bin/x` under merged /usr.
pub fn merged_usr_path(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_start_matches('/');
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        if trimmed == top {
            return format!("usr/{top}");
        }
        if let Some(rest) = trimmed.strip_prefix(top).and_then(|r| r.strip_prefix('/')) {
            return format!("usr/{top}/{rest}");
        }
    }
    trimmed.to_owned()
}

/// Decompresses the data member of `deb` into the cache (once) and returns
/// the tar's path.
pub fn data_tar(
    cache: &Cache,
    package: &str,
    deb: &Path,
    deb_sha256: &Sha256,
) -> Result<PathBuf, DebError> {
    let target = cache.path(Bucket::Data, deb_sha256);
    if target.exists() {
        return Ok(target);
    }
    let (mut file, data) = open_member(package, deb, "data.tar", || DebError::NoData {
        package: package.to_owned(),
    })?;
    let compressed = (&mut file).take(data.size);
    let mut reader = decompressor(package, &data.name, "data.tar", compressed)?;
    let mut entry = cache.create(Bucket::Data, deb_sha256)?;
    std::io::copy(&mut reader, entry.file()).map_err(|source| DebError::Decompress {
        package: package.to_owned(),
        member: data.name.clone(),
        source,
    })?;
    Ok(entry.commit()?)
}

/// A reader of the tar inside ar member `member`, named `<stem>`,
/// `<stem>.xz`, `<stem>.zst` or `<stem>.gz`.
fn decompressor<'a>(
    package: &str,
    member: &str,
    stem: &str,
    compressed: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>, DebError> {
    Ok(match member.strip_prefix(stem) {
        Some(".xz") => Box::new(liblzma::read::XzDecoder::new_multi_decoder(compressed)),
        Some(".zst") => Box::new(zstd::stream::read::Decoder::new(compressed).map_err(
            |source| DebError::Decompress {
                package: package.to_owned(),
                member: member.to_owned(),
                source,
            },
        )?),
        Some(".gz") => Box::new(flate2::read::GzDecoder::new(compressed)),
        Some("") => Box::new(compressed),
        _ => {
            return Err(DebError::UnknownCompression {
                package: package.to_owned(),
                member: member.to_owned(),
            })
        }
    })
}

/// A package's maintainer scripts, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlScripts {
    pub preinst: Option<String>,
    pub postinst: Option<String>,
}

/// The largest decompressed control tar read: its `md5sums` lists every
/// file of the package, a few megabytes for the largest in Debian.
const MAX_CONTROL_TAR: u64 = 64 << 20;

/// Reads `./preinst` and `./postinst` from the control tar of `deb`.
/// A script larger than [`crate::maintscript::MAX_SCRIPT`] is an error
/// rather than cut short (a cut script could read as something it does
/// not say); one that is not UTF-8 is read lossily.
pub fn control_scripts(package: &str, deb: &Path) -> Result<ControlScripts, DebError> {
    let (mut file, control) = open_member(package, deb, "control.tar", || DebError::NoControl {
        package: package.to_owned(),
    })?;
    let compressed = (&mut file).take(control.size);
    let reader = decompressor(package, &control.name, "control.tar", compressed)?;
    let mut tar = Vec::new();
    reader
        .take(MAX_CONTROL_TAR + 1)
        .read_to_end(&mut tar)
        .map_err(|source| DebError::Decompress {
            package: package.to_owned(),
            member: control.name.clone(),
            source,
        })?;
    if tar.len() as u64 > MAX_CONTROL_TAR {
        return Err(DebError::TooLarge {
            package: package.to_owned(),
            member: control.name.clone(),
            limit: MAX_CONTROL_TAR,
        });
    }
    let entries = tar::entries_of(&tar).map_err(|source| DebError::ControlTar {
        package: package.to_owned(),
        source,
    })?;
    let mut scripts = ControlScripts::default();
    for entry in entries {
        let name = entry.path.trim_start_matches("./");
        let slot = match name {
            "preinst" => &mut scripts.preinst,
            "postinst" => &mut scripts.postinst,
            _ => continue,
        };
        if entry.kind != EntryKind::File || slot.is_some() {
            continue;
        }
        let limit = crate::maintscript::MAX_SCRIPT as u64;
        if entry.size > limit {
            return Err(DebError::TooLarge {
                package: package.to_owned(),
                member: format!("{} in {}", name, control.name),
                limit,
            });
        }
        // entries_of checked that the data lies inside the tar.
        let bytes = tar
            .get(entry.offset as usize..(entry.offset + entry.size) as usize)
            .unwrap_or_default();
        *slot = Some(String::from_utf8_lossy(bytes).into_owned());
    }
    Ok(scripts)
}

/// Opens `deb` at the start of its first member whose name starts with
/// `prefix` (`data.tar`, `control.tar`); `missing` when it has none.
fn open_member(
    package: &str,
    deb: &Path,
    prefix: &str,
    missing: impl FnOnce() -> DebError,
) -> Result<(std::fs::File, ar::Member), DebError> {
    let io = |source| DebError::Io {
        package: package.to_owned(),
        path: deb.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(deb).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    let members =
        ar::members(length, |offset, n| read_at(&mut file, offset, n)).map_err(|source| {
            DebError::Ar {
                package: package.to_owned(),
                source,
            }
        })?;
    let member = members
        .into_iter()
        .find(|m| m.name.starts_with(prefix))
        .ok_or_else(missing)?;
    file.seek(SeekFrom::Start(member.offset)).map_err(io)?;
    Ok((file, member))
}

/// Up to `n` bytes at `offset` (fewer at the end of the file or on an
/// error, which the readers then report as truncation).
fn read_at(file: &mut std::fs::File, offset: u64, n: usize) -> Vec<u8> {
    let mut buffer = vec![0; n];
    let read = file
        .seek(SeekFrom::Start(offset))
        .and_then(|_| read_up_to(file, &mut buffer));
    buffer.truncate(read.unwrap_or(0));
    buffer
}

fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    while total < buffer.len() {
        let n = file.read(&mut buffer[total..])?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// Adds the files of a package's data tar to `tree`, owned by `package`.
/// Modes, ownership, symlinks, hard links and device nodes are kept.
pub fn unpack_tar(
    package: &str,
    data_tar: &Path,
    tree: &mut Tree,
    options: UnpackOptions,
) -> Result<Unpacked, DebError> {
    let io = |source| DebError::Io {
        package: package.to_owned(),
        path: data_tar.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(data_tar).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    let entries =
        tar::entries(length, |offset, n| read_at(&mut file, offset, n)).map_err(|source| {
            DebError::Tar {
                package: package.to_owned(),
                source,
            }
        })?;
    let shared = Arc::new(data_tar.to_owned());
    let place = |path: &str| -> Result<TreePath, DebError> {
        // dpkg-deb writes `./`-relative names; an absolute one means a
        // hand-made or hostile archive.
        if path.starts_with('/') {
            return Err(DebError::Tree {
                package: package.to_owned(),
                source: Box::new(TreeError::Escapes {
                    path: path.to_owned(),
                }),
            });
        }
        let path = if options.merged_usr {
            merged_usr_path(path)
        } else {
            path.to_owned()
        };
        TreePath::parse(&path).map_err(|source| DebError::Tree {
            package: package.to_owned(),
            source: Box::new(source),
        })
    };
    let mut unpacked = Unpacked::default();
    for entry in entries {
        // base-files' own merged-/usr links (`/bin -> usr/bin`, trixie's):
        // placed under /usr they would land on the directory they name.
        // Merged /usr's links come from MicrOS.
        if options.merged_usr && is_merged_usr_link(&entry.path, &entry.kind) {
            continue;
        }
        let path = place(&entry.path)?;
        if path.is_root() {
            continue;
        }
        let kind = match entry.kind {
            EntryKind::File => {
                unpacked.bytes += entry.size;
                Kind::File(Content::Extent {
                    file: shared.clone(),
                    offset: entry.offset,
                    length: entry.size,
                })
            }
            EntryKind::Directory => Kind::Directory,
            EntryKind::Symlink(target) => Kind::Symlink(target),
            EntryKind::Hardlink(target) => Kind::Hardlink(place(&target)?),
            EntryKind::CharDevice { major, minor } => Kind::CharDevice { major, minor },
            EntryKind::BlockDevice { major, minor } => Kind::BlockDevice { major, minor },
            EntryKind::Fifo => Kind::Fifo,
        };
        let node = Entry::new(kind, entry.mode, package).owned(entry.uid, entry.gid);
        tree.insert(path, node).map_err(|source| DebError::Tree {
            package: package.to_owned(),
            source: Box::new(source),
        })?;
        unpacked.entries += 1;
    }
    Ok(unpacked)
}

/// `./bin -> usr/bin` and its kin: a top-level link to the same name under
/// `/usr`.
fn is_merged_usr_link(path: &str, kind: &EntryKind) -> bool {
    let EntryKind::Symlink(target) = kind else {
        return false;
    };
    let name = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    let target = target.trim_start_matches('/');
    ["bin", "sbin", "lib", "lib32", "lib64", "libx32"].contains(&name)
        && target == format!("usr/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn deb(data_name: &str, data: &[u8]) -> Vec<u8> {
        ar::build(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", b""),
            (data_name, data),
        ])
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(bytes, 6)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn unpacks_into_the_tree_with_merged_usr() {
        let data = tar::build(&[
            ("./", '5', 0o755, b"", ""),
            ("./bin/", '5', 0o755, b"", ""),
            ("./bin/busybox", '0', 0o755, b"ELF", ""),
            ("./usr/bin/sh", '1', 0o755, b"", "./bin/busybox"),
            ("./usr/bin/vi", '2', 0o777, b"", "../../bin/busybox"),
            ("./dev/console", '3', 0o600, b"", ""),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        for (name, bytes) in [("data.tar.xz", xz(&data)), ("data.tar", data.clone())] {
            let path = dir.path().join(format!("{name}.deb"));
            std::fs::write(&path, deb(name, &bytes)).unwrap();
            let sha = crate::cache::hash_file(&path).unwrap();
            let tar = data_tar(&cache, "busybox", &path, &sha).unwrap();
            let mut tree = Tree::new();
            let unpacked = unpack_tar(
                "busybox",
                &tar,
                &mut tree,
                UnpackOptions { merged_usr: true },
            )
            .unwrap();
            assert_eq!(unpacked.bytes, 3);
            let busybox = tree
                .get(&TreePath::parse("/usr/bin/busybox").unwrap())
                .unwrap();
            assert_eq!(busybox.mode, 0o755);
            assert_eq!(&*busybox.origin, "busybox");
            let Kind::File(content) = &busybox.kind else {
                panic!("not a file")
            };
            assert_eq!(content.read().unwrap(), b"ELF");
            assert_eq!(
                tree.get(&TreePath::parse("/usr/bin/sh").unwrap())
                    .unwrap()
                    .kind,
                Kind::Hardlink(TreePath::parse("/usr/bin/busybox").unwrap())
            );
            assert!(tree.get(&TreePath::parse("/bin").unwrap()).is_none());
        }
    }

    #[test]
    fn base_files_merged_usr_links_are_left_to_micros() {
        // trixie's base-files ships /bin -> usr/bin itself, after usr/bin.
        let data = tar::build(&[
            ("./usr/bin/", '5', 0o755, b"", ""),
            ("./usr/bin/true", '0', 0o755, b"ELF", ""),
            ("./bin", '2', 0o777, b"", "usr/bin"),
            ("./lib64", '2', 0o777, b"", "usr/lib64"),
            // Not one of merged /usr's: kept.
            ("./lib/foo", '2', 0o777, b"", "usr/lib"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.tar");
        std::fs::write(&path, &data).unwrap();
        let mut tree = Tree::new();
        unpack_tar(
            "base-files",
            &path,
            &mut tree,
            UnpackOptions { merged_usr: true },
        )
        .unwrap();
        assert!(tree
            .get(&TreePath::parse("/usr/bin").unwrap())
            .unwrap()
            .is_dir());
        assert!(tree.get(&TreePath::parse("/usr/lib64").unwrap()).is_none());
        assert!(tree
            .get(&TreePath::parse("/usr/lib/foo").unwrap())
            .is_some());
    }

    #[test]
    fn control_scripts_are_read_as_text() {
        use micros_test_archive::{build_deb, TestPackage};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mosquitto.deb");
        let postinst = "#!/bin/sh\nset -e\naddgroup --quiet --system mosquitto\n";
        let package = TestPackage::new("mosquitto", "2.0.21-1")
            .script("postinst", postinst)
            .script("preinst", "#!/bin/sh\n");
        std::fs::write(&path, build_deb(&package)).unwrap();
        assert_eq!(
            control_scripts("mosquitto", &path).unwrap(),
            ControlScripts {
                preinst: Some("#!/bin/sh\n".to_owned()),
                postinst: Some(postinst.to_owned()),
            }
        );

        std::fs::write(&path, build_deb(&TestPackage::new("plain", "1"))).unwrap();
        assert_eq!(
            control_scripts("plain", &path).unwrap(),
            ControlScripts::default()
        );

        // control.tar.gz, and a script that is not UTF-8.
        let control = tar::build(&[
            ("./", '5', 0o755, b"", ""),
            ("./control", '0', 0o644, b"Package: x\n", ""),
            ("./postinst", '0', 0o755, b"echo caf\xe9\n", ""),
        ]);
        let mut gz = Vec::new();
        flate2::read::GzEncoder::new(&control[..], flate2::Compression::default())
            .read_to_end(&mut gz)
            .unwrap();
        let bytes = ar::build(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &gz),
            ("data.tar", b""),
        ]);
        std::fs::write(&path, bytes).unwrap();
        let scripts = control_scripts("x", &path).unwrap();
        assert_eq!(scripts.postinst.as_deref(), Some("echo caf\u{fffd}\n"));
        assert_eq!(scripts.preinst, None);
    }

    #[test]
    fn oversized_or_missing_control_members_are_refused() {
        use micros_test_archive::{build_deb, TestPackage};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        let huge = "#".repeat(crate::maintscript::MAX_SCRIPT + 1);
        let package = TestPackage::new("x", "1").script("postinst", &huge);
        std::fs::write(&path, build_deb(&package)).unwrap();
        let error = control_scripts("x", &path).unwrap_err().to_string();
        assert!(
            error.contains("postinst in control.tar.xz is larger than 1048576 bytes"),
            "{error}"
        );

        std::fs::write(&path, deb("data.tar", b"")).unwrap();
        let error = control_scripts("x", &path).unwrap_err().to_string();
        assert!(
            error.contains("cannot decompress control.tar.gz"),
            "{error}"
        );

        let garbage = [b'x'; 512];
        let bytes = ar::build(&[("control.tar", &garbage), ("data.tar", b"")]);
        std::fs::write(&path, bytes).unwrap();
        let error = control_scripts("x", &path).unwrap_err().to_string();
        assert!(error.contains("bad control.tar"), "{error}");

        let bytes = ar::build(&[("debian-binary", b"2.0\n"), ("data.tar", b"")]);
        std::fs::write(&path, bytes).unwrap();
        let error = control_scripts("x", &path).unwrap_err().to_string();
        assert!(error.contains("no control.tar member"), "{error}");

        let bytes = ar::build(&[("control.tar.lz4", b"?"), ("data.tar", b"")]);
        std::fs::write(&path, bytes).unwrap();
        let error = control_scripts("x", &path).unwrap_err().to_string();
        assert!(
            error.contains("control.tar.lz4 uses a compression"),
            "{error}"
        );
    }

    #[test]
    fn unknown_compression_and_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        let path = dir.path().join("x.deb");
        std::fs::write(&path, deb("data.tar.lz4", b"whatever")).unwrap();
        let error = data_tar(&cache, "x", &path, &Sha256::of(b"abc"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("data.tar.lz4 uses a compression MicrOS does not know"),
            "{error}"
        );

        for (index, evil) in ["./../../etc/passwd", "/etc/passwd"].iter().enumerate() {
            let archive = tar::build(&[(evil, '0', 0o644, b"root::0:0", "")]);
            std::fs::write(&path, deb("data.tar", &archive)).unwrap();
            let tar = data_tar(
                &cache,
                "evil",
                &path,
                &Sha256::of(format!("evil{index}").as_bytes()),
            )
            .unwrap();
            let options = UnpackOptions { merged_usr: false };
            let error = unpack_tar("evil", &tar, &mut Tree::new(), options)
                .unwrap_err()
                .to_string();
            assert!(error.contains("escapes the root"), "{evil}: {error}");
        }
    }
}
