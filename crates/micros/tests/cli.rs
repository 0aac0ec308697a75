//! The `micros` binary, run as a user would.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn micros(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_micros"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run micros")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn eval_prints_one_line_per_option() {
    let output = micros(
        &["eval", "examples/qemu.ncl", "--attr", "networking"],
        &workspace(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == r#"networking.hostName = "micros-qemu""#),
        "{stdout}"
    );
}

#[test]
fn eval_json_is_the_configuration() {
    let output = micros(&["eval", "examples/qemu.ncl", "--json"], &workspace());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["platform"]["host"], "x86_64-linux");
    assert_eq!(json["boot"]["kernel"]["package"], "linux-image-cloud-amd64");
}

#[test]
fn eval_defaults_to_system_ncl_and_says_what_to_do_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = micros(&["eval"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("no configuration at system.ncl"),
        "{stderr}"
    );
    assert!(stderr.contains("micros init"), "{stderr}");
}

#[test]
fn init_writes_a_starter_that_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let output = micros(&["init"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = micros(&["eval", "--attr", "networking.hostName"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        r#"networking.hostName = "my-device""#
    );
    // Never overwrites.
    let output = micros(&["init"], dir.path());
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("already exists"));
}

#[test]
fn options_describe_type_default_and_module() {
    let output = micros(&["options", "hostName"], &workspace());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("networking.hostName\n    type:     types.HostName\n    default:  \"micros\"\n    declared: modules/networking.ncl"), "{stdout}");

    let output = micros(&["options", "--json"], &workspace());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let port = json
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "services.sshd.port")
        .expect("services.sshd.port");
    assert_eq!(port["default"], 22);
    assert_eq!(port["declared_in"], "services.ncl");
}

#[test]
fn errors_exit_non_zero_without_debug_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        r#"{ networking.hostname = "x" }"#,
        r#"{ services.sshd.port = "x" }"#,
        r#"{ networking.hostName = "a" }, { networking.hostName = "b" }"#,
        r#"fun config => { assertions = [{ assertion = false, message = "no" }] }"#,
    ];
    for modules in cases {
        std::fs::write(
            dir.path().join("system.ncl"),
            format!(
                "let micros = import \"micros\" in micros.system {{ modules = [ {modules} ] }}"
            ),
        )
        .unwrap();
        let output = micros(&["eval"], dir.path());
        assert_eq!(output.status.code(), Some(1), "{modules}");
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with("error"), "{stderr}");
        for debug in ["Error {", "Some(", "diagnostics:", "Nickel {"] {
            assert!(
                !stderr.contains(debug),
                "a Debug dump leaked for {modules}:\n{stderr}"
            );
        }
    }
}
