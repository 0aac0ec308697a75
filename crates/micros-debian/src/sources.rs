//! Where the archive is: the mirror URL, from (in order) the config, the
//! `MICROS_MIRROR` environment variable, or the host's apt sources. No
//! mirror host is ever built in.
use std::path::Path;

use crate::deb822;

/// Which setting gave the mirror, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorOrigin {
    Config,
    Environment,
    AptSources(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The archive root, without a trailing slash: `<scheme>://<host>/debian`.
    pub url: String,
    pub origin: MirrorOrigin,
}

/// One `deb` source line or stanza of apt's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
}

/// Parses apt's deb822 `*.sources` format; keeps `Types: deb` stanzas that
/// are not disabled.
pub fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let Ok(paragraphs) = deb822::parse(text) else {
        return Vec::new();
    };
    let mut sources = Vec::new();
    for paragraph in paragraphs {
        let types = paragraph.get("Types").unwrap_or("");
        if !types.split_whitespace().any(|t| t == "deb")
            || paragraph
                .get("Enabled")
                .is_some_and(|e| e.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let words = |field: &str| -> Vec<String> {
            paragraph
                .get(field)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        for uri in words("URIs") {
            sources.push(AptSource {
                uri,
                suites: words("Suites"),
                components: words("Components"),
            });
        }
    }
    sources
}

/// Parses the one-line `sources.list` format:
/// `deb [options] uri suite [component...]`.
pub fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = match line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        {
            Some(rest) => rest.trim_start(),
            None => continue,
        };
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => continue,
            }
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(AptSource {
            uri: uri.to_owned(),
            suites: vec![suite.to_owned()],
            components: words.map(str::to_owned).collect(),
        });
    }
    sources
}

/// The Debian archive among apt sources: the first source serving a Debian
/// suite from a `/debian` root (not `debian-security`, not third parties).
pub fn debian_archive(sources: &[AptSource]) -> Option<&AptSource> {
    sources.iter().find(|source| {
        let path = source.uri.trim_end_matches('/');
        path.ends_with("/debian") && source.components.iter().any(|c| c == "main")
    })
}

/// Reads the host's apt sources: `/etc/apt/sources.list` and every
/// `*.list` and `*.sources` file in `/etc/apt/sources.list.d`, under `root`.
pub fn host_sources(root: &Path) -> Vec<(String, AptSource)> {
    let mut found = Vec::new();
    let list = root.join("etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(&list) {
        found.extend(
            parse_one_line_sources(&text)
                .into_iter()
                .map(|s| (list.display().to_string(), s)),
        );
    }
    let dir = root.join("etc/apt/sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let sources = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => parse_deb822_sources(&text),
            Some("list") => parse_one_line_sources(&text),
            _ => continue,
        };
        found.extend(sources.into_iter().map(|s| (file.display().to_string(), s)));
    }
    found
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no Debian mirror is configured\nhint: set `packages.source.mirror` in the config, or the MICROS_MIRROR environment variable, to the URL of a Debian archive (the directory holding `dists/` and `pool/`); MicrOS also reads the host's apt sources ({searched})"
)]
pub struct NoMirror {
    pub searched: String,
}

/// Picks the mirror: `configured`, else `environment` (the value of
/// `MICROS_MIRROR`), else the host's apt sources under `root`.
pub fn find_mirror(
    configured: Option<&str>,
    environment: Option<&str>,
    root: &Path,
) -> Result<Mirror, NoMirror> {
    let clean = |url: &str| url.trim().trim_end_matches('/').to_owned();
    if let Some(url) = configured.filter(|u| !u.trim().is_empty()) {
        return Ok(Mirror {
            url: clean(url),
            origin: MirrorOrigin::Config,
        });
    }
    if let Some(url) = environment.filter(|u| !u.trim().is_empty()) {
        return Ok(Mirror {
            url: clean(url),
            origin: MirrorOrigin::Environment,
        });
    }
    let sources = host_sources(root);
    let plain: Vec<AptSource> = sources.iter().map(|(_, s)| s.clone()).collect();
    if let Some(source) = debian_archive(&plain) {
        let file = sources
            .iter()
            .find(|(_, s)| s == source)
            .map(|(f, _)| f.clone())
            .unwrap_or_default();
        return Ok(Mirror {
            url: clean(&source.uri),
            origin: MirrorOrigin::AptSources(file),
        });
    }
    Err(NoMirror {
        searched: root
            .join("etc/apt/sources.list{,.d/*.sources,.d/*.list}")
            .display()
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_sources() {
        let text = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb-src\nURIs: http://src.example/debian\nSuites: x\nComponents: main\n";
        let sources = parse_deb822_sources(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(
            debian_archive(&sources).unwrap().uri,
            "http://mirror.example/debian"
        );
    }

    #[test]
    fn one_line_sources() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ trixie main contrib\ndeb-src http://x/debian trixie main\ndeb http://other.example/ubuntu noble main\n";
        let sources = parse_one_line_sources(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].suites, ["trixie"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            debian_archive(&sources).unwrap().uri,
            "http://mirror.example/debian/"
        );
    }

    #[test]
    fn precedence_config_then_environment_then_host() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/apt/sources.list.d")).unwrap();
        let none = find_mirror(None, None, root.path()).unwrap_err();
        assert!(none.to_string().contains("MICROS_MIRROR"));
        std::fs::write(
            root.path().join("etc/apt/sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://host.example/debian\nSuites: trixie\nComponents: main\n",
        )
        .unwrap();
        let host = find_mirror(None, None, root.path()).unwrap();
        assert_eq!(host.url, "http://host.example/debian");
        assert!(
            matches!(host.origin, MirrorOrigin::AptSources(ref f) if f.ends_with("debian.sources"))
        );
        assert_eq!(
            find_mirror(None, Some("http://env.example/debian/"), root.path())
                .unwrap()
                .url,
            "http://env.example/debian"
        );
        assert_eq!(
            find_mirror(
                Some("http://cfg.example/debian"),
                Some("http://env.example/debian"),
                root.path()
            )
            .unwrap()
            .origin,
            MirrorOrigin::Config
        );
    }
}
