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
}

impl Archive {
    /// Fetches and verifies `InRelease`, then the `Packages` indexes of
    /// every component for the architecture and `all` (each checked
    /// against the signed SHA-256; cached by it).
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
        let inrelease = fetcher.fetch_bytes(&format!("dists/{}/InRelease", source.suite))?;
        let text = String::from_utf8_lossy(&inrelease);
        let signed =
            signature::verify_inrelease(&text, &keyring).map_err(|e| ArchiveError::Signature {
                suite: source.suite.clone(),
                source: e,
            })?;
        let release = Release::parse(&signed).map_err(|e| ArchiveError::Release {
            suite: source.suite.clone(),
            source: e,
        })?;

        let mut downloads = Vec::new();
        for component in &source.components {
            for architecture in [source.architecture.as_str(), "all"] {
                match release.packages_index(component, architecture) {
                    Some((path, hash)) => downloads.push(Download {
                        path: format!(
                            "dists/{}/{}",
                            source.suite,
                            release.download_path(&path, hash)
                        ),
                        size: hash.size,
                        sha256: hash.sha256.clone(),
                        label: path.clone(),
                        alternate: Some(format!("dists/{}/{path}", source.suite))
                            .filter(|_| release.acquire_by_hash),
                    }),
                    // Suites without a separate `all` index fold those
                    // packages into each architecture's.
                    None if architecture == "all" => {}
                    None => {
                        return Err(ArchiveError::NoIndex {
                            suite: source.suite.clone(),
                            component: component.clone(),
                            architecture: architecture.to_owned(),
                            available: format!("it serves {}", release.architectures.join(", ")),
                        })
                    }
                }
            }
        }
        let paths = fetcher.fetch_all(cache, Bucket::Indexes, &downloads, progress)?;
        let mut packages = Vec::new();
        for (download, path) in downloads.iter().zip(paths) {
            let reader = decompressed(&download.label, &path)?;
            packages.extend(index::read_packages(&download.label, reader)?);
        }
        Ok(Archive { release, packages })
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
