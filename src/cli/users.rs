//! OS users by name, for messages and `status NAME`.

use std::fs;

/// The login name of the OS user `id`, from `/etc/passwd`; `None` when it
/// has no line there. The binary is linked statically, where glibc's
/// getpwuid_r would need the shared NSS modules at run time (and adds 130
/// KiB): users only a directory service knows show as numbers.
pub fn name_of(id: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    name_in(&passwd, id)
}

/// The OS user id of the login name `name`, from `/etc/passwd`.
pub fn id_named(name: &str) -> Option<u32> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    id_in(&passwd, name)
}

/// The id of the user `name` in the text of a passwd file.
fn id_in(passwd: &str, name: &str) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then(|| fields.nth(1)?.parse().ok())?
    })
}

/// The name of user `id` in the text of a passwd file.
fn name_in(passwd: &str, id: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid = fields.nth(1)?;
        (uid.parse() == Ok(id) && !name.is_empty()).then(|| name.to_string())
    })
}

/// The user `id` for people: its name, or its number when it has none.
pub fn described(id: u32) -> String {
    name_of(id).unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_from_passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\n:x:5:5::/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(name_in(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_in(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(name_in(passwd, 5), None);
        assert_eq!(name_in(passwd, 1000), None);
        assert_eq!(id_in(passwd, "nobody"), Some(65534));
        assert_eq!(id_in(passwd, "root"), Some(0));
        assert_eq!(id_in(passwd, ""), None);
        assert_eq!(id_in(passwd, "x"), None);
    }

    #[test]
    fn names_root_and_numbers_a_user_without_a_name() {
        assert_eq!(name_of(0).as_deref(), Some("root"));
        assert_eq!(described(0), "root");
        // Far past any real account, and not the overflow id either.
        assert_eq!(name_of(3_999_999_999), None);
        assert_eq!(described(3_999_999_999), "3999999999");
    }
}
