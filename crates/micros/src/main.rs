//! `micros`: build tiny, reproducible embedded-Linux systems from a typed
//! Nickel configuration.
mod cli;
mod commands;

fn main() -> std::process::ExitCode {
    cli::run()
}
