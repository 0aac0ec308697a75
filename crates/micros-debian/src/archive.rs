//! One suite of a Debian archive for one architecture: its verified
//! Release and every package of the chosen components.
use std::io::Read;
use std::path::PathBuf;

use crate::cache::{Bucket, Cache};
use crate::fetch::{Download, FetchError, Fetcher, Progress};
use crate::index::{self, IndexError, Package};
use crate::release::{Release, ReleaseError};
use crate::signature::{self, Keyring, SignatureError};

/// Where and what to read.
#[derive(Debug, Clone)]
pub struct Source {
    pub suite: String,
    pub components: Vec<String>,
    /// Debian's name: `amd64`, `arm64`, `armhf`, `armel`, `riscv64`.
    pub architecture: String,
    pub keyring: PathBuf,
}

/// The most an `InRelease` may weigh (Debian's are below 1 MB).
const INRELEASE_LIMIT: u64 = 16 << 20;

/// The host's Debian archive keyring, used when the config names none.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{suite}: {source}")]
    Signature {
        suite: String,
        #[source]
        source: SignatureError,
    },
    #[error("{suite}: {source}")]
    Release {
        suite: String,
        #[source]
        source: ReleaseError,
    },
    #[error("the suite {suite} has no Packages index for {component}/{architecture}\nhint: check `packages.source.components` and the platform ({available})")]
    NoIndex {
        suite: String,
        component: String,
        architecture: String,
        available: String,
    },
    #[error("dists/{asked}/InRelease is the Release of another suite (Suite: {suite}, Codename: {codename}): the mirror replayed or misplaced it\nhint: use another mirror")]
    NotAsked {
        asked: String,
        suite: String,
        codename: String,
    },
    #[error("cannot open the downloaded {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
}

pub struct Archive {
    pub release: Release,
    /// Packages of the architecture and of `all`, in index order.
    pub packages: Vec<Package>,
    /// The `dists/` name the indexes were read through, when it is not the
    /// one asked for: the asked one was caught mid-update and another name
    /// of the same release (`stable` for `trixie`) was consistent.
    pub read_through: Option<String>,
}

/// Other names under `dists/` that may be the same release as `suite`
/// (whose Codename is `codename`), tried in this order when `suite` is
/// caught mid-update.
fn other_names<'a>(suite: &'a str, codename: &'a str) -> Vec<&'a str> {
    let mut names = vec![codename];
    names.extend(["stable", "oldstable", "testing", "unstable"]);
    names.retain(|name| !name.is_empty() && *name != suite);
    names.dedup();
    names
}

impl Archive {
    /// Fetches and verifies `InRelease`, then the `Packages` indexes of
    /// every component for the architecture and `all` (each checked
    /// against the signed SHA-256; cached by it).
    ///
    /// A mirror caught in the middle of an update serves a new `InRelease`
    /// with old indexes (and, without by-hash copies, nothing matches).
    /// Then the same release is looked for under its other names (its
    /// codename, `stable`, `oldstable`, `testing`, `unstable`): one whose
    /// signed Release has the same Codename and whose indexes match is
    /// used, and [`Archive::read_through`] says which. A hash that does not
    /// match is never accepted.
    pub fn open(
        source: &Source,
        fetcher: &Fetcher,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> Result<Archive, ArchiveError> {
        let keyring = Keyring::load(&source.keyring).map_err(|e| ArchiveError::Signature {
            suite: source.suite.clone(),
            source: e,
        })?;
        let release = signed_release(&source.suite, fetcher, &keyring)?;
        let error = match indexes(source, &source.suite, &release, fetcher, cache, progress) {
            Ok(packages) => {
                return Ok(Archive {
                    release,
                    packages,
                    read_through: None,
                })
            }
            Err(error) if error.is_inconsistent() => error,
            Err(error) => return Err(error),
        };
        for name in other_names(&source.suite, &release.codename) {
            // Names this mirror does not serve, or that are another
            // release, are passed over quietly: the first error is the one
            // to report.
            let Ok(other) = signed_release(name, fetcher, &keyring) else {
                continue;
            };
            if other.codename != release.codename {
                continue;
            }
            if let Ok(packages) = indexes(source, name, &other, fetcher, cache, progress) {
                return Ok(Archive {
                    release: other,
                    packages,
                    read_through: Some(name.to_owned()),
                });
            }
        }
        Err(error)
    }
}

/// `dists/<name>/InRelease`, its signature verified and its Release parsed
/// and checked to be `name`'s.
fn signed_release(
    name: &str,
    fetcher: &Fetcher,
    keyring: &Keyring,
) -> Result<Release, ArchiveError> {
    let inrelease = fetcher.fetch_bytes(&format!("dists/{name}/InRelease"), INRELEASE_LIMIT)?;
    let text = String::from_utf8_lossy(&inrelease);
    let signed =
        signature::verify_inrelease(&text, keyring).map_err(|e| ArchiveError::Signature {
            suite: name.to_owned(),
            source: e,
        })?;
    let release = Release::parse(&signed).map_err(|e| ArchiveError::Release {
        suite: name.to_owned(),
        source: e,
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    release
        .check_valid_at(now)
        .map_err(|e| ArchiveError::Release {
            suite: name.to_owned(),
            source: e,
        })?;
    if !release.is_for(name) {
        return Err(ArchiveError::NotAsked {
            asked: name.to_owned(),
            suite: release.suite,
            codename: release.codename,
        });
    }
    Ok(release)
}

/// Every package of `source`'s components for its architecture and `all`,
/// from the indexes under `dists/<name>/` that `release` signs.
fn indexes(
    source: &Source,
    name: &str,
    release: &Release,
    fetcher: &Fetcher,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<Vec<Package>, ArchiveError> {
    let mut downloads = Vec::new();
    for component in &source.components {
        // Debian's archive lists the `all` packages in every architecture's
        // index too (and says so): reading `binary-all` as well would only
        // read them twice.
        let all = Some("all").filter(|_| !release.all_in_architecture_indexes);
        for architecture in std::iter::once(source.architecture.as_str()).chain(all) {
            match release.packages_index(component, architecture) {
                Some((path, hash)) => downloads.push(Download {
                    path: format!("dists/{name}/{}", release.download_path(&path, hash)),
                    size: hash.size,
                    sha256: hash.sha256.clone(),
                    label: format!("dists/{name}/{path}"),
                    promised_by: "the signed index",
                    alternate: Some(fetcher.url(&format!("dists/{name}/{path}")))
                        .filter(|_| release.acquire_by_hash),
                }),
                // Suites without a separate `all` index fold those
                // packages into each architecture's.
                None if architecture == "all" => {}
                None => {
                    return Err(ArchiveError::NoIndex {
                        suite: name.to_owned(),
                        component: component.clone(),
                        architecture: architecture.to_owned(),
                        available: format!("it serves {}", release.architectures.join(", ")),
                    })
                }
            }
        }
    }
    let fetched = fetcher.fetch_all(cache, Bucket::Indexes, &downloads, progress)?;
    let mut packages = Vec::new();
    for (download, file) in downloads.iter().zip(fetched) {
        let reader = decompressed(&download.label, &file.path)?;
        packages.extend(index::read_packages(&download.label, reader)?);
    }
    Ok(packages)
}

impl ArchiveError {
    /// Whether the error says the mirror's indexes do not match its signed
    /// Release (a mirror in the middle of an update).
    pub fn is_inconsistent(&self) -> bool {
        matches!(
            self,
            ArchiveError::Fetch(FetchError::Mismatch { .. } | FetchError::Missing { .. })
        )
    }
}

/// The index at `path` (compressed as its `name` says), to be read as text.
fn decompressed(
    name: &str,
    path: &std::path::Path,
) -> Result<std::io::BufReader<Box<dyn Read>>, ArchiveError> {
    let file = std::fs::File::open(path).map_err(|source| ArchiveError::Open {
        path: name.to_owned(),
        source,
    })?;
    let reader: Box<dyn Read> = if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(
            std::io::BufReader::new(file),
        ))
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(file)
    };
    Ok(std::io::BufReader::with_capacity(1 << 16, reader))
}
