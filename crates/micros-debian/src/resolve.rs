//! From what a configuration asks for to a lock, the way cargo does it: an
//! up-to-date lock is used as is (no network); a request the lock does not
//! cover extends it, keeping the locked versions, unless `--locked` forbids
//! it; `--update` solves afresh.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::archive::{Archive, ArchiveError, Source};
use crate::cache::{Bucket, Cache};
use crate::fetch::{Download, FetchError, Fetcher, Progress};
use crate::index::Package;
use crate::lock::{Lock, LockedExclusion, LockedPackage, FORMAT_VERSION};
use crate::solver::{self, Request, SolveError};
use crate::version::Version;

/// What the configuration asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub packages: BTreeSet<String>,
    /// Name → who excluded it and why.
    pub exclude: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Use the lock if it covers the request, extend it otherwise.
    Normal,
    /// Fail rather than change the lock.
    Locked,
    /// Solve again against the current archive.
    Update,
}

/// What resolving found.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub lock: Lock,
    /// Whether the lock differs from the one given.
    pub changed: bool,
    /// What the exclusions saved: (packages, bytes of .deb files, installed KiB).
    pub saved: Option<(usize, u64, u64)>,
    /// One line to show the user about where the packages were read, when
    /// it is not simply the suite asked for.
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("micros.lock is out of date: {what}\nhint: run `micros lock` (or build without --locked) to update it")]
    Outdated { what: String },
    #[error("micros.lock is out of date ({what}) and --offline forbids reading the archive\nhint: run `micros lock` once with network access")]
    OfflineOutdated { what: String },
    #[error("the mirror's Release of {suite} is dated {release}, older than the lock ({lock}): it serves an old signed Release (a stale mirror, or one holding back updates)\nhint: use another mirror")]
    OlderThanLock {
        suite: String,
        release: String,
        lock: String,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Solve(#[from] SolveError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// Why `lock` does not serve `wanted` from `source`, if it does not.
pub fn lock_mismatch(lock: &Lock, wanted: &Wanted, source: &Source) -> Option<String> {
    if !lock.serves_suite(&source.suite) {
        return Some(format!(
            "it is for {}, the config asks for {}",
            lock.describe(),
            source.suite
        ));
    }
    if lock.architecture != source.architecture {
        return Some(format!(
            "it is for {}, the config builds for {}",
            lock.architecture, source.architecture
        ));
    }
    if lock.components != source.components {
        return Some(format!(
            "it was solved over components {:?}, the config uses {:?}",
            lock.components, source.components
        ));
    }
    let locked: BTreeSet<&String> = lock.request.iter().collect();
    let asked: BTreeSet<&String> = wanted.packages.iter().collect();
    if let Some(missing) = asked.difference(&locked).next() {
        return Some(format!("the config asks for `{missing}`, which it lacks"));
    }
    if let Some(extra) = locked.difference(&asked).next() {
        return Some(format!(
            "it still holds `{extra}`, which the config no longer asks for"
        ));
    }
    let excluded: BTreeMap<&String, &String> = lock
        .exclusions
        .iter()
        .map(|e| (&e.name, &e.reason))
        .collect();
    for (name, reason) in &wanted.exclude {
        let applied = excluded.get(name);
        if applied.is_some_and(|r| *r != reason) {
            return Some(format!("the exclusion of `{name}` changed"));
        }
    }
    for name in excluded.keys() {
        if !wanted.exclude.contains_key(*name) {
            return Some(format!("the config no longer excludes `{name}`"));
        }
    }
    // A new exclusion that would drop a locked package.
    if let Some(name) = wanted
        .exclude
        .keys()
        .find(|name| lock.package(name).is_some() && !excluded.contains_key(name))
    {
        return Some(format!("the config now excludes `{name}`"));
    }
    None
}

pub fn resolve(
    wanted: &Wanted,
    source: &Source,
    existing: Option<&Lock>,
    mode: LockMode,
    fetcher: &Fetcher,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<Resolved, ResolveError> {
    if mode != LockMode::Update {
        if let Some(lock) = existing {
            match lock_mismatch(lock, wanted, source) {
                None => {
                    return Ok(Resolved {
                        lock: lock.clone(),
                        changed: false,
                        saved: None,
                        note: None,
                    })
                }
                Some(what) if mode == LockMode::Locked => {
                    return Err(ResolveError::Outdated { what })
                }
                Some(what) if fetcher.offline => {
                    return Err(ResolveError::OfflineOutdated { what })
                }
                Some(_) => {}
            }
        }
    }
    if fetcher.offline {
        return Err(ResolveError::OfflineOutdated {
            what: "there is no lock yet".to_owned(),
        });
    }
    // A lock is extended from its own release, read by codename: the alias
    // it was solved through may have moved on to the next release.
    let read = match existing {
        Some(lock) if mode != LockMode::Update && lock.serves_suite(&source.suite) => Source {
            suite: lock.suite.clone(),
            ..source.clone()
        },
        _ => source.clone(),
    };
    let archive = Archive::open(&read, fetcher, cache, progress)?;
    if let Some(lock) = existing {
        let date = |text: &str| crate::release::ReleaseDate::parse(text);
        if let (Some(release), Some(locked)) = (date(&archive.release.date), date(&lock.date)) {
            if release < locked {
                return Err(ResolveError::OlderThanLock {
                    suite: read.suite.clone(),
                    release: archive.release.date.clone(),
                    lock: lock.date.clone(),
                });
            }
        }
    }
    let mut note = archive.read_through.as_ref().map(|through| {
        format!(
            "dists/{} is in the middle of an update on this mirror: read {} through dists/{through}, which is consistent",
            read.suite,
            archive.release.describe()
        )
    });
    let prefer = match (mode, existing) {
        (LockMode::Update, _) | (_, None) => BTreeMap::new(),
        (_, Some(lock)) => lock
            .versions()
            .into_iter()
            .filter_map(|(name, version)| Version::parse(&version).ok().map(|v| (name, v)))
            .collect(),
    };
    let request = Request {
        packages: wanted.packages.iter().cloned().collect(),
        exclude: wanted.exclude.clone(),
        prefer,
    };
    let solution = solver::solve(&archive.packages, &request)?;
    let lock = build_lock(&archive, source, wanted, &solution);
    if let Some(old) = existing.filter(|old| old.suite != lock.suite) {
        let moved = format!(
            "{} is now {}: the lock moves on from {}",
            source.suite,
            lock.describe(),
            old.describe()
        );
        note = Some(note.map_or(moved.clone(), |n| format!("{n}\n{moved}")));
    }

    // What the exclusions saved: solve once more without them.
    let saved = if wanted.exclude.is_empty() {
        Some((0, 0, 0))
    } else {
        let without = Request {
            exclude: BTreeMap::new(),
            ..request
        };
        solver::solve(&archive.packages, &without).ok().map(|full| {
            let kept: BTreeSet<usize> = solution.packages.iter().copied().collect();
            let dropped: Vec<&Package> = full
                .packages
                .iter()
                .filter(|i| !kept.contains(i))
                .map(|&i| &archive.packages[i])
                .collect();
            (
                dropped.len(),
                dropped.iter().map(|p| p.size).sum(),
                dropped.iter().map(|p| p.installed_size).sum(),
            )
        })
    };
    let changed = existing != Some(&lock);
    Ok(Resolved {
        lock,
        changed,
        saved,
        note,
    })
}

fn build_lock(
    archive: &Archive,
    source: &Source,
    wanted: &Wanted,
    solution: &solver::Solution,
) -> Lock {
    let chosen: BTreeMap<&str, &Package> = solution
        .packages
        .iter()
        .map(|&i| (archive.packages[i].name.as_str(), &archive.packages[i]))
        .collect();
    // Who provides each virtual name among the chosen packages.
    let mut providers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for package in chosen.values() {
        for provided in &package.provides {
            providers
                .entry(provided.name.as_str())
                .or_default()
                .push(package.name.as_str());
        }
    }
    let packages = chosen
        .values()
        .map(|package| {
            let mut depends = BTreeSet::new();
            for group in package.pre_depends.iter().chain(&package.depends) {
                let satisfied = group.iter().find_map(|d| {
                    if chosen.contains_key(d.name.as_str()) {
                        Some(d.name.as_str())
                    } else {
                        providers
                            .get(d.name.as_str())
                            .and_then(|p| p.first().copied())
                    }
                });
                if let Some(name) = satisfied {
                    depends.insert(name.to_owned());
                }
            }
            LockedPackage {
                name: package.name.clone(),
                version: package.version.to_string(),
                architecture: package.architecture.clone(),
                filename: package.filename.clone(),
                size: package.size,
                sha256: package.sha256.clone(),
                installed_size: package.installed_size,
                depends: depends.into_iter().collect(),
            }
        })
        .collect();
    let release = &archive.release;
    let suite = if release.codename.is_empty() {
        source.suite.clone()
    } else {
        release.codename.clone()
    };
    Lock {
        version: FORMAT_VERSION,
        alias: Some(source.suite.clone()).filter(|asked| *asked != suite),
        suite,
        release: release.version.clone(),
        date: archive.release.date.clone(),
        architecture: source.architecture.clone(),
        components: source.components.clone(),
        request: wanted.packages.iter().cloned().collect(),
        exclusions: solution
            .exclusions
            .iter()
            .map(|(name, applied)| LockedExclusion {
                name: name.clone(),
                reason: applied.reason.clone(),
                required_by: applied.required_by.iter().cloned().collect(),
            })
            .collect(),
        packages,
    }
}

/// The locked `.deb` files in the cache.
#[derive(Debug, Clone)]
pub struct LockedFiles {
    /// By package name: each file is paired with its package here, where
    /// the downloads are made from the lock, and nowhere else.
    pub paths: BTreeMap<String, PathBuf>,
    /// One line naming the packages that came from the snapshot archive
    /// because the mirror no longer has them.
    pub note: Option<String>,
}

/// Makes every locked `.deb` available in the cache (downloading what is
/// missing or damaged) and returns their paths by package name.
///
/// Debian's mirrors delete old versions soon after a point release. A
/// package the mirror no longer has is fetched from `snapshot` (the base
/// URL of a snapshot archive such as Debian's, which keeps every version
/// under `<base>/<timestamp>/pool/…`) at the lock's date, verified by the
/// lock's SHA-256 like any other download.
pub fn fetch_packages(
    lock: &Lock,
    fetcher: &Fetcher,
    cache: &Cache,
    progress: &dyn Progress,
    snapshot: Option<&str>,
) -> Result<LockedFiles, FetchError> {
    let snapshot = snapshot.map(|base| base.trim_end_matches('/'));
    let timestamp = lock.snapshot_timestamp();
    let downloads: Vec<Download> = lock
        .packages
        .iter()
        .map(|p| Download {
            path: p.filename.to_string(),
            size: p.size,
            sha256: p.sha256.clone(),
            label: format!("{} {}", p.name, p.version),
            promised_by: "the lock",
            alternate: snapshot
                .zip(timestamp.as_deref())
                .map(|(base, at)| format!("{base}/{at}/{}", p.filename)),
        })
        .collect();
    let fetched = match fetcher.fetch_all(cache, Bucket::Debs, &downloads, progress) {
        Ok(fetched) => fetched,
        Err(FetchError::Missing { files, .. }) => {
            let hint = match (snapshot, &timestamp) {
                (Some(_), Some(_)) => "\nhint: neither the mirror nor the snapshot archive has them: run `micros lock --update` to lock versions the mirror has".to_owned(),
                (Some(_), None) => format!("\nhint: the lock's date ({}) is not a date a snapshot archive can be asked for: run `micros lock --update` to lock versions the mirror has", lock.date),
                (None, _) => "\nhint: Debian's mirrors drop old versions after a point release; fetch them from a snapshot archive by setting `packages.source.snapshot` (or MICROS_SNAPSHOT) to its base URL, e.g. Debian's snapshot service's `…/archive/debian`, or run `micros lock --update` to lock versions the mirror has".to_owned(),
            };
            return Err(FetchError::Missing { files, hint });
        }
        Err(other) => return Err(other),
    };
    let from_snapshot: Vec<&str> = downloads
        .iter()
        .zip(&fetched)
        .filter(|(_, file)| file.from_alternate)
        .map(|(download, _)| download.label.as_str())
        .collect();
    let note = (!from_snapshot.is_empty()).then(|| {
        format!(
            "the mirror no longer has {}: fetched from the snapshot archive at {}",
            from_snapshot.join(", "),
            timestamp.as_deref().unwrap_or_default()
        )
    });
    // fetch_all answers every download, in order, or fails.
    assert_eq!(fetched.len(), lock.packages.len(), "one file per download");
    Ok(LockedFiles {
        paths: lock
            .packages
            .iter()
            .zip(fetched)
            .map(|(package, file)| (package.name.clone(), file.path))
            .collect(),
        note,
    })
}
