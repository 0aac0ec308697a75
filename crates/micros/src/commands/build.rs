//! `micros build`: the configuration's artifacts, in `result/`.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use micros_debian::resolve::LockMode;
use micros_system::build::{build, Attribute, Built, Request};

use crate::packages::{self, human};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file
    #[arg(default_value = super::DEFAULT_CONFIG)]
    pub file: PathBuf,
    /// What to build: toplevel (everything), kernel, initrd, squashfs, sdImage (everything and a Raspberry Pi card), disk (everything and the A/B disk of a system built for updates) or update (everything and a signed update.bundle)
    #[arg(long = "attr", short = 'A', default_value = "toplevel")]
    pub attr: String,
    /// The key that signs an update bundle (from `micros keygen`)
    #[arg(long, env = "MICROS_UPDATE_KEY")]
    pub key: Option<PathBuf>,
    /// The output directory (replaced only once the new build is complete)
    #[arg(long = "out", short = 'o', default_value = "result")]
    pub out: PathBuf,
    /// Fail instead of changing micros.lock
    #[arg(long)]
    pub locked: bool,
    /// Never use the network (needs an up-to-date lock and a warm cache)
    #[arg(long)]
    pub offline: bool,
    /// The Debian mirror's URL (overrides `packages.source.mirror`, MICROS_MIRROR and apt's sources)
    #[arg(long)]
    pub mirror: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, built) = build_system(&args)?;
    if !built.root_report.is_empty() {
        print!("{}", micros_system::report::table(&built.root_report, 10));
    }
    print!(
        "{}",
        micros_system::report::special_table(&built.special_files)
    );
    for warning in &built.warnings {
        eprintln!("warning: {warning}");
    }
    for (package, lines) in built
        .not_understood
        .iter()
        .filter(|(package, _)| !config.packages.scripts_handled.contains_key(package))
    {
        eprintln!(
            "note: {package}: {} maintainer-script line{} MicrOS does not do, e.g. `{}` (`micros why {package}` lists them)",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            lines[0]
        );
    }
    for (name, (size, _)) in &built.artifacts {
        println!("  {:<14} {:>10}", name, human(*size));
    }
    println!(
        "built {} (kernel {})",
        built.directory.display(),
        built.kernel_version
    );
    Ok(())
}

/// Evaluates, locks, fetches and builds; shared with `micros run`.
pub fn build_system(args: &Args) -> anyhow::Result<(micros_config::Config, Built)> {
    let start = Instant::now();
    let attribute = Attribute::parse(&args.attr).with_context(|| {
        format!(
            "unknown attribute `{}`\nhint: use toplevel, kernel, initrd, squashfs, sdImage, disk or update",
            args.attr
        )
    })?;
    // Read before the long work: a missing key fails at once.
    let signing_key = match &args.key {
        Some(path) => Some(super::keygen::read_secret(path)?),
        None if attribute == Attribute::Update => {
            return Err(micros_system::build::BuildError::NoSigningKey.into())
        }
        None => None,
    };
    let evaluation = super::evaluate(&args.file)?;
    let config = &evaluation.config;
    if attribute == Attribute::Update && config.system.update.trusted_keys.is_empty() {
        eprintln!("warning: system.update.trustedKeys is empty: the system this bundle installs will refuse every later bundle");
    }
    let mode = if args.locked {
        LockMode::Locked
    } else {
        LockMode::Normal
    };
    let locked = packages::resolve_config(
        config,
        &args.file,
        mode,
        args.offline,
        args.mirror.as_deref(),
    )?;
    if locked.resolved.changed {
        eprintln!("wrote {}", locked.lock_path.display());
    }
    let debs = locked.fetch()?;
    let built = build(
        config,
        Path::new(&args.file),
        &locked.resolved.lock,
        &debs,
        &locked.cache,
        Request {
            attribute,
            signing_key: signing_key.as_ref(),
        },
        &args.out,
    )?;
    eprintln!("built in {:.1} s", start.elapsed().as_secs_f64());
    Ok((evaluation.config, built))
}
