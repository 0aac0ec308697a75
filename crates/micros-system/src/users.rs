//! `/etc/passwd`, `/etc/group` and `/etc/shadow`, generated from
//! `users.users` and `users.groups`: sorted by id, with no dates, so the
//! same configuration always gives the same bytes.
use std::collections::BTreeMap;

use micros_config::model::Users;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    #[error("users.users.{user}.group: no group `{group}` is declared\nhint: add `users.groups.{group}.gid = <number>`")]
    UnknownGroup { user: String, group: String },
    #[error("users.users.{user}.extraGroups: no group `{group}` is declared\nhint: add `users.groups.{group}.gid = <number>`")]
    UnknownExtraGroup { user: String, group: String },
    #[error("users.users.{first}.uid and users.users.{second}.uid are both {uid}: user ids must be unique")]
    DuplicateUid {
        first: String,
        second: String,
        uid: u32,
    },
    #[error("users.groups.{first}.gid and users.groups.{second}.gid are both {gid}: group ids must be unique")]
    DuplicateGid {
        first: String,
        second: String,
        gid: u32,
    },
    #[error("users.users.{user}: `{field}` may not contain `:` or a newline")]
    BadCharacter { user: String, field: &'static str },
    #[error("users.users.{user}.authorizedKeys[{index}]: not an SSH public key: {reason}\nhint: give one line of a `.pub` file, e.g. `ssh-ed25519 AAAAC3Nza… you@host`")]
    BadKey {
        user: String,
        index: usize,
        reason: String,
    },
    #[error("users.users.{user}.hashedPassword: {reason}\nhint: make one with `mkpasswd -m sha-512` (or set null to lock password login)")]
    BadHash { user: String, reason: String },
    #[error("users.users.{user}.home: a user with authorizedKeys needs a home directory of its own, not {home}")]
    KeysWithoutHome { user: String, home: String },
}

/// The key types dropbear accepts in `authorized_keys`.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Checks one `authorized_keys` line: optional options, a key type, the
/// base64 key blob (which must name the same type) and an optional comment.
pub fn check_authorized_key(line: &str) -> Result<(), String> {
    use base64::Engine as _;
    if line.contains(['\n', '\r']) {
        return Err("it spans several lines".into());
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(at) = words.iter().position(|w| KEY_TYPES.contains(w)) else {
        return Err(format!(
            "no key type (one of {}) in `{}`",
            KEY_TYPES.join(", "),
            abbreviate(line)
        ));
    };
    let kind = words[at];
    let Some(encoded) = words.get(at + 1) else {
        return Err(format!("the {kind} key has no key data after its type"));
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the {kind} key data is not base64 ({e})"))?;
    let mut rest = blob.as_slice();
    let mut field = || -> Option<&[u8]> {
        let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = rest.get(4..4 + length)?;
        rest = &rest[4 + length..];
        Some(value)
    };
    match field() {
        Some(named) if named == kind.as_bytes() => {}
        _ => return Err(format!("the key data is not an {kind} key")),
    }
    if kind == "ssh-ed25519" && (field().map(<[u8]>::len) != Some(32) || !rest.is_empty()) {
        return Err("the ssh-ed25519 key data is cut short or too long".into());
    }
    Ok(())
}

fn abbreviate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Checks a `crypt(3)` hash: the formats busybox's `login` can verify, or
/// a locked entry (`!` or `*` first).
fn check_hash(hash: &str) -> Result<(), String> {
    if hash.starts_with(['!', '*']) {
        return Ok(());
    }
    if hash.starts_with("$y$") || hash.starts_with("$7$") {
        return Err(
            "busybox's login (the console login) cannot check yescrypt or scrypt hashes, the default of Debian's mkpasswd"
                .into(),
        );
    }
    if !["$1$", "$5$", "$6$"].iter().any(|p| hash.starts_with(p)) {
        // Never echo it: a pasted plaintext password would land in logs.
        return Err(
            "it is not a crypt(3) hash (expected one starting with $6$ or $5$; its value is not shown)"
                .into(),
        );
    }
    if hash.split('$').count() < 4 {
        return Err("the hash has no salt and hash parts (its value is not shown)".into());
    }
    Ok(())
}

/// The three files' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDatabase {
    pub passwd: String,
    pub group: String,
    pub shadow: String,
}

pub fn render(users: &Users) -> Result<UserDatabase, UsersError> {
    let mut by_uid: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, user) in &users.users {
        if let Some(first) = by_uid.insert(user.uid, name) {
            return Err(UsersError::DuplicateUid {
                first: first.to_owned(),
                second: name.to_string(),
                uid: user.uid,
            });
        }
        for (field, value) in [("home", &user.home), ("shell", &user.shell)] {
            if value.contains([':', '\n']) {
                return Err(UsersError::BadCharacter {
                    user: name.to_string(),
                    field,
                });
            }
        }
        if let Some(hash) = user.hashed_password.as_deref() {
            if hash.contains([':', '\n']) {
                return Err(UsersError::BadCharacter {
                    user: name.to_string(),
                    field: "hashedPassword",
                });
            }
            check_hash(hash).map_err(|reason| UsersError::BadHash {
                user: name.to_string(),
                reason,
            })?;
        }
        for (index, key) in user.authorized_keys.iter().enumerate() {
            check_authorized_key(key).map_err(|reason| UsersError::BadKey {
                user: name.to_string(),
                index,
                reason,
            })?;
        }
        if !user.authorized_keys.is_empty() && matches!(user.home.as_str(), "/var/empty" | "/" | "")
        {
            return Err(UsersError::KeysWithoutHome {
                user: name.to_string(),
                home: user.home.clone(),
            });
        }
    }
    let mut by_gid: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, group) in &users.groups {
        if let Some(first) = by_gid.insert(group.gid, name) {
            return Err(UsersError::DuplicateGid {
                first: first.to_owned(),
                second: name.to_string(),
                gid: group.gid,
            });
        }
    }
    let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut passwd = String::new();
    let mut shadow = String::new();
    for name in by_uid.values() {
        let user = &users.users[*name];
        let gid = users
            .groups
            .get(&user.group)
            .ok_or_else(|| UsersError::UnknownGroup {
                user: (*name).to_owned(),
                group: user.group.to_string(),
            })?
            .gid;
        for extra in &user.extra_groups {
            if !users.groups.contains_key(extra) {
                return Err(UsersError::UnknownExtraGroup {
                    user: (*name).to_owned(),
                    group: extra.to_string(),
                });
            }
            members.entry(extra.as_str()).or_default().push(name);
        }
        passwd.push_str(&format!(
            "{name}:x:{}:{gid}::{}:{}\n",
            user.uid, user.home, user.shell
        ));
        // `!` locks password login; the last-change field stays empty so
        // the file does not depend on the build date.
        let hash = user.hashed_password.as_deref().unwrap_or("!");
        shadow.push_str(&format!("{name}:{hash}::0:99999:7:::\n"));
    }
    let mut group = String::new();
    for name in by_gid.values() {
        let list = members.get(name).map(|m| m.join(",")).unwrap_or_default();
        group.push_str(&format!("{name}:x:{}:{list}\n", users.groups[*name].gid));
    }
    Ok(UserDatabase {
        passwd,
        group,
        shadow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use micros_config::model::{Group, User, UserName};

    fn n(text: &str) -> UserName {
        UserName::parse(text).unwrap()
    }

    fn user(uid: u32, group: &str) -> User {
        User {
            uid,
            group: n(group),
            extra_groups: vec![],
            home: "/var/empty".into(),
            shell: "/bin/sh".into(),
            hashed_password: None,
            authorized_keys: vec![],
            is_system_user: false,
        }
    }

    fn users() -> Users {
        let mut root = user(0, "root");
        root.home = "/root".into();
        let mut alice = user(1000, "users");
        alice.extra_groups = vec![n("wheel")];
        alice.hashed_password = Some("$6$salt$hash".into());
        Users {
            users: [
                (n("root"), root),
                (n("alice"), alice),
                (n("sshd"), user(74, "sshd")),
            ]
            .into(),
            groups: [
                (n("root"), Group { gid: 0 }),
                (n("users"), Group { gid: 100 }),
                (n("wheel"), Group { gid: 10 }),
                (n("sshd"), Group { gid: 74 }),
            ]
            .into(),
        }
    }

    #[test]
    fn sorted_by_id_and_deterministic() {
        let database = render(&users()).unwrap();
        assert_eq!(database.passwd, "root:x:0:0::/root:/bin/sh\nsshd:x:74:74::/var/empty:/bin/sh\nalice:x:1000:100::/var/empty:/bin/sh\n");
        assert_eq!(
            database.group,
            "root:x:0:\nwheel:x:10:alice\nsshd:x:74:\nusers:x:100:\n"
        );
        assert_eq!(
            database.shadow,
            "root:!::0:99999:7:::\nsshd:!::0:99999:7:::\nalice:$6$salt$hash::0:99999:7:::\n"
        );
    }

    #[test]
    fn mistakes_name_the_option() {
        let mut bad = users();
        bad.users.get_mut("alice").unwrap().uid = 74;
        assert_eq!(
            render(&bad).unwrap_err().to_string(),
            "users.users.alice.uid and users.users.sshd.uid are both 74: user ids must be unique"
        );
        let mut bad = users();
        bad.users.get_mut("alice").unwrap().group = n("staff");
        assert!(render(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("users.users.alice.group: no group `staff` is declared"));
        let mut bad = users();
        bad.users.get_mut("alice").unwrap().shell = "/bin/sh:evil".into();
        assert!(matches!(render(&bad), Err(UsersError::BadCharacter { .. })));
        let mut bad = users();
        for secret in ["hunter2", "$6$hunter2"] {
            bad.users.get_mut("alice").unwrap().hashed_password = Some(secret.into());
            let error = render(&bad).unwrap_err().to_string();
            assert!(
                error.starts_with("users.users.alice.hashedPassword: "),
                "{error}"
            );
            // A pasted password never reaches a log.
            assert!(!error.contains("hunter"), "{error}");
        }
        bad.users.get_mut("alice").unwrap().hashed_password = Some("$y$j9T$salt$hash".into());
        assert!(render(&bad)
            .unwrap_err()
            .to_string()
            .contains("cannot check yescrypt"));
        let mut bad = users();
        let alice = bad.users.get_mut("alice").unwrap();
        alice.home = "/home/alice".into();
        alice.authorized_keys = vec![KEY.into(), "ssh-ed25519 AAAA you@host".into()];
        assert!(render(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("users.users.alice.authorizedKeys[1]: not an SSH public key"));
        let mut bad = users();
        bad.users.get_mut("alice").unwrap().authorized_keys = vec![KEY.into()];
        assert_eq!(
            render(&bad).unwrap_err().to_string(),
            "users.users.alice.home: a user with authorizedKeys needs a home directory of its own, not /var/empty"
        );
    }

    /// A real key, made with `ssh-keygen -t ed25519`.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7nsuA5OrnqLo6GumPhnpwv6LHgPlFQ2cR3jfqOPp5X test@micros";

    #[test]
    fn authorized_keys_are_checked() {
        check_authorized_key(KEY).unwrap();
        check_authorized_key(&format!("no-port-forwarding,no-pty {KEY}")).unwrap();
        let reason = |line: &str| check_authorized_key(line).unwrap_err();
        assert!(reason("hello world").starts_with("no key type"));
        assert_eq!(
            reason("ssh-ed25519"),
            "the ssh-ed25519 key has no key data after its type"
        );
        assert!(
            reason("ssh-ed25519 not!base64").starts_with("the ssh-ed25519 key data is not base64")
        );
        // An RSA blob labelled as ed25519.
        assert_eq!(
            reason("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x"),
            "the key data is not an ssh-ed25519 key"
        );
        // The real key with its last bytes cut off.
        assert_eq!(
            reason("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH7nsuA5OrnqLo6GumPhnpwv6LHgPlFQ"),
            "the ssh-ed25519 key data is cut short or too long"
        );
        assert_eq!(reason(&format!("{KEY}\n{KEY}")), "it spans several lines");
    }
}
