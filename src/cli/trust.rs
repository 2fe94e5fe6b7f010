//! Whether the command line believes the server on its port. While the
//! real server is down, any local user may listen on its port and answer
//! in its place: grant a lock that is held, or pass messages off as
//! root's. So `hold`, `notify` and `status` ask the kernel which OS user
//! owns the socket listening on the port (on 127.0.0.1, or on 0.0.0.0 or
//! `[::]`, which take its connections too) before they send a request and
//! again before they believe its answer, and go on only for root, their
//! own user, or the user `NAMASTE_SERVER_USER` names (by default
//! `namaste`, the system user of the systemd unit). The library does not
//! check: a program that links it alone trusts whoever answers on the
//! port.

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
/// answers the exit status to leave with. Nothing listening before the
/// request is not refused here: the request itself says that no server
/// answers. But an answer is believed only if a trusted server listens
/// once it has come: one that listened just long enough to answer and
/// was gone at both checks is not.
pub fn vouched<T, E>(
    port: u16,
    ask: impl FnOnce() -> Result<T, E>,
) -> Result<Result<T, E>, ExitCode> {
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut owners = Owners::open();
    check(&mut owners, server, Absent::Allowed)?;
    let answer = ask();
    let absent = match answer {
        Ok(_) => Absent::Refused,
        Err(_) => Absent::Allowed,
    };
    check(&mut owners, server, absent)?;
    Ok(answer)
}

/// Whether finding nothing listening on the port passes a check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Absent {
    Allowed,
    Refused,
}

fn check(owners: &mut Owners, server: SocketAddr, absent: Absent) -> Result<(), ExitCode> {
    let user = match owners.receiving(server) {
        Ok(listener) => listener.user,
        Err(Unknown::Gone) if absent == Absent::Allowed => return Ok(()),
        Err(Unknown::Gone) => {
            return Err(refuse(format_args!(
                "nothing listens on {server} any more, so the answer that came from it is not believed"
            )));
        }
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
    fn an_answer_is_not_believed_once_nothing_listens() {
        let port = {
            let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            gone.local_addr().unwrap().port()
        };
        // As from a server that listened just long enough to answer.
        let answered = vouched(port, || Ok::<_, ()>("granted"));
        assert_eq!(answered, Err(ExitCode::from(EX_UNAVAILABLE)));
        // No answer came: the request's own error says no server answers.
        assert_eq!(
            vouched(port, || Err::<(), _>("no server")),
            Ok(Err("no server"))
        );
    }

    #[test]
    fn believes_root_its_own_user_and_the_named_one_alone() {
        assert!(trusted(ROOT, 1000, None));
        assert!(trusted(1000, 1000, None));
        assert!(trusted(998, 1000, Some(998)));
        assert!(!trusted(65534, 1000, Some(998)));
        assert!(!trusted(65534, ROOT, None));
    }
}
