//! Builds `micros-init` (stage 1) as a static musl binary for every platform
//! MicrOS targets and embeds the binaries, so that building an image for
//! any board needs nothing but the `micros` binary.
//!
//! Each target is built by a nested `cargo build` into its own target
//! directory under `OUT_DIR` (sharing the outer one would deadlock on its
//! lock), linked with `rust-lld` so no cross C toolchain is needed.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// (MicrOS platform, Rust target, required). The required ones are in
/// rust-toolchain.toml; the others are built when their standard library
/// is installed (`rustup target add …`) or, for the 32-bit ARM ones, when
/// zig is at hand (see [`ZIG_TARGETS`]); images for them fail with a clear
/// error otherwise.
const TARGETS: &[(&str, &str, bool)] = &[
    ("x86_64-linux", "x86_64-unknown-linux-musl", true),
    ("aarch64-linux", "aarch64-unknown-linux-musl", true),
    ("armv7l-linux", "armv7-unknown-linux-musleabihf", false),
    ("armv6l-linux", "arm-unknown-linux-musleabi", false),
    ("riscv64-linux", "riscv64gc-unknown-linux-musl", false),
];

/// Where rustup cannot install a target's standard library, it is built
/// from the toolchain's `rust-src` (`-Zbuild-std`) and linked by zig, which
/// brings musl for every architecture: (Rust target, zig target, CPU).
/// `MICROS_ZIG` names the zig command (`zig`, or `python3 -m ziglang` from
/// PyPI's `ziglang`); `tools/test.sh` sets it up.
const ZIG_TARGETS: &[(&str, &str, &str)] = &[
    (
        "armv7-unknown-linux-musleabihf",
        "arm-linux-musleabihf",
        "generic+v7a+vfp3d16",
    ),
    (
        "arm-unknown-linux-musleabi",
        "arm-linux-musleabi",
        "arm1176jzf_s",
    ),
];

/// The zig command, if one is configured and runs.
fn zig() -> Option<String> {
    let zig = std::env::var("MICROS_ZIG")
        .ok()
        .filter(|z| !z.trim().is_empty())?;
    let mut words = zig.split_whitespace();
    let ok = Command::new(words.next()?)
        .args(words)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(zig)
}

/// Whether the toolchain has the standard library's source (for -Zbuild-std).
fn has_rust_src() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|sysroot| sysroot.join("lib/rustlib/src/rust/library/std").is_dir())
}

/// A linker for `target`: zig's clang with its own musl, given what rustc
/// passes minus the flags zig chooses itself.
fn zig_linker(out: &std::path::Path, zig: &str, zig_target: &str, cpu: &str) -> PathBuf {
    let path = out.join(format!("link-{zig_target}"));
    let script = format!(
        "#!/bin/sh\n# Written by micros-system's build.rs: links micros-init with zig's musl.\n\
         for arg in \"$@\"; do\n  shift\n  case \"$arg\" in\n    --target=*|-lgcc_s|-lgcc) ;;\n    *) set -- \"$@\" \"$arg\" ;;\n  esac\ndone\n\
         exec {zig} cc -target {zig_target} -mcpu={cpu} \"$@\"\n"
    );
    std::fs::write(&path, script).expect("write the zig linker script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the zig linker script executable");
    path
}

/// Whether the standard library for `target` is installed.
fn has_std(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(output) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", target])
        .output()
    else {
        return false;
    };
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let init = manifest
        .join("../micros-init")
        .canonicalize()
        .expect("crates/micros-init");
    println!("cargo:rerun-if-changed={}", init.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        init.join("Cargo.toml").display()
    );
    println!("cargo:rerun-if-env-changed=MICROS_ZIG");
    let zig = zig();
    let rust_src = has_rust_src();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out.join("micros-init");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut code = String::from("/// Stage 1 for each platform: (platform, static binary).\npub static INIT_BINARIES: &[(&str, &[u8])] = &[\n");
    for (platform, target, required) in TARGETS {
        let linker_variable = format!(
            "CARGO_TARGET_{}_LINKER",
            target.to_uppercase().replace('-', "_")
        );
        let mut command = Command::new(&cargo);
        let mut linker = std::ffi::OsString::from("rust-lld");
        // After `build`: cargo ignores these before the subcommand.
        let mut build_std: Vec<String> = Vec::new();
        if !required && !has_std(target) {
            let via_zig = ZIG_TARGETS.iter().find(|z| z.0 == *target);
            match (via_zig, &zig, rust_src) {
                (Some((_, zig_target, cpu)), Some(zig), true) => {
                    linker = zig_linker(&out, zig, zig_target, cpu).into_os_string();
                    command.env("RUSTC_BOOTSTRAP", "1");
                    build_std = vec![
                        "-Zbuild-std=std,panic_abort".to_owned(),
                        "--config".to_owned(),
                        format!("target.{target}.rustflags=[\"-C\", \"link-self-contained=no\"]"),
                    ];
                }
                (Some(_), _, _) => {
                    println!("cargo:warning=micros-init is not built for {platform}: the Rust standard library for {target} is not installed (`rustup target add {target}`), and building it needs zig (MICROS_ZIG) and rust-src");
                    continue;
                }
                (None, _, _) => {
                    println!("cargo:warning=micros-init is not built for {platform}: the Rust standard library for {target} is not installed (`rustup target add {target}`)");
                    continue;
                }
            }
        }
        command
            .current_dir(&init)
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "micros-init",
                "--bin",
                "micros-init",
                "--target",
                target,
            ])
            .args(&build_std)
            .arg("--target-dir")
            .arg(&target_dir)
            // Small: optimise for size, no unwinding tables, stripped.
            .args(["--config", "profile.release.opt-level=\"s\""])
            .args(["--config", "profile.release.lto=true"])
            .args(["--config", "profile.release.codegen-units=1"])
            .args(["--config", "profile.release.panic=\"abort\""])
            .args(["--config", "profile.release.strip=true"])
            .env(linker_variable, linker);
        // What the outer build set for itself must not leak into this one.
        for variable in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "CARGO_MAKEFLAGS",
            "MAKEFLAGS",
            "MFLAGS",
        ] {
            command.env_remove(variable);
        }
        let status = command.status().expect("run cargo for micros-init");
        if !status.success() {
            panic!(
                "building micros-init for {target} failed.\nhint: the musl targets come from rust-toolchain.toml; if they are missing run `rustup target add {}`",
                TARGETS.iter().filter(|t| t.2).map(|t| t.1).collect::<Vec<_>>().join(" ")
            );
        }
        let binary = target_dir.join(target).join("release/micros-init");
        writeln!(
            code,
            "    ({platform:?}, include_bytes!({:?})),",
            binary.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    std::fs::write(out.join("init_binaries.rs"), code).expect("write init_binaries.rs");
}
