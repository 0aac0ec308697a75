//! runit's side of a system: service directories rendered from
//! `runit.services`, and the three stage scripts.
//!
//! ```text
//! /etc/sv/<name>/run        exec's the command in the foreground
//! /etc/sv/<name>/check      the `ready` command (sv's readiness check)
//! /etc/sv/<name>/log/run    svlogd into /var/log/<name> (with its size
//!                           limits in /var/log/<name>/config), for log.target = "file"
//! /etc/service/<name>  →    /etc/sv/<name>   (what runsvdir scans)
//! ```
//!
//! runsv keeps its `supervise/` state next to `run`; the root is read-only
//! but the writable overlay stacked over it by stage 1 takes those writes.
use std::collections::BTreeMap;

use micros_config::model::{
    EnvName, Log, LogTarget, Service, ServiceName, SysctlKey, UserName, Users,
};

use crate::shell::{self, quote};

/// A file of a service directory: path below `/etc/sv/<name>/`, contents,
/// executable or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFile {
    pub path: String,
    pub contents: String,
    pub executable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("runit.services.{service}.after: `{missing}` is not an enabled service")]
    UnknownAfter { service: String, missing: String },
    #[error("runit.services: {0} wait for each other in a cycle")]
    Cycle(String),
}

/// A service as runit runs it: `runit.services.<name>` with its defaults
/// filled in, or a package's systemd unit converted (see `crate::unit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub command: String,
    pub user: UserName,
    pub group: Option<UserName>,
    pub environment: BTreeMap<EnvName, String>,
    /// Files of `KEY=value` lines read before the command (path, whether
    /// a missing one is an error).
    pub environment_files: Vec<(String, bool)>,
    pub working_directory: String,
    pub after: Vec<ServiceName>,
    pub ready: Option<String>,
    pub oneshot: bool,
    /// Whether runsv starts it again when it exits (systemd's `Restart=no`
    /// is false).
    pub restart: bool,
    pub log: Log,
    /// Directories made (as root) and given to the service's user before it
    /// starts: (path, mode).
    pub directories: Vec<(String, u32)>,
    /// Commands run before the command (systemd's `ExecStartPre`).
    pub before: Vec<Before>,
    /// The command runs as root, `user` only owning the directories (a
    /// unit's `ExecStart=!…`: the daemon drops its privileges itself).
    pub main_as_root: bool,
}

/// A command run before a service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    pub command: String,
    /// As root, not as the service's user (systemd's `+` prefix).
    pub as_root: bool,
    /// Its failure does not stop the start (systemd's `-` prefix).
    pub may_fail: bool,
}

impl Unit {
    /// `runit.services.<name>` as written, with the defaults for what it
    /// leaves null; `None` without a command.
    pub fn from_service(service: &Service) -> Option<Unit> {
        Some(Unit {
            command: service.command.clone()?,
            user: service
                .user
                .clone()
                .unwrap_or_else(|| UserName::parse("root").expect("a valid name")),
            group: service.group.clone(),
            environment: service.environment.clone(),
            environment_files: Vec::new(),
            working_directory: service
                .working_directory
                .clone()
                .unwrap_or_else(|| "/".to_owned()),
            after: service.after.clone(),
            ready: service.ready.clone(),
            oneshot: service.oneshot.unwrap_or(false),
            restart: true,
            log: service.log.clone(),
            directories: Vec::new(),
            before: Vec::new(),
            main_as_root: false,
        })
    }
}

/// Renders every service's directory. `users` gives each service's user
/// its groups.
pub fn render(
    services: &BTreeMap<ServiceName, Unit>,
    users: &Users,
) -> Result<BTreeMap<ServiceName, Vec<ServiceFile>>, ServiceError> {
    let enabled: BTreeMap<&ServiceName, &Unit> = services.iter().collect();
    for (name, service) in &enabled {
        for after in &service.after {
            if !enabled.contains_key(after) {
                return Err(ServiceError::UnknownAfter {
                    service: name.to_string(),
                    missing: after.to_string(),
                });
            }
        }
    }
    check_cycles(&enabled)?;
    Ok(enabled
        .iter()
        .map(|(name, service)| ((*name).clone(), render_one(name, service, &enabled, users)))
        .collect())
}

fn check_cycles(enabled: &BTreeMap<&ServiceName, &Unit>) -> Result<(), ServiceError> {
    fn visit<'a>(
        name: &'a str,
        enabled: &BTreeMap<&ServiceName, &'a Unit>,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Result<(), ServiceError> {
        if done.contains(&name) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|p| *p == name) {
            let mut cycle: Vec<&str> = path[start..].to_vec();
            cycle.push(name);
            return Err(ServiceError::Cycle(cycle.join(" -> ")));
        }
        path.push(name);
        let service = enabled
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, s)| *s)
            .expect("checked names");
        for after in &service.after {
            visit(after, enabled, path, done)?;
        }
        path.pop();
        done.push(name);
        Ok(())
    }
    let mut done = Vec::new();
    for name in enabled.keys() {
        visit(name, enabled, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

/// Where a one-shot service marks that it has succeeded in this boot.
const DONE: &str = "/run/micros/done";

fn render_one(
    name: &ServiceName,
    service: &Unit,
    enabled: &BTreeMap<&ServiceName, &Unit>,
    users: &Users,
) -> Vec<ServiceFile> {
    // runsv runs ./run in the service directory; sv is given this path, as
    // the script changes to the service's working directory.
    let directory = format!("/etc/service/{name}");
    let output = if service.log.target == LogTarget::None {
        ">/dev/null 2>&1"
    } else {
        "2>&1"
    };
    let mut run =
        format!("#!/bin/sh\n# Generated by MicrOS from runit.services.{name}.\nexec {output}\n");
    for after in &service.after {
        let oneshot = enabled
            .iter()
            .any(|(other, s)| *other == after && s.oneshot);
        if oneshot {
            // A one-shot counts once its command has succeeded (sv would call
            // it up as soon as it starts); runsv restarts us if we give up.
            run.push_str(&format!(
                "n=0; while [ ! -e {} ]; do [ $n -ge 600 ] && exit 1; sleep 0.1; n=$((n + 1)); done\n",
                quote(&format!("{DONE}/{after}"))
            ));
        } else {
            // runit's idiom for a dependency: `sv start` waits (up to -w
            // seconds) until the service runs and its ./check succeeds;
            // runsv restarts us if it gives up. (`sv check` would not do:
            // it passes for a service runsv has not started yet.)
            run.push_str(&format!(
                "sv -w 60 start {} >/dev/null || exit 1\n",
                quote(&format!("/etc/service/{after}"))
            ));
        }
    }
    if service.oneshot || !service.restart {
        // Stay down once the command has succeeded (a failed one-shot is
        // retried); `Restart=no`: stay down whatever happens.
        run.push_str(&format!("sv once {} >/dev/null\n", quote(&directory)));
    }
    let spec = run_as(service, users);
    // Directories the service owns, made as root before it runs.
    if !service.directories.is_empty() {
        let owner = spec
            .as_deref()
            .map(|spec| spec.split(':').take(2).collect::<Vec<_>>().join(":"))
            .unwrap_or_else(|| "root".to_owned());
        for (directory, mode) in &service.directories {
            let path = quote(directory);
            run.push_str(&format!(
                "mkdir -p {path} && chown {} {path} && chmod {mode:04o} {path} || exit 1\n",
                quote(&owner)
            ));
        }
    }
    run.push_str(&format!(
        "cd {} || exit 1\n",
        quote(&service.working_directory)
    ));
    for (key, value) in &service.environment {
        run.push_str(&format!("export {key}={}\n", quote(value)));
    }
    // KEY=value lines; Debian's /etc/default files are shell.
    for (file, required) in &service.environment_files {
        let file = quote(file);
        run.push_str(&format!("if [ -r {file} ]; then set -a; . {file}; set +a"));
        if *required {
            run.push_str(&format!(
                "; else {}; exit 1",
                shell::print(&format!("{name}: cannot read its environment file"))
            ));
        }
        run.push_str("; fi\n");
    }
    let prefix = match spec {
        Some(user) => format!("chpst -u {} ", quote(&user)),
        None => String::new(),
    };
    for before in &service.before {
        let who = if before.as_root { "" } else { prefix.as_str() };
        let failed = if before.may_fail { "true" } else { "exit 1" };
        run.push_str(&format!("{who}{} || {failed}\n", before.command));
    }
    if service.oneshot {
        let done = quote(&format!("{DONE}/{name}"));
        run.push_str(&format!(
            "{prefix}{}\nstatus=$?\nif [ $status -eq 0 ]; then mkdir -p {DONE} && touch {done}; else sv up {} >/dev/null; fi\nexit $status\n",
            service.command,
            quote(&directory),
        ));
    } else {
        let prefix = if service.main_as_root {
            ""
        } else {
            prefix.as_str()
        };
        run.push_str(&format!("exec {prefix}{}\n", service.command));
    }
    let mut files = vec![ServiceFile {
        path: "run".into(),
        contents: run,
        executable: true,
    }];
    if let Some(ready) = &service.ready {
        files.push(ServiceFile {
            path: "check".into(),
            contents: format!("#!/bin/sh\n{ready}\n"),
            executable: true,
        });
    }
    if service.log.target == LogTarget::File {
        // svlogd reads its rotation settings from `config` in the log
        // directory itself.
        let log = quote(&format!("/var/log/{name}"));
        files.push(ServiceFile {
            path: "log/run".into(),
            contents: format!(
                "#!/bin/sh\nmkdir -p {log}\nprintf 's{}\\nn{}\\n' > {log}/config\nexec svlogd -tt {log}\n",
                service.log.max_size, service.log.max_files
            ),
            executable: true,
        });
    }
    files
}

/// `chpst -u`'s argument for a service that does not run as plain root:
/// `user:group:extra…`. chpst sets exactly the groups it is given, so the
/// user's `extraGroups` are listed after the primary group (the service's
/// `group`, else the user's own). A user the configuration does not
/// declare gets the groups of its `/etc/passwd` line from chpst.
fn run_as(service: &Unit, users: &Users) -> Option<String> {
    let declared = users.users.get(service.user.as_str());
    let extra: &[_] = declared.map_or(&[], |user| user.extra_groups.as_slice());
    if service.user == "root" && service.group.is_none() && extra.is_empty() {
        return None;
    }
    let primary = service.group.as_ref().or(declared.map(|user| &user.group));
    let mut spec = service.user.to_string();
    if let Some(primary) = primary {
        spec.push(':');
        spec.push_str(primary);
        for group in extra.iter().filter(|group| *group != primary) {
            spec.push(':');
            spec.push_str(group);
        }
    }
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::tests::HOSTILE;
    use micros_config::model::{Group, User};

    fn name(text: &str) -> ServiceName {
        ServiceName::parse(text).unwrap()
    }

    fn user_name(text: &str) -> UserName {
        UserName::parse(text).unwrap()
    }

    fn service(command: &str) -> Unit {
        Unit {
            command: command.into(),
            user: user_name("root"),
            group: None,
            environment: BTreeMap::new(),
            environment_files: vec![],
            working_directory: "/".into(),
            after: vec![],
            ready: None,
            oneshot: false,
            restart: true,
            log: Log {
                target: LogTarget::Console,
                max_size: 1_000_000,
                max_files: 5,
            },
            directories: vec![],
            before: vec![],
            main_as_root: false,
        }
    }

    fn services<const N: usize>(list: [(&str, Unit); N]) -> BTreeMap<ServiceName, Unit> {
        list.into_iter().map(|(n, s)| (name(n), s)).collect()
    }

    fn no_users() -> Users {
        Users {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// Runs a generated run script on the host, with `sv` and `chpst`
    /// replaced by stubs (`sv` logs its arguments, `chpst -u x` runs the
    /// rest) and one-shot markers kept in a temporary directory: what the
    /// script printed, and the `sv` calls it made.
    fn run(script: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("sv.log");
        for (stub, text) in [
            (
                "sv",
                format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
            ),
            ("chpst", "#!/bin/sh\nshift 2\nexec \"$@\"\n".to_owned()),
        ] {
            std::fs::write(bin.join(stub), text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(bin.join(stub), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let script = script.replace(DONE, &dir.path().join("done").display().to_string());
        let output = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        let mut printed = String::from_utf8(output.stdout).unwrap();
        printed.push_str(&String::from_utf8(output.stderr).unwrap());
        (printed, std::fs::read_to_string(log).unwrap_or_default())
    }

    #[test]
    fn a_long_running_service_execs_its_command() {
        let mut web = service("httpd -f -p 80");
        web.user = user_name("www");
        web.environment
            .insert(EnvName::parse("GREETING").unwrap(), "hello world".into());
        web.after = vec![name("dhcp")];
        web.ready = Some("nc -z 127.0.0.1 80".into());
        let rendered = render(
            &services([("web", web), ("dhcp", service("udhcpc -f"))]),
            &no_users(),
        )
        .unwrap();
        let run = &rendered["web"][0];
        assert_eq!(
            run.contents,
            "#!/bin/sh\n# Generated by MicrOS from runit.services.web.\nexec 2>&1\nsv -w 60 start /etc/service/dhcp >/dev/null || exit 1\ncd / || exit 1\nexport GREETING='hello world'\nexec chpst -u www httpd -f -p 80\n"
        );
        assert_eq!(
            rendered["web"][1].contents,
            "#!/bin/sh\nnc -z 127.0.0.1 80\n"
        );
    }

    #[test]
    fn a_service_runs_with_its_users_extra_groups() {
        let user = |group: &str, extra: &[&str]| User {
            uid: 1000,
            group: user_name(group),
            extra_groups: extra.iter().map(|g| user_name(g)).collect(),
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
            hashed_password: None,
            authorized_keys: vec![],
            is_system_user: false,
        };
        let users = Users {
            users: [
                (
                    user_name("alice"),
                    user("users", &["video", "users", "dialout"]),
                ),
                (user_name("root"), user("root", &[])),
            ]
            .into(),
            groups: ["users", "video", "dialout", "root"]
                .iter()
                .map(|g| (user_name(g), Group { gid: 1 }))
                .collect(),
        };
        let mut camera = service("capture");
        camera.user = user_name("alice");
        let mut other = service("capture");
        other.user = user_name("alice");
        other.group = Some(user_name("video"));
        let rendered = render(
            &services([("camera", camera), ("other", other), ("root", service("x"))]),
            &users,
        )
        .unwrap();
        assert!(rendered["camera"][0]
            .contents
            .ends_with("exec chpst -u alice:users:video:dialout capture\n"));
        assert!(rendered["other"][0]
            .contents
            .ends_with("exec chpst -u alice:video:users:dialout capture\n"));
        assert!(rendered["root"][0].contents.ends_with("exec x\n"));
    }

    #[test]
    fn a_failed_oneshot_asks_to_run_again_from_any_working_directory() {
        let mut setup = service("echo trying; false");
        setup.oneshot = true;
        setup.working_directory = "/tmp".into();
        let rendered = render(&services([("setup", setup)]), &no_users()).unwrap();
        let (printed, sv) = run(&rendered["setup"][0].contents);
        assert_eq!(printed, "trying\n");
        assert_eq!(sv, "once /etc/service/setup\nup /etc/service/setup\n");

        let mut setup = service("true");
        setup.oneshot = true;
        let rendered = render(&services([("setup", setup)]), &no_users()).unwrap();
        let (_, sv) = run(&rendered["setup"][0].contents);
        assert_eq!(sv, "once /etc/service/setup\n", "a success stays down");
    }

    #[test]
    fn tmpfiles_paths_are_made_at_boot_with_hostile_names_as_one_word() {
        use crate::declared::RuntimePath;
        use micros_debian::tmpfiles::What;
        let dir = tempfile::tempdir().unwrap();
        let id = |flag: &str| -> u32 {
            let out = std::process::Command::new("id").arg(flag).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let base = dir.path().display().to_string();
        let wanted = |what: What, name: &str, mode: u32| RuntimePath {
            what,
            path: format!("{base}/{name}"),
            mode,
            uid,
            gid,
            origin: "tmpfiles.d (test)".into(),
        };
        let hostile = "it's $(touch pwned) `x` a;b";
        let lines: String = [
            wanted(What::Directory, hostile, 0o750),
            wanted(
                What::File {
                    contents: Some("$(touch pwned) 'q'".into()),
                },
                "file",
                0o640,
            ),
            wanted(
                What::Symlink {
                    target: "../$(touch pwned)".into(),
                },
                "link",
                0o777,
            ),
            wanted(What::Adjust, "file", 0o600),
            wanted(What::Adjust, "absent", 0o600),
        ]
        .iter()
        .map(runtime_path)
        .collect();
        let output = std::process::Command::new("sh")
            .args(["-c", &lines])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{lines}\n{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let made = std::fs::metadata(dir.path().join(hostile)).unwrap();
        assert!(made.is_dir());
        assert_eq!(made.permissions().mode() & 0o7777, 0o750);
        assert_eq!((made.uid(), made.gid()), (uid, gid));
        let file = dir.path().join("file");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "$(touch pwned) 'q'"
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
            0o600,
            "z adjusts the mode"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("link")).unwrap(),
            std::path::Path::new("../$(touch pwned)")
        );
        assert!(!dir.path().join("absent").exists());
        assert!(!dir.path().join("pwned").exists(), "nothing ran");
    }

    #[test]
    fn a_service_without_a_log_prints_nothing_at_all() {
        let mut quiet = service("sh -c 'echo out; echo err >&2'");
        quiet.log.target = LogTarget::None;
        let rendered = render(&services([("quiet", quiet)]), &no_users()).unwrap();
        assert_eq!(run(&rendered["quiet"][0].contents).0, "");
        let rendered = render(
            &services([("loud", service("sh -c 'echo out; echo err >&2'"))]),
            &no_users(),
        )
        .unwrap();
        assert_eq!(run(&rendered["loud"][0].contents).0, "out\nerr\n");
    }

    #[test]
    fn hostile_values_reach_the_command_unchanged() {
        let place = tempfile::tempdir().unwrap();
        for (index, value) in HOSTILE.iter().enumerate() {
            let mut echo = service("sh -c 'printf \"<%s>\" \"$VALUE\" \"$PWD\"'");
            echo.environment
                .insert(EnvName::parse("VALUE").unwrap(), (*value).to_owned());
            // A working directory named by the hostile value.
            let directory = place
                .path()
                .join(format!("{index}-{}", value.replace('/', "|")));
            if std::fs::create_dir(&directory).is_err() {
                continue; // not a name this file system takes ("" is skipped, too)
            }
            echo.working_directory = directory.display().to_string();
            let rendered = render(&services([("echo", echo)]), &no_users()).unwrap();
            let (printed, _) = run(&rendered["echo"][0].contents);
            assert_eq!(printed, format!("<{value}><{}>", directory.display()));
        }
    }

    #[test]
    fn a_oneshot_stays_down_after_success_and_logs_to_a_file() {
        let mut marker = service("echo booted");
        marker.oneshot = true;
        marker.log.target = LogTarget::File;
        let rendered = render(&services([("marker", marker)]), &no_users()).unwrap();
        let files = &rendered["marker"];
        assert!(files[0]
            .contents
            .contains("sv once /etc/service/marker >/dev/null\n"));
        assert!(files[0].contents.ends_with(
            "echo booted\nstatus=$?\nif [ $status -eq 0 ]; then mkdir -p /run/micros/done && touch /run/micros/done/marker; else sv up /etc/service/marker >/dev/null; fi\nexit $status\n"
        ));
        // Waiting for a one-shot means waiting for its success.
        let mut after = service("echo after");
        after.after = vec![name("marker")];
        let mut marker = service("echo booted");
        marker.oneshot = true;
        let rendered = render(
            &services([("marker", marker), ("after", after)]),
            &no_users(),
        )
        .unwrap();
        assert!(rendered["after"][0]
            .contents
            .contains("while [ ! -e /run/micros/done/marker ]; do"));
        assert_eq!(files[1].path, "log/run");
        assert_eq!(
            files[1].contents,
            "#!/bin/sh\nmkdir -p /var/log/marker\nprintf 's1000000\\nn5\\n' > /var/log/marker/config\nexec svlogd -tt /var/log/marker\n"
        );
    }

    #[test]
    fn ordering_mistakes_are_reported() {
        let mut a = service("a");
        a.after = vec![name("b")];
        let mut b = service("b");
        b.after = vec![name("a")];
        let error = render(&services([("a", a.clone()), ("b", b)]), &no_users()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "runit.services: a -> b -> a wait for each other in a cycle"
        );
        let error = render(&services([("a", a)]), &no_users()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "runit.services.a.after: `b` is not an enabled service"
        );
    }
}

/// Everything stage 1 of runit (activation) needs to know.
#[derive(Debug, Clone, Default)]
pub struct Activation {
    /// `/proc/sys` settings: `net.ipv4.ip_forward` → `1`.
    pub sysctl: BTreeMap<SysctlKey, String>,
    /// Module files to load, in order.
    pub modules: Vec<String>,
    /// Whether to load the modules present devices need
    /// (`micros-init coldplug`), after `modules`.
    pub coldplug: bool,
    /// (device, mount point, type, options).
    pub mounts: Vec<(String, String, String, String)>,
    /// Paths packages' tmpfiles.d want on filesystems that start empty
    /// (`/run`, `/tmp`).
    pub paths: Vec<crate::declared::RuntimePath>,
}

/// Stage 1's line for a tmpfiles.d path: made when it is not there, then
/// given its mode and owner (by id: resolved at build time).
fn runtime_path(wanted: &crate::declared::RuntimePath) -> String {
    use micros_debian::tmpfiles::What;
    let path = quote(&wanted.path);
    let owner = format!("{}:{}", wanted.uid, wanted.gid);
    let mode = format!("{:04o}", wanted.mode);
    let failed = shell::print(&format!(
        "micros: cannot make {} ({})",
        wanted.path, wanted.origin
    ));
    match &wanted.what {
        What::Directory => format!(
            "{{ mkdir -p {path} && chown {owner} {path} && chmod {mode} {path}; }} || {failed}\n"
        ),
        What::File { contents } => format!(
            "{{ [ -e {path} ] || printf '%s' {} > {path}; chown {owner} {path} && chmod {mode} {path}; }} || {failed}\n",
            quote(contents.as_deref().unwrap_or(""))
        ),
        What::Symlink { target } => format!(
            "{{ [ -e {path} ] || [ -L {path} ] || ln -s {} {path}; }} || {failed}\n",
            quote(target)
        ),
        What::Adjust => format!(
            "if [ -e {path} ]; then chown {owner} {path} && chmod {mode} {path} || {failed}; fi\n"
        ),
    }
}

/// `/etc/runit/1`, `2` and `3`, and the `poweroff` and `reboot` commands
/// that drive them: (path, contents).
pub fn stage_scripts(activation: &Activation) -> Vec<(String, String)> {
    // runit hands its stages the console opened non-blocking (djb's
    // open_write), so on a busy serial line a service's write fails with
    // EAGAIN and its output is lost. Each stage opens it again, blocking,
    // for itself and everything it starts.
    let console = "[ -c /dev/console ] && exec >/dev/console 2>&1\n";
    let mut one = format!(
        "#!/bin/sh\n# runit stage 1, generated by MicrOS: activation.\n{console}PATH=/usr/sbin:/usr/bin\nexport PATH\n\
         mkdir -p /dev/pts /dev/shm\nmount -t devpts -o gid=5,mode=0620 devpts /dev/pts\nmount -t tmpfs -o mode=1777 tmpfs /dev/shm\n\
         mount -t tmpfs -o mode=1777 tmpfs /tmp\nmkdir -p /var/log /var/empty /run/micros\n\
         hostname -F /etc/hostname\nip link set lo up\n",
    );
    for (key, value) in &activation.sysctl {
        one.push_str(&format!(
            "printf '%s\\n' {} > {} || {}\n",
            quote(value),
            quote(&key.proc_path()),
            shell::print(&format!("micros: cannot set sysctl {key}"))
        ));
    }
    for module in &activation.modules {
        // Loaded already (built in, or by stage 1) counts as loaded.
        let file = module.rsplit('/').next().unwrap_or(module);
        let name = file.split(".ko").next().unwrap_or(file).replace('-', "_");
        one.push_str(&format!(
            "insmod {} 2>/dev/null || grep -q {} /proc/modules || {}\n",
            quote(module),
            quote(&format!("^{name} ")),
            shell::print(&format!("micros: cannot load kernel module {module}"))
        ));
    }
    if activation.coldplug {
        one.push_str(&format!(
            "{} coldplug || {}\n",
            crate::hardware::LOADER,
            shell::print("micros: coldplug failed; devices may lack their drivers")
        ));
    }
    for (device, point, fs_type, options) in &activation.mounts {
        one.push_str(&format!(
            "mkdir -p {0} && mount -t {1} -o {2} {3} {0} || {4}\n",
            quote(point),
            quote(fs_type),
            quote(options),
            quote(device),
            shell::print(&format!("micros: cannot mount {device} on {point}"))
        ));
    }
    for wanted in &activation.paths {
        one.push_str(&runtime_path(wanted));
    }
    // runit runs stage 3 once /run/runit.stopit becomes executable; it
    // reboots afterwards when /run/runit.reboot is executable, else powers off.
    one.push_str(
        "touch /run/runit.stopit /run/runit.reboot\nchmod 0 /run/runit.stopit /run/runit.reboot\n",
    );
    let two = format!("#!/bin/sh\n# runit stage 2, generated by MicrOS: supervise the services.\n{console}PATH=/usr/sbin:/usr/bin\nexport PATH\nexec runsvdir -P /etc/service\n");
    // Not the tmpfs mounts: runit decides between reboot and power-off
    // after this script, by /run/runit.reboot, which must still be there.
    let three = format!("#!/bin/sh\n# runit stage 3, generated by MicrOS: stop the services, sync, unmount.\n{console}PATH=/usr/sbin:/usr/bin\nexport PATH\n\
                 sv -w 10 force-stop /etc/service/* >/dev/null 2>&1\nsv exit /etc/service/* >/dev/null 2>&1\nsync\n\
                 umount -a -r -t notmpfs >/dev/null 2>&1\nsync\n");
    // runit-init (from Debian's runit) sets the flag files and signals PID
    // 1. busybox's shell runs its own applets of these names in preference
    // to these files; see LOGIN_SHELL_COMMANDS for how a prompt reaches
    // them. runit has no halt that leaves the power on: `halt` powers off.
    let signal = |reboot: bool| {
        format!(
            "#!/bin/sh\n# Generated by MicrOS: ask runit (PID 1) to {}.\nexec /usr/sbin/runit-init {}\n",
            if reboot { "reboot" } else { "power off" },
            if reboot { "6" } else { "0" }
        )
    };
    vec![
        ("/etc/runit/1".to_owned(), one),
        ("/etc/runit/2".to_owned(), two),
        ("/etc/runit/3".to_owned(), three),
        ("/usr/sbin/poweroff".to_owned(), signal(false)),
        ("/usr/sbin/reboot".to_owned(), signal(true)),
        ("/usr/sbin/halt".to_owned(), signal(false)),
    ]
}

/// Shell functions for `/etc/profile`, which login shells read (the
/// console's `login`, dropbear): `poweroff`, `reboot` and `halt` typed at a
/// prompt run the commands [`stage_scripts`] writes.
///
/// Debian builds busybox-static as a standalone shell
/// (`FEATURE_SH_STANDALONE`, "prefer applets"): ash runs its own applet for
/// any name it has before it looks at `PATH`, so a plain `poweroff` never
/// reaches /usr/sbin/poweroff. The applets signal PID 1 the way busybox's
/// init expects (SIGUSR2, SIGTERM; Debian's build has no `telinit` to call
/// instead), and runit as PID 1 ignores those signals, so nothing would
/// happen. A shell function comes before an applet, in ash as in any other
/// shell, so these reach runit. Replacing the applet links cannot help (ash
/// never looks), and runit's signals are its own. Scripts read no profile:
/// they call /usr/sbin/poweroff or /usr/sbin/reboot by path.
pub const LOGIN_SHELL_COMMANDS: &str = "\
# Generated by MicrOS: runit, not busybox's init, is PID 1. busybox's shell
# would run its own poweroff/reboot/halt applets, which runit ignores.
poweroff() { /usr/sbin/poweroff; }
reboot() { /usr/sbin/reboot; }
halt() { /usr/sbin/halt; }
";

#[cfg(test)]
mod stage_tests {
    use super::*;

    #[test]
    fn stage_one_applies_sysctl_modules_and_mounts() {
        let activation = Activation {
            sysctl: BTreeMap::from([(
                SysctlKey::parse("net.ipv4.ip_forward").unwrap(),
                "1".to_string(),
            )]),
            modules: vec!["/usr/lib/modules/6.12/loop.ko".into()],
            coldplug: true,
            mounts: vec![(
                "LABEL=data".into(),
                "/data".into(),
                "ext4".into(),
                "defaults".into(),
            )],
            paths: vec![],
        };
        let scripts = stage_scripts(&activation);
        let one = &scripts[0].1;
        assert!(
            one.contains("printf '%s\\n' 1 > /proc/sys/net/ipv4/ip_forward || "),
            "{one}"
        );
        assert!(
            one.contains("insmod /usr/lib/modules/6.12/loop.ko"),
            "{one}"
        );
        assert!(
            one.contains("mount -t ext4 -o defaults LABEL=data /data"),
            "{one}"
        );
        // Devices get their drivers after the listed modules, before the
        // mounts (which may need them).
        let coldplug = one.find("/usr/lib/micros/micros-init coldplug").expect(one);
        assert!(
            one.find("loop.ko").unwrap() < coldplug
                && coldplug < one.find("mount -t ext4").unwrap()
        );
        assert!(scripts[1].1.ends_with("exec runsvdir -P /etc/service\n"));
        assert!(scripts[3].1.ends_with("exec /usr/sbin/runit-init 0\n"));
        assert!(scripts[4].1.ends_with("exec /usr/sbin/runit-init 6\n"));
        assert_eq!(scripts[5].0, "/usr/sbin/halt");
        assert!(scripts[5].1.ends_with("exec /usr/sbin/runit-init 0\n"));
    }

    /// Stage 1's lines for hostile values, run on the host with `/proc/sys`
    /// moved to a temporary directory and `insmod`/`mount` failing: each
    /// value is written, and each failure is reported, exactly as given.
    #[test]
    fn hostile_values_in_stage_one_stay_single_words() {
        use crate::shell::tests::HOSTILE;
        let dir = tempfile::tempdir().unwrap();
        let proc_sys = dir.path().join("sys");
        std::fs::create_dir_all(proc_sys.join("kernel")).unwrap();
        for value in HOSTILE {
            let activation = Activation {
                sysctl: BTreeMap::from([(
                    SysctlKey::parse("kernel.value").unwrap(),
                    (*value).to_owned(),
                )]),
                modules: vec![format!("/nonexistent/{value}.ko")],
                coldplug: false,
                mounts: vec![(
                    format!("{value}-device"),
                    format!(
                        "{}/{}",
                        dir.path().join("mnt").display(),
                        value.replace('/', "|")
                    ),
                    "nofs".into(),
                    (*value).to_owned(),
                )],
                paths: vec![],
            };
            let one = &stage_scripts(&activation)[0].1;
            // The activation lines, between the fixed start and end.
            let start = one.find("ip link set lo up\n").unwrap() + "ip link set lo up\n".len();
            let end = one.find("touch /run/runit.stopit").unwrap();
            let lines = &one[start..end];
            let lines = lines.replace("/proc/sys/", &format!("{}/", proc_sys.display()));
            let output = std::process::Command::new("/bin/sh")
                .args(["-c", &lines])
                .current_dir(dir.path())
                .env("PATH", "/nonexistent")
                .output()
                .unwrap();
            let printed = String::from_utf8(output.stdout).unwrap();
            assert_eq!(
                std::fs::read_to_string(proc_sys.join("kernel/value"))
                    .unwrap_or_else(|e| panic!("{e}: {lines}")),
                format!("{value}\n")
            );
            assert!(
                printed.contains(&format!(
                    "micros: cannot load kernel module /nonexistent/{value}.ko\n"
                )),
                "{printed}"
            );
            assert!(
                printed.contains(&format!("micros: cannot mount {value}-device on ")),
                "{printed}"
            );
        }
    }

    #[test]
    fn a_login_shell_reaches_runit_for_every_power_command() {
        let scripts = stage_scripts(&Activation::default());
        for command in ["poweroff", "reboot", "halt"] {
            let script = format!("/usr/sbin/{command}");
            assert!(
                scripts.iter().any(|(path, _)| *path == script),
                "{script} is not written"
            );
            assert!(
                LOGIN_SHELL_COMMANDS.contains(&format!("\n{command}() {{ {script}; }}\n")),
                "{LOGIN_SHELL_COMMANDS}"
            );
        }
    }
}
