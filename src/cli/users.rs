//! OS users by name, for messages and `status NAME`.

use std::ffi::CStr;

/// The login name of the OS user `id`, from the password database; `None`
/// when it has no entry (a user of a container, say).
pub fn name_of(id: u32) -> Option<String> {
    // SAFETY: `passwd` is plain data; an all-zero value is a valid
    // starting point that getpwuid_r overwrites.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: every pointer is valid for the length given, and `buf`
        // outlives every use of `entry`'s strings below.
        let error =
            unsafe { libc::getpwuid_r(id, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
        match error {
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            0 if !found.is_null() && !entry.pw_name.is_null() => {
                // SAFETY: getpwuid_r succeeded, so pw_name points to a
                // NUL-terminated string inside `buf`.
                let name = unsafe { CStr::from_ptr(entry.pw_name) };
                return Some(name.to_string_lossy().into_owned());
            }
            _ => return None,
        }
    }
}

/// The user `id` for people: its name, or its number when it has none.
pub fn described(id: u32) -> String {
    name_of(id).unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_root_and_numbers_a_user_without_a_name() {
        assert_eq!(name_of(0).as_deref(), Some("root"));
        assert_eq!(described(0), "root");
        // Far past any real account, and not the overflow id either.
        assert_eq!(name_of(3_999_999_999), None);
        assert_eq!(described(3_999_999_999), "3999999999");
    }
}
