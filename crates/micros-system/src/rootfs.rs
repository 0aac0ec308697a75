//! The root filesystem: the packages' files, minus what
//! `environment.excludePaths` drops, plus what the configuration generates
//! (users, host name, `/etc` files, runit's stages and services, the
//! kernel modules loaded at boot).
use std::path::Path;

use micros_config::model::{enabled, Config};
use micros_debian::deb::{unpack_tar, DebError, UnpackOptions};
use micros_image::{Content, Entry, Kind, Tree, TreeError, TreePath};

use crate::declared::{self, Declared, DeclaredError};
use crate::kernel::{Kernel, KernelError};
use crate::runit::{self, Activation, ServiceError};
use crate::shell;
use crate::users::{self, UsersError};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Services(#[from] ServiceError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Declared(#[from] DeclaredError),
    #[error(transparent)]
    Unit(#[from] crate::unit::UnitError),
    #[error("{option}: {message}")]
    Option { option: String, message: String },
    #[error("{option}: cannot read {}: {source}", path.display())]
    Source {
        option: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A package to put in the root: its name and decompressed data tar.
pub struct Package<'a> {
    pub name: &'a str,
    pub data_tar: &'a Path,
    /// What its maintainer scripts declare (users, groups, alternatives).
    pub declared: Option<&'a Declared>,
}

/// busybox applets linked into `/usr/bin` when busybox is installed and
/// nothing else provides the name.
const APPLETS: &[&str] = &[
    "[",
    "ash",
    "awk",
    "base64",
    "basename",
    "cat",
    "chgrp",
    "chmod",
    "chown",
    "cmp",
    "cp",
    "crond",
    "crontab",
    "cut",
    "date",
    "dd",
    "df",
    "diff",
    "dirname",
    "dmesg",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "free",
    "getty",
    "grep",
    "gunzip",
    "gzip",
    "head",
    "hexdump",
    "hostname",
    "hwclock",
    "id",
    "ifconfig",
    "insmod",
    "install",
    "ip",
    "kill",
    "killall",
    "klogd",
    "less",
    "ln",
    "logger",
    "login",
    "ls",
    "lsmod",
    "md5sum",
    "mdev",
    "mkdir",
    "mknod",
    "mkpasswd",
    "mktemp",
    "modprobe",
    "more",
    "mount",
    "mv",
    "nc",
    "netstat",
    "nologin",
    "nslookup",
    "passwd",
    "pidof",
    "ping",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "route",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "stty",
    "su",
    "sync",
    "sysctl",
    "syslogd",
    "tail",
    "tar",
    "tee",
    "test",
    "timeout",
    "top",
    "touch",
    "tr",
    "traceroute",
    "true",
    "udhcpc",
    "umount",
    "uname",
    "uniq",
    "unxz",
    "uptime",
    "vi",
    "watch",
    "wc",
    "wget",
    "which",
    "xargs",
    "xz",
    "xzcat",
    "zcat",
];

fn path(text: &str) -> Result<TreePath, TreeError> {
    TreePath::parse(text)
}

/// A generated file; `origin` names the option it comes from, which is
/// what `micros why /path` answers.
fn file(text: impl Into<Vec<u8>>, mode: u32, origin: &str) -> Entry {
    Entry::file(Content::bytes(text), mode, origin)
}

/// Builds the root tree. Kernel and firmware packages are not unpacked
/// into it: the modules and firmware `hardware::select` chooses are copied
/// from `kernel` and `firmware`.
pub fn assemble(
    config: &Config,
    config_dir: &Path,
    packages: &[Package<'_>],
    kernel: &Kernel,
    firmware: &crate::hardware::FirmwarePackages,
) -> Result<Assembled, RootfsError> {
    let mut tree = Tree::new();
    for package in packages {
        unpack_tar(
            package.name,
            package.data_tar,
            &mut tree,
            UnpackOptions { merged_usr: true },
        )?;
    }
    // Debian's merged /usr, made declaratively rather than by base-files'
    // maintainer scripts.
    for (link, target) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/sbin"),
        ("/lib", "usr/lib"),
    ] {
        tree.insert(path(link)?, Entry::symlink(target, "micros (merged /usr)"))?;
    }
    if tree.get(&path("/usr/lib64")?).is_some() {
        tree.insert(
            path("/lib64")?,
            Entry::symlink("usr/lib64", "micros (merged /usr)"),
        )?;
    }
    // busybox-static ships no applet links.
    if tree.get(&path("/usr/bin/busybox")?).is_some() {
        for applet in APPLETS {
            let bin = path(&format!("/usr/bin/{applet}"))?;
            let sbin = path(&format!("/usr/sbin/{applet}"))?;
            if tree.get(&bin).is_none() && tree.get(&sbin).is_none() {
                // Where Debian keeps it: users' shells name /usr/sbin/nologin.
                let (link, target) = if *applet == "nologin" {
                    (sbin, "../bin/busybox")
                } else {
                    (bin, "busybox")
                };
                tree.insert(link, Entry::symlink(target, "busybox (applet link)"))?;
            }
        }
    }

    // Excluded paths go before anything generated is added.
    let patterns = enabled(&config.environment.exclude_paths);
    let doomed: Vec<TreePath> = tree
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| {
            !p.is_root()
                && patterns
                    .iter()
                    .any(|pattern| crate::glob::matches(pattern, &p.to_string()))
        })
        .collect();
    for dead in doomed {
        tree.remove(&dead);
    }

    for (dir, mode) in [
        ("/dev", 0o755),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/run", 0o755),
        ("/tmp", 0o1777),
        ("/var", 0o755),
        ("/etc", 0o755),
        ("/root", 0o700),
    ] {
        tree.insert(path(dir)?, Entry::directory(mode, "micros"))?;
    }
    // Before anything that needs a shell: say what the image lacks to boot.
    check_bootable(&tree)?;

    // What the packages' scripts and sysusers.d files declare, done here.
    let mut declared = declarations(&tree, packages)?;
    for link in declared::alternatives(&declared, &config.environment.alternatives, |target| {
        TreePath::parse(target)
            .ok()
            .and_then(|target| tree.resolve(&target))
            .is_some()
    })? {
        let link_path = path(&link.link)?;
        // A slave link into a directory the image left out (man pages).
        if link_path
            .parent()
            .is_some_and(|dir| tree.resolve(&dir).is_none())
        {
            continue;
        }
        tree.replace(
            link_path,
            Entry::symlink(&link.target, &format!("alternative {}", link.origin)),
        )?;
    }
    let users = declared::add_users(&config.users, &declared)?;
    let at_boot = apply_declared(&mut tree, &mut declared, &users, &config.users)?;
    let database = users::render(&users)?;
    tree.replace(
        path("/etc/passwd")?,
        file(database.passwd, 0o644, "users.users"),
    )?;
    tree.replace(
        path("/etc/group")?,
        file(database.group, 0o644, "users.groups"),
    )?;
    tree.replace(
        path("/etc/shadow")?,
        file(database.shadow, 0o600, "users.users"),
    )?;
    for (name, user) in &users.users {
        // A daemon's account: its shell is a refusal (`nologin`), and its
        // home, if any, comes from its package or tmpfiles.d.
        if user.is_system_user && user.authorized_keys.is_empty() {
            continue;
        }
        let runs = tree
            .resolve(&path(&user.shell)?)
            .is_some_and(|(_, entry)| matches!(entry.kind, Kind::File(_) | Kind::Hardlink(_)));
        if !runs {
            return Err(RootfsError::Option {
                option: format!("users.users.{name}.shell"),
                message: format!(
                    "{} is not in the image: no package provides it\nhint: add the package that ships it to environment.packages, or use /bin/sh",
                    user.shell
                ),
            });
        }
        // A home directory that no package made belongs to its user.
        let gid = users.groups[&user.group].gid;
        let home = path(&user.home)?;
        if tree.get(&home).is_none() && !is_no_home(&user.home) {
            tree.insert(
                home.clone(),
                Entry::directory(0o700, &format!("users.users.{name}.home")).owned(user.uid, gid),
            )?;
        }
        if user.authorized_keys.is_empty() {
            continue;
        }
        // dropbear refuses keys in a directory others can write to.
        let origin = format!("users.users.{name}.authorizedKeys");
        tree.replace(
            home.join(".ssh")?,
            Entry::directory(0o700, &origin).owned(user.uid, gid),
        )?;
        let keys: String = user
            .authorized_keys
            .iter()
            .map(|k| format!("{k}\n"))
            .collect();
        tree.replace(
            home.join(".ssh")?.join("authorized_keys")?,
            Entry::file(Content::bytes(keys), 0o600, &origin).owned(user.uid, gid),
        )?;
    }
    tree.replace(
        path("/etc/hostname")?,
        file(
            format!("{}\n", config.networking.host_name),
            0o644,
            "networking.hostName",
        ),
    )?;
    tree.replace(
        path("/etc/hosts")?,
        file(
            format!(
                "127.0.0.1 localhost\n127.0.1.1 {}\n::1 localhost\n",
                config.networking.host_name
            ),
            0o644,
            "networking.hostName",
        ),
    )?;
    tree.replace(
        path("/etc/profile")?,
        file(
            profile(&config.environment.variables),
            0o644,
            "environment.variables, runit (poweroff, reboot, halt)",
        ),
    )?;
    if !config.networking.nameservers.is_empty() {
        let resolv: String = config
            .networking
            .nameservers
            .iter()
            .map(|n| format!("nameserver {n}\n"))
            .collect();
        tree.replace(
            path("/etc/resolv.conf")?,
            file(resolv, 0o644, "networking.nameservers"),
        )?;
    }

    for (name, etc) in &config.environment.etc {
        let option = format!("environment.etc.\"{name}\"");
        let content = content_of(
            &option,
            config_dir,
            etc.text.as_deref(),
            etc.source.as_deref(),
        )?;
        tree.replace(
            path(&format!("/etc/{name}"))?,
            Entry::file(content, mode(&option, &etc.mode)?, "environment.etc"),
        )?;
    }
    for (name, own) in &config.environment.files {
        let option = format!("environment.files.\"{name}\"");
        if !name.starts_with('/') {
            return Err(RootfsError::Option {
                option,
                message: "the path must be absolute".to_owned(),
            });
        }
        let content = content_of(
            &option,
            config_dir,
            own.text.as_deref(),
            own.source.as_deref(),
        )?;
        let uid = config
            .users
            .users
            .get(own.user.as_str())
            .map(|u| u.uid)
            .ok_or_else(|| RootfsError::Option {
                option: format!("{option}.user"),
                message: format!("no user `{}`", own.user),
            })?;
        let gid = config
            .users
            .groups
            .get(own.group.as_str())
            .map(|g| g.gid)
            .ok_or_else(|| RootfsError::Option {
                option: format!("{option}.group"),
                message: format!("no group `{}`", own.group),
            })?;
        tree.replace(
            path(name)?,
            Entry::file(content, mode(&option, &own.mode)?, "environment.files").owned(uid, gid),
        )?;
    }

    // Kernel modules: those loaded at every boot by runit's stage 1, and
    // those loaded for devices (coldplug in stage 1, then hotplug).
    let selection = crate::hardware::select(config, kernel, firmware)?;
    crate::hardware::install(&mut tree, &selection, kernel, config.platform.host.name())?;
    if config.system.update.enable {
        install_updater(&mut tree, config)?;
    }
    let mut activation = Activation {
        sysctl: config
            .boot
            .kernel
            .sysctl
            .iter()
            .map(|(key, value)| (key.clone(), sysctl_value(value)))
            .collect(),
        paths: at_boot,
        modules: selection
            .boot_order
            .iter()
            .map(|name| kernel.root_module_path(name))
            .collect(),
        coldplug: selection.table.is_some(),
        ..Activation::default()
    };
    for (point, filesystem) in &config.file_systems {
        activation.mounts.push((
            filesystem.device.clone(),
            point.clone(),
            filesystem.fs_type.clone(),
            filesystem.options.join(","),
        ));
    }
    for (script, contents) in runit::stage_scripts(&activation) {
        tree.replace(
            path(&script)?,
            file(contents, 0o755, "runit (stage scripts)"),
        )?;
    }
    tree.replace(path("/etc/service")?, Entry::directory(0o755, "micros"))?;
    // Services: as written, or converted from a package's systemd unit.
    let unit_names: Vec<String> = TreePath::parse(crate::unit::UNIT_DIRECTORY)
        .map(|directory| {
            tree.children(&directory)
                .map(|(at, _)| at.name().to_owned())
                .filter(|name| name.ends_with(".service"))
                .collect()
        })
        .unwrap_or_default();
    // Without a module that drives a device there is no table and no
    // loader: hardware.autoload's hotplug service has nothing to run.
    let mut services = config.runit.services.clone();
    if selection.table.is_none() {
        services.retain(|name, service| {
            !(name.as_str() == crate::hardware::HOTPLUG_SERVICE
                && service.command.as_deref() == Some(crate::hardware::HOTPLUG_COMMAND))
        });
    }
    let (units, warnings) = crate::unit::resolve(&services, &unit_names, |unit| {
        let entry = tree.get(&path(&format!("{}/{unit}", crate::unit::UNIT_DIRECTORY)).ok()?)?;
        match &entry.kind {
            Kind::File(content) if content.len() <= 1 << 20 => content
                .read()
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
            _ => None,
        }
    })?;
    for (name, unit) in &units {
        if !users.users.contains_key(unit.user.as_str()) {
            return Err(RootfsError::Option {
                option: format!("runit.services.{name}.user"),
                message: format!(
                    "{} is not a user of the image\nhint: declare it in users.users, or add the package that makes it",
                    unit.user
                ),
            });
        }
    }
    for (service, files) in runit::render(&units, &users)? {
        for service_file in files {
            let mode = if service_file.executable {
                0o755
            } else {
                0o644
            };
            tree.replace(
                path(&format!("/etc/sv/{service}/{}", service_file.path))?,
                file(
                    service_file.contents,
                    mode,
                    &format!("runit.services.{service}"),
                ),
            )?;
        }
        tree.replace(
            path(&format!("/etc/service/{service}"))?,
            Entry::symlink(&format!("/etc/sv/{service}"), "runit.services"),
        )?;
    }
    Ok(Assembled {
        tree,
        declared,
        warnings: selection.warnings.into_iter().chain(warnings).collect(),
    })
}

/// The root's tree, what its packages declared (with the lines MicrOS did
/// not do, for the build to say), and warnings (directives of systemd
/// units the conversion did not apply).
pub struct Assembled {
    pub tree: Tree,
    pub declared: Vec<Declared>,
    pub warnings: Vec<String>,
}

/// `micros-update` and its settings (`/etc/micros/update`): the trusted
/// keys, the platform and board a bundle must be for, and the boots a new
/// slot gets.
fn install_updater(tree: &mut Tree, config: &Config) -> Result<(), RootfsError> {
    let update = &config.system.update;
    let platform = config.platform.host.name();
    let option = |option: &str, message: String| RootfsError::Option {
        option: option.to_owned(),
        message,
    };
    let keys = update
        .trusted_keys
        .iter()
        .map(|key| {
            micros_update::bundle::parse_public_key(key).ok_or_else(|| {
                option(
                    "system.update.trustedKeys",
                    format!("`{key}` is not a key from micros keygen"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = micros_update::device::Settings {
        platform: platform.to_owned(),
        board: update
            .compatible
            .first()
            .cloned()
            .ok_or_else(|| option("system.update.compatible", "names no board".into()))?,
        tries: update.tries,
        keys,
        url: update
            .url
            .as_deref()
            .map(micros_update::http::Url::parse)
            .transpose()
            .map_err(|e| option("system.update.url", e.into()))?,
        window: update
            .window
            .as_deref()
            .map(|w| {
                micros_update::fleet::Window::parse(w).ok_or_else(|| {
                    option("system.update.window", format!("`{w}` is not HH:MM-HH:MM"))
                })
            })
            .transpose()?,
    };
    let binary = crate::init::update_binary(platform).ok_or_else(|| {
        option(
            "platform.host",
            format!("MicrOS has no micros-update for {platform}"),
        )
    })?;
    tree.replace(
        path("/usr/bin/micros-update")?,
        Entry::file(Content::bytes(binary), 0o755, "system.update.enable"),
    )?;
    tree.replace(
        path("/etc/micros/update")?,
        file(settings.to_text(), 0o644, "system.update"),
    )?;
    Ok(())
}

fn content_of(
    option: &str,
    config_dir: &Path,
    text: Option<&str>,
    source: Option<&str>,
) -> Result<Content, RootfsError> {
    match (text, source) {
        (Some(text), None) => Ok(Content::bytes(text)),
        (None, Some(source)) => {
            let file = config_dir.join(source);
            let bytes = std::fs::read(&file).map_err(|e| RootfsError::Source {
                option: format!("{option}.source"),
                path: file,
                source: e,
            })?;
            Ok(Content::bytes(bytes))
        }
        (Some(_), Some(_)) => Err(RootfsError::Option {
            option: option.to_owned(),
            message: "give either `text` or `source`, not both".to_owned(),
        }),
        (None, None) => Err(RootfsError::Option {
            option: option.to_owned(),
            message: "give the file's `text` or a `source` path".to_owned(),
        }),
    }
}

fn mode(option: &str, text: &str) -> Result<u32, RootfsError> {
    u32::from_str_radix(text, 8).map_err(|_| RootfsError::Option {
        option: format!("{option}.mode"),
        message: format!("`{text}` is not an octal mode"),
    })
}

/// Whether the tree has what runit needs to boot.
pub fn check_bootable(tree: &Tree) -> Result<(), RootfsError> {
    for needed in ["/usr/sbin/runit", "/usr/bin/runsvdir", "/usr/bin/sh"] {
        let present = tree.get(&path(needed)?).is_some_and(|e| {
            matches!(e.kind, Kind::File(_) | Kind::Symlink(_) | Kind::Hardlink(_))
        });
        if !present {
            return Err(RootfsError::Option {
                option: "environment.packages".to_owned(),
                message: format!("the image has no {needed}, which booting needs\nhint: the base system (`system.base.enable`, on unless a module turns it off) brings it with busybox-static and runit; turn it back on, or add packages that provide it"),
            });
        }
    }
    Ok(())
}

/// A sysctl value as `/proc/sys` takes it: the kernel reads booleans as
/// `1` and `0`, not `true` and `false`.
fn sysctl_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Bool(on) => if *on { "1" } else { "0" }.to_owned(),
        other => other.to_string(),
    }
}

/// What the packages declared that lands in the tree once their users are
/// known: links and files their scripts put in place, homes adduser makes,
/// stat overrides, and tmpfiles.d paths in the image. Returns the tmpfiles.d
/// paths stage 1 makes at boot (`/run`, `/tmp` start empty). `own` are the
/// configuration's users, whose homes are its own business.
fn apply_declared(
    tree: &mut Tree,
    declared: &mut [Declared],
    users: &micros_config::model::Users,
    own: &micros_config::model::Users,
) -> Result<Vec<declared::RuntimePath>, RootfsError> {
    // Links and files the scripts put in place (`ln -s`, `ucf`, `cp`),
    // where the image has nothing yet.
    for package in declared.iter() {
        for action in &package.actions {
            match action {
                micros_debian::maintscript::Action::Symlink { target, link } => {
                    let at = path(link)?;
                    if tree.get(&at).is_none()
                        && at.parent().is_some_and(|dir| tree.resolve(&dir).is_some())
                    {
                        tree.replace(
                            at,
                            Entry::symlink(
                                target,
                                &format!("{} (ln -s in its scripts)", package.package),
                            ),
                        )?;
                    }
                }
                micros_debian::maintscript::Action::CopyFile { source, dest } => {
                    let at = path(dest)?;
                    let copied = tree
                        .get(&path(source)?)
                        .filter(|e| matches!(e.kind, Kind::File(_)))
                        .cloned();
                    if let (Some(mut entry), None) = (copied, tree.get(&at)) {
                        entry.origin =
                            format!("{} (copied from {source} by its scripts)", package.package)
                                .into();
                        tree.replace(at, entry)?;
                    }
                }
                _ => {}
            }
        }
    }
    // adduser makes a system user's home when it is given one (redis's
    // /var/lib/redis): in the image, owned by the user.
    for package in declared.iter() {
        for action in &package.actions {
            let micros_debian::maintscript::Action::AddUser {
                name,
                create_home: true,
                ..
            } = action
            else {
                continue;
            };
            if own.users.contains_key(name.as_str()) {
                continue;
            }
            let Some(user) = users.users.get(name.as_str()) else {
                continue;
            };
            let home = path(&user.home)?;
            if tree.get(&home).is_none()
                && !is_no_home(&user.home)
                && !declared::made_at_boot(&user.home)
            {
                let gid = users.groups.get(&user.group).map_or(0, |g| g.gid);
                tree.replace(
                    home,
                    Entry::directory(0o755, &format!("{} (adduser --home)", package.package))
                        .owned(user.uid, gid),
                )?;
            }
        }
    }
    // `dpkg-statoverride --add`: the owner and mode the package asks for.
    for (path_text, uid, gid, mode) in declared::stat_overrides(declared, users) {
        if let Some(entry) = TreePath::parse(&path_text)
            .ok()
            .and_then(|p| tree.get_mut(&p))
        {
            entry.uid = uid;
            entry.gid = gid;
            entry.mode = mode;
        }
    }
    // `mkdir` in the scripts: directories in the image (those under /run
    // and /tmp, which start empty, are the daemon's or tmpfiles.d's to make).
    for package in declared.iter() {
        for action in &package.actions {
            let micros_debian::maintscript::Action::Directory { path: at, mode } = action else {
                continue;
            };
            let at = path(at)?;
            if tree.resolve(&at).is_none() && !declared::made_at_boot(&at.to_string()) {
                tree.insert(
                    at,
                    Entry::directory(
                        mode.unwrap_or(0o755),
                        &format!("{} (mkdir in its scripts)", package.package),
                    ),
                )?;
            }
        }
    }
    // `chown` and `chmod` in the scripts, on paths the package ships.
    for change in declared::ownership(declared, users) {
        let (declared::Ownership::Owner {
            path: path_text,
            recursive,
            ..
        }
        | declared::Ownership::Mode {
            path: path_text,
            recursive,
            ..
        }) = &change;
        let Ok(top) = TreePath::parse(path_text) else {
            continue;
        };
        let paths: Vec<TreePath> = if *recursive {
            tree.iter()
                .filter(|(at, _)| at.starts_with(&top))
                .map(|(at, _)| at.clone())
                .collect()
        } else {
            vec![top]
        };
        for at in paths {
            let Some(entry) = tree.get_mut(&at) else {
                continue;
            };
            if matches!(entry.kind, Kind::Symlink(_)) {
                continue;
            }
            match &change {
                declared::Ownership::Owner { uid, gid, .. } => {
                    entry.uid = uid.unwrap_or(entry.uid);
                    entry.gid = gid.unwrap_or(entry.gid);
                }
                declared::Ownership::Mode { mode, .. } => entry.mode = *mode,
            }
        }
    }
    // tmpfiles.d: what lives in the image is made now; /run and /tmp
    // start empty at every boot, so their paths are made by stage 1.
    let mut at_boot = Vec::new();
    for wanted in declared::runtime_paths(declared, users) {
        if declared::made_at_boot(&wanted.path) {
            at_boot.push(wanted);
        } else {
            make_path(tree, &wanted)?;
        }
    }
    Ok(at_boot)
}

/// The homes that mean "none" (`/var/empty`, Debian's `/nonexistent`):
/// never made.
fn is_no_home(home: &str) -> bool {
    matches!(home, "/var/empty" | "/nonexistent")
}

/// A `tmpfiles.d` line done in the image: a directory, file or link made
/// where there is none, and the mode and owner given.
fn make_path(tree: &mut Tree, wanted: &declared::RuntimePath) -> Result<(), RootfsError> {
    use micros_debian::tmpfiles::What;
    let at = path(&wanted.path)?;
    let existing = tree.get_mut(&at);
    match (&wanted.what, existing) {
        // `z`, and any line for a path that is there: its mode and owner.
        (What::Symlink { .. }, Some(_)) => {}
        (_, Some(entry)) => {
            if !matches!(entry.kind, Kind::Symlink(_)) {
                entry.mode = wanted.mode;
                entry.uid = wanted.uid;
                entry.gid = wanted.gid;
            }
        }
        (What::Adjust, None) => {}
        (What::Directory, None) => tree.replace(
            at,
            Entry::directory(wanted.mode, &wanted.origin).owned(wanted.uid, wanted.gid),
        )?,
        (What::File { contents }, None) => tree.replace(
            at,
            Entry::file(
                Content::bytes(contents.clone().unwrap_or_default()),
                wanted.mode,
                &wanted.origin,
            )
            .owned(wanted.uid, wanted.gid),
        )?,
        (What::Symlink { target }, None) => {
            tree.replace(at, Entry::symlink(target, &wanted.origin))?
        }
    }
    Ok(())
}

/// Every package's declarations: its maintainer scripts' (read at unpack)
/// and its `sysusers.d` files' in the tree.
fn declarations(tree: &Tree, packages: &[Package<'_>]) -> Result<Vec<Declared>, RootfsError> {
    let mut all: Vec<Declared> = packages
        .iter()
        .map(|package| {
            package
                .declared
                .cloned()
                .unwrap_or_else(|| Declared::new(package.name))
        })
        .collect();
    for (file, entry) in tree.iter() {
        let name = file.to_string();
        let sysusers = name.starts_with("/usr/lib/sysusers.d/");
        if !((sysusers || name.starts_with("/usr/lib/tmpfiles.d/")) && name.ends_with(".conf")) {
            continue;
        }
        let (Kind::File(content), Some(package)) = (
            &entry.kind,
            all.iter_mut().find(|d| d.package == *entry.origin),
        ) else {
            continue;
        };
        // A package's own small text file; a huge one is not read whole.
        if content.len() > 1 << 20 {
            package
                .skipped
                .push(format!("{name}: larger than 1 MiB, not read"));
            continue;
        }
        let bytes = content.read().map_err(|source| RootfsError::Source {
            option: format!("{} ({name})", package.package),
            path: name.clone().into(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        if sysusers {
            package.add(micros_debian::sysusers::parse(&text));
        } else {
            let parsed = micros_debian::tmpfiles::parse(&text);
            package.tmpfiles.extend(parsed.lines);
            package.skipped.extend(
                parsed
                    .skipped
                    .into_iter()
                    .map(|line| format!("{name}: {line}")),
            );
        }
    }
    Ok(all)
}

/// `/etc/profile`: the environment's variables, each value one quoted word,
/// and the login shell's power commands.
fn profile(
    variables: &std::collections::BTreeMap<micros_config::model::EnvName, String>,
) -> String {
    let mut profile = String::from("# Generated by MicrOS from environment.variables.\n");
    for (key, value) in variables {
        profile.push_str(&format!("export {key}={}\n", shell::quote(value)));
    }
    // Login shells are where people type `poweroff`.
    profile.push_str(runit::LOGIN_SHELL_COMMANDS);
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_sysctls_are_written_as_the_kernel_reads_them() {
        assert_eq!(sysctl_value(&serde_json::json!(true)), "1");
        assert_eq!(sysctl_value(&serde_json::json!(false)), "0");
        assert_eq!(sysctl_value(&serde_json::json!(2)), "2");
        assert_eq!(sysctl_value(&serde_json::json!("4096 87380")), "4096 87380");
    }

    #[test]
    fn the_profile_exports_hostile_values_unchanged() {
        let variables: std::collections::BTreeMap<_, _> = crate::shell::tests::HOSTILE
            .iter()
            .enumerate()
            .map(|(index, value)| {
                (
                    micros_config::model::EnvName::parse(&format!("V{index}")).unwrap(),
                    value.to_string(),
                )
            })
            .collect();
        let reads: Vec<String> = (0..variables.len()).map(|i| format!("\"$V{i}\"")).collect();
        let script = format!(
            "{}\nprintf '%s\\0' {}",
            profile(&variables),
            reads.join(" ")
        );
        let expected: String = crate::shell::tests::HOSTILE
            .iter()
            .map(|value| format!("{value}\0"))
            .collect();
        assert_eq!(crate::shell::tests::sh(&script), expected);
    }

    #[test]
    fn an_image_without_init_names_the_base_system_option() {
        let mut tree = Tree::new();
        tree.insert(
            path("/usr/bin/sh").unwrap(),
            file("#!/bin/true\n", 0o755, "test"),
        )
        .unwrap();
        let message = check_bootable(&tree).unwrap_err().to_string();
        assert!(
            message.starts_with(
                "environment.packages: the image has no /usr/sbin/runit, which booting needs\n"
            ),
            "{message}"
        );
        assert!(message.contains("`system.base.enable`"), "{message}");
    }
}
