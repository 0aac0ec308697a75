//! `micros fetch`: download every locked package into the cache, so that
//! later builds work offline.
use std::path::PathBuf;

use micros_debian::resolve::LockMode;

use crate::packages::{self, human};

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
    let mode = if args.locked {
        LockMode::Locked
    } else {
        LockMode::Normal
    };
    let locked = packages::resolve_config(
        &evaluation.config,
        &args.file,
        mode,
        false,
        args.mirror.as_deref(),
    )?;
    if locked.resolved.changed {
        println!("wrote {}", locked.lock_path.display());
    }
    let paths = locked.fetch()?;
    let bytes: u64 = locked.resolved.lock.packages.iter().map(|p| p.size).sum();
    println!(
        "{} packages ({}) are in the cache at {}",
        paths.len(),
        human(bytes),
        locked.cache.root().display()
    );
    Ok(())
}
