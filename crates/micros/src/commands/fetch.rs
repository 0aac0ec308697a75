//! `micros fetch`: download every locked package into the cache, so that
//! later builds work offline.
use std::path::PathBuf;

use micros_debian::cache::Cache;
use micros_debian::fetch::Fetcher;
use micros_debian::resolve::{fetch_packages, resolve, LockMode};

use crate::packages::{self, human, Bar};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file
    #[arg(default_value = super::DEFAULT_CONFIG)]
    file: PathBuf,
    /// Fail instead of changing micros.lock
    #[arg(long)]
    locked: bool,
    /// The Debian mirror's URL (overrides `packages.source.mirror`, MICROS_MIRROR and apt's sources)
    #[arg(long)]
    mirror: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let evaluation = super::evaluate(&args.file)?;
    let config = &evaluation.config;
    let lock_path = packages::lock_path(&args.file);
    let existing = packages::read_lock(&lock_path)?;
    let mode = if args.locked {
        LockMode::Locked
    } else {
        LockMode::Normal
    };
    let fetcher = Fetcher::new(&packages::mirror(config, args.mirror.as_deref())?.url);
    let cache = Cache::from_environment()?;
    let resolved = resolve(
        &packages::wanted(config),
        &packages::source(config, &args.file),
        existing.as_ref(),
        mode,
        &fetcher,
        &cache,
        &Bar::new("indexes"),
    )?;
    if resolved.changed {
        packages::write_lock(&lock_path, &resolved.lock)?;
        println!("wrote {}", lock_path.display());
    }
    let paths = fetch_packages(&resolved.lock, &fetcher, &cache, &Bar::new("packages"))?;
    let bytes: u64 = resolved.lock.packages.iter().map(|p| p.size).sum();
    println!(
        "{} packages ({}) are in the cache at {}",
        paths.len(),
        human(bytes),
        cache.root().display()
    );
    Ok(())
}
