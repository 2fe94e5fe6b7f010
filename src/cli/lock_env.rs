//! What `hold` tells its command of the lock it runs under, in its
//! environment: the lock's name and the booking's fencing token.

use std::ffi::OsStr;
use std::process::Command;

use namaste::Uid;

/// The environment variable that names the lock to the command.
const NAME_VARIABLE: &str = "NAMASTE_NAME";
/// The environment variable that gives the command the booking's fencing
/// token.
const TOKEN_VARIABLE: &str = "NAMASTE_TOKEN";

/// How the command is told which lock it runs under: the NAME given, else
/// the id in hex.
pub struct LockName<'a> {
    pub name: Option<&'a OsStr>,
    pub uid: Uid,
}

impl LockName<'_> {
    /// Puts the lock's name and `token` in `command`'s environment; with
    /// no token, removes any inherited one, so that an outer `hold`'s
    /// token never passes for this lock's.
    pub fn tell(&self, command: &mut Command, token: Option<u64>) {
        match self.name {
            Some(name) => command.env(NAME_VARIABLE, name),
            None => command.env(NAME_VARIABLE, self.uid.to_string()),
        };
        match token {
            Some(token) => command.env(TOKEN_VARIABLE, token.to_string()),
            None => command.env_remove(TOKEN_VARIABLE),
        };
    }
}
