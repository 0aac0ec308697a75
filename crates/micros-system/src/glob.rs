//! Path patterns for `environment.excludePaths`: `*` matches within one
//! path component, `**` any number of components, everything else itself.

/// Whether `path` (absolute, `/`-separated) matches `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern
        .trim_start_matches('/')
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    let path: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    match_components(&pattern, &path)
}

fn match_components(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_components(rest, &path[skip..])),
        Some((first, rest)) => path.split_first().is_some_and(|(component, tail)| {
            match_one(first, component) && match_components(rest, tail)
        }),
    }
}

fn match_one(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(text) = text.strip_prefix(prefix) else {
                return false;
            };
            (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .any(|i| match_one(rest, &text[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches(
            "/usr/share/doc/**",
            "/usr/share/doc/busybox/copyright"
        ));
        assert!(matches("/usr/share/doc/**", "/usr/share/doc"));
        assert!(!matches("/usr/share/doc/**", "/usr/share/docs/x"));
        assert!(matches(
            "/usr/share/locale/*/LC_MESSAGES/*.mo",
            "/usr/share/locale/de/LC_MESSAGES/x.mo"
        ));
        assert!(!matches(
            "/usr/share/locale/*/LC_MESSAGES/*.mo",
            "/usr/share/locale/de/LC_MESSAGES/x.txt"
        ));
        assert!(matches("/etc/*.conf", "/etc/a.conf"));
        assert!(matches("**/*.pyc", "/usr/lib/python3/x/y.pyc"));
    }
}
