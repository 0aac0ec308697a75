//! What a maintainer script (`preinst`, `postinst`) means, read as text and
//! never run.
//!
//! MicrOS unpacks `.deb` files without running their scripts, but a daemon
//! usually needs what its `postinst` would have done: a system user and
//! group, an alternative's symlink, a file's owner. Those come in a few
//! well-worn forms (`adduser --system`, `update-alternatives --install`,
//! `dpkg-statoverride --add`), which [`parse`] turns into [`Action`]s.
//! Everything else that does something is listed in [`Parsed::skipped`],
//! one line each, so that a person sees what the package expected; what
//! means nothing on a MicrOS image (service helpers, debconf, tests,
//! `echo`) is dropped silently.
//!
//! A word whose value is only known at run time (`$x`, `$(…)`, `` `…` ``)
//! is never guessed at: its command is skipped. The text is hostile input:
//! at most [`MAX_SCRIPT`] bytes are read, and nothing in it can make the
//! parser panic, recurse without bound or take more than linear time.

mod commands;
mod lexer;
#[cfg(test)]
mod tests;

use lexer::{Redirect, Spanned, Token, Word};

/// How much of a script is read; the rest is reported as skipped. Real
/// maintainer scripts are a few kilobytes.
pub const MAX_SCRIPT: usize = 1 << 20;

/// How many skipped lines are listed before the rest are only counted.
const MAX_SKIPPED: usize = 1000;

/// How many characters of a skipped line are shown.
const MAX_SHOWN: usize = 200;

/// Something a script does that an image can do declaratively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `adduser --system`, `useradd -r|--system`, sysusers.d `u`.
    AddUser {
        name: String,
        /// The primary group: `adduser --ingroup G`, `useradd -g|--gid G`.
        group: Option<String>,
        /// A group of the user's own name is the primary group:
        /// `adduser --group`, `useradd -U|--user-group`.
        own_group: bool,
        /// `adduser --home`, `useradd -d|--home-dir`.
        home: Option<String>,
        /// `adduser --shell`, `useradd -s|--shell`.
        shell: Option<String>,
        /// `adduser --uid`, `useradd -u|--uid`.
        uid: Option<u32>,
        /// The home directory is made, owned by the user (adduser does
        /// unless `--no-create-home`; useradd with `-m`).
        create_home: bool,
    },
    /// `addgroup --system`, `groupadd -r|--system`, sysusers.d `g`.
    AddGroup { name: String, gid: Option<u32> },
    /// An existing user joins a group: `adduser USER GROUP`,
    /// `usermod -a -G GROUP USER`, sysusers.d `m USER GROUP`.
    AddToGroup { user: String, group: String },
    /// `update-alternatives --install LINK NAME PATH PRIORITY
    /// [--slave LINK NAME PATH]...`
    Alternative {
        link: String,
        name: String,
        path: String,
        priority: i64,
        slaves: Vec<Slave>,
    },
    /// `dpkg-statoverride [--quiet] [--update] --add USER GROUP MODE PATH`.
    StatOverride {
        user: String,
        group: String,
        /// Permission bits (at most `0o7777`).
        mode: u32,
        path: String,
    },
    /// `ln -s TARGET LINK`: a link the package's files lack.
    Symlink { target: String, link: String },
    /// `ucf NEW DEST`, `cp SOURCE DEST`: a file the package ships
    /// elsewhere, put in place when there is none.
    CopyFile { source: String, dest: String },
    /// `chown [-R] USER[:GROUP] PATH`: the owner of a path the package
    /// ships (and, `recursive`, of everything under it).
    Chown {
        path: String,
        user: Option<String>,
        group: Option<String>,
        /// `USER:`: the group is the user's login group.
        login_group: bool,
        recursive: bool,
    },
    /// `mkdir [-p] [-m OCTAL] PATH`: a directory the package's files lack.
    Directory { path: String, mode: Option<u32> },
    /// `chmod [-R] OCTAL PATH`.
    Chmod {
        path: String,
        /// Permission bits (at most `0o7777`).
        mode: u32,
        recursive: bool,
    },
}

/// A link that follows its alternative's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slave {
    pub link: String,
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub actions: Vec<Action>,
    /// Lines that do something MicrOS did not understand, trimmed and with
    /// continuation lines joined, in script order; notes in parentheses
    /// when the script was cut or the list was.
    pub skipped: Vec<String>,
}

/// A user or group name MicrOS accepts: `[A-Za-z_][A-Za-z0-9_.-]{0,31}`.
/// Stricter than Debian's adduser, so that no name can be mistaken for a
/// number, an option or a path in `/etc/passwd` or on a command line.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.len() <= 32
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// An absolute path with no `..` component, NUL or newline.
pub fn is_valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 4096
        && !path.contains(['\0', '\n'])
        && !path.split('/').any(|component| component == "..")
}

/// `text` if it is a valid name.
pub(crate) fn name(text: &str) -> Option<String> {
    is_valid_name(text).then(|| text.to_owned())
}

/// `text` if it is a valid path.
pub(crate) fn path(text: &str) -> Option<String> {
    is_valid_path(text).then(|| text.to_owned())
}

/// A decimal uid or gid.
pub(crate) fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads a maintainer script.
pub fn parse(script: &str) -> Parsed {
    let (script, note) = cap(script);
    let tokens = loops_unrolled(functions_inlined(constants_substituted(lexer::lex(script))));
    let functions = functions(&tokens);
    let mut parser = Parser {
        tokens: &tokens,
        index: 0,
        case_depth: 0,
        expect_pattern: false,
    };
    let mut report = Report::new(script);
    let mut actions = Vec::new();
    while let Some(statement) = parser.next_statement() {
        match classify(&statement, &functions) {
            Outcome::Ignore => {}
            Outcome::Actions(found) => actions.extend(found),
            Outcome::Unknown => report.line(statement.start, statement.end),
        }
    }
    Parsed {
        actions,
        skipped: report.finish(note),
    }
}

/// The tokens with `$NAME` and `${NAME}` replaced where the script gives
/// `NAME` one constant value and nothing else (`USER="redis"` … `adduser
/// --group ${USER}`): such a word is as known as if it were written out.
/// A variable assigned twice with different values, or from anything
/// dynamic, stays unknown.
///
/// One dynamic value is known too: a temporary file (`new="$(mktemp)"`)
/// that one `cp SOURCE "$new"` fills stands for SOURCE, so that
/// openssh-server's `ucf … "$new_config" /etc/ssh/sshd_config` reads as
/// putting `/usr/share/openssh/sshd_config` in place. What the script does
/// to the copy in between (`sed -i … "$new_config"`) reads as done to
/// SOURCE, which MicrOS never does: those lines are listed as skipped.
fn constants_substituted(mut tokens: Vec<Spanned>) -> Vec<Spanned> {
    use std::collections::BTreeMap;
    let mut constants: BTreeMap<String, Option<String>> = BTreeMap::new();
    // The one value a variable is given that names other variables
    // (`GROUP="$USER"`), None when it is given several.
    let mut derived: BTreeMap<String, Option<Word>> = BTreeMap::new();
    // Temporary files, and what each `cp` into them copies.
    let mut temporary: BTreeMap<String, Vec<String>> = BTreeMap::new();
    {
        let mut parser = Parser {
            tokens: &tokens,
            index: 0,
            case_depth: 0,
            expect_pattern: false,
        };
        while let Some(statement) = parser.next_statement() {
            if let Some((source, variable)) = copy_into_variable(&statement.words) {
                temporary.entry(variable).or_default().push(source);
            }
            for word in &statement.words {
                if let Some((name, value)) = word.text.split_once('=') {
                    if is_assignment(word) && is_mktemp(value) {
                        temporary.entry(name.to_owned()).or_default();
                    }
                }
            }
            let words = match statement.words.first().map(|w| w.text.as_str()) {
                Some("export" | "readonly" | "local") => &statement.words[1..],
                _ => &statement.words[..],
            };
            if words.is_empty() || !words.iter().all(|w| is_assignment(w)) {
                continue;
            }
            for word in words {
                let Some((name, value)) = word.text.split_once('=') else {
                    continue;
                };
                if word.dynamic {
                    let value = Word {
                        text: value.to_owned(),
                        ..(*word).clone()
                    };
                    let statically = constants.get(name).is_some_and(Option::is_some);
                    derived
                        .entry(name.to_owned())
                        .and_modify(|known| {
                            if known.as_ref() != Some(&value) {
                                *known = None;
                            }
                        })
                        .or_insert((!statically).then_some(value));
                }
                if !word.dynamic {
                    derived.insert(name.to_owned(), None);
                }
                let value = (!word.dynamic).then(|| value.to_owned());
                constants
                    .entry(name.to_owned())
                    .and_modify(|known| {
                        if *known != value {
                            *known = None;
                        }
                    })
                    .or_insert(value);
            }
        }
    }
    // A value made only of known variables is known too; a few rounds
    // resolve chains (`A=x; B=$A; C=$B`).
    for _ in 0..4 {
        let known: BTreeMap<String, String> = constants
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
            .collect();
        for (name, value) in &derived {
            let Some(value) = value else { continue };
            // Given exactly this value and nothing static besides.
            if constants.get(name) != Some(&None) {
                continue;
            }
            let mut word = value.clone();
            expand(&mut word, |other| {
                (other != name)
                    .then(|| known.get(other))
                    .flatten()
                    .map(String::as_str)
            });
            if !word.dynamic {
                constants.insert(name.clone(), Some(word.text));
            }
        }
    }
    for (name, sources) in temporary {
        let assigned_once =
            constants.get(&name).is_some_and(|value| value.is_none()) && sources.len() == 1;
        if let Some(value) = constants.get_mut(&name) {
            // Assigned a mktemp and nothing else (an earlier value would be
            // Some), and filled by one copy.
            if assigned_once {
                *value = sources.into_iter().next();
            }
        }
    }
    for spanned in &mut tokens {
        let Token::Word(word) = &mut spanned.token else {
            continue;
        };
        expand(word, |name| constants.get(name)?.as_deref());
    }
    tokens
}

/// `$(mktemp)`, `$(mktemp -t x.XXXXXX)`, `` `mktemp` ``: a new file's name.
fn is_mktemp(value: &str) -> bool {
    let value = value.trim();
    (value.starts_with("$(mktemp") && value.ends_with(')') && value.matches('$').count() == 1)
        || (value.starts_with("`mktemp") && value.ends_with('`') && value.matches('`').count() == 2)
}

/// `cp [-aZp…] SOURCE "$NAME"` with a source written out: (SOURCE, NAME).
fn copy_into_variable(words: &[&Word]) -> Option<(String, String)> {
    let (command, arguments) = words.split_first()?;
    if !command.is("cp") {
        return None;
    }
    let operands: Vec<&&Word> = arguments
        .iter()
        .filter(|word| word.dynamic || !word.text.starts_with('-'))
        .collect();
    let [source, target] = operands.as_slice() else {
        return None;
    };
    if source.dynamic || !is_valid_path(&source.text) || !target.dynamic {
        return None;
    }
    let name = target
        .text
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .or_else(|| target.text.strip_prefix('$'))?;
    let valid = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| (source.text.clone(), name.to_owned()))
}

/// `word` with `$name` and `${name}` replaced by `value`; no longer
/// dynamic when nothing else in it is.
fn substitute(word: &mut Word, name: &str, value: &str) {
    expand(word, |asked| (asked == name).then_some(value));
}

/// `word` with each `$NAME`, `${NAME}` and `$1`…`$9` that `value_of`
/// knows replaced by its value, in one pass over the text; no longer
/// dynamic when nothing unknown is left. `$NAME` is the longest name
/// there (`$USERx` is `USERx`, as in sh).
fn expand<'v>(word: &mut Word, value_of: impl Fn(&str) -> Option<&'v str>) {
    if !word.dynamic {
        return;
    }
    let text = word.text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, next) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(close) => (&inner[..close], &inner[close + 1..]),
                None => ("", after),
            }
        } else if after.starts_with(|c: char| c.is_ascii_digit()) {
            (&after[..1], &after[1..])
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let length = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..length], &after[length..])
        } else {
            ("", after)
        };
        match (!name.is_empty()).then(|| value_of(name)).flatten() {
            Some(value) => {
                out.push_str(value);
                rest = next;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if !out.contains(['$', '`']) {
        word.dynamic = false;
    }
    word.text = out;
}

/// A function of the script called with arguments written out (redis's
/// `Setup_dir /var/log/redis 2750 adm`) is read at each call as its body,
/// with `$1`…`$9` the call's arguments and a variable the body sets from
/// them (`DIR="${1}"`) their value. A function every call of which is
/// read this way is not read where it is defined. Functions called with
/// run-time arguments, or from other functions, are read where they stand.
fn functions_inlined(tokens: Vec<Spanned>) -> Vec<Spanned> {
    use std::collections::BTreeMap;
    let definitions = definitions(&tokens);
    if definitions.is_empty() {
        return tokens;
    }
    // Which tokens are in a function's definition, and where each starts.
    let mut inside = vec![false; tokens.len()];
    let mut starts: BTreeMap<usize, &str> = BTreeMap::new();
    for (name, definition) in &definitions {
        inside[definition.start..definition.end].fill(true);
        starts.insert(definition.start, name);
    }
    // Calls, each with its words.
    let mut calls: BTreeMap<usize, (&str, Vec<String>, usize)> = BTreeMap::new();
    let mut inlinable: BTreeMap<&str, bool> = definitions.keys().map(|n| (*n, true)).collect();
    for (index, spanned) in tokens.iter().enumerate() {
        let Token::Word(word) = &spanned.token else {
            continue;
        };
        let Some((&name, _)) = definitions
            .get_key_value(word.text.as_str())
            .filter(|_| word.is(&word.text))
        else {
            continue;
        };
        if !starts_command(&tokens, index)
            || matches!(tokens.get(index + 1).map(|t| &t.token), Some(Token::Open))
        {
            continue;
        }
        let mut end = index + 1;
        let mut arguments = Vec::new();
        let mut known = !inside[index];
        while let Some(Token::Word(argument)) = tokens.get(end).map(|t| &t.token) {
            known &= !argument.dynamic;
            arguments.push(argument.text.clone());
            end += 1;
        }
        // Redirections or a pipe: not a plain call.
        known &= matches!(
            tokens.get(end).map(|t| &t.token),
            None | Some(Token::Newline | Token::Semicolon | Token::And | Token::Or)
        );
        if known && arguments.len() <= 9 {
            calls.insert(index, (name, arguments, end));
        } else {
            inlinable.insert(name, false);
        }
    }
    // A function nobody calls is read where it stands.
    let called_names: std::collections::BTreeSet<&str> =
        calls.values().map(|(name, _, _)| *name).collect();
    for (name, inline) in inlinable.iter_mut() {
        *inline &= called_names.contains(name);
    }
    let mut budget = MAX_UNROLLED;
    let mut out = Vec::with_capacity(tokens.len());
    let mut index = 0;
    while index < tokens.len() {
        // The definition of a function read at its calls instead.
        if let Some(name) = starts.get(&index).filter(|name| inlinable[**name]) {
            index = definitions[name].end;
            continue;
        }
        if let Some((name, arguments, end)) = calls.get(&index) {
            let definition = &definitions[name];
            let body = &tokens[definition.body.clone()];
            if inlinable[name] && body.len() <= budget {
                budget -= body.len();
                out.extend(called(body, arguments));
                out.push(Spanned {
                    token: Token::Semicolon,
                    start: tokens[end - 1].start,
                    end: tokens[end - 1].end,
                });
                index = *end;
                continue;
            }
        }
        out.push(tokens[index].clone());
        index += 1;
    }
    out
}

/// A function definition: `name() {` … `}`, as token indices.
struct Definition {
    start: usize,
    /// After the closing brace.
    end: usize,
    body: std::ops::Range<usize>,
}

/// The script's functions whose body is a `{ … }` group, by name (the
/// first definition of a name; one defined twice is not inlined).
fn definitions(tokens: &[Spanned]) -> std::collections::BTreeMap<&str, Definition> {
    use std::collections::BTreeMap;
    let mut found: BTreeMap<&str, Option<Definition>> = BTreeMap::new();
    let mut index = 0;
    while index + 2 < tokens.len() {
        let (Token::Word(name), Token::Open, Token::Close) = (
            &tokens[index].token,
            &tokens[index + 1].token,
            &tokens[index + 2].token,
        ) else {
            index += 1;
            continue;
        };
        if name.dynamic || name.quoted || !starts_command(tokens, index) {
            index += 1;
            continue;
        }
        let mut open = index + 3;
        while matches!(tokens.get(open).map(|t| &t.token), Some(Token::Newline)) {
            open += 1;
        }
        let is_word = |at: usize, keyword: &str| matches!(tokens.get(at).map(|t| &t.token), Some(Token::Word(w)) if w.is(keyword));
        if !is_word(open, "{") {
            index += 1;
            continue;
        }
        let mut depth = 1usize;
        let mut close = open + 1;
        while close < tokens.len() {
            if is_word(close, "{") {
                depth += 1;
            } else if is_word(close, "}") {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            close += 1;
        }
        if close >= tokens.len() {
            break;
        }
        let definition = Definition {
            start: index,
            end: close + 1,
            body: open + 1..close,
        };
        found
            .entry(name.text.as_str())
            .and_modify(|twice| *twice = None)
            .or_insert(Some(definition));
        index = close + 1;
    }
    found
        .into_iter()
        .filter_map(|(name, definition)| Some((name, definition?)))
        .collect()
}

/// Whether `tokens[at]` is where a command starts.
fn starts_command(tokens: &[Spanned], at: usize) -> bool {
    at == 0
        || match &tokens[at - 1].token {
            Token::Newline | Token::Semicolon | Token::And | Token::Or => true,
            Token::Word(word) => ["then", "else", "do", "{"].iter().any(|k| word.is(k)),
            _ => false,
        }
}

/// A function's body as one call with `arguments` reads it.
fn called(body: &[Spanned], arguments: &[String]) -> Vec<Spanned> {
    let mut copy: Vec<Spanned> = body.to_vec();
    for spanned in &mut copy {
        if let Token::Word(word) = &mut spanned.token {
            expand(word, |name| {
                let position: usize = name.parse().ok().filter(|p| (1..=9).contains(p))?;
                Some(arguments.get(position - 1).map_or("", String::as_str))
            });
        }
    }
    // Variables the body sets once, from values now known.
    let mut assigned: std::collections::BTreeMap<String, Option<String>> = Default::default();
    for spanned in &copy {
        if let Token::Word(word) = &spanned.token {
            if is_assignment(word) {
                let (name, value) = word.text.split_once('=').expect("an assignment");
                let value = (!word.dynamic).then(|| value.to_owned());
                assigned
                    .entry(name.to_owned())
                    .and_modify(|known| *known = None)
                    .or_insert(value);
            }
        }
    }
    for spanned in &mut copy {
        if let Token::Word(word) = &mut spanned.token {
            expand(word, |name| assigned.get(name)?.as_deref());
        }
    }
    copy
}

/// How many tokens unrolled loops may add to a script in all: real
/// scripts loop over a handful of paths, and a hostile one cannot make the
/// parser's work grow past this.
const MAX_UNROLLED: usize = 100_000;

/// How deeply nested loops are unrolled; deeper ones are read once, their
/// variable unknown.
const MAX_LOOP_DEPTH: usize = 4;

/// `for NAME in WORD…; do BODY; done` over words known when the script is
/// written becomes BODY once per word, with `$NAME` replaced (redis's
/// `for DIR in /var/lib/redis /var/log/redis; do chown redis:redis $DIR;
/// done`). Any other loop is left as it is.
fn loops_unrolled(tokens: Vec<Spanned>) -> Vec<Spanned> {
    let mut budget = MAX_UNROLLED;
    unroll(&tokens, &mut budget, 0)
}

fn unroll(tokens: &[Spanned], budget: &mut usize, depth: usize) -> Vec<Spanned> {
    let done = matching_done(tokens);
    let mut out = Vec::with_capacity(tokens.len());
    let mut index = 0;
    while index < tokens.len() {
        if depth < MAX_LOOP_DEPTH {
            if let Some(found) = for_loop(tokens, &done, index) {
                let cost = found.values.len().saturating_mul(found.body.len());
                if cost <= *budget {
                    *budget -= cost;
                    let separator = Spanned {
                        token: Token::Semicolon,
                        start: tokens[found.next - 1].start,
                        end: tokens[found.next - 1].end,
                    };
                    for value in &found.values {
                        // The outer variable first: `$f$g` is `a$g`, not `$f1`.
                        let copy: Vec<Spanned> = found
                            .body
                            .iter()
                            .map(|spanned| {
                                let mut spanned = spanned.clone();
                                if let Token::Word(word) = &mut spanned.token {
                                    substitute(word, found.variable, value);
                                }
                                spanned
                            })
                            .collect();
                        out.extend(unroll(&copy, budget, depth + 1));
                        out.push(separator.clone());
                    }
                    index = found.next;
                    continue;
                }
            }
        }
        out.push(tokens[index].clone());
        index += 1;
    }
    out
}

struct ForLoop<'t> {
    variable: &'t str,
    values: Vec<String>,
    body: &'t [Spanned],
    /// The token after `done`.
    next: usize,
}

/// For each `do`, the index of the `done` that closes it, found in one
/// pass (so reading loops stays linear however they nest or fail to close).
fn matching_done(tokens: &[Spanned]) -> Vec<Option<usize>> {
    let mut done = vec![None; tokens.len()];
    let mut open = Vec::new();
    for (index, spanned) in tokens.iter().enumerate() {
        if let Token::Word(word) = &spanned.token {
            if word.is("do") {
                open.push(index);
            } else if word.is("done") {
                if let Some(start) = open.pop() {
                    done[start] = Some(index);
                }
            }
        }
    }
    done
}

/// The loop starting at `tokens[at]`, if it is one whose words are known.
fn for_loop<'t>(tokens: &'t [Spanned], done: &[Option<usize>], at: usize) -> Option<ForLoop<'t>> {
    let word = |index: usize| match tokens.get(index).map(|t| &t.token) {
        Some(Token::Word(word)) => Some(word),
        _ => None,
    };
    // `for` where a command starts.
    word(at).filter(|w| w.is("for"))?;
    if !starts_command(tokens, at) {
        return None;
    }
    let variable = word(at + 1).filter(|w| !w.dynamic && !w.quoted)?;
    let valid_name = variable
        .text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && variable
            .text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_name || !word(at + 2)?.is("in") {
        return None;
    }
    let mut index = at + 3;
    let mut values = Vec::new();
    while let Some(Token::Word(value)) = tokens.get(index).map(|t| &t.token) {
        // An unquoted value with a glob expands to file names.
        if value.dynamic || (!value.quoted && value.text.contains(['*', '?', '['])) {
            return None;
        }
        values.push(value.text.clone());
        index += 1;
    }
    while matches!(
        tokens.get(index).map(|t| &t.token),
        Some(Token::Newline | Token::Semicolon)
    ) {
        index += 1;
    }
    word(index).filter(|w| w.is("do"))?;
    let end = done[index]?;
    Some(ForLoop {
        variable: &variable.text,
        values,
        body: &tokens[index + 1..end],
        next: end + 1,
    })
}

/// The first [`MAX_SCRIPT`] bytes of `text`, cut after a whole line (a
/// cut command could read as a different one), and a note if anything was
/// cut.
pub(crate) fn cap(text: &str) -> (&str, Option<String>) {
    if text.len() <= MAX_SCRIPT {
        return (text, None);
    }
    let mut end = MAX_SCRIPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(0, |newline| newline + 1);
    let note = format!(
        "(the text is {} bytes; only its first {end} were read)",
        text.len()
    );
    (&text[..end], Some(note))
}

/// The script's own functions (`name() {`): a call does what the body
/// does, and the body is read where it stands.
fn functions(tokens: &[Spanned]) -> std::collections::BTreeSet<&str> {
    tokens
        .windows(3)
        .filter_map(|window| match window {
            [Spanned {
                token: Token::Word(word),
                ..
            }, Spanned {
                token: Token::Open, ..
            }, Spanned {
                token: Token::Close,
                ..
            }] if !word.dynamic => Some(word.text.as_str()),
            _ => None,
        })
        .collect()
}

/// A simple command: its words (keywords and redirections taken out).
struct Statement<'t> {
    words: Vec<&'t Word>,
    redirects: Vec<(Redirect, Option<&'t Word>)>,
    unreadable: bool,
    /// Byte range in the script.
    start: usize,
    end: usize,
}

/// Keywords that only open or close a compound command; what follows them
/// on the line is a command of its own.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
];

struct Parser<'t> {
    tokens: &'t [Spanned],
    index: usize,
    case_depth: usize,
    /// After `case … in` or `;;`: a pattern such as `configure)` comes.
    expect_pattern: bool,
}

impl<'t> Parser<'t> {
    fn next_statement(&mut self) -> Option<Statement<'t>> {
        let tokens = self.tokens;
        loop {
            let token = &tokens.get(self.index)?.token;
            if self.expect_pattern && self.skip_pattern() {
                continue;
            }
            match token {
                Token::CaseEnd => {
                    self.index += 1;
                    self.expect_pattern = self.case_depth > 0;
                }
                Token::Word(word) if word.is("esac") => {
                    self.index += 1;
                    self.case_depth = self.case_depth.saturating_sub(1);
                    self.expect_pattern = false;
                }
                Token::Word(word) if word.is("case") => self.skip_case_head(),
                // `for x in …;` and `function name`: the body's commands
                // are read as they come.
                Token::Word(word) if word.is("for") || word.is("function") => {
                    while self
                        .tokens
                        .get(self.index)
                        .is_some_and(|t| !matches!(t.token, Token::Newline | Token::Semicolon))
                    {
                        self.index += 1;
                    }
                }
                Token::Word(word) if KEYWORDS.iter().any(|keyword| word.is(keyword)) => {
                    self.index += 1
                }
                Token::Word(_) | Token::Redirect(_) | Token::Unreadable => {
                    if let Some(statement) = self.simple_command() {
                        return Some(statement);
                    }
                }
                _ => self.index += 1,
            }
        }
    }

    /// Skips a `case` pattern (`configure)`, `abort-upgrade|abort-remove)`,
    /// `(*)`) or the blank lines before one. False when the tokens are no
    /// pattern, to be read as commands.
    fn skip_pattern(&mut self) -> bool {
        match &self.tokens[self.index].token {
            Token::Newline | Token::Semicolon => {
                self.index += 1;
                return true;
            }
            Token::Word(word) if word.is("esac") => {
                self.expect_pattern = false;
                return false;
            }
            _ => {}
        }
        self.expect_pattern = false;
        let mut next = self.index;
        if self.tokens[next].token == Token::Open {
            next += 1;
        }
        while let Some(spanned) = self.tokens.get(next) {
            match spanned.token {
                Token::Word(_) | Token::Pipe => next += 1,
                Token::Close => {
                    self.index = next + 1;
                    return true;
                }
                _ => break,
            }
        }
        false
    }

    /// `case WORD in`.
    fn skip_case_head(&mut self) {
        self.index += 1;
        while let Some(spanned) = self.tokens.get(self.index) {
            match &spanned.token {
                Token::Word(word) if word.is("in") => {
                    self.index += 1;
                    self.case_depth += 1;
                    self.expect_pattern = true;
                    return;
                }
                Token::Word(_) | Token::Newline => self.index += 1,
                _ => return,
            }
        }
    }

    /// Reads up to the next operator. None for a function definition's
    /// head (`name() {`), which does nothing by itself.
    fn simple_command(&mut self) -> Option<Statement<'t>> {
        let first = &self.tokens[self.index];
        let mut statement = Statement {
            words: Vec::new(),
            redirects: Vec::new(),
            unreadable: false,
            start: first.start,
            end: first.end,
        };
        while let Some(spanned) = self.tokens.get(self.index) {
            match &spanned.token {
                Token::Word(word) => statement.words.push(word),
                Token::Redirect(kind) => {
                    let target = match self.tokens.get(self.index + 1) {
                        Some(Spanned {
                            token: Token::Word(word),
                            end,
                            ..
                        }) => {
                            self.index += 1;
                            statement.end = *end;
                            Some(word)
                        }
                        _ => None,
                    };
                    statement.redirects.push((*kind, target));
                }
                Token::Unreadable => statement.unreadable = true,
                _ => break,
            }
            statement.end = statement.end.max(self.tokens[self.index].end);
            self.index += 1;
        }
        let tail = self.tokens.get(self.index..self.index + 2);
        if statement.words.len() == 1
            && statement.redirects.is_empty()
            && !statement.unreadable
            && tail.is_some_and(|t| t[0].token == Token::Open && t[1].token == Token::Close)
        {
            self.index += 2;
            return None;
        }
        Some(statement)
    }
}

enum Outcome {
    /// Means nothing on an image (or is only a test).
    Ignore,
    Actions(Vec<Action>),
    /// Does something MicrOS does not understand.
    Unknown,
}

/// Commands that mean nothing on an image: tests, output, shell
/// bookkeeping, and helpers for init systems, debconf and dpkg's database,
/// none of which an image has. `systemd-sysusers` and `systemd-tmpfiles`
/// read files the package ships (`/usr/lib/sysusers.d`, `tmpfiles.d`);
/// those files are read directly (see [`crate::sysusers`]).
const IGNORED: &[&str] = &[
    "[",
    "[[",
    "test",
    "getent",
    "id",
    "which",
    "echo",
    "printf",
    "true",
    "false",
    ":",
    "exit",
    "return",
    "set",
    "shift",
    "local",
    "export",
    "unset",
    "readonly",
    "break",
    "continue",
    "read",
    "wait",
    "deb-systemd-helper",
    "deb-systemd-invoke",
    "invoke-rc.d",
    "update-rc.d",
    "dpkg-maintscript-helper",
    "dpkg-trigger",
    "systemctl",
    "systemd-tmpfiles",
    "systemd-sysusers",
    "ldconfig",
];

fn classify(statement: &Statement, functions: &std::collections::BTreeSet<&str>) -> Outcome {
    if statement.unreadable {
        return Outcome::Unknown;
    }
    for (kind, target) in &statement.redirects {
        let harmless = match (kind, target) {
            (Redirect::HereDocument, _) | (Redirect::Input, Some(_)) => true,
            (Redirect::Output, Some(target)) => !target.dynamic && target.text == "/dev/null",
            (Redirect::Duplicate, Some(target)) => {
                !target.dynamic
                    && (target.text == "-" || target.text.bytes().all(|b| b.is_ascii_digit()))
            }
            (_, None) => false,
        };
        if !harmless {
            return Outcome::Unknown;
        }
    }
    // `DEBIAN_FRONTEND=noninteractive cmd`, or an assignment alone: a
    // variable matters only where it is used, and a use is dynamic.
    let start = statement
        .words
        .iter()
        .position(|word| !is_assignment(word))
        .unwrap_or(statement.words.len());
    let Some((command, arguments)) = statement.words[start..].split_first() else {
        return Outcome::Ignore;
    };
    if command.dynamic {
        return Outcome::Unknown;
    }
    let name = command.text.as_str();
    if IGNORED.contains(&name) || name.starts_with("db_") || functions.contains(name) {
        return Outcome::Ignore;
    }
    let first = arguments.first().map(|word| word.text.as_str());
    match (name, first) {
        // Tests.
        ("dpkg", Some("--compare-versions")) | ("command", Some("-v")) => return Outcome::Ignore,
        ("." | "source", Some("/usr/share/debconf/confmodule")) if arguments.len() == 1 => {
            return Outcome::Ignore
        }
        // dh_installinit's `chmod +x "/etc/init.d/<name>"`: sysvinit
        // scripts mean nothing under runit.
        ("chmod", Some("+x"))
            if arguments.len() == 2
                && arguments[1].text.starts_with("/etc/init.d/")
                && !arguments[1].dynamic =>
        {
            return Outcome::Ignore
        }
        _ => {}
    }
    // The commands MicrOS understands take no run-time values.
    if arguments.iter().any(|word| word.dynamic) {
        return Outcome::Unknown;
    }
    let arguments: Vec<&str> = arguments.iter().map(|word| word.text.as_str()).collect();
    let actions = match name {
        "adduser" => commands::adduser(&arguments),
        "addgroup" => commands::addgroup(&arguments),
        "useradd" => commands::useradd(&arguments),
        "groupadd" => commands::groupadd(&arguments),
        "usermod" => commands::usermod(&arguments),
        "update-alternatives" => return commands::update_alternatives(&arguments),
        "dpkg-statoverride" => return commands::statoverride(&arguments),
        "ln" => return commands::symlink(&arguments),
        "ucf" | "cp" => return commands::copy(name, &arguments),
        "chown" => return commands::chown(&arguments),
        "mkdir" => return commands::mkdir(&arguments),
        "chmod" => return commands::chmod(&arguments),
        _ => None,
    };
    actions.map_or(Outcome::Unknown, Outcome::Actions)
}

fn is_assignment(word: &Word) -> bool {
    word.text.split_once('=').is_some_and(|(name, _)| {
        name.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// Collects the skipped lines, once each.
struct Report<'a> {
    script: &'a str,
    /// Newlines that end a logical line (not after a backslash).
    breaks: Vec<usize>,
    reported_until: usize,
    lines: Vec<String>,
    more: usize,
}

impl<'a> Report<'a> {
    fn new(script: &'a str) -> Report<'a> {
        let bytes = script.as_bytes();
        let breaks = bytes
            .iter()
            .enumerate()
            .filter(|&(index, &b)| b == b'\n' && (index == 0 || bytes[index - 1] != b'\\'))
            .map(|(index, _)| index)
            .collect();
        Report {
            script,
            breaks,
            reported_until: 0,
            lines: Vec::new(),
            more: 0,
        }
    }

    /// Reports the logical line(s) holding bytes `start..end`, unless
    /// already reported.
    fn line(&mut self, start: usize, end: usize) {
        let first = self.breaks.partition_point(|&b| b < start);
        let from = first
            .checked_sub(1)
            .map_or(0, |previous| self.breaks[previous] + 1);
        let last = self
            .breaks
            .partition_point(|&b| b < end.saturating_sub(1).max(start));
        let to = self.breaks.get(last).copied().unwrap_or(self.script.len());
        if from < self.reported_until {
            return;
        }
        self.reported_until = to + 1;
        if self.lines.len() >= MAX_SKIPPED {
            self.more += 1;
            return;
        }
        let joined = self.script[from..to]
            .split("\\\n")
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let joined = joined.trim();
        let shown = if joined.chars().count() > MAX_SHOWN {
            format!("{}…", joined.chars().take(MAX_SHOWN).collect::<String>())
        } else {
            joined.to_owned()
        };
        self.lines.push(shown);
    }

    fn finish(mut self, note: Option<String>) -> Vec<String> {
        if self.more > 0 {
            self.lines
                .push(format!("({} more lines not understood)", self.more));
        }
        self.lines.extend(note);
        self.lines
    }
}
