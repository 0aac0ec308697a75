//! The archive client against a signed test archive on 127.0.0.1.
use std::time::Duration;

use micros_debian::archive::Source;
use micros_debian::cache::{Bucket, Cache};
use micros_debian::fetch::{Fetcher, Silent};
use micros_debian::lock::Lock;
use micros_debian::resolve::{fetch_packages, resolve, LockMode, ResolveError, Wanted};
use micros_test_archive::{Fault, TestArchive, TestPackage};

struct Setup {
    archive: TestArchive,
    url: String,
    cache_dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let mut archive = TestArchive::new("testing");
        archive
            .add(
                TestPackage::new("libc6", "2.41-12")
                    .field("Priority", "required")
                    .file("./lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF libc", 0o755),
            )
            .add(TestPackage::new("busybox-static", "1:1.37.0-6").file(
                "./bin/busybox",
                b"\x7fELF busybox",
                0o755,
            ))
            .add(
                TestPackage::new("runit", "2.2.0-3")
                    .field("Depends", "libc6 (>= 2.34), runit-helper, sysuser-helper"),
            )
            .add(TestPackage::new("runit-helper", "2.16.4").arch("all"))
            .add(
                TestPackage::new("sysuser-helper", "1.6.0")
                    .arch("all")
                    .field("Depends", "perl-base, adduser"),
            )
            .add(TestPackage::new("perl-base", "5.40.1-6").file(
                "./usr/bin/perl",
                &[0u8; 4000],
                0o755,
            ))
            .add(
                TestPackage::new("adduser", "3.152")
                    .arch("all")
                    .field("Depends", "perl-base"),
            )
            .add(
                TestPackage::new("mawk", "1.3.4")
                    .field("Provides", "awk")
                    .field("Priority", "required"),
            )
            .add(
                TestPackage::new("gawk", "5.2.1")
                    .field("Provides", "awk")
                    .field("Priority", "optional"),
            )
            .add(TestPackage::new("needs-awk", "1.0").field("Depends", "original-awk | awk"))
            .add(TestPackage::new("old-lib", "1.0"))
            .add(TestPackage::new("wants-new-lib", "1.0").field("Depends", "old-lib (>= 2.0)"))
            .add(TestPackage::new("dropbear-bin", "2025.89-1").field("Depends", "libc6"));
        archive.publish();
        let url = archive.serve();
        Setup {
            archive,
            url,
            cache_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn source(&self) -> Source {
        Source {
            suite: "testing".into(),
            components: vec!["main".into()],
            architecture: "amd64".into(),
            keyring: self.archive.keyring(),
        }
    }

    fn fetcher(&self) -> Fetcher {
        let mut fetcher = Fetcher::new(&self.url);
        fetcher.backoff = Duration::from_millis(5);
        fetcher
    }

    fn cache(&self) -> Cache {
        Cache::open(self.cache_dir.path().to_owned()).unwrap()
    }

    fn resolve(&self, packages: &[&str]) -> Result<Lock, ResolveError> {
        self.resolve_with(packages, &[], None, LockMode::Normal, &self.fetcher())
    }

    fn resolve_with(
        &self,
        packages: &[&str],
        exclude: &[&str],
        existing: Option<&Lock>,
        mode: LockMode,
        fetcher: &Fetcher,
    ) -> Result<Lock, ResolveError> {
        let wanted = Wanted {
            packages: packages.iter().map(|s| s.to_string()).collect(),
            exclude: exclude
                .iter()
                .map(|s| (s.to_string(), format!("test: {s} is not needed")))
                .collect(),
        };
        resolve(
            &wanted,
            &self.source(),
            existing,
            mode,
            fetcher,
            &self.cache(),
            &Silent,
        )
        .map(|r| r.lock)
    }
}

fn names(lock: &Lock) -> Vec<String> {
    lock.packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect()
}

#[test]
fn resolves_fetches_and_unpacks() {
    let setup = Setup::new();
    let lock = setup
        .resolve_with(
            &["busybox-static", "runit"],
            &["sysuser-helper"],
            None,
            LockMode::Normal,
            &setup.fetcher(),
        )
        .unwrap();
    assert_eq!(
        names(&lock),
        [
            "busybox-static=1:1.37.0-6",
            "libc6=2.41-12",
            "runit=2.2.0-3",
            "runit-helper=2.16.4"
        ]
    );
    assert_eq!(lock.exclusions.len(), 1);
    assert_eq!(lock.exclusions[0].name, "sysuser-helper");
    assert_eq!(lock.exclusions[0].required_by, ["runit"]);
    assert_eq!(lock.date, "Sat, 01 Jan 2028 00:00:00 UTC");
    assert!(
        !lock.render().contains(&setup.url),
        "the lock must not depend on the mirror"
    );

    let paths = fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
        .unwrap()
        .paths;
    let mut tree = micros_image::Tree::new();
    for package in &lock.packages {
        let deb = &paths[&package.name];
        let tar = micros_debian::deb::data_tar(&setup.cache(), &package.name, deb, &package.sha256)
            .unwrap();
        micros_debian::deb::unpack_tar(
            &package.name,
            &tar,
            &mut tree,
            micros_debian::deb::UnpackOptions { merged_usr: true },
        )
        .unwrap();
    }
    let busybox = tree
        .get(&micros_image::TreePath::parse("/usr/bin/busybox").unwrap())
        .expect("busybox unpacked under merged /usr");
    assert_eq!(busybox.mode, 0o755);
    let micros_image::Kind::File(content) = &busybox.kind else {
        panic!("not a file")
    };
    assert_eq!(content.read().unwrap(), b"\x7fELF busybox");
}

#[test]
fn alternatives_and_virtual_packages() {
    let setup = Setup::new();
    let lock = setup.resolve(&["needs-awk"]).unwrap();
    // original-awk does not exist; of the awk providers, the required one wins.
    assert_eq!(names(&lock), ["mawk=1.3.4", "needs-awk=1.0"]);
    assert_eq!(lock.package("needs-awk").unwrap().depends, ["mawk"]);
}

#[test]
fn unsatisfiable_dependencies_are_explained() {
    let setup = Setup::new();
    let error = setup.resolve(&["wants-new-lib"]).unwrap_err().to_string();
    assert!(error.contains("old-lib (>= 2.0)"), "{error}");
    assert!(
        error.contains("1.0"),
        "the available version is named: {error}"
    );
}

#[test]
fn a_tampered_inrelease_is_refused_and_nothing_is_cached() {
    let setup = Setup::new();
    let path = setup.archive.root().join("dists/testing/InRelease");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("Origin: MicrOS test", "Origin: MicrOS evil");
    std::fs::write(&path, text).unwrap();
    let error = setup.resolve(&["libc6"]).unwrap_err().to_string();
    assert!(error.contains("bad signature"), "{error}");
    assert!(
        !setup.cache_dir.path().join("indexes-v1").exists()
            || std::fs::read_dir(setup.cache_dir.path().join("indexes-v1"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn an_unknown_key_and_a_missing_signature_are_refused() {
    let setup = Setup::new();
    let mut source = setup.source();
    source.keyring = setup.archive.stranger_keyring();
    let wanted = Wanted {
        packages: ["libc6".to_string()].into(),
        ..Wanted::default()
    };
    let error = resolve(
        &wanted,
        &source,
        None,
        LockMode::Normal,
        &setup.fetcher(),
        &setup.cache(),
        &Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("not in the keyring"), "{error}");

    std::fs::write(
        setup.archive.root().join("dists/testing/InRelease"),
        "Suite: testing\n",
    )
    .unwrap();
    let error = setup.resolve(&["libc6"]).unwrap_err().to_string();
    assert!(
        error.contains("not a clear-signed OpenPGP message"),
        "{error}"
    );
}

#[test]
fn an_index_that_does_not_match_its_signed_hash_is_refused() {
    let setup = Setup::new();
    setup.archive.set_fault(
        "dists/testing/main/binary-amd64/Packages.xz",
        Some(Fault::Corrupt),
    );
    let error = setup.resolve(&["libc6"]).unwrap_err().to_string();
    assert!(
        error.contains("Packages.xz is not what the signed index promises"),
        "{error}"
    );
}

#[test]
fn a_deb_that_does_not_match_its_hash_is_refused_and_not_cached() {
    let setup = Setup::new();
    let lock = setup.resolve(&["libc6"]).unwrap();
    setup
        .archive
        .set_fault(&setup.archive.deb_path("libc6"), Some(Fault::Corrupt));
    let error = fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
        .unwrap_err()
        .to_string();
    // The lock, not the index it was solved from, is what a build checks
    // a package against.
    assert!(
        error.contains(&format!(
            "{} is not what the lock promises (SHA-256",
            setup.archive.deb_path("libc6")
        )),
        "{error}"
    );
    assert!(setup
        .cache()
        .get_verified(
            Bucket::Debs,
            &lock.packages[0].sha256,
            lock.packages[0].size
        )
        .is_none());
    let leftovers: Vec<_> = std::fs::read_dir(setup.cache_dir.path().join("debs-v1"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "no partial file is left behind: {leftovers:?}"
    );
}

#[test]
fn a_server_that_fails_then_recovers_is_retried() {
    let setup = Setup::new();
    let lock = setup.resolve(&["libc6"]).unwrap();
    let deb = setup.archive.deb_path("libc6");
    setup.archive.set_fault(&deb, Some(Fault::FailTimes(2)));
    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None).unwrap();
    let attempts = setup
        .archive
        .requests()
        .iter()
        .filter(|r| **r == deb)
        .count();
    assert_eq!(attempts, 3);
}

#[test]
fn an_interrupted_download_leaves_a_valid_cache_and_a_rerun_completes_it() {
    let setup = Setup::new();
    let lock = setup.resolve(&["perl-base"]).unwrap();
    let deb = setup.archive.deb_path("perl-base");
    setup.archive.set_fault(&deb, Some(Fault::Truncate(100)));
    let error = fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains(&deb), "{error}");
    setup.archive.set_fault(&deb, None);
    let paths = fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
        .unwrap()
        .paths;
    assert_eq!(
        micros_debian::cache::hash_file(&paths[&lock.packages[0].name]).unwrap(),
        lock.packages[0].sha256
    );
}

#[test]
fn a_cached_file_is_never_downloaded_twice_and_a_damaged_one_is_fetched_again() {
    let setup = Setup::new();
    let lock = setup.resolve(&["dropbear-bin"]).unwrap();
    let paths = fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
        .unwrap()
        .paths;
    let count = |name: &str| {
        setup
            .archive
            .requests()
            .iter()
            .filter(|r| **r == setup.archive.deb_path(name))
            .count()
    };
    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None).unwrap();
    assert_eq!(count("dropbear-bin"), 1);
    std::fs::write(&paths["libc6"], b"garbage").unwrap();
    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None).unwrap();
    assert_eq!(count("dropbear-bin"), 1, "dropbear-bin is intact");
    assert_eq!(count("libc6"), 2, "the damaged entry is fetched again");
}

#[test]
fn the_lock_is_stable() {
    let setup = Setup::new();
    let first = setup
        .resolve(&["runit", "busybox-static"])
        .unwrap()
        .render();
    let other_cache = Setup {
        archive: TestArchive::new("unused"),
        url: setup.url.clone(),
        cache_dir: tempfile::tempdir().unwrap(),
    };
    let fetcher = other_cache.fetcher();
    let wanted = Wanted {
        packages: ["busybox-static".to_string(), "runit".to_string()].into(),
        ..Wanted::default()
    };
    let second = resolve(
        &wanted,
        &setup.source(),
        None,
        LockMode::Normal,
        &fetcher,
        &other_cache.cache(),
        &Silent,
    )
    .unwrap()
    .lock
    .render();
    assert_eq!(first, second);
}

#[test]
fn locked_and_offline_modes() {
    let setup = Setup::new();
    let lock = setup.resolve(&["libc6"]).unwrap();
    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None).unwrap();

    // --locked: a request the lock lacks is an error, not a silent change.
    let error = setup
        .resolve_with(
            &["libc6", "busybox-static"],
            &[],
            Some(&lock),
            LockMode::Locked,
            &setup.fetcher(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("asks for `busybox-static`, which it lacks"),
        "{error}"
    );

    // Without --locked the lock is extended and keeps what it had.
    let extended = setup
        .resolve_with(
            &["libc6", "busybox-static"],
            &[],
            Some(&lock),
            LockMode::Normal,
            &setup.fetcher(),
        )
        .unwrap();
    assert_eq!(
        names(&extended),
        ["busybox-static=1:1.37.0-6", "libc6=2.41-12"]
    );

    // --offline with an up-to-date lock and a warm cache asks nothing of the network.
    let before = setup.archive.requests().len();
    let mut offline = setup.fetcher();
    offline.offline = true;
    let same = setup
        .resolve_with(&["libc6"], &[], Some(&lock), LockMode::Normal, &offline)
        .unwrap();
    assert_eq!(same, lock);
    fetch_packages(&same, &offline, &setup.cache(), &Silent, None).unwrap();
    assert_eq!(setup.archive.requests().len(), before);

    // --offline with a cold cache says what to do.
    let cold = Cache::open(tempfile::tempdir().unwrap().keep()).unwrap();
    let error = fetch_packages(&lock, &offline, &cold, &Silent, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("--offline"), "{error}");
}

#[test]
fn two_processes_can_share_the_cache() {
    let setup = Setup::new();
    let lock = setup
        .resolve(&["busybox-static", "runit", "dropbear-bin", "perl-base"])
        .unwrap();
    // Two fetchers at once into one empty cache directory, as two `micros`
    // processes would: both succeed and every entry is intact.
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap().unwrap();
        }
    });
    for package in &lock.packages {
        assert!(
            setup
                .cache()
                .get_verified(Bucket::Debs, &package.sha256, package.size)
                .is_some(),
            "{}",
            package.name
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(setup.cache_dir.path().join("debs-v1"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// An archive of `codename`, also published as `stable`, with the
/// point release 13.7.
fn release_archive(codename: &str) -> TestArchive {
    let mut archive = TestArchive::new(codename);
    archive.aliases = vec!["stable".to_owned()];
    archive.point_release = Some("13.7".to_owned());
    archive
        .add(TestPackage::new("libc6", "2.41-12"))
        .add(TestPackage::new("busybox-static", "1:1.37.0-6"))
        .add(TestPackage::new("runit", "2.2.0-3").field("Depends", "libc6"));
    archive.publish();
    archive
}

fn source(suite: &str, archive: &TestArchive) -> Source {
    Source {
        suite: suite.into(),
        components: vec!["main".into()],
        architecture: "amd64".into(),
        keyring: archive.keyring(),
    }
}

fn wanted(packages: &[&str]) -> Wanted {
    Wanted {
        packages: packages.iter().map(|s| s.to_string()).collect(),
        exclude: Default::default(),
    }
}

/// Resolves `packages` from `suite` of `archive` with `fetcher` into
/// `cache`, against `lock` in `mode`.
#[allow(clippy::too_many_arguments)]
fn resolve_with(
    archive: &TestArchive,
    fetcher: &Fetcher,
    cache: &Cache,
    suite: &str,
    packages: &[&str],
    lock: Option<&Lock>,
    mode: LockMode,
) -> Result<micros_debian::resolve::Resolved, ResolveError> {
    resolve(
        &wanted(packages),
        &source(suite, archive),
        lock,
        mode,
        fetcher,
        cache,
        &Silent,
    )
}

fn quick(url: &str) -> Fetcher {
    let mut fetcher = Fetcher::new(url);
    fetcher.backoff = Duration::from_millis(5);
    fetcher
}

#[test]
fn a_suite_caught_mid_update_is_read_through_a_consistent_alias() {
    let mut archive = release_archive("trixie");
    let url = archive.serve();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cache_dir.path().to_owned()).unwrap();
    // What a mirror mid-update serves: a Packages file the signed Release
    // does not describe.
    archive.set_fault(
        "dists/trixie/main/binary-amd64/Packages.xz",
        Some(Fault::Corrupt),
    );
    let resolved = resolve_with(
        &archive,
        &quick(&url),
        &cache,
        "trixie",
        &["runit"],
        None,
        LockMode::Normal,
    )
    .unwrap();
    assert_eq!(
        resolved.note.as_deref(),
        Some("dists/trixie is in the middle of an update on this mirror: read trixie 13.7 through dists/stable, which is consistent")
    );
    let lock = resolved.lock;
    assert_eq!(
        (lock.suite.as_str(), lock.release.as_str()),
        ("trixie", "13.7")
    );
    assert_eq!(lock.alias, None, "the configuration asked for trixie");
    assert!(archive
        .requests()
        .iter()
        .any(|r| r == "dists/stable/main/binary-amd64/Packages.xz"));

    // Without a consistent name for the same release, the hash mismatch
    // is the error, as apt reports it: nothing is accepted.
    archive.set_fault(
        "dists/stable/main/binary-amd64/Packages.xz",
        Some(Fault::Corrupt),
    );
    let cold = tempfile::tempdir().unwrap();
    let error = resolve_with(
        &archive,
        &quick(&url),
        &Cache::open(cold.path().to_owned()).unwrap(),
        "trixie",
        &["runit"],
        None,
        LockMode::Normal,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(
            "dists/trixie/main/binary-amd64/Packages.xz is not what the signed index promises"
        ),
        "{error}"
    );
}

#[test]
fn another_release_under_an_alias_is_never_used_for_a_suite_mid_update() {
    let mut archive = release_archive("trixie");
    // stable moves on to forky; dists/trixie stays as it was.
    archive.suite = "forky".to_owned();
    archive.codename = "forky".to_owned();
    archive.publish();
    let url = archive.serve();
    archive.set_fault(
        "dists/trixie/main/binary-amd64/Packages.xz",
        Some(Fault::Corrupt),
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let error = resolve_with(
        &archive,
        &quick(&url),
        &Cache::open(cache_dir.path().to_owned()).unwrap(),
        "trixie",
        &["runit"],
        None,
        LockMode::Normal,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("not what the signed index promises"),
        "{error}"
    );
    assert!(
        !archive
            .requests()
            .iter()
            .any(|r| r.starts_with("dists/stable/main/")),
        "forky's indexes were not even read"
    );
}

#[test]
fn a_lock_solved_through_stable_is_a_trixie_lock_and_stays_one() {
    let mut archive = release_archive("trixie");
    let url = archive.serve();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cache_dir.path().to_owned()).unwrap();
    let fetcher = quick(&url);
    let lock = resolve_with(
        &archive,
        &fetcher,
        &cache,
        "stable",
        &["runit"],
        None,
        LockMode::Normal,
    )
    .unwrap()
    .lock;
    assert_eq!(lock.suite, "trixie");
    assert_eq!(lock.release, "13.7");
    assert_eq!(lock.alias.as_deref(), Some("stable"));
    assert!(lock
        .render()
        .contains("suite = \"trixie\"\nrelease = \"13.7\"\nalias = \"stable\"\n"));

    // A configuration asking for trixie accepts it as it is.
    let same = resolve_with(
        &archive,
        &fetcher,
        &cache,
        "trixie",
        &["runit"],
        Some(&lock),
        LockMode::Locked,
    )
    .unwrap();
    assert!(!same.changed);
    // One asking for another release does not.
    let error = resolve_with(
        &archive,
        &fetcher,
        &cache,
        "forky",
        &["runit"],
        Some(&lock),
        LockMode::Locked,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("it is for trixie 13.7, the config asks for forky"),
        "{error}"
    );

    // stable moves on to forky, with a newer libc6.
    archive.suite = "forky".to_owned();
    archive.codename = "forky".to_owned();
    archive.point_release = Some("14.0".to_owned());
    archive.add(TestPackage::new("libc6", "2.42-1"));
    archive.publish();
    // Extending the lock reads trixie by its codename: still trixie.
    let extended = resolve_with(
        &archive,
        &fetcher,
        &cache,
        "stable",
        &["runit", "busybox-static"],
        Some(&lock),
        LockMode::Normal,
    )
    .unwrap();
    assert!(extended.changed);
    assert_eq!(extended.lock.suite, "trixie");
    assert_eq!(extended.lock.package("libc6").unwrap().version, "2.41-12");
    assert!(extended.lock.package("busybox-static").is_some());
    // `--update` moves on, and says so.
    let updated = resolve_with(
        &archive,
        &fetcher,
        &cache,
        "stable",
        &["runit"],
        Some(&extended.lock),
        LockMode::Update,
    )
    .unwrap();
    assert_eq!(updated.lock.suite, "forky");
    assert_eq!(updated.lock.package("libc6").unwrap().version, "2.42-1");
    assert_eq!(
        updated.note.as_deref(),
        Some("stable is now forky 14.0: the lock moves on from trixie 13.7")
    );
}

/// A locked archive whose `runit` .deb is then deleted from the mirror's
/// pool (as Debian's mirrors do after a point release).
fn gone_from_the_pool() -> (Setup, Lock, String) {
    let setup = Setup::new();
    let lock = setup.resolve(&["runit"]).unwrap();
    let pool = setup.archive.deb_path("runit");
    std::fs::remove_file(setup.archive.root().join(&pool)).unwrap();
    (setup, lock, pool)
}

fn put_in_snapshot(setup: &Setup, pool: &str, bytes: &[u8]) {
    // The lock's date is the test Release's: Sat, 01 Jan 2028 00:00:00 UTC.
    let path = setup
        .archive
        .root()
        .join("snapshot/20280101T000000Z")
        .join(pool);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_locked_package_gone_from_the_mirror_comes_from_the_snapshot_archive() {
    let setup = Setup::new();
    let lock = setup.resolve(&["runit"]).unwrap();
    let pool = setup.archive.deb_path("runit");
    let deb = std::fs::read(setup.archive.root().join(&pool)).unwrap();
    std::fs::remove_file(setup.archive.root().join(&pool)).unwrap();
    put_in_snapshot(&setup, &pool, &deb);
    let snapshot = format!("{}/snapshot/", setup.url);
    let files = fetch_packages(
        &lock,
        &setup.fetcher(),
        &setup.cache(),
        &Silent,
        Some(&snapshot),
    )
    .unwrap();
    assert_eq!(
        files.note.as_deref(),
        Some("the mirror no longer has runit 2.2.0-3: fetched from the snapshot archive at 20280101T000000Z")
    );
    assert_eq!(std::fs::read(&files.paths["runit"]).unwrap(), deb);
    assert!(setup
        .archive
        .requests()
        .contains(&format!("snapshot/20280101T000000Z/{pool}")));
}

#[test]
fn a_snapshot_copy_that_does_not_match_the_lock_is_refused() {
    let (setup, lock, pool) = gone_from_the_pool();
    put_in_snapshot(&setup, &pool, b"not the locked package");
    let snapshot = format!("{}/snapshot", setup.url);
    let error = fetch_packages(
        &lock,
        &setup.fetcher(),
        &setup.cache(),
        &Silent,
        Some(&snapshot),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(&format!(
            "snapshot/20280101T000000Z/{pool} is not what the lock promises"
        )),
        "{error}"
    );
    let runit = lock.package("runit").unwrap();
    assert!(setup
        .cache()
        .get_verified(Bucket::Debs, &runit.sha256, runit.size)
        .is_none());
}

#[test]
fn a_package_gone_everywhere_names_itself_both_urls_and_the_way_forward() {
    let (setup, lock, pool) = gone_from_the_pool();
    let snapshot = format!("{}/snapshot", setup.url);
    let error = fetch_packages(
        &lock,
        &setup.fetcher(),
        &setup.cache(),
        &Silent,
        Some(&snapshot),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("runit 2.2.0-3"), "{error}");
    assert!(
        error.contains(&format!("{}/{pool}: HTTP 404", setup.url)),
        "{error}"
    );
    assert!(
        error.contains(&format!("{snapshot}/20280101T000000Z/{pool}: HTTP 404")),
        "{error}"
    );
    assert!(error.contains("micros lock --update"), "{error}");

    // Without a snapshot archive, the error says how to configure one.
    let error = fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &Silent, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("runit 2.2.0-3"), "{error}");
    assert!(error.contains("packages.source.snapshot"), "{error}");
    assert!(error.contains("MICROS_SNAPSHOT"), "{error}");
}

/// Records what a progress display is told.
#[derive(Default)]
struct Counting {
    total: std::sync::atomic::AtomicU64,
    position: std::sync::atomic::AtomicI64,
    most: std::sync::atomic::AtomicI64,
}

impl micros_debian::fetch::Progress for Counting {
    fn start(&self, _files: usize, bytes: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        self.total.store(bytes, SeqCst);
        self.position.store(0, SeqCst);
    }
    fn advance(&self, bytes: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.position.fetch_add(bytes as i64, SeqCst) + bytes as i64;
        self.most.fetch_max(now, SeqCst);
    }
    fn rewind(&self, bytes: u64) {
        self.position
            .fetch_sub(bytes as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn failed_attempts_are_taken_back_from_the_progress_total() {
    let setup = Setup::new();
    let lock = setup.resolve(&["perl-base"]).unwrap();
    let perl = &lock.packages[0];
    setup
        .archive
        .set_fault(perl.filename.as_str(), Some(Fault::Truncate(100)));
    let progress = Counting::default();
    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &progress, None).unwrap_err();
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(progress.position.load(SeqCst), 0, "nothing was fetched");
    assert!(progress.most.load(SeqCst) as u64 <= progress.total.load(SeqCst));
    setup.archive.set_fault(perl.filename.as_str(), None);
    fetch_packages(&lock, &setup.fetcher(), &setup.cache(), &progress, None).unwrap();
    assert_eq!(progress.position.load(SeqCst) as u64, perl.size);
    assert_eq!(progress.total.load(SeqCst), perl.size);
}

#[test]
fn where_every_index_lists_the_all_packages_binary_all_is_not_read() {
    // Debian's archive: runit-helper (Architecture: all) is in
    // binary-amd64/Packages too, and the Release says so. A binary-all
    // index caught mid-update then does not matter.
    let mut archive = TestArchive::new("trixie");
    archive.all_in_architecture_indexes = true;
    archive
        .add(TestPackage::new("libc6", "2.41-12"))
        .add(TestPackage::new("runit-helper", "2.16.4").arch("all"))
        .add(TestPackage::new("runit", "2.2.0-3").field("Depends", "libc6, runit-helper"));
    archive.publish();
    let url = archive.serve();
    archive.set_fault(
        "dists/trixie/main/binary-all/Packages.xz",
        Some(Fault::Corrupt),
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let lock = resolve_with(
        &archive,
        &quick(&url),
        &Cache::open(cache_dir.path().to_owned()).unwrap(),
        "trixie",
        &["runit"],
        None,
        LockMode::Normal,
    )
    .unwrap()
    .lock;
    assert_eq!(
        lock.package("runit-helper")
            .map(|p| p.architecture.as_str()),
        Some("all")
    );
    assert!(!archive.requests().iter().any(|r| r.contains("binary-all")));
}

fn resolve_from(
    archive: &TestArchive,
    url: &str,
    suite: &str,
    lock: Option<&Lock>,
) -> Result<Lock, ResolveError> {
    let cache_dir = tempfile::tempdir().unwrap();
    resolve_with(
        archive,
        &quick(url),
        &Cache::open(cache_dir.path().to_owned()).unwrap(),
        suite,
        &["runit", "busybox-static"],
        lock,
        LockMode::Normal,
    )
    .map(|r| r.lock)
}

#[test]
fn a_replayed_expired_release_is_refused() {
    let mut archive = release_archive("sid");
    archive.valid_until = Some("Sat, 01 Jan 2000 00:00:00 UTC".to_owned());
    archive.publish();
    let url = archive.serve();
    let error = resolve_from(&archive, &url, "sid", None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the Release expired on 2000-01-01 00:00:00 UTC"),
        "{error}"
    );
    archive.valid_until = Some("Sat, 01 Jan 2500 00:00:00 UTC".to_owned());
    archive.publish();
    resolve_from(&archive, &url, "sid", None).unwrap();
}

#[test]
fn another_suites_release_under_the_asked_name_is_refused() {
    let mut archive = release_archive("trixie");
    let url = archive.serve();
    // The mirror answers for forky with trixie's (validly signed) Release.
    let root = archive.root().join("dists");
    std::fs::create_dir_all(root.join("forky")).unwrap();
    std::fs::copy(root.join("trixie/InRelease"), root.join("forky/InRelease")).unwrap();
    let error = resolve_from(&archive, &url, "forky", None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("dists/forky/InRelease is the Release of another suite (Suite: stable, Codename: trixie)"),
        "{error}"
    );
}

#[test]
fn a_release_older_than_the_lock_is_refused() {
    let mut archive = release_archive("trixie");
    let url = archive.serve();
    let lock = resolve_from(&archive, &url, "trixie", None).unwrap();
    archive.date = "Fri, 01 Jan 2027 00:00:00 UTC".to_owned();
    archive.publish();
    let cache_dir = tempfile::tempdir().unwrap();
    let error = resolve_with(
        &archive,
        &quick(&url),
        &Cache::open(cache_dir.path().to_owned()).unwrap(),
        "trixie",
        &["runit", "busybox-static", "libc6"],
        Some(&lock),
        LockMode::Normal,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("older than the lock"), "{error}");
}

#[test]
fn an_inrelease_without_end_is_not_read_whole() {
    let mut archive = release_archive("trixie");
    let url = archive.serve();
    let path = archive.root().join("dists/trixie/InRelease");
    let mut huge = std::fs::read(&path).unwrap();
    huge.resize(17 << 20, b'x');
    std::fs::write(&path, huge).unwrap();
    let error = resolve_from(&archive, &url, "trixie", None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("larger than the 16777216 bytes"), "{error}");
}
