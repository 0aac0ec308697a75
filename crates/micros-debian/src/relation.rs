//! Relationship fields (`Depends`, `Pre-Depends`, `Conflicts`, `Breaks`,
//! `Provides`): comma-separated groups of `|`-separated alternatives, each a
//! package name with an optional architecture qualifier and version
//! constraint: `libc6 (>= 2.36), debconf | debconf-2.0, awk:any`.
use std::fmt;

use crate::version::{InvalidVersion, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

impl Operator {
    fn parse(text: &str) -> Option<Operator> {
        Some(match text {
            "<<" => Operator::Less,
            "<=" | "<" => Operator::LessOrEqual, // `<` is the obsolete spelling of `<=`
            "=" => Operator::Equal,
            ">=" | ">" => Operator::GreaterOrEqual,
            ">>" => Operator::Greater,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Less => "<<",
            Operator::LessOrEqual => "<=",
            Operator::Equal => "=",
            Operator::GreaterOrEqual => ">=",
            Operator::Greater => ">>",
        }
    }
}

/// A version constraint: `(>= 2.36)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Constraint {
    pub operator: Operator,
    pub version: Version,
}

impl Constraint {
    pub fn matches(&self, version: &Version) -> bool {
        let order = version.cmp(&self.version);
        match self.operator {
            Operator::Less => order.is_lt(),
            Operator::LessOrEqual => order.is_le(),
            Operator::Equal => order.is_eq(),
            Operator::GreaterOrEqual => order.is_ge(),
            Operator::Greater => order.is_gt(),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({} {})", self.operator.as_str(), self.version)
    }
}

/// One alternative: a package, maybe an architecture qualifier, maybe a
/// version constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub name: String,
    /// `any`, `native` or an architecture name, after `:`.
    pub arch: Option<String>,
    pub constraint: Option<Constraint>,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some(constraint) = &self.constraint {
            write!(f, " {constraint}")?;
        }
        Ok(())
    }
}

/// `a | b`: any one of them satisfies the group.
pub type Alternatives = Vec<Dependency>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationError {
    #[error("invalid relation `{0}`")]
    Syntax(String),
    #[error(transparent)]
    Version(#[from] InvalidVersion),
}

/// Parses a whole field. Architecture restrictions (`[amd64]`) and build
/// profiles (`<!nocheck>`) belong to source packages; they are skipped.
pub fn parse(field: &str) -> Result<Vec<Alternatives>, RelationError> {
    let mut groups = Vec::new();
    for group in field.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let mut alternatives = group
            .split('|')
            .map(parse_one)
            .collect::<Result<Vec<_>, _>>()?;
        // Most groups are one package; collect() reserved room for four.
        // A suite's indexes hold hundreds of thousands of these.
        alternatives.shrink_to_fit();
        groups.push(alternatives);
    }
    groups.shrink_to_fit();
    Ok(groups)
}

fn parse_one(text: &str) -> Result<Dependency, RelationError> {
    let syntax = || RelationError::Syntax(text.trim().to_owned());
    let mut rest = text.trim();
    // Drop `[arch ...]` and `<profile>` restrictions.
    if let Some(index) = rest
        .find(['[', '<'])
        .filter(|&i| !rest[..i].contains('(') || rest[..i].contains(')'))
    {
        rest = rest[..index].trim();
    }
    let (head, constraint) = match rest.split_once('(') {
        Some((head, tail)) => {
            let inner = tail
                .strip_suffix(')')
                .or_else(|| tail.split_once(')').map(|(inner, _)| inner))
                .ok_or_else(syntax)?
                .trim();
            let split = inner
                .find(|c: char| !"<>=".contains(c))
                .ok_or_else(syntax)?;
            let operator = Operator::parse(inner[..split].trim()).ok_or_else(syntax)?;
            let version = Version::parse(inner[split..].trim())?;
            (head.trim(), Some(Constraint { operator, version }))
        }
        None => (rest, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((name, arch)) => (name, Some(arch.to_owned())),
        None => (head, None),
    };
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !valid_name {
        return Err(syntax());
    }
    Ok(Dependency {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_alternatives_constraints_and_qualifiers() {
        let groups = parse(
            "libc6 (>= 2.36), debconf (>= 0.5) | debconf-2.0, awk:any, libfoo [amd64] <!nocheck>",
        )
        .unwrap();
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0][0].name, "libc6");
        let constraint = groups[0][0].constraint.as_ref().unwrap();
        assert_eq!(constraint.operator, Operator::GreaterOrEqual);
        assert_eq!(constraint.version.as_str(), "2.36");
        assert_eq!(groups[1].len(), 2);
        assert_eq!(groups[1][1].name, "debconf-2.0");
        assert_eq!(groups[2][0].arch.as_deref(), Some("any"));
        assert_eq!(groups[3][0].name, "libfoo");
        assert_eq!(groups[0][0].to_string(), "libc6 (>= 2.36)");
    }

    #[test]
    fn constraints_match() {
        let c = |op: &str, v: &str| {
            parse(&format!("x ({op} {v})")).unwrap()[0][0]
                .constraint
                .clone()
                .unwrap()
        };
        let v = |v: &str| Version::parse(v).unwrap();
        assert!(c(">=", "2.36").matches(&v("2.36-9")));
        assert!(!c("<<", "2.36").matches(&v("2.36")));
        assert!(c("<<", "2.36").matches(&v("2.35")));
        assert!(c("=", "1.0-1").matches(&v("1.0-1")));
        assert!(c(">>", "1.0").matches(&v("1.0-1")));
    }

    #[test]
    fn bad_relations() {
        for bad in ["Foo", "a (>= )", "a (~ 1)", "a (>= 1", "(>= 1)"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
