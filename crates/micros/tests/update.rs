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

#[test]
fn publishing_writes_a_signed_index_of_verified_bundles_that_only_moves_forward() {
    use micros_update::fleet::{Index, Share};
    let project = project("");
    ok(&project.micros(&["keygen", "update.key"]));
    ok(&project.micros(&["keygen", "other.key"]));
    let key = std::fs::read_to_string(project.path("update.key.pub")).unwrap();
    let public = parse_public_key(&key).unwrap();
    let mut bundles = Vec::new();
    for version in ["1.1", "1.2"] {
        project.write_config(&format!(
            "system.update = {{ version = \"{version}\", trustedKeys = [{:?}] }}",
            key.trim()
        ));
        ok(&project.micros(&["build", "-A", "update", "--key", "update.key"]));
        let name = format!("v{version}.bundle");
        std::fs::copy(project.path("result/update.bundle"), project.path(&name)).unwrap();
        bundles.push(name);
    }
    let index = || -> (Vec<u8>, Index) {
        let bytes = std::fs::read(project.path("repo/index")).unwrap();
        let index = Index::verify(&bytes, &[public]).expect("signed by update.key");
        (bytes, index)
    };
    let publish = |args: &[&str]| {
        let mut all = vec!["publish", "--repo", "repo", "--key", "update.key"];
        all.extend_from_slice(args);
        project.micros(&all)
    };

    let out = ok(&publish(&["--rollout", "0.25", &bundles[0]]));
    assert!(
        out.contains("x86_64-linux generic: version 1.1 to 25 % of devices"),
        "{out}"
    );
    let (_, first) = index();
    let release = first.release("x86_64-linux", "generic").unwrap();
    assert_eq!(release.rollout, Share::parse("0.25").unwrap());
    let bytes = std::fs::read(project.path(&bundles[0])).unwrap();
    assert_eq!(release.size, bytes.len() as u64);
    assert_eq!(
        std::fs::read(project.path("repo").join(&release.bundle)).unwrap(),
        bytes,
        "the bundle is served as built"
    );
    assert!(release.bundle.starts_with("x86_64-linux-1.1-"));

    ok(&publish(&[&bundles[1]]));
    let (after_second, second) = index();
    assert!(second.serial > first.serial);
    let release = second.release("x86_64-linux", "generic").unwrap();
    assert_eq!(release.version, Version::parse("1.2").unwrap());
    assert_eq!(
        release.rollout,
        Share::ALL,
        "a release goes to all by default"
    );
    assert!(
        project
            .path("repo")
            .join(&first.releases[0].bundle)
            .exists(),
        "older bundles stay for devices mid-download"
    );

    // What must not change the index: an older version, a corrupt bundle,
    // a bundle or an index of another key.
    let older = publish(&[&bundles[0]]);
    assert_eq!(older.status.code(), Some(1));
    assert!(
        text(&older.stderr).contains("older than the published 1.2"),
        "{}",
        text(&older.stderr)
    );
    let mut corrupt = std::fs::read(project.path(&bundles[1])).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 1;
    std::fs::write(project.path("corrupt.bundle"), corrupt).unwrap();
    let refused = publish(&["corrupt.bundle"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("corrupt"),
        "{}",
        text(&refused.stderr)
    );
    let stranger = project.micros(&[
        "publish",
        "--repo",
        "repo",
        "--key",
        "other.key",
        "--rollout",
        "1",
    ]);
    assert_eq!(stranger.status.code(), Some(1));
    assert!(
        text(&stranger.stderr).contains("not signed by a key"),
        "{}",
        text(&stranger.stderr)
    );
    let foreign = project.micros(&[
        "publish",
        "--repo",
        "other",
        "--key",
        "other.key",
        &bundles[1],
    ]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        text(&foreign.stderr).contains("is not signed by other.key"),
        "{}",
        text(&foreign.stderr)
    );
    let bad_share = publish(&["--rollout", "1.5"]);
    assert_eq!(bad_share.status.code(), Some(2));
    assert!(text(&bad_share.stderr).contains("a number from 0 to 1"));
    assert_eq!(index().0, after_second, "nothing refused changed the index");

    // Raising the share re-signs the index with a higher serial.
    ok(&publish(&["--rollout", "0.5"]));
    let (_, third) = index();
    assert!(third.serial > second.serial);
    assert_eq!(third.releases[0].rollout, Share::parse("0.5").unwrap());
    assert_eq!(third.releases[0].version, Version::parse("1.2").unwrap());
    let listed = ok(&publish(&[]));
    assert!(
        listed.contains("version 1.2 to 50 % of devices"),
        "{listed}"
    );
}
