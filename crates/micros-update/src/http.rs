//! The pure parts of the device's HTTP client (`micros-update check`):
//! URLs, requests, response heads, and the DNS messages and files that
//! turn a host name into an address. The socket work is in main.rs.
//!
//! Plain HTTP is enough: an index is signed and a bundle is verified block
//! by block against its signed manifest, so a network that changes a byte
//! only makes the device refuse. (It does not hide what a device fetches.)
use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// An `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, &'static str> {
        if text.starts_with("https://") {
            return Err("https is not supported: serve the repository over http (indexes and bundles are signed, so a changed byte is refused)");
        }
        let rest = text
            .strip_prefix("http://")
            .ok_or("a repository URL starts with http://")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or("the URL's port is not a number from 1 to 65535")?,
            ),
            None => (authority, 80),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Err("the URL's host is a name or an IPv4 address");
        }
        let path_ok = path.bytes().all(|b| b.is_ascii_graphic()) && !path.contains(['?', '#']);
        if !path_ok {
            return Err("the URL's path may not hold spaces, control characters, `?` or `#`");
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// `name` in the directory this URL names (`http://h/fleet` and
    /// `http://h/fleet/` both hold `http://h/fleet/index`).
    pub fn join(&self, name: &str) -> Url {
        let mut path = self.path.clone();
        if !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(name);
        Url {
            path,
            ..self.clone()
        }
    }

    /// The `Host` header's value.
    pub fn authority(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            alloc::format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// A GET of `url` from byte `from` on (a `Range` request when not 0).
pub fn request(url: &Url, from: u64) -> String {
    let mut text = alloc::format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: micros-update\r\nAccept-Encoding: identity\r\nConnection: close\r\n",
        url.path,
        url.authority()
    );
    if from > 0 {
        text.push_str(&alloc::format!("Range: bytes={from}-\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// A response's status and the headers the client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub length: Option<u64>,
    /// `Content-Range: bytes FIRST-LAST/TOTAL`: FIRST and TOTAL.
    pub range: Option<(u64, Option<u64>)>,
    pub location: Option<String>,
    /// A transfer coding other than identity (chunked): not supported.
    pub coded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    Malformed(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => f.write_str("the server's response head is larger than 16 KiB"),
            HeadError::Malformed(what) => write!(f, "the server's response is not HTTP: {what}"),
        }
    }
}

pub const MAX_HEAD: usize = 16 * 1024;

/// Parses a response head from the bytes read so far: `None` while the
/// blank line that ends it has not come; else the head and where its body
/// starts.
pub fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if bytes.len() > MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = core::str::from_utf8(&bytes[..end]).map_err(|_| HeadError::Malformed("not text"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let version = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed("no HTTP/1.x status line"));
    }
    let status = words
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or(HeadError::Malformed("no status code"))?;
    let mut head = Head {
        status,
        length: None,
        range: None,
        location: None,
        coded: false,
    };
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(HeadError::Malformed("a header line without `:`"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.length = Some(
                value
                    .parse()
                    .map_err(|_| HeadError::Malformed("Content-Length is not a number"))?,
            );
        } else if name.eq_ignore_ascii_case("content-range") {
            head.range = Some(parse_content_range(value).ok_or(HeadError::Malformed(
                "Content-Range is not `bytes FIRST-LAST/TOTAL`",
            ))?);
        } else if name.eq_ignore_ascii_case("location") {
            head.location = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.coded = !value.eq_ignore_ascii_case("identity");
        }
    }
    Ok(Some((head, end + 4)))
}

fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let first: u64 = first.parse().ok()?;
    let last: u64 = last.parse().ok()?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    (first <= last && total.is_none_or(|t| last < t)).then_some((first, total))
}

/// An IPv4 address in dotted decimal.
pub fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *byte = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `name`'s address in `/etc/hosts`' text.
pub fn hosts_lookup(hosts: &str, name: &str) -> Option<[u8; 4]> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let address = parse_ipv4(words.next()?)?;
        words
            .any(|w| w.eq_ignore_ascii_case(name))
            .then_some(address)
    })
}

/// The IPv4 name servers of `/etc/resolv.conf`'s text.
pub fn nameservers(resolv: &str) -> Vec<[u8; 4]> {
    resolv
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            parse_ipv4(words.next()?)
        })
        .collect()
}

/// A DNS query for `name`'s IPv4 addresses (type A), with recursion.
pub fn dns_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut message = Vec::with_capacity(18 + name.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&[0, 1, 0, 1]);
    Some(message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// Not an answer to our query (another ID, too short): ignore it.
    NotOurs,
    /// The name does not exist, or has no IPv4 address.
    NoAddress,
    /// The server failed (SERVFAIL, REFUSED, …).
    Failed(u8),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NotOurs => f.write_str("an answer to another query"),
            DnsError::NoAddress => f.write_str("the name has no IPv4 address"),
            DnsError::Failed(code) => write!(f, "the name server failed (rcode {code})"),
        }
    }
}

/// The first IPv4 address in the answer to query `id`.
pub fn dns_answer(message: &[u8], id: u16) -> Result<[u8; 4], DnsError> {
    let u16_at = |at: usize| -> Result<u16, DnsError> {
        Ok(u16::from_be_bytes([
            *message.get(at).ok_or(DnsError::NotOurs)?,
            *message.get(at + 1).ok_or(DnsError::NotOurs)?,
        ]))
    };
    if message.len() < 12 || u16_at(0)? != id || message[2] & 0x80 == 0 {
        return Err(DnsError::NotOurs);
    }
    match message[3] & 0x0f {
        0 => {}
        3 => return Err(DnsError::NoAddress),
        code => return Err(DnsError::Failed(code)),
    }
    let questions = u16_at(4)?;
    let answers = u16_at(6)?;
    let skip_name = |mut at: usize| -> Result<usize, DnsError> {
        loop {
            let length = *message.get(at).ok_or(DnsError::NotOurs)?;
            match length {
                0 => return Ok(at + 1),
                l if l & 0xc0 == 0xc0 => return Ok(at + 2),
                l => at += 1 + usize::from(l),
            }
        }
    };
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(at)? + 4;
    }
    for _ in 0..answers {
        at = skip_name(at)?;
        let kind = u16_at(at)?;
        let class = u16_at(at + 2)?;
        let length = usize::from(u16_at(at + 8)?);
        let data = at + 10;
        if kind == 1 && class == 1 && length == 4 {
            let bytes = message.get(data..data + 4).ok_or(DnsError::NotOurs)?;
            return Ok([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        at = data + length;
    }
    Err(DnsError::NoAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_strictly_and_join_names() {
        let url = Url::parse("http://10.0.2.2:8080/fleet").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("10.0.2.2", 8080, "/fleet")
        );
        assert_eq!(
            url.join("index").to_string(),
            "http://10.0.2.2:8080/fleet/index"
        );
        let root = Url::parse("http://updates.example").unwrap();
        assert_eq!((root.port, root.path.as_str()), (80, "/"));
        assert_eq!(
            root.join("index").to_string(),
            "http://updates.example/index"
        );
        assert_eq!(Url::parse("http://h/a/").unwrap().join("x").path, "/a/x");
        for (bad, why) in [
            ("https://h/", "https"),
            ("ftp://h/", "http://"),
            ("http://:80/", "host"),
            ("http://h:0/", "port"),
            ("http://h:99999/", "port"),
            ("http://user@h/", "host"),
            ("http://h/a b", "path"),
            ("http://h/a?b", "path"),
        ] {
            assert!(Url::parse(bad).unwrap_err().contains(why), "{bad}");
        }
    }

    #[test]
    fn requests_ask_for_the_rest_after_a_cut() {
        let url = Url::parse("http://h:81/r/index").unwrap();
        let first = request(&url, 0);
        assert!(first.starts_with("GET /r/index HTTP/1.1\r\nHost: h:81\r\n"));
        assert!(!first.contains("Range"));
        assert!(first.ends_with("\r\n\r\n"));
        assert!(request(&url, 5000).contains("\r\nRange: bytes=5000-\r\n"));
    }

    #[test]
    fn heads_parse_when_whole() {
        let response = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\ncontent-range: bytes 90-99/100\r\n\r\nbody";
        assert_eq!(parse_head(&response[..20]), Ok(None));
        let (head, body) = parse_head(response).unwrap().unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(head.length, Some(10));
        assert_eq!(head.range, Some((90, Some(100))));
        assert!(!head.coded);
        assert_eq!(&response[body..], b"body");
        let (moved, _) = parse_head(
            b"HTTP/1.0 302 Found\r\nLocation: http://other/x\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(moved.location.as_deref(), Some("http://other/x"));
        assert!(moved.coded);
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 206 OK\r\nContent-Range: bytes 9-3/100\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{:?}", core::str::from_utf8(bad));
        }
        assert_eq!(parse_head(&[b'a'; MAX_HEAD + 1]), Err(HeadError::TooLarge));
    }

    #[test]
    fn names_resolve_from_hosts_and_dns_answers() {
        assert_eq!(parse_ipv4("10.0.2.2"), Some([10, 0, 2, 2]));
        for bad in [
            "10.0.2",
            "10.0.2.256",
            "1.2.3.4.5",
            "a.b.c.d",
            "01234.1.1.1",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
        let hosts =
            "# comment\n127.0.0.1 localhost\n10.0.2.2 updates Updates.lan # the host\n::1 ip6\n";
        assert_eq!(hosts_lookup(hosts, "updates.lan"), Some([10, 0, 2, 2]));
        assert_eq!(hosts_lookup(hosts, "ip6"), None);
        assert_eq!(hosts_lookup(hosts, "nowhere"), None);
        assert_eq!(
            nameservers("search lan\nnameserver 10.0.2.3\nnameserver fe80::1\n"),
            vec![[10, 0, 2, 3]]
        );

        let query = dns_query(0x1234, "updates.example").unwrap();
        assert_eq!(&query[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert!(dns_query(1, "a..b").is_none());
        // The answer: the question, then a CNAME and an A record whose
        // names point back at the question.
        let mut answer = query.clone();
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 2;
        answer.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
        assert_eq!(dns_answer(&answer, 0x1234), Ok([192, 0, 2, 7]));
        assert_eq!(dns_answer(&answer, 0x1235), Err(DnsError::NotOurs));
        assert_eq!(
            dns_answer(&query, 0x1234),
            Err(DnsError::NotOurs),
            "a query is no answer"
        );
        let mut missing = query.clone();
        missing[2] = 0x81;
        missing[3] = 0x83;
        assert_eq!(dns_answer(&missing, 0x1234), Err(DnsError::NoAddress));
        for cut in 0..answer.len() {
            assert!(dns_answer(&answer[..cut], 0x1234).is_err());
        }
    }
}
