//! The commands [`super::parse`] understands, read from their arguments
//! (all known when the script is written: no `$`).
use super::{name, number, path, Action, Outcome, Slave};

/// An alternative's name (`awk`, `awk.1.gz`, `c++`): printable ASCII
/// without `/`, as it names a file in `/etc/alternatives`.
fn is_valid_alternative(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Options and operands, read as getopt_long reads them (`--name value`
/// or `--name=value`).
struct CommandLine<'a> {
    options: Vec<(&'a str, Option<&'a str>)>,
    operands: Vec<&'a str>,
}

/// None if an option is unknown (`takes_value` says None) or lacks its
/// value.
fn command_line<'a>(
    arguments: &[&'a str],
    takes_value: impl Fn(&str) -> Option<bool>,
) -> Option<CommandLine<'a>> {
    let mut line = CommandLine {
        options: Vec::new(),
        operands: Vec::new(),
    };
    let mut rest = arguments.iter().copied();
    while let Some(argument) = rest.next() {
        if argument == "--" {
            line.operands.extend(rest);
            break;
        }
        if argument.len() < 2 || !argument.starts_with('-') {
            line.operands.push(argument);
            continue;
        }
        let (option, inline) = match argument.split_once('=') {
            Some((option, value)) if option.starts_with("--") => (option, Some(value)),
            _ => (argument, None),
        };
        if takes_value(option)? {
            let value = match inline {
                Some(value) => value,
                None => rest.next()?,
            };
            line.options.push((option, Some(value)));
        } else if inline.is_some() {
            return None;
        } else {
            line.options.push((option, None));
        }
    }
    Some(line)
}

/// The user or group fields of a new account.
#[derive(Default)]
struct Account {
    system: bool,
    own_group: bool,
    group: Option<String>,
    home: Option<String>,
    shell: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    /// `--no-create-home` / `-M` (false), `-m` (true); unset: the tool's
    /// default.
    create_home: Option<bool>,
}

impl Account {
    /// Applies one option; None for a bad value.
    fn set(&mut self, field: Field, value: Option<&str>) -> Option<()> {
        match field {
            Field::System => self.system = true,
            Field::OwnGroup => self.own_group = true,
            Field::Group => self.group = Some(name(value?)?),
            Field::Home => self.home = Some(path(value?)?),
            Field::Shell => self.shell = Some(path(value?)?),
            Field::Uid => self.uid = Some(number(value?)?),
            Field::Gid => self.gid = Some(number(value?)?),
            Field::NoCreateHome => self.create_home = Some(false),
            Field::CreateHome => self.create_home = Some(true),
            Field::Ignored => {}
        }
        Some(())
    }

    /// The new user; `creates_home` is the tool's default (adduser makes
    /// a home it is given, useradd only with `-m`).
    fn user(self, user: &str, creates_home: bool) -> Option<Action> {
        // adduser and useradd refuse both; a gid alone names no group.
        if self.own_group && self.group.is_some() || self.gid.is_some() {
            return None;
        }
        let create_home = self.home.is_some() && self.create_home.unwrap_or(creates_home);
        Some(Action::AddUser {
            create_home,
            name: name(user)?,
            group: self.group,
            own_group: self.own_group,
            home: self.home,
            shell: self.shell,
            uid: self.uid,
        })
    }
}

#[derive(Clone, Copy)]
enum Field {
    System,
    OwnGroup,
    Group,
    Home,
    Shell,
    Uid,
    Gid,
    NoCreateHome,
    CreateHome,
    Ignored,
}

/// Reads a command line whose options each set one [`Field`]; `field`
/// names them. Any other option makes the whole command not understood.
fn account<'a>(
    arguments: &[&'a str],
    field: impl Fn(&str) -> Option<(Field, bool)>,
) -> Option<(Account, Vec<&'a str>)> {
    let line = command_line(arguments, |option| field(option).map(|(_, value)| value))?;
    let mut account = Account::default();
    for (option, value) in line.options {
        account.set(field(option)?.0, value)?;
    }
    Some((account, line.operands))
}

pub(super) fn adduser(arguments: &[&str]) -> Option<Vec<Action>> {
    let (account, operands) = account(arguments, |option| {
        Some(match option {
            "--system" => (Field::System, false),
            "--group" => (Field::OwnGroup, false),
            "--ingroup" => (Field::Group, true),
            "--home" => (Field::Home, true),
            "--shell" => (Field::Shell, true),
            "--uid" => (Field::Uid, true),
            "--gid" => (Field::Gid, true),
            "--no-create-home" => (Field::NoCreateHome, false),
            "--quiet"
            | "-q"
            | "--disabled-password"
            | "--disabled-login"
            | "--force-badname"
            | "--allow-bad-names"
            | "--allow-all-names" => (Field::Ignored, false),
            "--gecos" | "--comment" | "--firstuid" | "--lastuid" | "--firstgid" | "--lastgid" => {
                (Field::Ignored, true)
            }
            _ => return None,
        })
    })?;
    match operands.as_slice() {
        [user] if account.system => Some(vec![account.user(user, true)?]),
        [user, group] if is_plain(&account) => Some(vec![Action::AddToGroup {
            user: name(user)?,
            group: name(group)?,
        }]),
        _ => None,
    }
}

/// No option that would make `adduser USER GROUP` mean anything but
/// "add USER to GROUP".
fn is_plain(account: &Account) -> bool {
    !account.system
        && !account.own_group
        && account.group.is_none()
        && account.home.is_none()
        && account.shell.is_none()
        && account.uid.is_none()
        && account.gid.is_none()
}

pub(super) fn addgroup(arguments: &[&str]) -> Option<Vec<Action>> {
    let (account, operands) = account(arguments, |option| {
        Some(match option {
            "--system" => (Field::System, false),
            "--gid" => (Field::Gid, true),
            "--quiet" | "-q" | "--force-badname" | "--allow-bad-names" | "--allow-all-names" => {
                (Field::Ignored, false)
            }
            "--firstgid" | "--lastgid" => (Field::Ignored, true),
            _ => return None,
        })
    })?;
    match operands.as_slice() {
        [group] if account.system => Some(vec![Action::AddGroup {
            name: name(group)?,
            gid: account.gid,
        }]),
        [user, group] if is_plain(&account) => Some(vec![Action::AddToGroup {
            user: name(user)?,
            group: name(group)?,
        }]),
        _ => None,
    }
}

pub(super) fn useradd(arguments: &[&str]) -> Option<Vec<Action>> {
    let (account, operands) = account(arguments, |option| {
        Some(match option {
            "-r" | "--system" => (Field::System, false),
            "-U" | "--user-group" => (Field::OwnGroup, false),
            "-g" | "--gid" => (Field::Group, true),
            "-d" | "--home-dir" | "--home" => (Field::Home, true),
            "-s" | "--shell" => (Field::Shell, true),
            "-u" | "--uid" => (Field::Uid, true),
            "-M" | "--no-create-home" => (Field::NoCreateHome, false),
            "-m" | "--create-home" => (Field::CreateHome, false),
            "-c" | "--comment" | "-K" | "--key" => (Field::Ignored, true),
            _ => return None,
        })
    })?;
    match operands.as_slice() {
        [user] if account.system => Some(vec![account.user(user, false)?]),
        _ => None,
    }
}

pub(super) fn groupadd(arguments: &[&str]) -> Option<Vec<Action>> {
    let (account, operands) = account(arguments, |option| {
        Some(match option {
            "-r" | "--system" => (Field::System, false),
            "-g" | "--gid" => (Field::Gid, true),
            "-f" | "--force" => (Field::Ignored, false),
            "-K" | "--key" => (Field::Ignored, true),
            _ => return None,
        })
    })?;
    match operands.as_slice() {
        [group] if account.system => Some(vec![Action::AddGroup {
            name: name(group)?,
            gid: account.gid,
        }]),
        _ => None,
    }
}

/// `usermod -a -G GROUP[,GROUP...] USER` (or `-aG`). Without `-a` the
/// user would also leave every other group: not understood.
pub(super) fn usermod(arguments: &[&str]) -> Option<Vec<Action>> {
    let expanded: Vec<&str> = arguments
        .iter()
        .flat_map(|&argument| match argument {
            "-aG" => vec!["-a", "-G"],
            other => vec![other],
        })
        .collect();
    let line = command_line(&expanded, |option| match option {
        "-a" | "--append" => Some(false),
        "-G" | "--groups" => Some(true),
        _ => None,
    })?;
    let [user] = line.operands.as_slice() else {
        return None;
    };
    let append = line
        .options
        .iter()
        .any(|(option, _)| matches!(*option, "-a" | "--append"));
    let groups: Vec<&str> = line
        .options
        .iter()
        .filter_map(|(_, value)| *value)
        .flat_map(|value| value.split(','))
        .collect();
    if !append || groups.is_empty() {
        return None;
    }
    groups
        .into_iter()
        .map(|group| {
            Some(Action::AddToGroup {
                user: name(user)?,
                group: name(group)?,
            })
        })
        .collect()
}

pub(super) fn update_alternatives(arguments: &[&str]) -> Outcome {
    let mut rest = arguments
        .iter()
        .copied()
        .skip_while(|a| matches!(*a, "--quiet" | "--verbose" | "--force"));
    if matches!(
        rest.next(),
        Some("--query" | "--list" | "--display" | "--get-selections")
    ) {
        return Outcome::Ignore;
    }
    alternative(arguments).map_or(Outcome::Unknown, |action| Outcome::Actions(vec![action]))
}

fn alternative(arguments: &[&str]) -> Option<Action> {
    let mut install = None;
    let mut slaves = Vec::new();
    let mut index = 0;
    while index < arguments.len() {
        match arguments[index] {
            "--quiet" | "--verbose" | "--force" => index += 1,
            "--install" if install.is_none() => {
                let [link, alternative, target, priority] = arguments.get(index + 1..index + 5)?
                else {
                    return None;
                };
                if !is_valid_alternative(alternative) {
                    return None;
                }
                let priority: i64 = priority.parse().ok()?;
                install = Some((
                    path(link)?,
                    alternative.to_string(),
                    path(target)?,
                    priority,
                ));
                index += 5;
            }
            "--slave" if install.is_some() => {
                let [link, alternative, target] = arguments.get(index + 1..index + 4)? else {
                    return None;
                };
                if !is_valid_alternative(alternative) {
                    return None;
                }
                slaves.push(Slave {
                    link: path(link)?,
                    name: alternative.to_string(),
                    path: path(target)?,
                });
                index += 4;
            }
            _ => return None,
        }
    }
    let (link, name, path, priority) = install?;
    Some(Action::Alternative {
        link,
        name,
        path,
        priority,
        slaves,
    })
}

pub(super) fn statoverride(arguments: &[&str]) -> Outcome {
    let Some(line) = command_line(arguments, |option| match option {
        "--quiet"
        | "--update"
        | "--force"
        | "--force-all"
        | "--force-statoverride-add"
        | "--add"
        | "--list" => Some(false),
        _ => None,
    }) else {
        return Outcome::Unknown;
    };
    let has = |wanted: &str| line.options.iter().any(|(option, _)| *option == wanted);
    if has("--list") {
        return Outcome::Ignore;
    }
    let action = match line.operands.as_slice() {
        [user, group, mode, target] if has("--add") => (|| {
            Some(Action::StatOverride {
                user: name(user)?,
                group: name(group)?,
                mode: octal_mode(mode)?,
                path: path(target)?,
            })
        })(),
        _ => None,
    };
    action.map_or(Outcome::Unknown, |action| Outcome::Actions(vec![action]))
}

fn octal_mode(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|&mode| mode <= 0o7777)
}

/// `ln -s[f] TARGET LINK`: a symbolic link the package's files lack
/// (nginx's `sites-enabled/default`). The target may be relative.
pub(super) fn symlink(arguments: &[&str]) -> Outcome {
    let Some(line) = command_line(arguments, |option| match option {
        "-s" | "-sf" | "-fs" | "-snf" | "-sfn" | "-f" | "-n" | "--symbolic" | "--force" => {
            Some(false)
        }
        _ => None,
    }) else {
        return Outcome::Unknown;
    };
    let symbolic = line
        .options
        .iter()
        .any(|(option, _)| ["-s", "-sf", "-fs", "-snf", "-sfn", "--symbolic"].contains(option));
    let action = match line.operands.as_slice() {
        [target, link] if symbolic => (|| {
            let target_ok = !target.is_empty()
                && !target.contains(['\0', '\n'])
                && (!target.starts_with('/') || path(target).is_some());
            target_ok.then_some(())?;
            Some(Action::Symlink {
                target: (*target).to_owned(),
                link: path(link)?,
            })
        })(),
        _ => None,
    };
    action.map_or(Outcome::Unknown, |action| Outcome::Actions(vec![action]))
}

/// `ucf [options] NEW DEST` and `cp [-a|-p] SOURCE DEST`: a file the
/// package ships elsewhere, put in place when the image has none there
/// (chrony's `/etc/chrony/chrony.conf`, from /usr/share/chrony).
pub(super) fn copy(command: &str, arguments: &[&str]) -> Outcome {
    let line = match command {
        "ucf" => command_line(arguments, |option| match option {
            "--three-way" | "--debconf-ok" | "--verbose" | "-v" | "--three-way-merge" => {
                Some(false)
            }
            "--sum-file" | "--src-dir" | "--state-dir" => Some(true),
            _ => None,
        }),
        _ => command_line(arguments, |option| match option {
            "-a" | "-p" | "-f" | "-Z" | "-aZ" | "--preserve" | "--archive" => Some(false),
            _ => None,
        }),
    };
    let Some(line) = line else {
        return Outcome::Unknown;
    };
    let action = match line.operands.as_slice() {
        [source, dest] => (|| {
            Some(Action::CopyFile {
                source: path(source)?,
                dest: path(dest)?,
            })
        })(),
        _ => None,
    };
    action.map_or(Outcome::Unknown, |action| Outcome::Actions(vec![action]))
}

/// `chown [-R] [-h] OWNER[:GROUP] PATH…` and `chown :GROUP PATH…`: the
/// owner a package gives its files (redis's `/var/log/redis`). `-h` changes
/// a link itself; MicrOS's links are root's either way.
pub(super) fn chown(arguments: &[&str]) -> Outcome {
    on_paths(
        arguments,
        &["-h", "--no-dereference"],
        |owner, path, recursive| {
            let (user, group) = match owner.split_once([':', '.']) {
                Some(("", group)) => (None, Some(name(group)?)),
                // `user:` is the user's login group.
                Some((user, "")) => (Some(name(user)?), None),
                Some((user, group)) => (Some(name(user)?), Some(name(group)?)),
                None => (Some(name(owner)?), None),
            };
            Some(Action::Chown {
                path,
                user,
                group,
                login_group: owner.ends_with([':', '.']),
                recursive,
            })
        },
    )
}

/// `chmod [-R] MODE PATH…` with an octal mode (`chmod 750 /var/lib/redis`).
/// Symbolic modes (`u+x`) depend on the file's mode before: not read.
pub(super) fn chmod(arguments: &[&str]) -> Outcome {
    on_paths(arguments, &[], |mode, path, recursive| {
        Some(Action::Chmod {
            path,
            mode: octal_mode(mode)?,
            recursive,
        })
    })
}

/// `COMMAND [-R] [options] FIRST PATH…` (chown, chmod): one action per
/// path, made from FIRST, the path and whether `-R` was given; none at all
/// if any is not understood.
fn on_paths(
    arguments: &[&str],
    options: &[&str],
    make: impl Fn(&str, String, bool) -> Option<Action>,
) -> Outcome {
    const COMMON: &[&str] = &["-R", "--recursive", "-f", "--quiet", "--silent", "-c", "-v"];
    let Some(line) = command_line(arguments, |option| {
        (COMMON.contains(&option) || options.contains(&option)).then_some(false)
    }) else {
        return Outcome::Unknown;
    };
    let recursive = line
        .options
        .iter()
        .any(|(option, _)| matches!(*option, "-R" | "--recursive"));
    let actions = match line.operands.split_first() {
        Some((first, paths)) if !paths.is_empty() => paths
            .iter()
            .map(|target| make(first, plain_path(target)?, recursive))
            .collect::<Option<Vec<_>>>(),
        _ => None,
    };
    actions.map_or(Outcome::Unknown, Outcome::Actions)
}

/// A path without glob characters: `chown foo /var/log/foo/*.log` names
/// the files that are there when the script runs.
fn plain_path(text: &str) -> Option<String> {
    (!text.contains(['*', '?', '['])).then(|| path(text))?
}

/// `mkdir [-p] [-m OCTAL] PATH…`: directories (redis's `/var/log/redis`).
pub(super) fn mkdir(arguments: &[&str]) -> Outcome {
    let Some(line) = command_line(arguments, |option| match option {
        "-p" | "--parents" | "-Z" | "-pZ" | "-v" => Some(false),
        "-m" | "--mode" => Some(true),
        _ => None,
    }) else {
        return Outcome::Unknown;
    };
    let mode = match line
        .options
        .iter()
        .find(|(option, _)| matches!(*option, "-m" | "--mode"))
    {
        Some((_, Some(mode))) => match octal_mode(mode) {
            Some(mode) => Some(mode),
            None => return Outcome::Unknown,
        },
        _ => None,
    };
    let actions = (!line.operands.is_empty())
        .then(|| {
            line.operands
                .iter()
                .map(|target| {
                    Some(Action::Directory {
                        path: plain_path(target)?,
                        mode,
                    })
                })
                .collect::<Option<Vec<_>>>()
        })
        .flatten();
    actions.map_or(Outcome::Unknown, Outcome::Actions)
}
