//! `micros init`: a starter configuration.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The directory to write `system.ncl` into
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// The starter configuration; a test evaluates it.
pub const STARTER: &str = include_str!("../../../../examples/starter.ncl");

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.dir.join(super::DEFAULT_CONFIG);
    if path.exists() {
        anyhow::bail!("{} already exists; not overwriting it", path.display());
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    std::fs::write(&path, STARTER).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    println!(
        "next: `micros eval {}` shows the evaluated configuration",
        path.display()
    );
    Ok(())
}
