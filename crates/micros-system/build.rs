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
/// is installed (`rustup target add …`), and images for them fail with a
/// clear error otherwise.
const TARGETS: &[(&str, &str, bool)] = &[
    ("x86_64-linux", "x86_64-unknown-linux-musl", true),
    ("aarch64-linux", "aarch64-unknown-linux-musl", true),
    ("armv7l-linux", "armv7-unknown-linux-musleabihf", false),
    ("armv6l-linux", "arm-unknown-linux-musleabi", false),
    ("riscv64-linux", "riscv64gc-unknown-linux-musl", false),
];

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
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out.join("micros-init");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut code = String::from("/// Stage 1 for each platform: (platform, static binary).\npub static INIT_BINARIES: &[(&str, &[u8])] = &[\n");
    for (platform, target, required) in TARGETS {
        if !required && !has_std(target) {
            println!("cargo:warning=micros-init is not built for {platform}: the Rust standard library for {target} is not installed (`rustup target add {target}`)");
            continue;
        }
        let linker_variable = format!(
            "CARGO_TARGET_{}_LINKER",
            target.to_uppercase().replace('-', "_")
        );
        let mut command = Command::new(&cargo);
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
            .arg("--target-dir")
            .arg(&target_dir)
            // Small: optimise for size, no unwinding tables, stripped.
            .args(["--config", "profile.release.opt-level=\"s\""])
            .args(["--config", "profile.release.lto=true"])
            .args(["--config", "profile.release.codegen-units=1"])
            .args(["--config", "profile.release.panic=\"abort\""])
            .args(["--config", "profile.release.strip=true"])
            .env(linker_variable, "rust-lld");
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
