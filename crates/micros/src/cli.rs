//! Argument parsing and error reporting; each subcommand lives in
//! `commands/<verb>.rs`.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Parser)]
#[command(
    name = "micros",
    version,
    about = "Build tiny, reproducible embedded-Linux systems from a typed configuration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the evaluated configuration
    Eval(commands::eval::Args),
    /// Describe every option: type, default, description, declaring module
    Options(commands::options::Args),
    /// Write a commented starter `system.ncl`
    Init(commands::init::Args),
    /// Resolve the configuration's Debian packages into `micros.lock`
    Lock(commands::lock::Args),
    /// Download the locked packages into the cache (for offline builds)
    Fetch(commands::fetch::Args),
    /// Build the system: kernel, initrd, root.squashfs, run-vm, manifest.json in result/
    Build(commands::build::Args),
    /// Build the system and boot it in QEMU on this terminal
    Run(commands::build::Args),
    /// Why a package (the dependency chain, what dropping it saves) or a file (which package or module) is in the image
    Why(commands::why::Args),
    /// Make an ed25519 key pair for signing update bundles (`micros build -A update --key FILE`)
    Keygen(commands::keygen::Args),
    /// Build a signed update, install it into a device's other slot over SSH, reboot it and wait for its health check's verdict
    Deploy(commands::deploy::Args),
    /// Add update bundles to a static update repository (a signed index and the bundles, for any web server) that devices with system.update.url update themselves from
    Publish(commands::publish::Args),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => commands::eval::run(args),
        Command::Options(args) => commands::options::run(args),
        Command::Init(args) => commands::init::run(args),
        Command::Lock(args) => commands::lock::run(args),
        Command::Fetch(args) => commands::fetch::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Why(args) => commands::why::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Deploy(args) => commands::deploy::run(args),
        Command::Publish(args) => commands::publish::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the chain of causes on one line each, never a
            // Debug dump.
            let message = format!("{error:#}");
            // Nickel's diagnostics carry their own `error:` heading.
            if message.starts_with("error") {
                eprintln!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}
