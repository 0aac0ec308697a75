//! `micros keygen` and `micros build -A update`, against a signed test
//! archive on 127.0.0.1: the bundle a device would receive, checked with
//! the device's own verifier.
use micros_update::bundle::{parse_public_key, Expectations, Refusal, Verifier};
use micros_update::version::Version;

mod support;
use support::{ok, text, ArchiveProject};

fn project(extra: &str) -> ArchiveProject {
    ArchiveProject::new(support::base_archive(), extra)
}

fn expectations(public: [u8; 32]) -> Expectations {
    Expectations {
        trusted_keys: vec![public],
        platform: "x86_64-linux".into(),
        board: "generic".into(),
        installed: Some(Version::parse("1.0").unwrap()),
        allow_downgrade: false,
    }
}

#[test]
fn a_signed_bundle_holds_the_built_slot_and_a_device_accepts_nothing_else() {
    let project = project("");
    let out = ok(&project.micros(&["keygen", "update.key"]));
    assert!(
        out.contains("system.update.trustedKeys = [\"micros-ed25519:"),
        "{out}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.path("update.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the secret is the owner's alone");
    let again = project.micros(&["keygen", "update.key"]);
    assert_eq!(again.status.code(), Some(1), "a key is never overwritten");
    let public_line = std::fs::read_to_string(project.path("update.key.pub")).unwrap();
    let public = parse_public_key(&public_line).unwrap();
    project.write_config(&format!(
        "system.update = {{ version = \"1.1\", trustedKeys = [{:?}] }}",
        public_line.trim()
    ));

    // No key: refused before any work, with what to do.
    let output = project.micros(&["build", "-A", "update"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("micros keygen update.key"),
        "{}",
        text(&output.stderr)
    );

    ok(&project.micros(&["build", "-A", "update", "--key", "update.key"]));
    let bundle = std::fs::read(project.path("result/update.bundle")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.path("result/manifest.json")).unwrap())
            .unwrap();
    assert!(manifest["artifacts"]["update.bundle"]["sha256"].is_string());

    // The device's verifier, fed as the network would: what it hands on to
    // be written is exactly the slot's kernel, initrd and root.
    let mut verifier = Verifier::new(expectations(public));
    let mut parts: [Vec<u8>; 3] = Default::default();
    for piece in bundle.chunks(1500) {
        for block in verifier.feed(piece).unwrap() {
            parts[block.part].extend_from_slice(&block.bytes);
        }
    }
    let accepted = verifier.finish().unwrap();
    assert_eq!(accepted.version.to_string(), "1.1");
    for (part, file) in parts.iter().zip(["kernel", "initrd", "root.squashfs"]) {
        assert!(
            *part == std::fs::read(project.path(&format!("result/{file}"))).unwrap(),
            "{file}"
        );
    }

    // Another key, a flipped byte, a cut: refused.
    let check = |bytes: &[u8], expect: Expectations| -> Result<(), Refusal> {
        let mut verifier = Verifier::new(expect);
        verifier.feed(bytes)?;
        verifier.finish().map(drop)
    };
    assert_eq!(
        check(&bundle, expectations([1; 32])),
        Err(Refusal::UntrustedKey)
    );
    let mut corrupt = bundle.clone();
    let middle = bundle.len() - 100;
    corrupt[middle] ^= 1;
    assert!(matches!(
        check(&corrupt, expectations(public)),
        Err(Refusal::CorruptBlock { part: "root", .. })
    ));
    assert!(matches!(
        check(&bundle[..bundle.len() - 1], expectations(public)),
        Err(Refusal::Truncated {
            part: "root",
            missing: 1
        })
    ));
    let mut newer = expectations(public);
    newer.installed = Some(Version::parse("1.2").unwrap());
    assert!(matches!(check(&bundle, newer), Err(Refusal::Older { .. })));
}
