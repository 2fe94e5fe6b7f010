//! Sockets of another OS user for the unit tests, without another process:
//! the kernel gives a socket the file-system user id of the thread that
//! creates or accepts it.

use super::{ROOT, UserId};

/// Runs `f` on this thread with the file-system user id `user`, which is
/// the owner the kernel gives the sockets it creates or accepts (and the
/// threads it starts); `None`, saying why, when not root.
pub(crate) fn as_user<T>(test: &str, user: UserId, f: impl FnOnce() -> T) -> Option<T> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != ROOT {
        eprintln!("skipped part of {test}: sockets of user {user} need root");
        return None;
    }
    // SAFETY: setfsuid takes a plain integer and changes the credentials
    // of this thread alone.
    unsafe { libc::setfsuid(user) };
    let result = f();
    // SAFETY: as above.
    unsafe { libc::setfsuid(ROOT) };
    Some(result)
}

/// The user that the tests give sockets that are not their own: nobody.
pub(crate) const NOBODY: UserId = 65534;
