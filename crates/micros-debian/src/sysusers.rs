//! systemd's sysusers.d files (`/usr/lib/sysusers.d/*.conf`), which newer
//! packages ship instead of (or beside) `adduser` calls in `postinst`,
//! read into the same [`Action`]s as maintainer scripts.
//!
//! ```text
//! u avahi -           "Avahi mDNS daemon" /run/avahi-daemon -
//! g netdev -
//! m avahi netdev
//! ```
use crate::maintscript::{self, name, number, path, Action, Parsed};

pub fn parse(text: &str) -> Parsed {
    let (text, note) = maintscript::cap(text);
    let mut parsed = Parsed::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match entry(line) {
            Some(actions) => parsed.actions.extend(actions),
            None => parsed.skipped.push(line.to_owned()),
        }
    }
    parsed.skipped.extend(note);
    parsed
}

/// One line's actions; None if not understood.
fn entry(line: &str) -> Option<Vec<Action>> {
    let fields = fields(line)?;
    let field = |index: usize| fields.get(index).map(String::as_str).filter(|f| *f != "-");
    // Columns past those a type uses may only be `-`.
    let used = |count: usize| fields[count.min(fields.len())..].iter().all(|f| f == "-");
    match fields[0].as_str() {
        "u" | "u!" if used(6) => {
            let name = name(field(1)?)?;
            let home = optional_path(field(4))?;
            let shell = optional_path(field(5))?;
            let user = |uid, group: Option<String>| Action::AddUser {
                name: name.clone(),
                own_group: group.is_none(),
                group,
                home: home.clone(),
                shell: shell.clone(),
                uid,
                create_home: false,
            };
            Some(match field(2) {
                None => vec![user(None, None)],
                // The ids of a file's owner: known only on the machine.
                Some(id) if id.starts_with('/') => vec![user(None, None)],
                Some(id) => match id.split_once(':') {
                    None => vec![user(Some(number(id)?), None)],
                    Some((uid, gid)) => {
                        // `-:nogroup`: any uid, in an existing group
                        // (openssh-server's sshd).
                        let uid = match uid {
                            "-" => None,
                            uid => Some(number(uid)?),
                        };
                        match number(gid) {
                            // A group of the user's name with that gid.
                            Some(gid) => vec![
                                Action::AddGroup {
                                    name: name.clone(),
                                    gid: Some(gid),
                                },
                                user(uid, Some(name.clone())),
                            ],
                            None => vec![user(uid, Some(self::name(gid)?))],
                        }
                    }
                },
            })
        }
        "g" if used(3) => {
            let gid = match field(2) {
                None => None,
                Some(id) if id.starts_with('/') => None,
                Some(id) => Some(number(id)?),
            };
            Some(vec![Action::AddGroup {
                name: name(field(1)?)?,
                gid,
            }])
        }
        "m" if used(3) => Some(vec![Action::AddToGroup {
            user: name(field(1)?)?,
            group: name(field(2)?)?,
        }]),
        // Which ids are free for allocation: the image decides that.
        "r" => Some(Vec::new()),
        _ => None,
    }
}

/// Whitespace-separated fields, with `"…"` and `'…'` quoting and
/// backslash escapes. None for an open quote or a `%` specifier, which
/// only systemd can expand.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut field = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => field.push(chars.next()?),
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(open)) if c == open => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => field.push(c),
            }
        }
        if quote.is_some() {
            return None;
        }
        fields.push(field);
    }
    // GECOS (column 4) is free text; the others must not use specifiers.
    let specifier = fields
        .iter()
        .enumerate()
        .any(|(index, field)| index != 3 && field.contains('%'));
    (!fields.is_empty() && !specifier).then_some(fields)
}

/// `-` (None) or a valid path; None overall for an invalid one.
fn optional_path(text: Option<&str>) -> Option<Option<String>> {
    match text {
        None => Some(None),
        Some(text) => path(text).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, group: Option<&str>, uid: Option<u32>, home: Option<&str>) -> Action {
        Action::AddUser {
            name: name.into(),
            group: group.map(Into::into),
            own_group: group.is_none(),
            home: home.map(Into::into),
            shell: None,
            uid,
            create_home: false,
        }
    }

    #[test]
    fn users_groups_and_members() {
        let parsed = parse(
            "# Avahi\n\
             u avahi - \"Avahi mDNS daemon\" /run/avahi-daemon\n\
             \n\
             g netdev -\n\
             m avahi netdev\n\
             u! systemd-network 192 \"systemd Network Management\" - -\n\
             u dhcpcd 100:101 - /var/lib/dhcpcd /usr/sbin/nologin\n\
             u svc -:nogroup\n\
             u svc2 200:nogroup\n\
             g input /dev/input/event0\n\
             r - 500-900\n",
        );
        assert_eq!(
            parsed.actions,
            [
                user("avahi", None, None, Some("/run/avahi-daemon")),
                Action::AddGroup {
                    name: "netdev".into(),
                    gid: None
                },
                Action::AddToGroup {
                    user: "avahi".into(),
                    group: "netdev".into()
                },
                user("systemd-network", None, Some(192), None),
                Action::AddGroup {
                    name: "dhcpcd".into(),
                    gid: Some(101)
                },
                Action::AddUser {
                    name: "dhcpcd".into(),
                    group: Some("dhcpcd".into()),
                    own_group: false,
                    home: Some("/var/lib/dhcpcd".into()),
                    shell: Some("/usr/sbin/nologin".into()),
                    uid: Some(100),
                    create_home: false,
                },
                user("svc", Some("nogroup"), None, None),
                user("svc2", Some("nogroup"), Some(200), None),
                Action::AddGroup {
                    name: "input".into(),
                    gid: None
                },
            ]
        );
        // `-:group`: any uid, that primary group (openssh-server's sshd).
        assert_eq!(parsed.skipped, Vec::<String>::new());
    }

    #[test]
    fn lines_not_understood_are_skipped() {
        for line in [
            "u %u - - /home/%u",
            "u x - - /var/../etc",
            "u x - \"open quote",
            "g 0day -",
            "g x 12x",
            "m x",
            "x something",
            "g x - extra",
        ] {
            let parsed = parse(line);
            assert_eq!(parsed.actions, [], "{line}");
            assert_eq!(parsed.skipped, [line], "{line}");
        }
        let huge = "u x -\n".repeat(400_000);
        let parsed = parse(&huge);
        assert!(parsed.skipped.last().unwrap().contains("only its first"));
    }
}
