//! Whether the command line believes the server on its port. While the
//! real server is down, any local user may listen on its port and answer
//! in its place: grant a lock that is held, or pass messages off as
//! root's. So `hold`, `notify` and `status` ask the kernel which OS user
//! owns the listening socket before they send a request and again before
//! they believe its answer, and go on only for root, their own user, or
//! the user `NAMASTE_SERVER_USER` names (by default `namaste`, the system
//! user of the systemd unit). The library does not check: a program that
//! links it alone trusts whoever answers on the port.

use std::env;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use namaste::owner::{Owners, ROOT, Unknown, UserId};

use super::say;
use super::users::{described, id_named};

/// The exit status when another user's process serves the port, as
/// sysexits.h's EX_UNAVAILABLE: the service is not there to be used.
pub const EX_UNAVAILABLE: u8 = 69;

/// The variable that names one more OS user to trust as the server's.
const SERVER_USER: &str = "NAMASTE_SERVER_USER";

/// The user trusted when `NAMASTE_SERVER_USER` is not set.
const DEFAULT_SERVER_USER: &str = "namaste";

/// Runs `ask`, a request to the server on 127.0.0.1:`port`, if the server
/// is trusted before and after it; otherwise says why in one line and
/// answers the exit status to leave with. Nothing listening is not
/// refused here: the request itself says that no server answers.
pub fn vouched<T>(port: u16, ask: impl FnOnce() -> T) -> Result<T, ExitCode> {
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut owners = Owners::open();
    check(&mut owners, server)?;
    let answer = ask();
    check(&mut owners, server)?;
    Ok(answer)
}

fn check(owners: &mut Owners, server: SocketAddr) -> Result<(), ExitCode> {
    let user = match owners.listener(server) {
        Ok(listener) => listener.user,
        Err(Unknown::Gone) => return Ok(()),
        Err(why) => {
            return Err(refuse(format_args!(
                "cannot tell which OS user runs the server on {server} ({why}), so its answers are not believed"
            )));
        }
    };
    let named = named_server_user();
    // SAFETY: geteuid has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    if trusted(user, me, named.as_ref().ok().copied().flatten()) {
        return Ok(());
    }
    let user = described(user);
    Err(match named {
        Err(name) => refuse(format_args!(
            "the server on {server} runs as {user}, and {SERVER_USER} names no OS user ({name:?}): not believed"
        )),
        Ok(_) => refuse(format_args!(
            "the server on {server} runs as {user}, not as root, your user or {SERVER_USER} ({}): not believed; if {user} is meant to run it, set {SERVER_USER}={user}",
            env::var(SERVER_USER).unwrap_or_else(|_| DEFAULT_SERVER_USER.into())
        )),
    })
}

fn refuse(why: std::fmt::Arguments) -> ExitCode {
    say(why);
    ExitCode::from(EX_UNAVAILABLE)
}

/// Whether a server run by `server` is believed by a client run by `me`,
/// with `named` the user `NAMASTE_SERVER_USER` names, if any.
fn trusted(server: UserId, me: UserId, named: Option<UserId>) -> bool {
    server == ROOT || server == me || Some(server) == named
}

/// The user `NAMASTE_SERVER_USER` names (a login name or a number), or
/// by default `namaste` if that user exists; `Err` with the name when a
/// set variable names no user.
fn named_server_user() -> Result<Option<UserId>, String> {
    let Some(name) = env::var_os(SERVER_USER) else {
        return Ok(id_named(DEFAULT_SERVER_USER));
    };
    let name = name.to_string_lossy().into_owned();
    match name.parse() {
        Ok(id) => Ok(Some(id)),
        Err(_) => id_named(&name).map(Some).ok_or(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn believes_root_its_own_user_and_the_named_one_alone() {
        assert!(trusted(ROOT, 1000, None));
        assert!(trusted(1000, 1000, None));
        assert!(trusted(998, 1000, Some(998)));
        assert!(!trusted(65534, 1000, Some(998)));
        assert!(!trusted(65534, ROOT, None));
    }
}
