//! Builds `micros-init` (stage 1) for every platform MicrOS targets and
//! embeds the binaries, so that building an image for any board needs
//! nothing but the `micros` binary.
//!
//! Stage 1 uses no standard library and no C library (`core`, `alloc` and
//! raw system calls: crates/micros-init/src/sys.rs), so each target's
//! `core` and `alloc` are built here from the toolchain's `rust-src`
//! (`-Zbuild-std`) and linked statically by `rust-lld`: no rustup target,
//! no cross C toolchain, the same way for every architecture. One nested
//! `cargo build` builds all targets, into its own target directory under
//! `OUT_DIR` (sharing the outer one would deadlock on its lock).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (MicrOS platform, Rust target). The Rust target only chooses the
/// architecture and ABI: nothing of its C library is used.
const TARGETS: &[(&str, &str)] = &[
    ("x86_64-linux", "x86_64-unknown-linux-musl"),
    ("aarch64-linux", "aarch64-unknown-linux-musl"),
    ("armv7l-linux", "armv7-unknown-linux-musleabihf"),
    ("armv6l-linux", "arm-unknown-linux-musleabi"),
    ("riscv64-linux", "riscv64gc-unknown-linux-musl"),
];

/// The toolchain's sysroot.
fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    Some(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

fn has_rust_src(sysroot: &Path) -> bool {
    sysroot.join("lib/rustlib/src/rust/library/core").is_dir()
}

/// Makes sure the toolchain has `rust-src`. rustup installs the components
/// of rust-toolchain.toml only when it installs the toolchain, so where the
/// pinned toolchain was already there it may lack it: add it then, as the
/// README's first command must work on such a machine too.
fn ensure_rust_src() {
    let Some(sysroot) = sysroot() else {
        panic!("cannot ask rustc for its sysroot");
    };
    if has_rust_src(&sysroot) {
        return;
    }
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").ok();
    if let Some(toolchain) = &toolchain {
        println!("cargo:warning=adding the rust-src component to the {toolchain} toolchain (stage 1 is built from it): rustup component add rust-src --toolchain {toolchain}");
        let added = Command::new("rustup")
            .args(["component", "add", "rust-src", "--toolchain", toolchain])
            .status()
            .is_ok_and(|status| status.success());
        if added && has_rust_src(&sysroot) {
            return;
        }
    }
    panic!(
        "building micros-init (stage 1) needs the Rust toolchain's standard library source, which is missing from {}\nhint: run `rustup component add rust-src{}`",
        sysroot.display(),
        toolchain
            .map(|t| format!(" --toolchain {t}"))
            .unwrap_or_default()
    );
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
    let update = manifest.join("../micros-update");
    println!("cargo:rerun-if-changed={}", update.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        update.join("Cargo.toml").display()
    );
    ensure_rust_src();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out.join("micros-init");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command.current_dir(&init).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "micros-init",
        "--bin",
        "micros-init",
        "-p",
        "micros-update",
        "--bin",
        "micros-update",
        "--features",
        "micros-init/device,micros-update/device",
        // core and alloc from rust-src; memcpy and friends from
        // compiler-builtins, as there is no C library to bring them.
        "-Zbuild-std=core,alloc",
        "-Zbuild-std-features=compiler-builtins-mem",
    ]);
    for (_, target) in TARGETS {
        // Static, not position-independent (nothing would relocate it), no
        // C runtime start files: `_start` is stage 1's own.
        command.args(["--target", target, "--config"]).arg(format!(
            "target.{target}.rustflags=[\"-C\", \"relocation-model=static\", \"-C\", \"link-self-contained=no\", \"-C\", \"linker=rust-lld\"]"
        ));
    }
    command
        .arg("--target-dir")
        .arg(&target_dir)
        // Small: optimise for size, no unwinding, stripped.
        .args(["--config", "profile.release.opt-level=\"s\""])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic=\"abort\""])
        .args(["--config", "profile.release.strip=true"])
        // -Zbuild-std on the pinned stable toolchain.
        .env("RUSTC_BOOTSTRAP", "1");
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
        panic!("building micros-init (stage 1) failed; see the errors above");
    }
    let mut code = String::new();
    for (name, what, constant) in [
        ("micros-init", "Stage 1", "INIT_BINARIES"),
        ("micros-update", "The update program", "UPDATE_BINARIES"),
    ] {
        writeln!(
            code,
            "/// {what} for each platform: (platform, static binary).\npub static {constant}: &[(&str, &[u8])] = &["
        )
        .expect("write to string");
        for (platform, target) in TARGETS {
            let binary = target_dir.join(target).join("release").join(name);
            writeln!(
                code,
                "    ({platform:?}, include_bytes!({:?})),",
                binary.display().to_string()
            )
            .expect("write to string");
        }
        code.push_str("];\n");
    }
    std::fs::write(out.join("init_binaries.rs"), code).expect("write init_binaries.rs");
}
