//! What packages declare for their maintainer scripts to do — system users
//! and groups (`adduser --system`, `sysusers.d`), alternatives
//! (`update-alternatives --install`) — done by MicrOS at build time,
//! declaratively, without running a script. What a script does that is not
//! understood is kept, by package, for the build to say.
use std::collections::{BTreeMap, BTreeSet};

use micros_config::model::{Group, User, UserName, Users};
use micros_debian::deb::DebError;
use micros_debian::maintscript::{Action, Parsed};

/// One package's declarations: from its `preinst` and `postinst`, and its
/// `sysusers.d` files.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub package: String,
    pub actions: Vec<Action>,
    /// Script lines that were not understood, as written.
    pub skipped: Vec<String>,
    /// Its `tmpfiles.d` lines: paths its daemon needs at run time.
    pub tmpfiles: Vec<micros_debian::tmpfiles::Line>,
}

impl Declared {
    pub fn new(package: &str) -> Self {
        Declared {
            package: package.to_owned(),
            ..Declared::default()
        }
    }

    pub fn add(&mut self, parsed: Parsed) {
        self.actions.extend(parsed.actions);
        self.skipped.extend(parsed.skipped);
    }

    /// What `deb`'s `preinst` and `postinst` declare.
    pub fn from_scripts(package: &str, deb: &std::path::Path) -> Result<Self, DebError> {
        let scripts = micros_debian::deb::control_scripts(package, deb)?;
        let mut declared = Declared::new(package);
        for script in [scripts.preinst, scripts.postinst].into_iter().flatten() {
            declared.add(micros_debian::maintscript::parse(&script));
        }
        Ok(declared)
    }

    /// What MicrOS does for the package, one line each, for `micros why`.
    pub fn describe(&self) -> Vec<String> {
        self.actions
            .iter()
            .map(|action| match action {
                Action::AddUser { name, .. } => format!("makes the system user {name}"),
                Action::AddGroup { name, .. } => format!("makes the system group {name}"),
                Action::AddToGroup { user, group } => format!("puts {user} in the group {group}"),
                Action::Alternative {
                    link,
                    name,
                    path,
                    priority,
                    ..
                } => format!("offers {path} as {link} (alternative {name}, priority {priority})"),
                Action::StatOverride {
                    user,
                    group,
                    mode,
                    path,
                } => {
                    format!("gives {path} to {user}:{group}, mode {mode:04o}")
                }
                Action::Symlink { target, link } => format!("links {link} to {target}"),
                Action::CopyFile { source, dest } => format!("puts {source} at {dest}"),
                Action::Chown {
                    path,
                    user,
                    group,
                    login_group,
                    recursive,
                } => {
                    let owner = match (user, group) {
                        (Some(user), Some(group)) => format!("{user}:{group}"),
                        (Some(user), None) if *login_group => format!("{user} and its group"),
                        (Some(user), None) => user.clone(),
                        (None, Some(group)) => format!("the group {group}"),
                        (None, None) => "root".to_owned(),
                    };
                    let what = if *recursive { " and what is in it" } else { "" };
                    format!("gives {path}{what} to {owner}")
                }
                Action::Chmod {
                    path,
                    mode,
                    recursive,
                } => {
                    let what = if *recursive { " and what is in it" } else { "" };
                    format!("sets the mode of {path}{what} to {mode:04o}")
                }
                Action::Directory { path, .. } => format!("makes the directory {path}"),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclaredError {
    #[error("{package} declares the system user or group `{name}`, but every id from 100 to 999 is taken\nhint: give it an id in users.users.{name}.uid or users.groups.{name}.gid")]
    NoFreeId { package: String, name: String },
    #[error("environment.alternatives.{name}: {path} is not one of the alternatives the packages offer for `{name}` ({offered})")]
    UnknownAlternative {
        name: String,
        path: String,
        offered: String,
    },
    #[error("environment.alternatives.{name}: no package offers an alternative called `{name}`")]
    NoSuchAlternative { name: String },
}

/// The first id of Debian's range for system users and groups that
/// packages create (adduser's FIRST_SYSTEM_UID), and the last.
const FIRST_SYSTEM_ID: u32 = 100;
const LAST_SYSTEM_ID: u32 = 999;

/// `users` with the system users and groups the packages declare that the
/// configuration does not define itself (the configuration's own always
/// win). A declared id is kept when it is free; otherwise the id follows
/// from the name (FNV-1a into 100–999, the next free one on a collision),
/// so adding a package does not renumber the others' users.
pub fn add_users(users: &Users, declared: &[Declared]) -> Result<Users, DeclaredError> {
    let mut result = users.clone();
    let mut used_gids: BTreeSet<u32> = users.groups.values().map(|g| g.gid).collect();
    let mut used_uids: BTreeSet<u32> = users.users.values().map(|u| u.uid).collect();

    // Groups first: users name them. In name order, for the same ids
    // whatever order the packages come in.
    let mut groups: BTreeMap<String, (&str, Option<u32>)> = BTreeMap::new();
    let mut new_users: BTreeMap<String, (&str, &Action)> = BTreeMap::new();
    for package in declared {
        for action in &package.actions {
            match action {
                Action::AddGroup { name, gid } => {
                    groups
                        .entry(name.clone())
                        .or_insert((&package.package, *gid));
                }
                Action::AddUser {
                    name,
                    group,
                    own_group,
                    ..
                } => {
                    new_users
                        .entry(name.clone())
                        .or_insert((&package.package, action));
                    if *own_group {
                        groups
                            .entry(name.clone())
                            .or_insert((&package.package, None));
                    } else if let Some(group) = group {
                        groups
                            .entry(group.clone())
                            .or_insert((&package.package, None));
                    }
                }
                _ => {}
            }
        }
    }
    for (name, (package, wanted)) in &groups {
        let Ok(key) = UserName::parse(name) else {
            continue;
        };
        if result.groups.contains_key(&key) {
            continue;
        }
        // A user's own group takes the user's declared id when it can.
        let wanted = wanted.or_else(|| match new_users.get(name) {
            Some((_, Action::AddUser { uid, .. })) => *uid,
            _ => None,
        });
        let gid = allocate(name, wanted, &used_gids).ok_or_else(|| DeclaredError::NoFreeId {
            package: package.to_string(),
            name: name.clone(),
        })?;
        used_gids.insert(gid);
        result.groups.insert(key, Group { gid });
    }
    for (name, (package, action)) in &new_users {
        let Action::AddUser {
            group,
            own_group,
            home,
            shell,
            uid,
            ..
        } = action
        else {
            continue;
        };
        let Ok(key) = UserName::parse(name) else {
            continue;
        };
        if result.users.contains_key(&key) {
            continue;
        }
        // Keep the user and its own group on one number where both are free.
        let own_gid = own_group
            .then(|| result.groups.get(name.as_str()).map(|g| g.gid))
            .flatten();
        let wanted = uid.or(own_gid);
        let id = allocate(name, wanted, &used_uids).ok_or_else(|| DeclaredError::NoFreeId {
            package: package.to_string(),
            name: name.clone(),
        })?;
        used_uids.insert(id);
        let group = match (own_group, group) {
            (true, _) => key.clone(),
            (false, Some(group)) => UserName::parse(group).unwrap_or_else(|_| nogroup()),
            // adduser --system's default.
            (false, None) => nogroup(),
        };
        result.users.insert(
            key,
            User {
                uid: id,
                group,
                extra_groups: Vec::new(),
                home: home.clone().unwrap_or_else(|| "/nonexistent".to_owned()),
                shell: shell
                    .clone()
                    .unwrap_or_else(|| "/usr/sbin/nologin".to_owned()),
                hashed_password: None,
                authorized_keys: Vec::new(),
                is_system_user: true,
            },
        );
    }
    // `adduser USER GROUP` / sysusers' `m`: only for users the packages
    // made; a configuration's own users keep the groups it gives them.
    for package in declared {
        for action in &package.actions {
            let Action::AddToGroup { user, group } = action else {
                continue;
            };
            let (Ok(user), Ok(group)) = (UserName::parse(user), UserName::parse(group)) else {
                continue;
            };
            if users.users.contains_key(&user) || !result.groups.contains_key(&group) {
                continue;
            }
            if let Some(entry) = result.users.get_mut(&user) {
                if entry.group != group && !entry.extra_groups.contains(&group) {
                    entry.extra_groups.push(group);
                }
            }
        }
    }
    Ok(result)
}

fn nogroup() -> UserName {
    UserName::parse("nogroup").expect("a valid name")
}

/// `wanted` when it is free, else an id from the name's hash in 100–999,
/// or the next free one after it.
fn allocate(name: &str, wanted: Option<u32>, used: &BTreeSet<u32>) -> Option<u32> {
    if let Some(id) = wanted.filter(|id| !used.contains(id)) {
        return Some(id);
    }
    let span = LAST_SYSTEM_ID - FIRST_SYSTEM_ID + 1;
    let start = fnv1a(name.as_bytes()) % span;
    (0..span)
        .map(|step| FIRST_SYSTEM_ID + (start + step) % span)
        .find(|id| !used.contains(id))
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// The uid of a user the image has (root's is 0 whatever `users` says).
fn uid_of(users: &Users, name: &str) -> Option<u32> {
    match name {
        "root" => Some(0),
        _ => users.users.get(name).map(|u| u.uid),
    }
}

/// The gid of a group the image has (root's is 0).
fn gid_of(users: &Users, name: &str) -> Option<u32> {
    match name {
        "root" => Some(0),
        _ => users.groups.get(name).map(|g| g.gid),
    }
}

/// `dpkg-statoverride --add USER GROUP MODE PATH` as (path, uid, gid,
/// mode), for users and groups `users` knows (others are left out: the
/// path keeps the package's owner).
pub fn stat_overrides(declared: &[Declared], users: &Users) -> Vec<(String, u32, u32, u32)> {
    let uid = |name: &str| uid_of(users, name);
    let gid = |name: &str| gid_of(users, name);
    declared
        .iter()
        .flat_map(|d| &d.actions)
        .filter_map(|action| match action {
            Action::StatOverride {
                user,
                group,
                mode,
                path,
            } => Some((path.clone(), uid(user)?, gid(group)?, mode & 0o7777)),
            _ => None,
        })
        .collect()
}

/// An owner or mode a script gives a path (`chown`, `chmod`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Owner {
        path: String,
        uid: Option<u32>,
        gid: Option<u32>,
        recursive: bool,
    },
    Mode {
        path: String,
        mode: u32,
        recursive: bool,
    },
}

/// The scripts' `chown` and `chmod` lines, in script order, with names
/// resolved to ids. A line naming a user or group `users` does not know
/// is added to its package's skipped lines instead.
pub fn ownership(declared: &mut [Declared], users: &Users) -> Vec<Ownership> {
    let mut found = Vec::new();
    for package in declared.iter_mut() {
        let mut unknown = Vec::new();
        for action in &package.actions {
            match action {
                Action::Chown {
                    path,
                    user,
                    group,
                    login_group,
                    recursive,
                } => {
                    // Some(None): the owner is left as it is.
                    let uid = match user {
                        Some(name) => uid_of(users, name).map(Some),
                        None => Some(None),
                    };
                    let login = user
                        .as_deref()
                        .filter(|_| *login_group)
                        .and_then(|name| users.users.get(name))
                        .map(|user| user.group.to_string());
                    let gid = match group.as_deref().or(login.as_deref()) {
                        Some(name) => gid_of(users, name).map(Some),
                        None => Some(None),
                    };
                    match (uid, gid) {
                        (Some(uid), Some(gid)) => found.push(Ownership::Owner {
                            path: path.clone(),
                            uid,
                            gid,
                            recursive: *recursive,
                        }),
                        _ => unknown.push(format!(
                            "chown {}{}{} {path} (no such user or group in the image)",
                            user.as_deref().unwrap_or(""),
                            if group.is_some() || *login_group {
                                ":"
                            } else {
                                ""
                            },
                            group.as_deref().unwrap_or("")
                        )),
                    }
                }
                Action::Chmod {
                    path,
                    mode,
                    recursive,
                } => found.push(Ownership::Mode {
                    path: path.clone(),
                    mode: *mode,
                    recursive: *recursive,
                }),
                _ => {}
            }
        }
        package.skipped.extend(unknown);
    }
    found
}

/// A path a package's `tmpfiles.d` asks for, with its owner's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePath {
    pub what: micros_debian::tmpfiles::What,
    pub path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `tmpfiles.d (lighttpd)`.
    pub origin: String,
}

/// The packages' `tmpfiles.d` lines with their owners as ids. A line whose
/// user or group `users` does not know is added to its package's skipped
/// lines instead.
pub fn runtime_paths(declared: &mut [Declared], users: &Users) -> Vec<RuntimePath> {
    use micros_debian::tmpfiles::What;
    let mut paths = Vec::new();
    for package in declared.iter_mut() {
        let mut unknown = Vec::new();
        for line in &package.tmpfiles {
            let uid = match line.user.as_deref() {
                None | Some("root") => Some(0),
                Some(name) => users.users.get(name).map(|u| u.uid),
            };
            let gid = match line.group.as_deref() {
                None | Some("root") => Some(0),
                Some(name) => users.groups.get(name).map(|g| g.gid),
            };
            let (Some(uid), Some(gid)) = (uid, gid) else {
                unknown.push(format!(
                    "tmpfiles.d: {} for {}:{}, a user or group the image does not have",
                    line.path,
                    line.user.as_deref().unwrap_or("root"),
                    line.group.as_deref().unwrap_or("root")
                ));
                continue;
            };
            let default_mode = match line.what {
                What::Directory => 0o755,
                _ => 0o644,
            };
            paths.push(RuntimePath {
                what: line.what.clone(),
                path: line.path.clone(),
                mode: line.mode.unwrap_or(default_mode),
                uid,
                gid,
                origin: format!("tmpfiles.d ({})", package.package),
            });
        }
        package.skipped.extend(unknown);
    }
    paths
}

/// Whether `path` is on a filesystem that starts empty at every boot
/// (`/run`, `/tmp`), so that it must be made then, not in the image.
pub fn made_at_boot(path: &str) -> bool {
    ["/run", "/tmp", "/dev/shm"]
        .iter()
        .any(|top| path == *top || path.starts_with(&format!("{top}/")))
}

/// A link the alternatives make: `link` → `target`, and which package's
/// alternative chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlternativeLink {
    pub link: String,
    pub target: String,
    /// `awk (mawk, priority 5)`.
    pub origin: String,
}

/// The links `update-alternatives --install` would leave: for every
/// alternative name, the candidate `overrides` names (by path) or else the
/// one with the highest priority (the first path on a tie), with its
/// slaves. Candidates whose path `exists` says is not in the image are not
/// offered.
pub fn alternatives(
    declared: &[Declared],
    overrides: &BTreeMap<String, String>,
    exists: impl Fn(&str) -> bool,
) -> Result<Vec<AlternativeLink>, DeclaredError> {
    struct Candidate<'a> {
        package: &'a str,
        link: &'a str,
        path: &'a str,
        priority: i64,
        slaves: &'a [micros_debian::maintscript::Slave],
    }
    let mut by_name: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
    for package in declared {
        for action in &package.actions {
            if let Action::Alternative {
                link,
                name,
                path,
                priority,
                slaves,
            } = action
            {
                if exists(path) {
                    by_name.entry(name).or_default().push(Candidate {
                        package: &package.package,
                        link,
                        path,
                        priority: *priority,
                        slaves,
                    });
                }
            }
        }
    }
    for name in overrides.keys() {
        if !by_name.contains_key(name.as_str()) {
            return Err(DeclaredError::NoSuchAlternative { name: name.clone() });
        }
    }
    let mut links = Vec::new();
    for (name, mut candidates) in by_name {
        candidates.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.path.cmp(b.path)));
        let chosen = match overrides.get(name) {
            Some(path) => candidates.iter().find(|c| c.path == path).ok_or_else(|| {
                DeclaredError::UnknownAlternative {
                    name: name.to_owned(),
                    path: path.clone(),
                    offered: candidates
                        .iter()
                        .map(|c| c.path)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?,
            None => &candidates[0],
        };
        let origin = format!("{name} ({}, priority {})", chosen.package, chosen.priority);
        links.push(AlternativeLink {
            link: chosen.link.to_owned(),
            target: chosen.path.to_owned(),
            origin: origin.clone(),
        });
        for slave in chosen.slaves.iter().filter(|s| exists(&s.path)) {
            links.push(AlternativeLink {
                link: slave.link.clone(),
                target: slave.path.clone(),
                origin: origin.clone(),
            });
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> UserName {
        UserName::parse(text).unwrap()
    }

    fn base() -> Users {
        let mut users = Users {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        };
        for (group, gid) in [("root", 0), ("users", 100), ("nogroup", 65534)] {
            users.groups.insert(name(group), Group { gid });
        }
        users
    }

    fn declared(package: &str, script: &str) -> Declared {
        let mut declared = Declared::new(package);
        declared.add(micros_debian::maintscript::parse(script));
        declared
    }

    #[test]
    fn package_users_get_ids_from_their_names_and_the_configuration_wins() {
        let mosquitto = declared(
            "mosquitto",
            "addgroup --quiet --system mosquitto\nadduser --quiet --system --no-create-home --ingroup mosquitto --home /var/lib/mosquitto --shell /usr/sbin/nologin mosquitto\n",
        );
        let dnsmasq = declared(
            "dnsmasq-base",
            "useradd --system --gid nogroup --comment dnsmasq --home-dir /var/lib/misc --no-create-home --shell /usr/sbin/nologin dnsmasq\n",
        );
        let users = add_users(&base(), &[mosquitto.clone(), dnsmasq.clone()]).unwrap();
        let user = &users.users["mosquitto"];
        assert!((100..=999).contains(&user.uid), "{user:?}");
        assert_eq!(user.group, "mosquitto");
        assert_eq!(user.home, "/var/lib/mosquitto");
        assert!(user.is_system_user);
        assert_eq!(user.hashed_password, None);
        assert!((100..=999).contains(&users.groups["mosquitto"].gid));
        assert_eq!(users.users["dnsmasq"].group, "nogroup");

        // The same ids in any order, and with another package added.
        let other = declared("avahi-daemon", "adduser --system --group avahi\n");
        let again = add_users(&base(), &[other, dnsmasq.clone(), mosquitto.clone()]).unwrap();
        assert_eq!(again.users["mosquitto"].uid, user.uid);
        assert_eq!(again.users["dnsmasq"].uid, users.users["dnsmasq"].uid);
        assert_eq!(again.users["avahi"].group, "avahi");

        // A configuration's own user is kept as it is.
        let mut mine = base();
        mine.users.insert(
            name("mosquitto"),
            User {
                uid: 1883,
                group: name("users"),
                extra_groups: vec![],
                home: "/srv/mqtt".into(),
                shell: "/bin/sh".into(),
                hashed_password: None,
                authorized_keys: vec![],
                is_system_user: false,
            },
        );
        let users = add_users(&mine, &[mosquitto]).unwrap();
        assert_eq!(users.users["mosquitto"].uid, 1883);
        assert_eq!(users.users["mosquitto"].home, "/srv/mqtt");
    }

    #[test]
    fn a_taken_id_is_never_given_twice() {
        let mut users = base();
        // Fill the whole range but one id.
        for id in 100..=998 {
            users
                .groups
                .insert(name(&format!("g{id}")), Group { gid: id });
        }
        let first = add_users(&users, &[declared("a", "addgroup --system one\n")]).unwrap();
        assert_eq!(first.groups["one"].gid, 999);
        let error = add_users(&first, &[declared("b", "addgroup --system two\n")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("b declares the system user or group `two`"),
            "{error}"
        );
    }

    #[test]
    fn the_highest_priority_alternative_wins_unless_the_configuration_chooses() {
        let mawk = declared(
            "mawk",
            "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 --slave /usr/bin/nawk nawk /usr/bin/mawk\n",
        );
        let gawk = declared(
            "gawk",
            "update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10 --slave /usr/bin/nawk nawk /usr/bin/gawk\n",
        );
        let all = |_: &str| true;
        let links = alternatives(&[mawk.clone(), gawk.clone()], &BTreeMap::new(), all).unwrap();
        assert_eq!(
            links,
            [
                AlternativeLink {
                    link: "/usr/bin/awk".into(),
                    target: "/usr/bin/gawk".into(),
                    origin: "awk (gawk, priority 10)".into()
                },
                AlternativeLink {
                    link: "/usr/bin/nawk".into(),
                    target: "/usr/bin/gawk".into(),
                    origin: "awk (gawk, priority 10)".into()
                },
            ]
        );
        let chosen: BTreeMap<String, String> =
            [("awk".to_owned(), "/usr/bin/mawk".to_owned())].into();
        let links = alternatives(&[mawk.clone(), gawk.clone()], &chosen, all).unwrap();
        assert_eq!(links[0].target, "/usr/bin/mawk");
        // A candidate whose file is not in the image is not offered.
        let links = alternatives(&[mawk.clone(), gawk.clone()], &BTreeMap::new(), |p| {
            p != "/usr/bin/gawk"
        })
        .unwrap();
        assert_eq!(links[0].target, "/usr/bin/mawk");

        let wrong: BTreeMap<String, String> =
            [("awk".to_owned(), "/usr/bin/nope".to_owned())].into();
        let error = alternatives(&[mawk.clone(), gawk], &wrong, all).unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment.alternatives.awk: /usr/bin/nope is not one of the alternatives the packages offer for `awk` (/usr/bin/gawk, /usr/bin/mawk)"
        );
        let unknown: BTreeMap<String, String> =
            [("vi".to_owned(), "/usr/bin/nvi".to_owned())].into();
        assert!(alternatives(&[mawk], &unknown, all).is_err());
    }
}
