//! `namaste check`: whether a fencing token is the current holder's, for
//! a resource that cannot keep the greatest token it has seen itself.

use std::ffi::OsString;
use std::process::ExitCode;

use super::args::{Usage, quoted};
use super::target::{Lock, NameAnd, name_and};
use super::{fail_request, say, trust};

pub const HELP: &str = "\
namaste check: whether a fencing token is the current holder's

Usage: namaste check NAME TOKEN [OPTIONS]
       namaste check --uid HEX [NAME] TOKEN [OPTIONS]

Asks the server who holds NAME, and exits with 0 if TOKEN is the fencing
token of its current holder: the number `namaste hold` gives its command
in NAMASTE_TOKEN (and `namaste status NAME` shows). A holder that lost the
lock without knowing it (a background process left with the lock that
closed the descriptors it inherited and ran on, say) finds its token no
longer current, and should not write: call this right before each write
to a resource that cannot compare tokens itself. Name the lock as `hold`
was told to: with --per-user if it was; after `hold --uid HEX`,
NAMASTE_NAME is the id: `check --uid \"$NAMASTE_NAME\" \"$NAMASTE_TOKEN\"`.
The answer is true when the server gave it; a resource that keeps the
greatest token it has seen and refuses smaller ones needs no server.

Exit status (nothing is printed for 0):
  0   TOKEN is the current holder's
  1   it is not: NAME is free, or held with another token (one line says
      which, unless -q), or the server gives no tokens, or another error
  68  no server answers on the port
  69  the server on the port runs as another OS user than root, yours or
      NAMASTE_SERVER_USER's
  2   a command line that makes no sense (a TOKEN that is not a whole
      number), or a NAMASTE_PORT that names no port

Options:
  --uid HEX     the lock's id as 128 hex digits, instead of the id of NAME;
                NAME may then be left out, and given only names the lock in
                messages (not with --per-user)
  --per-user    the id of NAME for this OS user alone (as `hold --per-user`)
  --port N      the server's port on 127.0.0.1 (default: NAMASTE_PORT if
                set, else 64009)
  -q, --quiet   no line when TOKEN is not the current holder's (errors are
                still said)
";

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let NameAnd {
        target,
        quiet,
        name,
        word: token,
    } = name_and("check", "TOKEN", args)?;
    let token = token
        .to_str()
        .and_then(|token| token.parse::<u64>().ok())
        .ok_or_else(|| {
            Usage(format!(
                "check takes a TOKEN that is a whole number, not {}",
                quoted(token)
            ))
        })?;
    let Lock { id, shown } = target.lock("check", name)?;
    let uid = id.uid();
    let client = target.client()?;
    let queried = match trust::vouched(client.port(), || client.query(uid)) {
        Ok(queried) => queried,
        Err(untrusted) => return Ok(untrusted),
    };
    let lock = match queried {
        Ok(lock) => lock,
        Err(e) => return Ok(fail_request(e)),
    };
    if lock.holders().any(|holder| holder.token == Some(token)) {
        return Ok(ExitCode::SUCCESS);
    }
    // QUERY lists the first holders of a lock held shared; LIST lists
    // them all, each with its token.
    let unlisted = lock
        .shared
        .as_ref()
        .is_some_and(|shared| shared.count > shared.holders.len() as u64);
    if unlisted {
        let listed = match trust::vouched(client.port(), || client.list()) {
            Ok(listed) => listed,
            Err(untrusted) => return Ok(untrusted),
        };
        match listed {
            Ok(locks) if locks.iter().any(|l| l.uid == uid && l.token == Some(token)) => {
                return Ok(ExitCode::SUCCESS);
            }
            Ok(_) => {}
            Err(e) => return Ok(fail_request(e)),
        }
    }
    let current: Vec<Option<u64>> = lock.holders().map(|holder| holder.token).collect();
    let why_not = match current[..] {
        [] => format!("nobody holds {shown}"),
        [None, ..] => format!("the server gives no tokens: none is current for {shown}"),
        [Some(current)] => format!("{shown} is held with token {current}, not {token}"),
        _ => format!("{shown} is held shared, and no holder's token is {token}"),
    };
    if !quiet {
        say(why_not);
    }
    Ok(ExitCode::FAILURE)
}
