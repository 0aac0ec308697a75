//! Needs the network and QEMU: the README's main command, exactly as the
//! README prints it, from a clean clone of this repository with an empty
//! cache, as a newcomer would paste it, boots the example system.
//!
//! It shares the suite's compiled `target/` (`CARGO_TARGET_DIR`), so only
//! the release build is new; where root has no `sudo` (a fresh container),
//! a `sudo` that runs its arguments stands in.
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

/// The one-line `sh` block after the README's "The main command" comment.
fn main_command(readme: &str) -> String {
    let after = readme
        .split_once("<!-- The main command.")
        .expect("README.md marks its main command")
        .1;
    let block = after
        .split_once("```sh\n")
        .expect("a ```sh block follows the marker")
        .1;
    let block = block.split_once("```").expect("the block ends").0;
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "the main command is one line: {block}");
    lines[0].to_owned()
}

#[test]
fn the_main_command_is_found_in_the_readme() {
    let readme = "intro\n<!-- The main command. keep it -->\n```sh\nbash x && cargo run\n```\nmore";
    assert_eq!(main_command(readme), "bash x && cargo run");
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        support::text(&output.stderr)
    );
    support::text(&output.stdout)
}

#[test]
fn needs_network_and_qemu_the_readmes_main_command_boots_the_example_from_a_clean_clone() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repository.join("README.md")).unwrap();
    let command = main_command(&readme);
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("micros");
    run(Command::new("git")
        .args(["clone", "--quiet"])
        .arg(&repository)
        .arg(&clone));

    // A fresh machine's root often has no sudo; the README's command is
    // for both.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let is_root = run(Command::new("id").arg("-u")).trim() == "0";
    let has_sudo = Command::new("sh")
        .args(["-c", "command -v sudo"])
        .output()
        .is_ok_and(|o| o.status.success());
    if is_root && !has_sudo {
        let sudo = bin.join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\nexec \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_owned();
    let cache = work.path().join("cache");
    let log = work.path().join("stderr.log");

    let start = Instant::now();
    support::record_boot();
    let mut child = Command::new("bash")
        .args(["-c", &command])
        .current_dir(&clone)
        .env("PATH", path)
        .env("XDG_CACHE_HOME", &cache)
        .env("CARGO_TARGET_DIR", &target)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env_remove("MICROS_CACHE_DIR")
        .env_remove("MICROS_MIRROR")
        .env_remove("CARGO_MANIFEST_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        // Its own process group, so that cargo, micros and QEMU all end
        // with it.
        .process_group(0)
        .spawn()
        .expect("start bash");
    let group = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let console = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&console);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    });
    let seen = |marker: &str| support::text(&console.lock().unwrap()).contains(marker);
    let wait = |marker: &str, child: &mut std::process::Child, timeout: Duration| {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if seen(marker) {
                return true;
            }
            if child.try_wait().unwrap().is_some() {
                return seen(marker);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };
    let kill = || {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
    };
    let explain = |what: &str| {
        kill();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        format!(
            "{what}\n--- `{command}` stderr (last lines) ---\n{}\n--- console ---\n{}",
            lines[lines.len().saturating_sub(60)..].join("\n"),
            support::shown(&support::text(&console.lock().unwrap()))
        )
    };

    // Compiling MicrOS in release is most of it: minutes on two cores.
    let booted = wait(
        "hello from MicrOS",
        &mut child,
        Duration::from_secs(45 * 60),
    );
    let took = start.elapsed();
    assert!(booted, "{}", explain("the example did not say hello"));
    eprintln!(
        "the README's main command booted the example in {:.0} s from a clean clone",
        took.as_secs_f64()
    );
    // The example leaves a root shell on the console; `poweroff` ends the
    // guest and with it `micros run`, successfully.
    assert!(
        wait("built-in shell (ash)", &mut child, Duration::from_secs(120)),
        "{}",
        explain("no shell on the console")
    );
    std::thread::sleep(Duration::from_secs(1));
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"poweroff\n")
        .unwrap();
    let ended = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if ended.elapsed() > Duration::from_secs(120) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let console = support::text(&console.lock().unwrap());
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        explain(&format!("`poweroff` did not end it well: {status:?}"))
    );
    assert!(
        console.contains("reboot: Power down"),
        "{}",
        explain("no power-down")
    );
    assert!(
        !console.contains("Kernel panic"),
        "{}",
        explain("a kernel panic")
    );
    kill();
}
