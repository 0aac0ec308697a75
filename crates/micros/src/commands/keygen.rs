//! `micros keygen FILE`: an ed25519 key pair for signing update bundles.
//! FILE holds the secret (mode 0600; keep it off the devices and out of
//! version control); FILE.pub the public key for `system.update.trustedKeys`.
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use micros_update::bundle::{format_public_key, format_secret_key, public_key};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the secret key (its public half goes to FILE.pub)
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .context("cannot read /dev/urandom for a new key")?;
    let public_path = PathBuf::from(format!("{}.pub", args.file.display()));
    for path in [&args.file, &public_path] {
        if path.exists() {
            anyhow::bail!(
                "{} exists; micros keygen never overwrites a key (a device trusting it would refuse bundles signed by a new one)",
                path.display()
            );
        }
    }
    let public = format_public_key(&public_key(&seed));
    let mut secret = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.file)
        .with_context(|| format!("cannot create {}", args.file.display()))?;
    secret
        .write_all(format!("{}\n", format_secret_key(&seed)).as_bytes())
        .and_then(|()| secret.sync_all())
        .with_context(|| format!("cannot write {}", args.file.display()))?;
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!(
        "wrote {} (secret: keep it off devices and out of version control)",
        args.file.display()
    );
    println!("wrote {}; trust it on devices with", public_path.display());
    println!("  system.update.trustedKeys = [\"{public}\"],");
    Ok(())
}

/// The secret key in `path`, for signing.
pub fn read_secret(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    micros_update::bundle::parse_secret_key(&text).with_context(|| {
        format!(
            "{} is not a signing key from `micros keygen` (it starts with micros-ed25519-secret:)",
            path.display()
        )
    })
}
