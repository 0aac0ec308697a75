pub mod build;
pub mod deploy;
pub mod eval;
pub mod fetch;
pub mod init;
pub mod keygen;
pub mod lock;
pub mod options;
pub mod publish;
pub mod run;
pub mod why;

use std::path::Path;

/// The configuration file a command reads when none is given.
pub const DEFAULT_CONFIG: &str = "system.ncl";

/// Evaluates `file`, printing the modules' warnings on stderr.
pub fn evaluate(file: &Path) -> anyhow::Result<micros_config::Evaluation> {
    if !file.exists() {
        anyhow::bail!(
            "no configuration at {}\nhint: pass a file (`micros eval examples/qemu.ncl`) or run `micros init` to write one",
            file.display()
        );
    }
    let evaluation = micros_config::evaluate(file)?;
    for warning in &evaluation.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(evaluation)
}
