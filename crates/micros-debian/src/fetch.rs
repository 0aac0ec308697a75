//! Downloads: streamed to the cache, checked for size and SHA-256 while
//! they arrive, retried with backoff when the failure may pass (connection
//! errors, timeouts, 5xx, truncated bodies), several at a time.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sha2::Digest;

use crate::cache::{Bucket, Cache, CacheError};
use crate::digest::Sha256;

/// One file to fetch: a path below the mirror, its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub path: String,
    pub size: u64,
    pub sha256: Sha256,
    /// What it is, for messages: `runit 2.2.0-3`.
    pub label: String,
    /// Who promised the size and hash, for messages: `the signed index`,
    /// `the lock`.
    pub promised_by: &'static str,
    /// Another URL with the same content, tried when `path` is missing: an
    /// index's plain name when its `by-hash` name is absent, a locked
    /// package's copy in a snapshot archive once the mirror dropped it.
    pub alternate: Option<String>,
}

/// A download in the cache, and whether it came from its alternate URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub from_alternate: bool,
}

/// A file neither the mirror nor its alternate has: what, and the URLs
/// tried with their answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub label: String,
    pub tried: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot fetch {url}: {reason}")]
    Failed {
        url: String,
        reason: String,
        permanent: bool,
    },
    #[error("{url} is not what {promised_by} promises ({what}): the mirror or the connection corrupted it")]
    Mismatch {
        url: String,
        promised_by: &'static str,
        what: String,
    },
    /// Files the mirror does not have (HTTP 404), nor their alternates;
    /// `hint` says what to do, where the caller knows.
    #[error("{}{hint}", missing_message(.files))]
    Missing { files: Vec<Missing>, hint: String },
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
    /// Takes back bytes counted for an attempt that failed, so that the
    /// total is never exceeded.
    fn rewind(&self, _bytes: u64) {}
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

    /// Fetches a small file (InRelease) whole, with retries; no hash to
    /// check, so no more than `limit` bytes are read: a mirror cannot make
    /// micros read without end.
    pub fn fetch_bytes(&self, path: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        let url = self.url(path);
        self.retry(&url, || {
            let mut body = Vec::new();
            self.get(&url)?
                .take(limit + 1)
                .read_to_end(&mut body)
                .map_err(|e| Attempt::Transient(format!("reading the body: {e}")))?;
            if body.len() as u64 > limit {
                return Err(Attempt::Permanent(format!(
                    "larger than the {limit} bytes such a file may have"
                )));
            }
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
    ) -> Result<Fetched, FetchError> {
        if let Some(path) = cache.get_verified(bucket, &download.sha256, download.size) {
            progress.advance(download.size);
            return Ok(Fetched {
                path,
                from_alternate: false,
            });
        }
        if self.offline {
            return Err(FetchError::Offline {
                label: download.label.clone(),
            });
        }
        let url = self.url(&download.path);
        let reason = match self.download(cache, bucket, download, &url, progress) {
            Ok(path) => {
                return Ok(Fetched {
                    path,
                    from_alternate: false,
                })
            }
            Err(FetchError::Failed {
                reason,
                permanent: true,
                ..
            }) => reason,
            Err(other) => return Err(other),
        };
        let mut tried = vec![(url, reason)];
        if let Some(alternate) = &download.alternate {
            match self.download(cache, bucket, download, alternate, progress) {
                Ok(path) => {
                    return Ok(Fetched {
                        path,
                        from_alternate: true,
                    })
                }
                Err(FetchError::Failed {
                    reason,
                    permanent: true,
                    ..
                }) => tried.push((alternate.clone(), reason)),
                Err(other) => return Err(other),
            }
        }
        Err(FetchError::Missing {
            files: vec![Missing {
                label: download.label.clone(),
                tried,
            }],
            hint: String::new(),
        })
    }

    fn download(
        &self,
        cache: &Cache,
        bucket: Bucket,
        download: &Download,
        url: &str,
        progress: &dyn Progress,
    ) -> Result<PathBuf, FetchError> {
        self.retry(url, || {
            // Whatever this attempt counted is taken back if it fails.
            let counted = Counted::new(progress);
            let mut entry = cache
                .create(bucket, &download.sha256)
                .map_err(|e| Attempt::Fatal(FetchError::Cache(e)))?;
            let mut reader = self.get(url)?;
            let mut hasher = sha2::Sha256::new();
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
                        url: url.to_owned(),
                        promised_by: download.promised_by,
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
                counted.advance(n as u64);
            }
            if received < download.size {
                return Err(Attempt::Short {
                    received,
                    expected: download.size,
                    promised_by: download.promised_by,
                });
            }
            let sha256 = Sha256::from_hasher(hasher);
            if sha256 != download.sha256 {
                return Err(Attempt::Fatal(FetchError::Mismatch {
                    url: url.to_owned(),
                    promised_by: download.promised_by,
                    what: format!("SHA-256 {sha256}, expected {}", download.sha256),
                }));
            }
            let path = entry
                .commit()
                .map_err(|e| Attempt::Fatal(FetchError::Cache(e)))?;
            counted.keep();
            Ok(path)
        })
    }

    /// Fetches many downloads, `self.parallel` at a time; returns them in
    /// the same order. Stops at the first error, except that files the
    /// mirror lacks are all gathered into one [`FetchError::Missing`].
    pub fn fetch_all(
        &self,
        cache: &Cache,
        bucket: Bucket,
        downloads: &[Download],
        progress: &dyn Progress,
    ) -> Result<Vec<Fetched>, FetchError> {
        progress.start(downloads.len(), downloads.iter().map(|d| d.size).sum());
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Fetched, FetchError>>>> =
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
                    if matches!(result, Err(ref e) if !matches!(e, FetchError::Missing { .. })) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    results.lock().expect("no panics while holding the lock")[index] = Some(result);
                });
            }
        });
        progress.finish();
        let results = results.into_inner().expect("threads joined");
        let mut fetched = Vec::with_capacity(downloads.len());
        let mut missing = Vec::new();
        for result in results {
            match result {
                Some(Ok(file)) => fetched.push(file),
                Some(Err(FetchError::Missing { files, .. })) => missing.extend(files),
                Some(Err(error)) => return Err(error),
                // Left undone only after another download failed, whose
                // error is returned; never a gap in the list.
                None => {}
            }
        }
        if missing.is_empty() {
            assert_eq!(fetched.len(), downloads.len(), "every download was made");
            Ok(fetched)
        } else {
            Err(FetchError::Missing {
                files: missing,
                hint: String::new(),
            })
        }
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
                Err(Attempt::Short {
                    received,
                    expected,
                    promised_by,
                }) => {
                    // The same short length every time means the mirror
                    // holds another file under this name (e.g. mid-sync).
                    if last_short == Some(received) {
                        return Err(FetchError::Mismatch {
                            url: url.to_owned(),
                            promised_by,
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
        promised_by: &'static str,
    },
    /// Will fail the same way again.
    Permanent(String),
    Fatal(FetchError),
}

/// Bytes counted on a progress display for one attempt, taken back when
/// the attempt fails (dropped without [`Counted::keep`]).
struct Counted<'a> {
    progress: &'a dyn Progress,
    bytes: std::cell::Cell<u64>,
}

impl<'a> Counted<'a> {
    fn new(progress: &'a dyn Progress) -> Counted<'a> {
        Counted {
            progress,
            bytes: std::cell::Cell::new(0),
        }
    }

    fn advance(&self, bytes: u64) {
        self.bytes.set(self.bytes.get() + bytes);
        self.progress.advance(bytes);
    }

    fn keep(self) {
        self.bytes.set(0);
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.bytes.get() > 0 {
            self.progress.rewind(self.bytes.get());
        }
    }
}

fn missing_message(missing: &[Missing]) -> String {
    let mut message = String::new();
    for file in missing {
        let tried: Vec<String> = file
            .tried
            .iter()
            .map(|(url, reason)| format!("{url}: {reason}"))
            .collect();
        message.push_str(&format!("{} is gone ({})\n", file.label, tried.join("; ")));
    }
    message.truncate(message.trim_end().len());
    message
}
