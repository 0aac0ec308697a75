//! Helpers: write a configuration into a temporary directory and evaluate it.
#![allow(dead_code)]
use std::path::PathBuf;

pub struct Config {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// A `system.ncl` in a fresh directory whose modules are `modules` (Nickel
/// source of the list's elements).
pub fn system(modules: &str) -> Config {
    file(&format!(
        "let micros = import \"micros\" in\nmicros.system {{\n  modules = [\n{modules}\n  ],\n}}\n"
    ))
}

pub fn file(source: &str) -> Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("system.ncl");
    std::fs::write(&path, source).expect("write config");
    Config { _dir: dir, path }
}

pub fn evaluate(modules: &str) -> micros_config::Evaluation {
    let config = system(modules);
    match micros_config::evaluate(&config.path) {
        Ok(evaluation) => evaluation,
        Err(error) => panic!("evaluation failed:\n{error}"),
    }
}

pub fn error(modules: &str) -> String {
    let config = system(modules);
    match micros_config::evaluate(&config.path) {
        Ok(_) => panic!("evaluation succeeded but should have failed"),
        Err(error) => error.to_string(),
    }
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
