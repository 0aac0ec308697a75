//! Downloads: streamed to the cache, checked for size and SHA-256 while
//! they arrive, retried with backoff when the failure may pass (connection
//! errors, timeouts, 5xx, truncated bodies), several at a time.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::{Bucket, Cache, CacheError};

/// One file to fetch: a path below the mirror, its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// What it is, for messages: `runit 2.2.0-3`.
    pub label: String,
    /// Another path with the same content, tried when `path` is missing
    /// (an index's plain name when its `by-hash` name is absent).
    pub alternate: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot fetch {url}: {reason}")]
    Failed {
        url: String,
        reason: String,
        permanent: bool,
    },
    #[error("{url} is not what the signed index promises ({what}): the mirror or the connection corrupted it")]
    Mismatch { url: String, what: String },
    #[error("{label} is not in the cache and --offline forbids downloading it\nhint: run once without --offline to fill the cache")]
    Offline { label: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// How downloads are made.
#[derive(Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    mirror: String,
    pub attempts: u32,
    pub backoff: Duration,
    pub parallel: usize,
    pub offline: bool,
}

/// Progress callbacks (a terminal progress bar, or nothing).
pub trait Progress: Sync {
    fn start(&self, _files: usize, _bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

pub struct Silent;
impl Progress for Silent {}

impl Fetcher {
    pub fn new(mirror: &str) -> Fetcher {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_per_read(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .user_agent(concat!("micros/", env!("CARGO_PKG_VERSION")))
            .build();
        Fetcher {
            agent: config.into(),
            mirror: mirror.trim_end_matches('/').to_owned(),
            attempts: 4,
            backoff: Duration::from_millis(500),
            parallel: 4,
            offline: false,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.mirror, path.trim_start_matches('/'))
    }

    /// Fetches a small file (InRelease) whole, with retries; no hash to check.
    pub fn fetch_bytes(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        let url = self.url(path);
        self.retry(&url, || {
            let mut body = Vec::new();
            self.get(&url)?
                .read_to_end(&mut body)
                .map_err(|e| Attempt::Transient(format!("reading the body: {e}")))?;
            Ok(body)
        })
    }

    /// Makes `download` available in `bucket` of the cache, fetching it
    /// only when the cache lacks an intact copy.
    pub fn fetch_to_cache(
        &self,
        cache: &Cache,
        bucket: Bucket,
        download: &Download,
        progress: &dyn Progress,
    ) -> Result<PathBuf, FetchError> {
        if let Some(path) = cache.get_verified(bucket, &download.sha256, download.size) {
            progress.advance(download.size);
            return Ok(path);
        }
        if self.offline {
            return Err(FetchError::Offline {
                label: download.label.clone(),
            });
        }
        match self.download(cache, bucket, download, &download.path, progress) {
            Err(FetchError::Failed {
                permanent: true, ..
            }) if download.alternate.is_some() => {
                let alternate = download.alternate.as_deref().unwrap_or_default();
                self.download(cache, bucket, download, alternate, progress)
            }
            other => other,
        }
    }

    fn download(
        &self,
        cache: &Cache,
        bucket: Bucket,
        download: &Download,
        path: &str,
        progress: &dyn Progress,
    ) -> Result<PathBuf, FetchError> {
        let url = self.url(path);
        self.retry(&url, || {
            let mut entry = cache
                .create(bucket, &download.sha256)
                .map_err(|e| Attempt::Fatal(FetchError::Cache(e)))?;
            let mut reader = self.get(&url)?;
            let mut hasher = Sha256::new();
            let mut received = 0u64;
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let n = reader.read(&mut buffer).map_err(|e| {
                    Attempt::Transient(format!("connection lost after {received} bytes: {e}"))
                })?;
                if n == 0 {
                    break;
                }
                received += n as u64;
                if received > download.size {
                    return Err(Attempt::Fatal(FetchError::Mismatch {
                        url: url.clone(),
                        what: format!("more than the {} bytes expected", download.size),
                    }));
                }
                hasher.update(&buffer[..n]);
                entry.write_all(&buffer[..n]).map_err(|e| {
                    Attempt::Fatal(FetchError::Cache(CacheError::Io {
                        path: cache.root().to_owned(),
                        source: e,
                    }))
                })?;
                progress.advance(n as u64);
            }
            if received < download.size {
                return Err(Attempt::Short {
                    received,
                    expected: download.size,
                });
            }
            let sha256 = hex::encode(hasher.finalize());
            if sha256 != download.sha256 {
                return Err(Attempt::Fatal(FetchError::Mismatch {
                    url: url.clone(),
                    what: format!("SHA-256 {sha256}, expected {}", download.sha256),
                }));
            }
            entry
                .commit()
                .map_err(|e| Attempt::Fatal(FetchError::Cache(e)))
        })
    }

    /// Fetches many downloads, `self.parallel` at a time; returns their
    /// cache paths in the same order. Stops at the first error.
    pub fn fetch_all(
        &self,
        cache: &Cache,
        bucket: Bucket,
        downloads: &[Download],
        progress: &dyn Progress,
    ) -> Result<Vec<PathBuf>, FetchError> {
        progress.start(downloads.len(), downloads.iter().map(|d| d.size).sum());
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<PathBuf, FetchError>>>> =
            Mutex::new((0..downloads.len()).map(|_| None).collect());
        let failed = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..self.parallel.max(1).min(downloads.len().max(1)) {
                scope.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) > 0 {
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(download) = downloads.get(index) else {
                        return;
                    };
                    let result = self.fetch_to_cache(cache, bucket, download, progress);
                    if result.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    results.lock().expect("no panics while holding the lock")[index] = Some(result);
                });
            }
        });
        progress.finish();
        let results = results.into_inner().expect("threads joined");
        let mut paths = Vec::with_capacity(downloads.len());
        for result in results {
            match result {
                Some(Ok(path)) => paths.push(path),
                Some(Err(error)) => return Err(error),
                None => continue,
            }
        }
        Ok(paths)
    }

    fn get(&self, url: &str) -> Result<Box<dyn Read + Send>, Attempt> {
        if let Some(path) = url.strip_prefix("file://") {
            let file = std::fs::File::open(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Attempt::Permanent("not found".to_owned()),
                _ => Attempt::Transient(e.to_string()),
            })?;
            return Ok(Box::new(file));
        }
        let response = self.agent.get(url).call().map_err(|error| match error {
            ureq::Error::BadUri(reason) => Attempt::Permanent(format!("bad URL: {reason}")),
            other => Attempt::Transient(other.to_string()),
        })?;
        let status = response.status().as_u16();
        match status {
            200 => Ok(Box::new(response.into_body().into_reader())),
            404 | 410 => Err(Attempt::Permanent(format!(
                "HTTP {status}: the mirror does not have it (is the suite or mirror right?)"
            ))),
            408 | 429 | 500..=599 => Err(Attempt::Transient(format!("HTTP {status}"))),
            _ => Err(Attempt::Permanent(format!("HTTP {status}"))),
        }
    }

    fn retry<T>(
        &self,
        url: &str,
        mut attempt: impl FnMut() -> Result<T, Attempt>,
    ) -> Result<T, FetchError> {
        let mut delay = self.backoff;
        let mut last = String::new();
        let mut last_short = None;
        for number in 1..=self.attempts.max(1) {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Permanent(reason)) => {
                    return Err(FetchError::Failed {
                        url: url.to_owned(),
                        reason,
                        permanent: true,
                    })
                }
                Err(Attempt::Short { received, expected }) => {
                    // The same short length every time means the mirror
                    // holds another file under this name (e.g. mid-sync).
                    if last_short == Some(received) {
                        return Err(FetchError::Mismatch {
                            url: url.to_owned(),
                            what: format!("{received} bytes, expected {expected}; the mirror may be in the middle of an update: try again later or use another mirror"),
                        });
                    }
                    last_short = Some(received);
                    last = format!("truncated: {received} of {expected} bytes");
                    if number < self.attempts {
                        std::thread::sleep(delay);
                        delay *= 2;
                    }
                }
                Err(Attempt::Transient(reason)) => {
                    last = reason;
                    if number < self.attempts {
                        std::thread::sleep(delay);
                        delay *= 2;
                    }
                }
            }
        }
        Err(FetchError::Failed {
            url: url.to_owned(),
            reason: format!("{last} (gave up after {} attempts)", self.attempts),
            permanent: false,
        })
    }
}

enum Attempt {
    /// Worth trying again.
    Transient(String),
    /// The body ended early.
    Short {
        received: u64,
        expected: u64,
    },
    /// Will fail the same way again.
    Permanent(String),
    Fatal(FetchError),
}
