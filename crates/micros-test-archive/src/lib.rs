//! A Debian archive for tests: tiny `.deb` files, `Packages` indexes and an
//! `InRelease` signed with a key generated on the spot, written to a temp
//! directory and served over HTTP on 127.0.0.1. Faults can be injected per
//! path (fail a number of times, then recover; truncate; corrupt), so
//! tests exercise signatures, hashes, retries and interrupted downloads
//! without the network.
//!
//! ```text
//! <root>/
//! ├── dists/<suite>/InRelease
//! ├── dists/<suite>/main/binary-<arch>/Packages.xz
//! └── pool/main/<name>_<version>_<arch>.deb
//! ```
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pgp::composed::{
    CleartextSignedMessage, KeyType, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::ser::Serialize as _;
use pgp::types::Password;
use sha2::{Digest, Sha256};

/// A package to put in the archive.
#[derive(Debug, Clone)]
pub struct TestPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Extra control fields: `("Depends", "libc6 (>= 2)")`.
    pub fields: Vec<(String, String)>,
    /// Files: (path, contents, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Maintainer scripts in the control tar: (`postinst`, text).
    pub scripts: Vec<(String, String)>,
}

impl TestPackage {
    pub fn new(name: &str, version: &str) -> TestPackage {
        TestPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: "amd64".to_owned(),
            fields: Vec::new(),
            files: vec![(
                format!("./usr/share/{name}/marker"),
                format!("{name} {version}\n").into_bytes(),
                0o644,
            )],
            scripts: Vec::new(),
        }
    }

    pub fn field(mut self, name: &str, value: &str) -> TestPackage {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn file(mut self, path: &str, contents: &[u8], mode: u32) -> TestPackage {
        self.files.push((path.to_owned(), contents.to_vec(), mode));
        self
    }

    /// A maintainer script (`preinst`, `postinst`, …), stored as
    /// `./<name>` in the control tar.
    pub fn script(mut self, name: &str, text: &str) -> TestPackage {
        self.scripts.push((name.to_owned(), text.to_owned()));
        self
    }

    pub fn arch(mut self, architecture: &str) -> TestPackage {
        self.architecture = architecture.to_owned();
        self
    }

    fn filename(&self) -> String {
        format!(
            "pool/main/{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.architecture
        )
    }
}

/// How the server misbehaves for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 500 this many times, then serve normally.
    FailTimes(u32),
    /// Close the connection after this many body bytes, every time.
    Truncate(usize),
    /// Flip a byte of the body, every time.
    Corrupt,
}

pub struct TestArchive {
    dir: tempfile::TempDir,
    /// The name under `dists/` (and the Release's Suite).
    pub suite: String,
    /// The Release's Codename (the suite's name unless set).
    pub codename: String,
    /// Other names under `dists/` for the same Release (`stable` for
    /// `trixie`), published as separate copies so that faults can be set
    /// on one of them.
    pub aliases: Vec<String>,
    /// The Release's `Version:` (a point release such as `13.7`).
    pub point_release: Option<String>,
    /// Debian's layout: `all` packages are listed in every architecture's
    /// index too, and the Release says so
    /// (`No-Support-for-Architecture-all: Packages`).
    pub all_in_architecture_indexes: bool,
    /// The Release's `Date:`.
    pub date: String,
    /// The Release's `Valid-Until:`, if any.
    pub valid_until: Option<String>,
    secret: SignedSecretKey,
    packages: Vec<TestPackage>,
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    requests: Arc<Mutex<Vec<String>>>,
    url: Option<String>,
}

impl TestArchive {
    /// An archive for `suite` with a fresh signing key.
    pub fn new(suite: &str) -> TestArchive {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("MicrOS test archive <test@micros.invalid>".into());
        let secret = params
            .build()
            .expect("key parameters")
            .generate(rand::thread_rng())
            .expect("key generation");
        TestArchive {
            dir: tempfile::tempdir().expect("temp dir"),
            suite: suite.to_owned(),
            codename: suite.to_owned(),
            aliases: Vec::new(),
            point_release: None,
            all_in_architecture_indexes: false,
            date: "Sat, 01 Jan 2028 00:00:00 UTC".to_owned(),
            valid_until: None,
            secret,
            packages: Vec::new(),
            faults: Arc::default(),
            requests: Arc::default(),
            url: None,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn add(&mut self, package: TestPackage) -> &mut Self {
        self.packages.push(package);
        self
    }

    /// Writes the `.deb` files, indexes and signed `InRelease`. Call again
    /// after adding packages.
    pub fn publish(&self) {
        let root = self.root();
        let mut indexes: HashMap<String, String> = HashMap::new();
        for architecture in ["amd64", "armhf", "all"] {
            indexes.insert(architecture.to_owned(), String::new());
        }
        for package in &self.packages {
            let deb = build_deb(package);
            let filename = package.filename();
            write(&root.join(&filename), &deb);
            let mut stanza = format!(
                "Package: {}\nVersion: {}\nArchitecture: {}\n",
                package.name, package.version, package.architecture
            );
            for (name, value) in &package.fields {
                stanza.push_str(&format!("{name}: {value}\n"));
            }
            let installed: usize = package.files.iter().map(|f| f.1.len()).sum();
            stanza.push_str(&format!(
                "Installed-Size: {}\nFilename: {filename}\nSize: {}\nSHA256: {}\n\n",
                installed.div_ceil(1024),
                deb.len(),
                hex::encode(Sha256::digest(&deb))
            ));
            indexes
                .entry(package.architecture.clone())
                .or_default()
                .push_str(&stanza);
            if package.architecture == "all" && self.all_in_architecture_indexes {
                for architecture in ["amd64", "armhf"] {
                    indexes
                        .get_mut(architecture)
                        .expect("every architecture has an index")
                        .push_str(&stanza);
                }
            }
        }
        let mut release = format!(
            "Origin: MicrOS test\nSuite: {}\nCodename: {}\n{}{}Date: {}\n{}Architectures: amd64 armhf\nComponents: main\nSHA256:\n",
            self.aliases.first().unwrap_or(&self.suite),
            self.codename,
            self.point_release
                .as_ref()
                .map(|v| format!("Version: {v}\n"))
                .unwrap_or_default(),
            if self.all_in_architecture_indexes {
                "No-Support-for-Architecture-all: Packages\n"
            } else {
                ""
            },
            self.date,
            self.valid_until
                .as_ref()
                .map(|v| format!("Valid-Until: {v}\n"))
                .unwrap_or_default(),
        );
        let mut names: Vec<&String> = indexes.keys().collect();
        names.sort();
        let compressed: Vec<(String, Vec<u8>)> = names
            .into_iter()
            .map(|architecture| {
                (
                    format!("main/binary-{architecture}/Packages.xz"),
                    xz(indexes[architecture].as_bytes()),
                )
            })
            .collect();
        for (path, bytes) in &compressed {
            release.push_str(&format!(
                " {} {} {path}\n",
                hex::encode(Sha256::digest(bytes)),
                bytes.len()
            ));
        }
        let signed = CleartextSignedMessage::sign(
            rand::thread_rng(),
            &release,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .expect("signing");
        let armored = signed.to_armored_string(Default::default()).expect("armor");
        for name in std::iter::once(&self.suite).chain(&self.aliases) {
            let dists = root.join("dists").join(name);
            for (path, bytes) in &compressed {
                write(&dists.join(path), bytes);
            }
            write(&dists.join("InRelease"), armored.as_bytes());
        }
    }

    /// The public key as a keyring file.
    pub fn keyring(&self) -> PathBuf {
        let path = self.root().join("keyring.gpg");
        let public = SignedPublicKey::from(self.secret.clone());
        let mut bytes = Vec::new();
        public.to_writer(&mut bytes).expect("serialise key");
        write(&path, &bytes);
        path
    }

    /// Another key's keyring (for "unknown key" tests).
    pub fn stranger_keyring(&self) -> PathBuf {
        TestArchive::new("x").keyring_in(self.root(), "stranger.gpg")
    }

    fn keyring_in(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let public = SignedPublicKey::from(self.secret.clone());
        let mut bytes = Vec::new();
        public.to_writer(&mut bytes).expect("serialise key");
        write(&path, &bytes);
        path
    }

    pub fn set_fault(&self, path: &str, fault: Option<Fault>) {
        let mut faults = self.faults.lock().expect("faults");
        match fault {
            Some(fault) => faults.insert(path.trim_start_matches('/').to_owned(), fault),
            None => faults.remove(path.trim_start_matches('/')),
        };
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }

    /// The pool path of a package.
    pub fn deb_path(&self, name: &str) -> String {
        self.packages
            .iter()
            .find(|p| p.name == name)
            .map(TestPackage::filename)
            .expect("package in the archive")
    }

    /// Starts serving on 127.0.0.1 and returns the mirror URL. The server
    /// thread lives as long as the test process.
    pub fn serve(&mut self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let root = self.root().to_owned();
        let faults = self.faults.clone();
        let requests = self.requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                let faults = faults.clone();
                let requests = requests.clone();
                std::thread::spawn(move || serve_one(stream, &root, &faults, &requests));
            }
        });
        self.url = Some(url.clone());
        url
    }
}

fn serve_one(
    mut stream: std::net::TcpStream,
    root: &Path,
    faults: &Mutex<HashMap<String, Fault>>,
    requests: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_owned();
        // Skip the request headers.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        requests.lock().expect("requests").push(path.clone());
        let fault = {
            let mut faults = faults.lock().expect("faults");
            let fault = faults.get(&path).copied();
            if let Some(Fault::FailTimes(n)) = fault {
                if n <= 1 {
                    faults.remove(&path);
                } else {
                    faults.insert(path.clone(), Fault::FailTimes(n - 1));
                }
            }
            fault
        };
        let file = root.join(&path);
        let body = match (fault, std::fs::read(&file)) {
            (Some(Fault::FailTimes(_)), _) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            (_, Err(_)) => {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            (_, Ok(body)) => body,
        };
        let mut body = body;
        if fault == Some(Fault::Corrupt) && !body.is_empty() {
            let middle = body.len() / 2;
            body[middle] ^= 0xff;
        }
        let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        if stream.write_all(header.as_bytes()).is_err() {
            return;
        }
        if let Some(Fault::Truncate(n)) = fault {
            let _ = stream.write_all(&body[..n.min(body.len())]);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        if stream.write_all(&body).is_err() {
            return;
        }
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
    std::fs::write(path, bytes).expect("write fixture");
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new(bytes, 6)
        .read_to_end(&mut out)
        .expect("xz");
    out
}

/// A `.deb`: ar with debian-binary, a control.tar.xz holding the
/// package's maintainer scripts (if any) and a data.tar.xz holding its
/// files (and their directories).
pub fn build_deb(package: &TestPackage) -> Vec<u8> {
    let mut tar = Vec::new();
    let mut directories = std::collections::BTreeSet::new();
    for (path, _, _) in &package.files {
        let mut current = String::from(".");
        let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
        for part in &parts[..parts.len() - 1] {
            current = format!("{current}/{part}");
            directories.insert(format!("{current}/"));
        }
    }
    tar_entry(&mut tar, "./", b'5', 0o755, b"");
    for directory in &directories {
        tar_entry(&mut tar, directory, b'5', 0o755, b"");
    }
    for (path, contents, mode) in &package.files {
        tar_entry(&mut tar, path, b'0', *mode, contents);
    }
    tar.extend([0u8; 1024]);
    let mut control = Vec::new();
    tar_entry(&mut control, "./", b'5', 0o755, b"");
    for (name, text) in &package.scripts {
        tar_entry(
            &mut control,
            &format!("./{name}"),
            b'0',
            0o755,
            text.as_bytes(),
        );
    }
    control.extend([0u8; 1024]);
    let mut deb = b"!<arch>\n".to_vec();
    for (name, data) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.xz", xz(&control)),
        ("data.tar.xz", xz(&tar)),
    ] {
        deb.extend(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        deb.extend(&data);
        if data.len() % 2 == 1 {
            deb.push(b'\n');
        }
    }
    deb
}

fn tar_entry(out: &mut Vec<u8>, path: &str, kind: u8, mode: u32, data: &[u8]) {
    let mut header = [0u8; 512];
    header[..path.len()].copy_from_slice(path.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let width = field.len() - 1;
        field[..width].copy_from_slice(format!("{value:0width$o}").as_bytes());
    };
    octal(&mut header[100..108], mode as u64);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(
        &mut header[124..136],
        if kind == b'0' { data.len() as u64 } else { 0 },
    );
    octal(&mut header[136..148], 0);
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].fill(b' ');
    let sum: u64 = header.iter().map(|&b| b as u64).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend(header);
    if kind == b'0' {
        out.extend(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
}
