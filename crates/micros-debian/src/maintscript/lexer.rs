//! Shell words and operators, as POSIX sh reads them, for the few things
//! [`super::parse`] needs: quotes, backslashes, line continuations,
//! comments, here-documents, and where a word's value is only known when
//! the script runs (`$x`, `$(…)`, `` `…` ``).
//!
//! The input is hostile: nesting is bounded (no stack overflow), an open
//! quote may span at most [`MAX_SPAN`] bytes, and a line whose quote never
//! closes becomes a [`Token::Unreadable`] instead of swallowing the rest of
//! the script.

/// How far an open quote or substitution may run. Real multi-line strings
/// in maintainer scripts are a few lines; a larger one is taken for an
/// unbalanced quote. The bound also keeps re-reading after such a line
/// linear in the script's size.
const MAX_SPAN: usize = 64 << 10;

/// How deeply quotes and substitutions may nest (`"$(echo "$(…)")"`).
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    /// The value after quote removal. For a `dynamic` word it also holds
    /// the unexpanded source of each substitution, which is never a value
    /// anyone should use.
    pub text: String,
    /// Some part is only known at run time.
    pub dynamic: bool,
    /// Some part was quoted or escaped (so `"if"` is no keyword).
    pub quoted: bool,
}

impl Word {
    /// An unquoted word equal to `keyword`.
    pub fn is(&self, keyword: &str) -> bool {
        !self.quoted && !self.dynamic && self.text == keyword
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Redirect {
    /// `>`, `>>`, `>|`, `<>`: writes the target file.
    Output,
    /// `<`: reads it.
    Input,
    /// `>&`, `<&`: duplicates a descriptor.
    Duplicate,
    /// `<<`, `<<-`: the body follows the line.
    HereDocument,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Word(Word),
    /// `;`
    Semicolon,
    /// `;;`
    CaseEnd,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `|`
    Pipe,
    /// `&`
    Background,
    /// `(`
    Open,
    /// `)`
    Close,
    /// The operator; its target is the next word.
    Redirect(Redirect),
    Newline,
    /// A line that cannot be read (a quote that never closes).
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Spanned {
    pub token: Token,
    /// Byte range in the script.
    pub start: usize,
    pub end: usize,
}

/// A quote or substitution that does not close (within bounds).
struct Unbalanced;

pub(super) fn lex(script: &str) -> Vec<Spanned> {
    let mut lexer = Lexer {
        source: script.as_bytes(),
        position: 0,
        tokens: Vec::new(),
        here_documents: Vec::new(),
        expect_delimiter: None,
    };
    while lexer.position < lexer.source.len() {
        let start = lexer.position;
        if lexer.token().is_err() {
            // Give up on the physical line where the token began: drop what
            // was read of it and go on with the next line.
            let source = lexer.source;
            let line_start = source[..start]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let line_end = source[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(source.len(), |p| start + p);
            let keep = lexer.tokens.partition_point(|t| t.start < line_start);
            lexer.tokens.truncate(keep);
            lexer.push(Token::Unreadable, line_start, line_end);
            lexer.push(Token::Newline, line_end, line_end);
            lexer.position = (line_end + 1).min(source.len());
            lexer.here_documents.clear();
            lexer.expect_delimiter = None;
        }
    }
    lexer.tokens
}

struct Lexer<'a> {
    source: &'a [u8],
    position: usize,
    tokens: Vec<Spanned>,
    /// Delimiters of here-documents whose bodies start after this line,
    /// and whether leading tabs are stripped (`<<-`).
    here_documents: Vec<(String, bool)>,
    /// The last token was `<<` or `<<-`.
    expect_delimiter: Option<bool>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.source.get(self.position + ahead).copied()
    }

    fn push(&mut self, token: Token, start: usize, end: usize) {
        self.tokens.push(Spanned { token, start, end });
    }

    /// Reads one token (or blanks, a comment, a continuation).
    fn token(&mut self) -> Result<(), Unbalanced> {
        let start = self.position;
        let Some(byte) = self.peek(0) else {
            return Ok(());
        };
        let operator = |lexer: &mut Self, token: Token, length: usize| {
            lexer.position += length;
            lexer.push(token, start, start + length);
        };
        match (byte, self.peek(1), self.peek(2)) {
            (b' ' | b'\t' | b'\r', _, _) => self.position += 1,
            (b'\\', Some(b'\n'), _) => self.position += 2,
            (b'#', _, _) => {
                self.position = self.source[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.source.len(), |p| start + p);
            }
            (b'\n', _, _) => {
                operator(self, Token::Newline, 1);
                self.expect_delimiter = None;
                self.skip_here_documents();
            }
            (b';', Some(b';'), _) => operator(self, Token::CaseEnd, 2),
            (b';', _, _) => operator(self, Token::Semicolon, 1),
            (b'&', Some(b'&'), _) => operator(self, Token::And, 2),
            (b'&', _, _) => operator(self, Token::Background, 1),
            (b'|', Some(b'|'), _) => operator(self, Token::Or, 2),
            (b'|', _, _) => operator(self, Token::Pipe, 1),
            (b'(', _, _) => operator(self, Token::Open, 1),
            (b')', _, _) => operator(self, Token::Close, 1),
            (b'<', Some(b'<'), Some(b'-')) => {
                operator(self, Token::Redirect(Redirect::HereDocument), 3);
                self.expect_delimiter = Some(true);
            }
            (b'<', Some(b'<'), _) => {
                operator(self, Token::Redirect(Redirect::HereDocument), 2);
                self.expect_delimiter = Some(false);
            }
            (b'<' | b'>', Some(b'&'), _) => operator(self, Token::Redirect(Redirect::Duplicate), 2),
            (b'>', Some(b'>' | b'|'), _) | (b'<', Some(b'>'), _) => {
                operator(self, Token::Redirect(Redirect::Output), 2)
            }
            (b'>', _, _) => operator(self, Token::Redirect(Redirect::Output), 1),
            (b'<', _, _) => operator(self, Token::Redirect(Redirect::Input), 1),
            _ => self.word()?,
        }
        Ok(())
    }

    fn word(&mut self) -> Result<(), Unbalanced> {
        let start = self.position;
        let mut text = Vec::new();
        let mut dynamic = false;
        let mut quoted = false;
        while let Some(byte) = self.peek(0) {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' => {
                    break
                }
                b'\\' => {
                    match self.peek(1) {
                        Some(b'\n') => {}
                        Some(escaped) => {
                            text.push(escaped);
                            quoted = true;
                        }
                        None => {}
                    }
                    self.position = (self.position + 2).min(self.source.len());
                }
                b'\'' => {
                    text.extend_from_slice(self.single_quoted()?);
                    quoted = true;
                }
                b'"' => {
                    self.double_quoted(&mut text, &mut dynamic, 0)?;
                    quoted = true;
                }
                b'$' => {
                    self.dollar(&mut text, 0)?;
                    dynamic = true;
                }
                b'`' => {
                    self.backquoted(&mut text)?;
                    dynamic = true;
                }
                other => {
                    text.push(other);
                    self.position += 1;
                }
            }
        }
        // `2>&1`: digits right before a redirection name a descriptor.
        if !quoted
            && !dynamic
            && !text.is_empty()
            && text.iter().all(u8::is_ascii_digit)
            && matches!(self.peek(0), Some(b'<' | b'>'))
        {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        if let Some(strip_tabs) = self.expect_delimiter.take() {
            self.here_documents.push((text.clone(), strip_tabs));
        }
        self.push(
            Token::Word(Word {
                text,
                dynamic,
                quoted,
            }),
            start,
            self.position,
        );
        Ok(())
    }

    /// `'…'`: everything literal up to the next `'`.
    fn single_quoted(&mut self) -> Result<&[u8], Unbalanced> {
        let open = self.position + 1;
        let window = &self.source[open..self.source.len().min(open + MAX_SPAN)];
        let close = window.iter().position(|&b| b == b'\'').ok_or(Unbalanced)?;
        self.position = open + close + 1;
        Ok(&self.source[open..open + close])
    }

    /// `"…"`: literal but for `\`, `$` and `` ` ``.
    fn double_quoted(
        &mut self,
        text: &mut Vec<u8>,
        dynamic: &mut bool,
        depth: usize,
    ) -> Result<(), Unbalanced> {
        if depth > MAX_DEPTH {
            return Err(Unbalanced);
        }
        let open = self.position;
        self.position += 1;
        loop {
            if self.position - open > MAX_SPAN {
                return Err(Unbalanced);
            }
            match self.peek(0).ok_or(Unbalanced)? {
                b'"' => {
                    self.position += 1;
                    return Ok(());
                }
                b'\\' => match self.peek(1) {
                    Some(b'\n') => self.position += 2,
                    Some(escaped @ (b'$' | b'`' | b'"' | b'\\')) => {
                        text.push(escaped);
                        self.position += 2;
                    }
                    _ => {
                        text.push(b'\\');
                        self.position += 1;
                    }
                },
                b'$' => {
                    self.dollar(text, depth + 1)?;
                    *dynamic = true;
                }
                b'`' => {
                    self.backquoted(text)?;
                    *dynamic = true;
                }
                other => {
                    text.push(other);
                    self.position += 1;
                }
            }
        }
    }

    /// `$name`, `${…}`, `$(…)`, `$((…))`: kept as source text; the caller
    /// marks the word dynamic.
    fn dollar(&mut self, text: &mut Vec<u8>, depth: usize) -> Result<(), Unbalanced> {
        let start = self.position;
        self.position += 1;
        match self.peek(0) {
            Some(b'(') => self.balanced(b'(', b')', depth + 1)?,
            Some(b'{') => self.balanced(b'{', b'}', depth + 1)?,
            _ => {}
        }
        text.extend_from_slice(&self.source[start..self.position]);
        Ok(())
    }

    /// From an `open` byte to its matching `close`, past quotes and
    /// nested substitutions.
    fn balanced(&mut self, open: u8, close: u8, depth: usize) -> Result<(), Unbalanced> {
        if depth > MAX_DEPTH {
            return Err(Unbalanced);
        }
        let start = self.position;
        self.position += 1;
        let mut level = 1usize;
        let mut scratch = Vec::new();
        let mut dynamic = false;
        loop {
            if self.position - start > MAX_SPAN {
                return Err(Unbalanced);
            }
            let byte = self.peek(0).ok_or(Unbalanced)?;
            match byte {
                b'\\' => self.position = (self.position + 2).min(self.source.len()),
                b'\'' => {
                    self.single_quoted()?;
                }
                b'"' => self.double_quoted(&mut scratch, &mut dynamic, depth + 1)?,
                b'`' => self.backquoted(&mut scratch)?,
                b'$' if matches!(self.peek(1), Some(b'(' | b'{')) => {
                    self.dollar(&mut scratch, depth + 1)?
                }
                _ => {
                    if byte == open {
                        level += 1;
                    } else if byte == close {
                        level -= 1;
                    }
                    self.position += 1;
                    if level == 0 {
                        return Ok(());
                    }
                }
            }
            scratch.clear();
        }
    }

    /// `` `…` ``: up to the next unescaped backquote, kept as source text.
    fn backquoted(&mut self, text: &mut Vec<u8>) -> Result<(), Unbalanced> {
        let start = self.position;
        self.position += 1;
        loop {
            if self.position - start > MAX_SPAN {
                return Err(Unbalanced);
            }
            match self.peek(0).ok_or(Unbalanced)? {
                b'\\' => self.position = (self.position + 2).min(self.source.len()),
                b'`' => {
                    self.position += 1;
                    text.extend_from_slice(&self.source[start..self.position]);
                    return Ok(());
                }
                _ => self.position += 1,
            }
        }
    }

    /// After a newline: the bodies of the line's here-documents are data,
    /// not commands.
    fn skip_here_documents(&mut self) {
        for (delimiter, strip_tabs) in std::mem::take(&mut self.here_documents) {
            while self.position < self.source.len() {
                let rest = &self.source[self.position..];
                let length = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                let mut line = &rest[..length];
                if strip_tabs {
                    while let [b'\t', tail @ ..] = line {
                        line = tail;
                    }
                }
                self.position = (self.position + length + 1).min(self.source.len());
                if line == delimiter.as_bytes() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<String> {
        lex(script)
            .into_iter()
            .map(|t| match t.token {
                Token::Word(w) if w.dynamic => format!("dynamic:{}", w.text),
                Token::Word(w) => w.text,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn quotes_escapes_and_continuations() {
        assert_eq!(
            words("a 'b c' \"d\\\"e\" f\\ g \\\n h # comment\n"),
            ["a", "b c", "d\"e", "f g", "h", "Newline"]
        );
        assert_eq!(
            words("x=\"$(id -u \"a b\")\" `id`"),
            ["dynamic:x=$(id -u \"a b\")", "dynamic:`id`"]
        );
        assert_eq!(words("'$HOME'"), ["$HOME"]);
    }

    #[test]
    fn operators_and_descriptors() {
        assert_eq!(
            words("a >/dev/null 2>&1 || true;; b&&c|d;e"),
            [
                "a",
                "Redirect(Output)",
                "/dev/null",
                "Redirect(Duplicate)",
                "1",
                "Or",
                "true",
                "CaseEnd",
                "b",
                "And",
                "c",
                "Pipe",
                "d",
                "Semicolon",
                "e"
            ]
        );
    }

    #[test]
    fn here_document_bodies_are_not_commands() {
        assert_eq!(
            words("cat <<-'EOF' >/etc/x\n\tadduser --system evil\n\tEOF\nls\n"),
            [
                "cat",
                "Redirect(HereDocument)",
                "EOF",
                "Redirect(Output)",
                "/etc/x",
                "Newline",
                "ls",
                "Newline"
            ]
        );
    }

    #[test]
    fn an_unbalanced_quote_costs_one_line() {
        assert_eq!(
            words("a\nb 'oops\nc\n"),
            ["a", "Newline", "Unreadable", "Newline", "c", "Newline"]
        );
        // Deep nesting is refused, not recursed into.
        let deep = "\"$(".repeat(10_000);
        assert_eq!(words(&deep), ["Unreadable", "Newline"]);
    }
}
