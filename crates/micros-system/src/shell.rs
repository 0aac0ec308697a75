//! The one place a value becomes a word of a generated shell script.
//!
//! Every script MicrOS writes (runit's stages and run files, `/etc/profile`,
//! `run-vm`) builds its commands from fixed text, names checked by their
//! types (`micros_config::names`), and values passed through [`quote`]. A
//! value is never put inside double quotes, where `$`, `` ` `` and `\` keep
//! their meaning. The modules written in Nickel use the same rule through
//! `micros.lib.shell` (`modules/lib/shell.ncl`); a test checks both quote
//! alike.
//!
//! Commands a user writes (`runit.services.<name>.command`, `ready`) are
//! shell by design and are not quoted: they are the user's script.

/// `text` as one word of a POSIX shell command, whatever it holds: bare
/// when it is made only of characters no shell treats specially, else in
/// single quotes, inside which only `'` itself needs care (`'\''`).
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A command line from separate arguments, each quoted.
pub fn command<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one word in which `$name`, for each of `variables`, is
/// expanded by the shell when the script runs (as `"$name"`, so its value
/// stays one word) and everything else is literal.
pub fn quote_with_variables(word: &str, variables: &[&str]) -> String {
    let mut quoted = String::new();
    let mut literal = String::new();
    let mut rest = word;
    'scan: while !rest.is_empty() {
        for name in variables {
            let reference = format!("${name}");
            let at_end_of_name =
                |after: &str| !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if let Some(after) = rest.strip_prefix(reference.as_str()) {
                if at_end_of_name(after) {
                    if !literal.is_empty() {
                        quoted.push_str(&quote(&literal));
                        literal.clear();
                    }
                    quoted.push_str(&format!("\"${name}\""));
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        literal.push(chars.next().expect("not empty"));
        rest = chars.as_str();
    }
    if !literal.is_empty() || quoted.is_empty() {
        quoted.push_str(&quote(&literal));
    }
    quoted
}

/// A line that prints `message` to standard output: `echo` would read
/// backslashes and leading options in it, `printf '%s\n'` does not.
pub fn print(message: &str) -> String {
    format!("printf '%s\\n' {}", quote(message))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Values an attacker would put in a configuration or a package.
    pub(crate) const HOSTILE: &[&str] = &[
        "plain",
        "",
        "two words",
        "it's",
        "''",
        "\"double\"",
        "$(touch /tmp/pwned)",
        "`touch /tmp/pwned`",
        "${HOME}",
        "a\nb",
        "a\\nb",
        "\\",
        "-n",
        "x; reboot",
        "'; touch /tmp/pwned; '",
        "*",
        "~",
        "#comment",
        "tab\there",
        "\u{e9}t\u{e9}",
    ];

    /// Runs `script` in the host's sh and returns its standard output.
    pub(crate) fn sh(script: &str) -> String {
        let output = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .expect("run sh");
        assert!(output.status.success(), "{script}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn every_hostile_value_reaches_the_command_unchanged() {
        for value in HOSTILE {
            let script = format!("printf '%s' {}", quote(value));
            assert_eq!(sh(&script), *value, "{script}");
            let script = format!("{}\n", print(value));
            assert_eq!(sh(&script), format!("{value}\n"), "{script}");
        }
        let all = command(HOSTILE);
        assert_eq!(
            sh(&format!(
                "for word in {all}; do printf '<%s>' \"$word\"; done"
            )),
            HOSTILE.iter().map(|w| format!("<{w}>")).collect::<String>()
        );
    }

    #[test]
    fn only_the_named_variables_are_expanded() {
        for value in HOSTILE {
            let word = format!("file=$dir/{value},$data$directory$dirt");
            let script = format!(
                "dir='/a b'; data=\"'x'\"; directory=no; printf '%s' {}",
                quote_with_variables(&word, &["dir", "data"])
            );
            assert_eq!(
                sh(&script),
                format!("file=/a b/{value},'x'$directory$dirt"),
                "{script}"
            );
        }
        assert_eq!(
            quote_with_variables("$dir/kernel", &["dir"]),
            "\"$dir\"/kernel"
        );
        assert_eq!(quote_with_variables("", &["dir"]), "''");
    }

    /// `micros.lib.shell` (Nickel) quotes every hostile value exactly as
    /// [`quote`] does, so a module's command is as safe as Rust's.
    #[test]
    fn the_nickel_modules_quote_as_rust_does() {
        let dir = tempfile::tempdir().unwrap();
        let values = serde_json::to_string(HOSTILE).unwrap();
        std::fs::write(
            dir.path().join("system.ncl"),
            format!(
                "let micros = import \"micros\" in\nlet values = {values} in\nmicros.system {{ modules = [ micros.profiles.qemu, {{ runit.services.all.command = micros.lib.shell.command values, environment.etc = std.array.fold_left (fun acc value => acc & {{ \"q/%{{std.to_string (std.array.length (std.record.fields acc))}}\".text = micros.lib.shell.quote value }}) {{}} values }} ] }}"
            ),
        )
        .unwrap();
        let config = micros_config::evaluate(&dir.path().join("system.ncl"))
            .unwrap()
            .config;
        assert_eq!(config.runit.services["all"].command, Some(command(HOSTILE)));
        for (index, value) in HOSTILE.iter().enumerate() {
            let etc = &config.environment.etc[&format!("q/{index}")];
            assert_eq!(
                etc.text.as_deref(),
                Some(quote(value).as_str()),
                "{value:?}"
            );
        }
    }

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(quote("plain/path-1"), "plain/path-1");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$x"), "'$x'");
    }
}
