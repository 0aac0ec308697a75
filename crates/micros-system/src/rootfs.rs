//! The root filesystem: the packages' files, minus what
//! `environment.excludePaths` drops, plus what the configuration generates
//! (users, host name, `/etc` files, runit's stages and services, the
//! kernel modules loaded at boot).
use std::path::Path;

use micros_config::model::{enabled, Config};
use micros_debian::deb::{unpack_tar, DebError, UnpackOptions};
use micros_image::{Content, Entry, Kind, Tree, TreeError, TreePath};

use crate::kernel::{Kernel, KernelError};
use crate::runit::{self, Activation, ServiceError};
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
}

/// busybox applets linked into `/usr/bin` when busybox is installed and
/// nothing else provides the name.
const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "chmod", "chown", "cp", "date", "dd", "df", "dmesg", "echo", "env",
    "false", "find", "free", "grep", "head", "hostname", "id", "ifconfig", "insmod", "ip", "kill",
    "less", "ln", "login", "ls", "lsmod", "mkdir", "mknod", "modprobe", "more", "mount", "mv",
    "nc", "ping", "ps", "pwd", "rm", "rmdir", "sed", "sleep", "stty", "sync", "sysctl", "tail",
    "tee", "test", "top", "touch", "true", "udhcpc", "umount", "uname", "uptime", "vi", "wc",
    "wget", "getty", "basename", "dirname", "awk", "tr", "cut", "sort", "uniq", "xargs", "[",
    "logger", "syslogd", "klogd", "mdev", "ntpd",
];

fn path(text: &str) -> Result<TreePath, TreeError> {
    TreePath::parse(text)
}

fn file(text: impl Into<Vec<u8>>, mode: u32) -> Entry {
    Entry::file(Content::bytes(text), mode, "micros")
}

/// Builds the root tree. Kernel packages are not unpacked into it; the
/// modules of `boot.kernelModules` (with their dependencies) are copied
/// from `kernel`.
pub fn assemble(
    config: &Config,
    config_dir: &Path,
    packages: &[Package<'_>],
    kernel: &Kernel,
) -> Result<Tree, RootfsError> {
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
            let link = path(&format!("/usr/bin/{applet}"))?;
            if tree.get(&link).is_none()
                && tree.get(&path(&format!("/usr/sbin/{applet}"))?).is_none()
            {
                tree.insert(link, Entry::symlink("busybox", "busybox (applet link)"))?;
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

    for dir in [
        "/dev", "/proc", "/sys", "/run", "/tmp", "/var", "/etc", "/root",
    ] {
        tree.insert(
            path(dir)?,
            Entry::directory(if dir == "/tmp" { 0o1777 } else { 0o755 }, "micros"),
        )?;
    }
    let database = users::render(&config.users)?;
    tree.replace(path("/etc/passwd")?, file(database.passwd, 0o644))?;
    tree.replace(path("/etc/group")?, file(database.group, 0o644))?;
    tree.replace(path("/etc/shadow")?, file(database.shadow, 0o600))?;
    tree.replace(
        path("/etc/hostname")?,
        file(format!("{}\n", config.networking.host_name), 0o644),
    )?;
    tree.replace(
        path("/etc/hosts")?,
        file(
            format!(
                "127.0.0.1 localhost\n127.0.1.1 {}\n::1 localhost\n",
                config.networking.host_name
            ),
            0o644,
        ),
    )?;
    let mut profile = String::from("# Generated by MicrOS from environment.variables.\n");
    for (key, value) in &config.environment.variables {
        profile.push_str(&format!("export {key}={}\n", runit::shell_quote(value)));
    }
    tree.replace(path("/etc/profile")?, file(profile, 0o644))?;
    if !config.networking.nameservers.is_empty() {
        let resolv: String = config
            .networking
            .nameservers
            .iter()
            .map(|n| format!("nameserver {n}\n"))
            .collect();
        tree.replace(path("/etc/resolv.conf")?, file(resolv, 0o644))?;
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
            .get(&own.user)
            .map(|u| u.uid)
            .ok_or_else(|| RootfsError::Option {
                option: format!("{option}.user"),
                message: format!("no user `{}`", own.user),
            })?;
        let gid = config
            .users
            .groups
            .get(&own.group)
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

    // Kernel modules loaded by runit's stage 1.
    let requested: Vec<String> = enabled(&config.boot.kernel_modules)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut activation = Activation {
        sysctl: config
            .boot
            .kernel
            .sysctl
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        ..Activation::default()
    };
    for name in kernel.load_order(&requested)? {
        let file_path = format!("/usr/lib/modules/{}/{name}.ko", kernel.version);
        tree.replace(
            path(&file_path)?,
            Entry::file(
                Content::bytes(kernel.module_bytes(&name)?),
                0o644,
                &format!("kernel module {name}"),
            ),
        )?;
        activation.modules.push(file_path);
    }
    for (point, filesystem) in &config.file_systems {
        activation.mounts.push((
            filesystem.device.clone(),
            point.clone(),
            filesystem.fs_type.clone(),
            filesystem.options.join(","),
        ));
    }
    for (script, contents) in runit::stage_scripts(&activation) {
        tree.replace(path(&script)?, file(contents, 0o755))?;
    }
    tree.replace(path("/etc/service")?, Entry::directory(0o755, "micros"))?;
    for (service, files) in runit::render(&config.runit.services)? {
        for service_file in files {
            let mode = if service_file.executable {
                0o755
            } else {
                0o644
            };
            tree.replace(
                path(&format!("/etc/sv/{service}/{}", service_file.path))?,
                file(service_file.contents, mode),
            )?;
        }
        tree.replace(
            path(&format!("/etc/service/{service}"))?,
            Entry::symlink(&format!("/etc/sv/{service}"), "runit.services"),
        )?;
    }
    Ok(tree)
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
                message: format!("the image has no {needed}, which booting needs\nhint: add micros.profiles.minimal (busybox-static and runit) to the modules"),
            });
        }
    }
    Ok(())
}
