//! `micros eval`: the evaluated configuration.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file
    #[arg(default_value = super::DEFAULT_CONFIG)]
    file: PathBuf,
    /// Print only this option or namespace, e.g. `networking` or `boot.kernel.package`
    #[arg(long, short = 'a')]
    attr: Option<String>,
    /// Print JSON instead of one `path = value` line per option
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let evaluation = super::evaluate(&args.file)?;
    let mut value = &evaluation.json;
    if let Some(attr) = &args.attr {
        for key in attr.split('.') {
            value = value
                .get(key)
                .with_context(|| format!("`{attr}` is not in the configuration\nhint: `micros options {attr}` searches the options"))?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        let mut lines = Vec::new();
        flatten(value, args.attr.as_deref().unwrap_or(""), &mut lines);
        for line in lines {
            println!("{line}");
        }
    }
    Ok(())
}

/// `networking.hostName = "demo"`, one line per leaf; keys that are not
/// identifiers are quoted as Nickel would.
fn flatten(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let key = if key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !key.starts_with(|c: char| c.is_ascii_digit())
                {
                    key.clone()
                } else {
                    serde_json::to_string(key).expect("a string serialises")
                };
                let child_path = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, &child_path, out);
            }
        }
        leaf => out.push(format!("{path} = {leaf}")),
    }
}
