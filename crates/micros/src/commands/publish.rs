//! `micros publish --repo DIR [FILE…]`: adds update bundles to a static
//! update repository, a directory of plain files any web server can serve:
//! the bundles, and `index`, signed, naming each platform and board's
//! current release (micros_update::fleet). Devices with
//! `system.update.url` read it and update themselves.
use std::path::{Path, PathBuf};

use anyhow::Context;
use micros_update::bundle::{self, Expectations, Verifier};
use micros_update::fleet::{self, Index, Release, Share};
use micros_update::manifest::hex;
use sha2::{Digest as _, Sha256};

#[derive(clap::Args)]
pub struct Args {
    /// The repository's directory (created when missing)
    #[arg(long)]
    pub repo: PathBuf,
    /// The key from `micros keygen` that signs the index (the bundles must
    /// be signed by it too)
    #[arg(long, env = "MICROS_UPDATE_KEY")]
    pub key: PathBuf,
    /// The share of devices the release goes to, from 0 to 1 (`0.2`: one
    /// device in five). Without bundles, changes the share of the current
    /// releases (of `--board` only, when given)
    #[arg(long, value_parser = parse_share)]
    pub rollout: Option<Share>,
    /// Only with --rollout and no bundles: the board whose release changes
    #[arg(long)]
    pub board: Option<String>,
    /// Publish a bundle older than the release it replaces
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Bundles from `micros build -A update` (result/update.bundle)
    pub bundles: Vec<PathBuf>,
}

fn parse_share(text: &str) -> Result<Share, String> {
    Share::parse(text).ok_or_else(|| {
        format!("`{text}` is not a share: a number from 0 to 1 with at most four decimals")
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let seed = super::keygen::read_secret(&args.key)?;
    let public = bundle::public_key(&seed);
    std::fs::create_dir_all(&args.repo)
        .with_context(|| format!("cannot create the repository {}", args.repo.display()))?;
    let index_path = args.repo.join(fleet::INDEX);
    let mut index = read_index(&index_path, &public)?;
    if args.board.is_some() && !args.bundles.is_empty() {
        anyhow::bail!("--board picks the release whose rollout changes, without bundles; a bundle's boards are the ones it was built for");
    }
    for path in &args.bundles {
        add_bundle(&mut index, &args, path, &public)?;
    }
    if args.bundles.is_empty() {
        let Some(share) = args.rollout else {
            show(&index, &args.repo);
            return Ok(());
        };
        let mut changed = 0;
        for release in &mut index.releases {
            if args.board.as_ref().is_none_or(|b| *b == release.board) {
                release.rollout = share;
                changed += 1;
            }
        }
        if changed == 0 {
            anyhow::bail!(
                "{} has no release{} to change the rollout of",
                index_path.display(),
                args.board
                    .as_ref()
                    .map(|b| format!(" for board {b}"))
                    .unwrap_or_default()
            );
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The serial only grows, and a repository rebuilt from nothing still
    // starts above the last one devices saw (by the clock).
    index.serial = (index.serial + 1).max(now);
    write_atomically(&index_path, index.sign(&seed).as_bytes())?;
    show(&index, &args.repo);
    Ok(())
}

/// The repository's index, verified with the publisher's key; an empty one
/// for a new repository.
fn read_index(path: &Path, public: &[u8; 32]) -> anyhow::Result<Index> {
    match std::fs::read(path) {
        Ok(bytes) => Index::verify(&bytes, &[*public]).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}\nhint: publish with the key that signed it, or into a new directory",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index {
            serial: 0,
            releases: Vec::new(),
        }),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Verifies a bundle whole, copies it into the repository by a name that
/// changes with its content, and makes it the release of each board it is
/// built for.
fn add_bundle(
    index: &mut Index,
    args: &Args,
    path: &Path,
    public: &[u8; 32],
) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the bundle {}", path.display()))?;
    let refused = |e: bundle::Refusal| anyhow::anyhow!("{}: {e}", path.display());
    let (manifest, _) = bundle::signed_manifest(&bytes, &[*public])
        .map_err(|e| match e {
            bundle::Refusal::UntrustedKey => anyhow::anyhow!(
                "{}: the bundle is not signed by {} (sign bundles and the index with one key)",
                path.display(),
                args.key.display()
            ),
            other => refused(other),
        })?
        .ok_or_else(|| refused(bundle::Refusal::NotABundle))?;
    let board = manifest
        .compatible
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{}: the bundle names no board", path.display()))?;
    let mut verifier = Verifier::new(Expectations {
        trusted_keys: vec![*public],
        platform: manifest.platform.clone(),
        board,
        installed: None,
        allow_downgrade: true,
    });
    verifier.feed(&bytes).map_err(refused)?;
    verifier.finish().map_err(refused)?;

    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let name = format!(
        "{}-{}-{}.bundle",
        manifest.platform,
        manifest.version,
        &hex(&sha256)[..12]
    );
    let target = args.repo.join(&name);
    if !target.exists() {
        write_atomically(&target, &bytes)?;
    }
    for board in &manifest.compatible {
        let release = Release {
            platform: manifest.platform.clone(),
            board: board.clone(),
            version: manifest.version.clone(),
            rollout: args.rollout.unwrap_or(Share::ALL),
            size: bytes.len() as u64,
            sha256,
            bundle: name.clone(),
        };
        match index
            .releases
            .iter_mut()
            .find(|r| r.platform == release.platform && r.board == release.board)
        {
            Some(current) => {
                if release.version < current.version && !args.allow_downgrade {
                    anyhow::bail!(
                        "{}: version {} is older than the published {} for {} {} (--allow-downgrade to publish it anyway; devices running {} keep it)",
                        path.display(),
                        release.version,
                        current.version,
                        release.platform,
                        release.board,
                        current.version
                    );
                }
                *current = release;
            }
            None => index.releases.push(release),
        }
    }
    index
        .releases
        .sort_by(|a, b| (&a.platform, &a.board).cmp(&(&b.platform, &b.board)));
    Ok(())
}

fn show(index: &Index, repo: &Path) {
    println!(
        "{}: index serial {}, {} release{}",
        repo.display(),
        index.serial,
        index.releases.len(),
        if index.releases.len() == 1 { "" } else { "s" }
    );
    for r in &index.releases {
        println!(
            "  {} {}: version {} to {} % of devices, {} ({:.1} MB)",
            r.platform,
            r.board,
            r.version,
            r.rollout.percent(),
            r.bundle,
            r.size as f64 / 1e6
        );
    }
}

/// Writes `path` through a temporary file renamed over it, so a web server
/// never serves half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temporary = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write {}", path.display()))
}
