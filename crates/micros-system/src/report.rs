//! Where the bytes of an image go: the root filesystem's file contents by
//! the package (or MicrOS module) that put them there, largest first.
use std::collections::BTreeMap;

use micros_image::{Kind, Tree};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Share {
    /// A package name, or what MicrOS generated (`MicrOS: users.users`).
    pub source: String,
    /// Bytes of file contents in the root (before compression).
    pub bytes: u64,
    pub files: u64,
}

/// Groups the tree's files by who put them there. `packages` are the
/// names of the packages unpacked into the tree; any other origin is
/// something MicrOS generated from the configuration.
pub fn by_source(tree: &Tree, packages: &[&str]) -> Vec<Share> {
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (_, entry) in tree.iter() {
        let Kind::File(content) = &entry.kind else {
            continue;
        };
        let origin: &str = &entry.origin;
        let source = if packages.contains(&origin) {
            origin.to_owned()
        } else if origin.starts_with("kernel module ") {
            "kernel modules (boot.kernelModules)".to_owned()
        } else {
            match origin.split(' ').next().unwrap_or(origin) {
                "micros" => "MicrOS: generated files".to_owned(),
                option => format!("MicrOS: {option}"),
            }
        };
        let total = totals.entry(source).or_default();
        total.0 += content.len();
        total.1 += 1;
    }
    let mut shares: Vec<Share> = totals
        .into_iter()
        .map(|(source, (bytes, files))| Share {
            source,
            bytes,
            files,
        })
        .collect();
    shares.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.source.cmp(&b.source)));
    shares
}

/// `12.3 MB`-style sizes (powers of 1000, as the build's summary prints).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The report as text: the `limit` largest sources with their share of
/// the total, then how many more there are.
pub fn table(shares: &[Share], limit: usize) -> String {
    let total: u64 = shares.iter().map(|s| s.bytes).sum();
    let mut text = format!(
        "root filesystem by package, before compression ({} in {} files):\n",
        human(total),
        shares.iter().map(|s| s.files).sum::<u64>()
    );
    for share in shares.iter().take(limit) {
        let percent = if total == 0 {
            0.0
        } else {
            share.bytes as f64 * 100.0 / total as f64
        };
        text.push_str(&format!(
            "  {:>9}  {percent:5.1} %  {}\n",
            human(share.bytes),
            share.source
        ));
    }
    if shares.len() > limit {
        let rest: u64 = shares[limit..].iter().map(|s| s.bytes).sum();
        text.push_str(&format!(
            "  {:>9}           … {} more\n",
            human(rest),
            shares.len() - limit
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use micros_image::{Content, Entry, TreePath};

    #[test]
    fn files_are_grouped_by_package_largest_first() {
        let mut tree = Tree::new();
        let mut add = |path: &str, size: usize, origin: &str| {
            tree.insert(
                TreePath::parse(path).unwrap(),
                Entry::file(Content::bytes(vec![0u8; size]), 0o644, origin),
            )
            .unwrap();
        };
        add("/usr/lib/libc.so.6", 2000, "libc6");
        add("/usr/lib/libm.so.6", 1000, "libc6");
        add("/usr/bin/busybox", 2500, "busybox-static");
        add("/etc/passwd", 100, "micros");
        add("/etc/motd", 10, "environment.etc");
        add("/usr/lib/modules/6.12/dummy.ko", 400, "kernel module dummy");
        tree.insert(
            TreePath::parse("/usr/bin/sh").unwrap(),
            Entry::symlink("busybox", "busybox (applet link)"),
        )
        .unwrap();
        let shares = by_source(&tree, &["libc6", "busybox-static"]);
        let order: Vec<(&str, u64, u64)> = shares
            .iter()
            .map(|s| (s.source.as_str(), s.bytes, s.files))
            .collect();
        assert_eq!(
            order,
            [
                ("libc6", 3000, 2),
                ("busybox-static", 2500, 1),
                ("kernel modules (boot.kernelModules)", 400, 1),
                ("MicrOS: generated files", 100, 1),
                ("MicrOS: environment.etc", 10, 1),
            ]
        );
        let text = table(&shares, 2);
        assert!(text
            .starts_with("root filesystem by package, before compression (6.0 kB in 6 files):\n"));
        assert!(text.contains("     3.0 kB   49.9 %  libc6\n"), "{text}");
        assert!(text.ends_with("… 3 more\n"), "{text}");
    }
}
