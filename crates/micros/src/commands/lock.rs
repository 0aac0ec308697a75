//! `micros lock`: resolve the configuration's packages and write
//! `micros.lock` next to it.
use std::path::PathBuf;

use micros_debian::resolve::LockMode;

use crate::packages::{self, human};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file
    #[arg(default_value = super::DEFAULT_CONFIG)]
    file: PathBuf,
    /// Solve again against the current archive instead of keeping locked versions
    #[arg(long, conflicts_with = "locked")]
    update: bool,
    /// Fail instead of changing micros.lock
    #[arg(long)]
    locked: bool,
    /// Never use the network (needs an up-to-date lock)
    #[arg(long)]
    offline: bool,
    /// The Debian mirror's URL (overrides `packages.source.mirror`, MICROS_MIRROR and apt's sources)
    #[arg(long)]
    mirror: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let evaluation = super::evaluate(&args.file)?;
    let mode = if args.update {
        LockMode::Update
    } else if args.locked {
        LockMode::Locked
    } else {
        LockMode::Normal
    };
    let packages::Locked {
        resolved,
        lock_path,
        ..
    } = packages::resolve_config(
        &evaluation.config,
        &args.file,
        mode,
        args.offline,
        args.mirror.as_deref(),
    )?;
    let lock = &resolved.lock;
    let download: u64 = lock.packages.iter().map(|p| p.size).sum();
    let installed: u64 = lock.packages.iter().map(|p| p.installed_size * 1024).sum();
    println!(
        "{} {} packages for {} from {} ({}): {} to download, {} installed",
        if resolved.changed {
            "locked"
        } else {
            "up to date:"
        },
        lock.packages.len(),
        lock.architecture,
        lock.describe(),
        lock.date,
        human(download),
        human(installed)
    );
    for exclusion in &lock.exclusions {
        println!(
            "  excluded {} (needed by {}): {}",
            exclusion.name,
            exclusion.required_by.join(", "),
            exclusion.reason
        );
    }
    if let Some((count, bytes, installed)) = resolved.saved.filter(|s| s.0 > 0) {
        println!(
            "  the exclusions saved {count} packages: {} to download, {} installed",
            human(bytes),
            human(installed * 1024)
        );
    }
    if resolved.changed {
        println!("wrote {}", lock_path.display());
    }
    Ok(())
}
