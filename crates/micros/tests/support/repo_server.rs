//! A static web server for update repositories in tests: serves a
//! directory on 127.0.0.1 (which QEMU's user network shows the guest as
//! 10.0.2.2) with Range requests, logs each request, and can stop in the
//! middle of a bundle and start again a few seconds later.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Shared {
    /// `GET PATH [from N]`, one per request.
    log: Vec<String>,
    /// Stop the server after this many bytes of the next bundle's body.
    cut_after: Option<u64>,
    stopping: bool,
}

pub struct RepoServer {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

/// How long the server stays down after a cut.
pub const DOWN_FOR: Duration = Duration::from_secs(3);

impl RepoServer {
    /// Serves `root` on a free port.
    pub fn start(root: PathBuf) -> RepoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            loop {
                let Some(current) = &listener else {
                    std::thread::sleep(DOWN_FOR);
                    listener = Some(TcpListener::bind(("127.0.0.1", port)).unwrap());
                    continue;
                };
                let Ok((stream, _)) = current.accept() else {
                    continue;
                };
                if state.lock().unwrap().stopping {
                    return;
                }
                if serve(stream, &root, &state) == Served::Cut {
                    // Stopped mid-transfer: nothing listens until restarted.
                    listener = None;
                }
            }
        });
        RepoServer { port, shared }
    }

    /// Stops the server, once, after `bytes` of the next bundle it sends.
    pub fn cut_next_bundle_after(&self, bytes: u64) {
        self.shared.lock().unwrap().cut_after = Some(bytes);
    }

    pub fn log(&self) -> Vec<String> {
        self.shared.lock().unwrap().log.clone()
    }
}

impl Drop for RepoServer {
    fn drop(&mut self) {
        self.shared.lock().unwrap().stopping = true;
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[derive(PartialEq)]
enum Served {
    Whole,
    Cut,
}

fn serve(stream: TcpStream, root: &std::path::Path, state: &Mutex<Shared>) -> Served {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return Served::Whole;
    }
    let mut from = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                from = value
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|v| v.strip_suffix('-'))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
    state
        .lock()
        .unwrap()
        .log
        .push(format!("GET {path} from {from}"));
    let mut stream = stream;
    let file = root.join(path.trim_start_matches('/'));
    let Ok(bytes) = std::fs::read(&file) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return Served::Whole;
    };
    let total = bytes.len() as u64;
    if from >= total && from > 0 {
        let _ = write!(
            stream,
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return Served::Whole;
    }
    let head = if from > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{total}\r\nConnection: close\r\n\r\n",
            total - from,
            total - 1
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n")
    };
    if stream.write_all(head.as_bytes()).is_err() {
        return Served::Whole;
    }
    let cut = if path.ends_with(".bundle") {
        state.lock().unwrap().cut_after.take()
    } else {
        None
    };
    let body = &bytes[from as usize..];
    let end = cut.map_or(body.len(), |c| (c as usize).min(body.len()));
    for chunk in body[..end].chunks(64 * 1024) {
        if stream.write_all(chunk).is_err() {
            return Served::Whole;
        }
    }
    if cut.is_some() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return Served::Cut;
    }
    Served::Whole
}
