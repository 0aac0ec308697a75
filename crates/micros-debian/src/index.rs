//! `Packages` indexes: every binary package of a suite, component and
//! architecture, with its relations and the hash of its `.deb`.
use std::io::BufRead;

use crate::deb822;
use crate::digest::{PoolPath, Sha256};
use crate::relation::{self, Alternatives, Dependency, RelationError};
use crate::version::{InvalidVersion, Version};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Version,
    /// `amd64`, `all`, …
    pub architecture: String,
    pub depends: Vec<Alternatives>,
    pub pre_depends: Vec<Alternatives>,
    pub conflicts: Vec<Alternatives>,
    pub breaks: Vec<Alternatives>,
    pub provides: Vec<Dependency>,
    pub essential: bool,
    /// `required`, `important`, `standard`, `optional`, …
    pub priority: Option<String>,
    /// Path of the `.deb` below the archive root: `pool/main/r/runit/…`.
    pub filename: PoolPath,
    pub size: u64,
    pub sha256: Sha256,
    /// In KiB, as the index says; 0 when absent.
    pub installed_size: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("{index}: {source}")]
    Syntax {
        index: String,
        #[source]
        source: deb822::ParseError,
    },
    #[error("{index}: cannot read it: {message}")]
    Read { index: String, message: String },
    #[error("{index}: package {package}: missing `{field}`")]
    Missing {
        index: String,
        package: String,
        field: &'static str,
    },
    #[error("{index}: package {package}: {source}")]
    Relation {
        index: String,
        package: String,
        #[source]
        source: RelationError,
    },
    #[error("{index}: package {package}: {source}")]
    Version {
        index: String,
        package: String,
        #[source]
        source: InvalidVersion,
    },
    #[error("{index}: package {package}: bad `{field}` value `{value}`")]
    Field {
        index: String,
        package: String,
        field: &'static str,
        value: String,
    },
}

/// Parses a whole (decompressed) `Packages` file. `index` names it in errors.
pub fn parse_packages(index: &str, text: &str) -> Result<Vec<Package>, IndexError> {
    read_packages(index, text.as_bytes())
}

/// Parses a `Packages` file as it is read, a paragraph at a time: a
/// suite's indexes are tens of megabytes, and only the packages parsed
/// from them are kept. `index` names it in errors.
pub fn read_packages(index: &str, mut reader: impl BufRead) -> Result<Vec<Package>, IndexError> {
    let mut packages = Vec::new();
    let mut paragraph = String::new();
    let mut first_line = 1;
    let mut line_number = 0;
    loop {
        let start = paragraph.len();
        let read = reader
            .read_line(&mut paragraph)
            .map_err(|e| IndexError::Read {
                index: index.to_owned(),
                message: e.to_string(),
            })?;
        line_number += 1;
        let blank = paragraph[start..].trim().is_empty();
        if read > 0 && !blank {
            continue;
        }
        // A blank line or the end: parse what came since the last one.
        let parsed = deb822::parse(&paragraph).map_err(|mut source| {
            source.line += first_line - 1;
            IndexError::Syntax {
                index: index.to_owned(),
                source,
            }
        })?;
        for fields in &parsed {
            packages.push(parse_package(index, fields)?);
        }
        if read == 0 {
            return Ok(packages);
        }
        paragraph.clear();
        first_line = line_number + 1;
    }
}

fn parse_package(index: &str, paragraph: &deb822::Paragraph<'_>) -> Result<Package, IndexError> {
    let name = paragraph.get("Package").unwrap_or("").to_owned();
    let missing = |field: &'static str| IndexError::Missing {
        index: index.to_owned(),
        package: name.clone(),
        field,
    };
    let required = |field: &'static str| paragraph.get(field).ok_or_else(|| missing(field));
    if name.is_empty() {
        return Err(missing("Package"));
    }
    let relations = |field: &'static str| -> Result<Vec<Alternatives>, IndexError> {
        relation::parse(paragraph.get(field).unwrap_or("")).map_err(|source| IndexError::Relation {
            index: index.to_owned(),
            package: name.clone(),
            source,
        })
    };
    let number = |field: &'static str, value: &str| -> Result<u64, IndexError> {
        value.trim().parse().map_err(|_| IndexError::Field {
            index: index.to_owned(),
            package: name.clone(),
            field,
            value: value.to_owned(),
        })
    };
    let version = Version::parse(required("Version")?).map_err(|source| IndexError::Version {
        index: index.to_owned(),
        package: name.clone(),
        source,
    })?;
    let sha256 = required("SHA256")?;
    let sha256 = Sha256::parse(sha256).map_err(|_| IndexError::Field {
        index: index.to_owned(),
        package: name.clone(),
        field: "SHA256",
        value: sha256.to_owned(),
    })?;
    let filename = required("Filename")?;
    let filename = PoolPath::parse(filename).map_err(|_| IndexError::Field {
        index: index.to_owned(),
        package: name.clone(),
        field: "Filename",
        value: filename.to_owned(),
    })?;
    Ok(Package {
        version,
        architecture: required("Architecture")?.to_owned(),
        depends: relations("Depends")?,
        pre_depends: relations("Pre-Depends")?,
        conflicts: relations("Conflicts")?,
        breaks: relations("Breaks")?,
        provides: relations("Provides")?.into_iter().flatten().collect(),
        essential: paragraph.get("Essential") == Some("yes"),
        priority: paragraph.get("Priority").map(str::to_owned),
        filename,
        size: number("Size", required("Size")?)?,
        sha256,
        installed_size: paragraph
            .get("Installed-Size")
            .map(|v| number("Installed-Size", v))
            .transpose()?
            .unwrap_or(0),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_package() {
        let text = "Package: runit\nVersion: 2.2.0-3\nArchitecture: amd64\nDepends: libc6 (>= 2.34), runit-helper (>= 2.14.0~), sysuser-helper\nBreaks: runit-init (<< 2.1.2-51~)\nProvides: runit-run (= 1)\nInstalled-Size: 348\nFilename: pool/main/r/runit/runit_2.2.0-3_amd64.deb\nSize: 132208\nSHA256: 1111111111111111111111111111111111111111111111111111111111111111\n";
        let packages = parse_packages("test", text).unwrap();
        let runit = &packages[0];
        assert_eq!(runit.name, "runit");
        assert_eq!(runit.depends.len(), 3);
        assert_eq!(runit.provides[0].name, "runit-run");
        assert_eq!(runit.installed_size, 348);
        assert_eq!(
            runit.breaks[0][0]
                .constraint
                .as_ref()
                .unwrap()
                .version
                .as_str(),
            "2.1.2-51~"
        );
    }

    #[test]
    fn bad_packages_name_the_index_and_package() {
        let text = "Package: x\nVersion: 1\nArchitecture: all\nFilename: ../../etc/passwd\nSize: 1\nSHA256: 1111111111111111111111111111111111111111111111111111111111111111\n";
        let error = parse_packages("main/binary-amd64/Packages", text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "main/binary-amd64/Packages: package x: bad `Filename` value `../../etc/passwd`"
        );
        let error = parse_packages("idx", "Package: y\nArchitecture: all\n").unwrap_err();
        assert_eq!(error.to_string(), "idx: package y: missing `Version`");
        // Line numbers count from the file's start, not the paragraph's.
        let text = format!("Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 1\nSHA256: {}\n\n\nPackage: b\nno colon\n", "1".repeat(64));
        let error = parse_packages("idx", &text).unwrap_err();
        assert_eq!(error.to_string(), "idx: line 10: expected `Field: value`");
    }

    #[test]
    fn read_a_paragraph_at_a_time_as_a_whole() {
        let one = |name: &str| {
            format!("Package: {name}\nVersion: 1\nArchitecture: all\nDescription: d\n more\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n", "1".repeat(64))
        };
        let text = format!("{}\n\n{}\n{}", one("a"), one("b"), one("c").trim_end());
        // A reader that hands out a few bytes at a time.
        let reader = std::io::BufReader::with_capacity(3, text.as_bytes());
        let packages = read_packages("idx", reader).unwrap();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(packages, parse_packages("idx", &text).unwrap());
        let bad = [b"Package: a\nVersion: \xff\n".as_slice()].concat();
        let error = read_packages("idx", bad.as_slice()).unwrap_err();
        assert!(
            error.to_string().starts_with("idx: cannot read it: "),
            "{error}"
        );
    }
}
