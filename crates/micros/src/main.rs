//! `micros`: build tiny, reproducible embedded-Linux systems from a typed
//! Nickel configuration.
mod cli;
mod commands;
mod packages;

fn main() -> std::process::ExitCode {
    cli::run()
}
