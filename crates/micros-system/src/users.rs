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
                second: name.clone(),
                uid: user.uid,
            });
        }
        for (field, value) in [("home", &user.home), ("shell", &user.shell)] {
            if value.contains([':', '\n']) {
                return Err(UsersError::BadCharacter {
                    user: name.clone(),
                    field,
                });
            }
        }
        if user
            .hashed_password
            .as_deref()
            .is_some_and(|h| h.contains([':', '\n']))
        {
            return Err(UsersError::BadCharacter {
                user: name.clone(),
                field: "hashedPassword",
            });
        }
    }
    let mut by_gid: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, group) in &users.groups {
        if let Some(first) = by_gid.insert(group.gid, name) {
            return Err(UsersError::DuplicateGid {
                first: first.to_owned(),
                second: name.clone(),
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
                group: user.group.clone(),
            })?
            .gid;
        for extra in &user.extra_groups {
            if !users.groups.contains_key(extra) {
                return Err(UsersError::UnknownExtraGroup {
                    user: (*name).to_owned(),
                    group: extra.clone(),
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
    use micros_config::model::{Group, User};

    fn user(uid: u32, group: &str) -> User {
        User {
            uid,
            group: group.into(),
            extra_groups: vec![],
            home: "/var/empty".into(),
            shell: "/bin/sh".into(),
            hashed_password: None,
            authorized_keys: vec![],
        }
    }

    fn users() -> Users {
        let mut root = user(0, "root");
        root.home = "/root".into();
        let mut alice = user(1000, "users");
        alice.extra_groups = vec!["wheel".into()];
        alice.hashed_password = Some("$6$salt$hash".into());
        Users {
            users: [
                ("root".into(), root),
                ("alice".into(), alice),
                ("sshd".into(), user(74, "sshd")),
            ]
            .into(),
            groups: [
                ("root".into(), Group { gid: 0 }),
                ("users".into(), Group { gid: 100 }),
                ("wheel".into(), Group { gid: 10 }),
                ("sshd".into(), Group { gid: 74 }),
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
        bad.users.get_mut("alice").unwrap().group = "staff".into();
        assert!(render(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("users.users.alice.group: no group `staff` is declared"));
        let mut bad = users();
        bad.users.get_mut("alice").unwrap().shell = "/bin/sh:evil".into();
        assert!(matches!(render(&bad), Err(UsersError::BadCharacter { .. })));
    }
}
