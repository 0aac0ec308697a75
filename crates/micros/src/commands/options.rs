//! `micros options`: the option reference.
#[derive(clap::Args)]
pub struct Args {
    /// Show only options whose name or description contains this text
    query: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = micros_config::Options::load()?;
    let query = args.query.as_deref().map(str::to_lowercase);
    let selected: Vec<_> = options
        .options
        .values()
        .filter(|option| {
            query.as_deref().is_none_or(|q| {
                option.name.to_lowercase().contains(q)
                    || option.description.to_lowercase().contains(q)
            })
        })
        .collect();
    if selected.is_empty() {
        let hint = args
            .query
            .as_deref()
            .and_then(|q| options.closest(q))
            .map(|s| format!("\nhint: did you mean `{s}`?"))
            .unwrap_or_default();
        anyhow::bail!(
            "no option matches `{}`{hint}",
            args.query.unwrap_or_default()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&selected)?);
        return Ok(());
    }
    for option in selected {
        println!("{}", option.name);
        println!("    type:     {}", option.type_);
        if let Some(default) = &option.default {
            println!("    default:  {default}");
        }
        println!("    declared: modules/{}", option.declared_in);
        for line in option.description.lines() {
            println!("    {line}");
        }
        println!();
    }
    Ok(())
}
