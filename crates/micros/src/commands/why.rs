//! `micros why`: why a package, or a file, is in the image.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use anyhow::Context;
use micros_debian::lock::Lock;
use micros_debian::resolve::LockMode;

use crate::packages::{self, human};

#[derive(clap::Args)]
pub struct Args {
    /// A package name (`libc6`), a kernel module (`vmxnet3`) or an absolute path in the image (`/usr/bin/sh`)
    pub target: String,
    /// The configuration file
    #[arg(default_value = super::DEFAULT_CONFIG)]
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let evaluation = super::evaluate(&args.file)?;
    let config = &evaluation.config;
    let locked = packages::resolve_config(config, &args.file, LockMode::Normal, false, None)?;
    if locked.resolved.changed {
        eprintln!("wrote {}", locked.lock_path.display());
    }
    let lock = &locked.resolved.lock;
    if args.target.starts_with('/') {
        let debs = locked.fetch()?;
        let (tree, names, _) =
            micros_system::build::root_tree(config, &args.file, lock, &debs, &locked.cache)?;
        print!("{}", explain_path(config, &tree, &names, &args.target)?);
    } else if lock.package(&args.target).is_none()
        && !config.packages.exclude.contains_key(&args.target)
    {
        // Not a package: perhaps a kernel module (`micros why vmxnet3`).
        let debs = locked.fetch()?;
        let (tree, names, _) =
            micros_system::build::root_tree(config, &args.file, lock, &debs, &locked.cache)?;
        let module = format!("{}.ko", args.target.replace('-', "_"));
        let found = tree.iter().find(|(path, _)| {
            path.name() == module && path.to_string().starts_with("/usr/lib/modules/")
        });
        match found {
            Some((path, _)) => print!(
                "{}",
                explain_path(config, &tree, &names, &path.to_string())?
            ),
            None => print!("{}", explain_package(config, lock, &args.target)?),
        }
    } else {
        print!("{}", explain_package(config, lock, &args.target)?);
        if lock.package(&args.target).is_some() {
            // What its scripts, sysusers.d and tmpfiles.d ask for, as the
            // build does it.
            let debs = locked.fetch()?;
            let (_, _, declared) =
                micros_system::build::root_tree(config, &args.file, lock, &debs, &locked.cache)?;
            if let Some(declared) = declared.iter().find(|d| d.package == args.target) {
                print!("{}", explain_scripts(declared));
                if let Some(how) = config.packages.scripts_handled.get(&args.target) {
                    println!("MicrOS does their work already (packages.scriptsHandled): {how}");
                }
            }
        }
    }
    Ok(())
}

/// What MicrOS does for a package's maintainer scripts, and which of
/// their lines it does not do.
pub fn explain_scripts(declared: &micros_system::declared::Declared) -> String {
    let mut text = String::new();
    let done = declared.describe();
    if !done.is_empty() {
        text.push_str("its maintainer scripts ask for what MicrOS does at build time:\n");
        for line in done {
            text.push_str(&format!("  {line}\n"));
        }
    }
    if !declared.skipped.is_empty() {
        text.push_str(&format!(
            "its maintainer scripts also run {} line{} MicrOS does not (check that the image needs none of them):\n",
            declared.skipped.len(),
            if declared.skipped.len() == 1 { "" } else { "s" }
        ));
        for line in &declared.skipped {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

/// Why `name` is locked: the chain from the configuration's request down to
/// it, who else needs it, and what excluding it would save.
pub fn explain_package(
    config: &micros_config::Config,
    lock: &Lock,
    name: &str,
) -> anyhow::Result<String> {
    let excluded = config
        .packages
        .exclude
        .get(name)
        .and_then(Option::as_ref)
        .or_else(|| {
            lock.exclusions
                .iter()
                .find(|e| e.name == name)
                .map(|e| &e.reason)
        });
    if let Some(reason) = excluded {
        return Ok(format!(
            "{name} is not in the image: it is excluded (packages.exclude.{name}: {reason})\n"
        ));
    }
    let Some(package) = lock.package(name) else {
        let closest = lock
            .packages
            .iter()
            .map(|p| (strsim::levenshtein(&p.name, name), &p.name))
            .filter(|(distance, _)| *distance <= 3)
            .min();
        let hint = closest
            .map(|(_, n)| format!("\nhint: did you mean `{n}`?"))
            .unwrap_or_default();
        anyhow::bail!("{name} is not in the image (micros.lock does not hold it){hint}");
    };
    let depends: BTreeMap<&str, &[String]> = lock
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.depends.as_slice()))
        .collect();
    let mut text = String::new();
    // Breadth first from the request: the shortest chain.
    let mut parent: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    for root in &lock.request {
        parent.insert(root, None);
        queue.push_back(root);
    }
    while let Some(at) = queue.pop_front() {
        if at == name {
            break;
        }
        for next in depends.get(at).copied().unwrap_or_default() {
            if !parent.contains_key(next.as_str()) {
                parent.insert(next, Some(at));
                queue.push_back(next);
            }
        }
    }
    let mut chain = vec![name];
    while let Some(Some(up)) = parent.get(chain.last().expect("not empty")) {
        chain.push(up);
    }
    chain.reverse();
    text.push_str(&format!(
        "{name} {} is in the image because\n",
        package.version
    ));
    let asked_by = if chain[0] == config.boot.kernel.package {
        "boot.kernel.package".to_owned()
    } else if config.hardware.firmware.contains_key(chain[0]) {
        format!("hardware.firmware.{}", chain[0])
    } else {
        format!("environment.packages.{}", chain[0])
    };
    text.push_str(&format!(
        "  the configuration asks for {} ({asked_by})\n",
        chain[0]
    ));
    for pair in chain.windows(2) {
        text.push_str(&format!("  {} depends on {}\n", pair[0], pair[1]));
    }
    let needed_by: Vec<&str> = lock
        .packages
        .iter()
        .filter(|p| p.depends.iter().any(|d| d == name))
        .map(|p| p.name.as_str())
        .collect();
    if !needed_by.is_empty() {
        text.push_str(&format!("needed by: {}\n", needed_by.join(", ")));
    }
    // What only it pulls in: everything no longer reachable without it.
    let mut reachable: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = lock
        .request
        .iter()
        .map(String::as_str)
        .filter(|r| *r != name)
        .collect();
    while let Some(at) = stack.pop() {
        if at == name || !reachable.insert(at) {
            continue;
        }
        stack.extend(
            depends
                .get(at)
                .copied()
                .unwrap_or_default()
                .iter()
                .map(String::as_str),
        );
    }
    let dropped: Vec<_> = lock
        .packages
        .iter()
        .filter(|p| !reachable.contains(p.name.as_str()))
        .collect();
    let installed: u64 = dropped.iter().map(|p| p.installed_size * 1024).sum();
    let download: u64 = dropped.iter().map(|p| p.size).sum();
    let others: Vec<&str> = dropped
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| *n != name)
        .collect();
    let how = if lock.request.iter().any(|r| r == name) {
        "removing it from the configuration".to_owned()
    } else {
        format!("excluding it (packages.exclude.{name} = \"why\")")
    };
    text.push_str(&format!(
        "{how} would drop {}{}: {} installed, {} to download{}\n",
        name,
        if others.is_empty() {
            String::new()
        } else {
            format!(" and what only it needs ({})", others.join(", "))
        },
        human(installed),
        human(download),
        if needed_by.is_empty() {
            String::new()
        } else {
            format!(", and leave {} without it", needed_by.join(", "))
        }
    ));
    Ok(text)
}

/// Which package or module put `path` into the root.
fn explain_path(
    config: &micros_config::Config,
    tree: &micros_image::Tree,
    packages: &[String],
    path: &str,
) -> anyhow::Result<String> {
    use micros_image::{Kind, TreePath};
    let at = TreePath::parse(path).with_context(|| format!("`{path}` is not a path"))?;
    if tree.get(&at).is_none() {
        // Through a symbolic link on the way (`/bin/sh` is `/usr/bin/sh`).
        if let Some((real, _)) = tree.resolve(&at) {
            let mut text = format!("{path} is {real} through symbolic links\n");
            text.push_str(&explain_path(config, tree, packages, &real.to_string())?);
            return Ok(text);
        }
    }
    let Some(entry) = tree.get(&at) else {
        let excluded = micros_config::model::enabled(&config.environment.exclude_paths)
            .into_iter()
            .find(|pattern| micros_system::glob::matches(pattern, &at.to_string()));
        match excluded {
            Some(pattern) => anyhow::bail!(
                "{path} is not in the image: environment.excludePaths.\"{pattern}\" leaves it out"
            ),
            None => anyhow::bail!("{path} is not in the image"),
        }
    };
    let describe = |origin: &str| -> String {
        // Unpacked files carry their package's name; anything else was
        // generated from the configuration.
        if packages.iter().any(|p| p == origin) {
            format!("the package {origin}")
        } else {
            format!("MicrOS ({origin})")
        }
    };
    let mut text = format!(
        "{path} ({}) comes from {}\n",
        entry.kind.describe(),
        describe(&entry.origin)
    );
    if let Kind::Symlink(target) = &entry.kind {
        if let Some((real, file)) = tree.resolve(&at) {
            text.push_str(&format!(
                "  it points to {target}, that is {real} ({}), from {}\n",
                file.kind.describe(),
                describe(&file.origin)
            ));
        }
    }
    Ok(text)
}
