//! What a configuration asks of the Debian archive, and the lock file next
//! to it.
use std::path::{Path, PathBuf};

use anyhow::Context;
use micros_config::Config;
use micros_debian::archive::{Source, DEFAULT_KEYRING};
use micros_debian::cache::Cache;
use micros_debian::fetch::Fetcher;
use micros_debian::lock::Lock;
use micros_debian::resolve::{fetch_packages, resolve, LockMode, Resolved, Wanted};
use micros_debian::sources::{find_mirror, Mirror};

/// The lock file of the configuration at `config`: one lock per
/// configuration file, so that several configurations can share a
/// directory. `system.ncl`, the default configuration, has `micros.lock`
/// (as `Cargo.toml` has `Cargo.lock`); any other `NAME.ncl` has
/// `NAME.lock` beside it.
pub fn lock_path(config: &Path) -> PathBuf {
    let dir = config.parent().unwrap_or(Path::new("."));
    let name = config.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.strip_suffix(".ncl") {
        Some(stem) if name != super::commands::DEFAULT_CONFIG && !stem.is_empty() => {
            dir.join(format!("{stem}.lock"))
        }
        _ => dir.join("micros.lock"),
    }
}

/// The packages the configuration asks for: `environment.packages`, the
/// kernel, and what the modules added; minus the exclusions.
pub fn wanted(config: &Config) -> Wanted {
    let mut wanted = Wanted::default();
    wanted.packages.extend(
        micros_config::model::enabled(&config.environment.packages)
            .into_iter()
            .map(str::to_owned),
    );
    wanted.packages.insert(config.boot.kernel.package.clone());
    wanted.packages.extend(
        config
            .hardware
            .firmware
            .iter()
            .filter(|(_, files)| files.is_enabled())
            .map(|(name, _)| name.clone()),
    );
    for (name, reason) in &config.packages.exclude {
        if let Some(reason) = reason {
            wanted.exclude.insert(name.clone(), reason.clone());
        }
    }
    wanted
}

/// Where the packages come from: suite, components, architecture, keyring.
pub fn source(config: &Config, config_path: &Path) -> Source {
    let mut components = config.packages.source.components.clone();
    let pi = &config.hardware.raspberry_pi;
    let firmware = config.hardware.firmware.values().any(|f| f.is_enabled());
    if ((pi.rpi1 || pi.rpi2 || pi.rpi3 || pi.rpi4) && pi.firmware.is_none() || firmware)
        && !components.iter().any(|c| c == "non-free-firmware")
    {
        components.push("non-free-firmware".to_owned());
    }
    let keyring = match &config.packages.source.keyring {
        Some(keyring) => config_path.parent().unwrap_or(Path::new(".")).join(keyring),
        None => PathBuf::from(DEFAULT_KEYRING),
    };
    Source {
        suite: config.packages.source.suite.clone(),
        components,
        architecture: config.platform.host.debian_arch().to_owned(),
        keyring,
    }
}

/// The mirror: `--mirror`, else `packages.source.mirror`, else
/// `MICROS_MIRROR`, else the host's apt sources.
pub fn mirror(config: &Config, flag: Option<&str>) -> anyhow::Result<Mirror> {
    let configured = flag.or(config.packages.source.mirror.as_deref());
    let environment = std::env::var("MICROS_MIRROR").ok();
    Ok(find_mirror(
        configured,
        environment.as_deref(),
        Path::new("/"),
    )?)
}

/// The configuration's packages, resolved against its lock the way `lock`,
/// `fetch` and `build` all do; a changed lock is written next to the
/// config (`resolved.changed` says so).
pub struct Locked {
    pub resolved: Resolved,
    pub fetcher: Fetcher,
    pub cache: Cache,
    pub lock_path: PathBuf,
    /// A snapshot archive's base URL: `packages.source.snapshot`, else
    /// `MICROS_SNAPSHOT`.
    pub snapshot: Option<String>,
}

impl Locked {
    /// Every locked `.deb` in the cache, downloaded where missing (from
    /// the snapshot archive for what the mirror dropped, said in a line).
    pub fn fetch(&self) -> anyhow::Result<micros_system::build::Debs> {
        let files = fetch_packages(
            &self.resolved.lock,
            &self.fetcher,
            &self.cache,
            &Bar::new("packages"),
            self.snapshot.as_deref(),
        )?;
        if let Some(note) = &files.note {
            eprintln!("note: {note}");
        }
        Ok(files.paths)
    }
}

pub fn resolve_config(
    config: &Config,
    file: &Path,
    mode: LockMode,
    offline: bool,
    mirror_flag: Option<&str>,
) -> anyhow::Result<Locked> {
    let lock_path = lock_path(file);
    let existing = read_lock(&lock_path)?;
    // Offline needs no mirror: nothing is downloaded.
    let mut fetcher = if offline {
        Fetcher::new("offline:")
    } else {
        Fetcher::new(&mirror(config, mirror_flag)?.url)
    };
    fetcher.offline = offline;
    let cache = Cache::from_environment()?;
    let resolved = resolve(
        &wanted(config),
        &source(config, file),
        existing.as_ref(),
        mode,
        &fetcher,
        &cache,
        &Bar::new("indexes"),
    )?;
    if let Some(note) = &resolved.note {
        eprintln!("note: {note}");
    }
    if resolved.changed {
        write_lock(&lock_path, &resolved.lock)?;
    }
    let snapshot = config
        .packages
        .source
        .snapshot
        .clone()
        .or_else(|| std::env::var("MICROS_SNAPSHOT").ok())
        .filter(|url| !url.trim().is_empty());
    Ok(Locked {
        resolved,
        fetcher,
        cache,
        lock_path,
        snapshot,
    })
}

pub fn read_lock(path: &Path) -> anyhow::Result<Option<Lock>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(Lock::parse(&path.display().to_string(), &text)?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn write_lock(path: &Path, lock: &Lock) -> anyhow::Result<()> {
    micros_debian::cache::write_atomic(path, lock.render().as_bytes())?;
    Ok(())
}

/// A progress bar on a terminal, nothing otherwise.
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub fn new(message: &'static str) -> Bar {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(message);
        Bar(Some(bar))
    }
}

impl micros_debian::fetch::Progress for Bar {
    fn start(&self, _files: usize, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(bytes);
            bar.set_position(0);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    fn rewind(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.dec(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// `12.3 MB`-style sizes, as the build's report prints them.
pub use micros_system::report::human;
