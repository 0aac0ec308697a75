//! The deb822 format: paragraphs of `Field: value` lines separated by blank
//! lines, with continuation lines starting with a space or tab. Used by
//! `Packages` indexes, `Release`/`InRelease` files, `.deb` control files and
//! apt's `*.sources` files.
//!
//! The parser borrows from its input and never fails on odd lines: a line
//! that is neither a field nor a continuation is reported as an error with
//! its line number, since every file we read is machine-written.

/// One paragraph: fields in order of appearance. Field names compare
/// case-insensitively, as Debian policy says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, String)>,
}

impl<'a> Paragraph<'a> {
    /// The value of `name` with continuation lines joined by `\n`, leading
    /// whitespace of each continuation removed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &str)> + '_ {
        self.fields
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: &'static str,
}

/// Parses every paragraph in `text`. Comment lines (`#`) are skipped.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, ParseError> {
    let mut paragraphs = Vec::new();
    let mut current = Paragraph::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some((_, value)) = current.fields.last_mut() else {
                return Err(ParseError {
                    line: number,
                    message: "continuation line before any field",
                });
            };
            let rest = line.trim_start();
            // A lone "." stands for an empty line in multi-line values.
            let rest = if rest == "." { "" } else { rest };
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(rest);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError {
                line: number,
                message: "expected `Field: value`",
            });
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(ParseError {
                line: number,
                message: "invalid field name",
            });
        }
        current.fields.push((name, value.trim().to_owned()));
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    Ok(paragraphs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n long line\n .\n more\n\n\n# comment\nPackage: b\nversion: 1\n";
        let paragraphs = parse(text).unwrap();
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("package"), Some("a"));
        assert_eq!(
            paragraphs[0].get("Description"),
            Some("short\nlong line\n\nmore")
        );
        assert_eq!(paragraphs[1].get("Version"), Some("1"));
        assert_eq!(paragraphs[1].get("Missing"), None);
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        assert_eq!(
            parse(" orphan\n").unwrap_err(),
            ParseError {
                line: 1,
                message: "continuation line before any field"
            }
        );
        assert_eq!(parse("A: 1\nno colon here\n").unwrap_err().line, 2);
    }
}
