//! `namaste notify`: hand a message to the holder of a lock.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use namaste::client::Notified;

use super::args::Usage;
use super::target::{Lock, NameAnd, name_and};
use super::{EX_NOPERM, EX_TEMPFAIL, fail, fail_request, say, trust};

pub const HELP: &str = "\
namaste notify: hand a message to the holder of a lock

Usage: namaste notify NAME MESSAGE [OPTIONS]
       namaste notify --uid HEX [NAME] MESSAGE [OPTIONS]

The server proves the holder of NAME alive and hands it MESSAGE (at most
64 KiB) on the same connection, with your OS user id. It hands messages over
only to a holder that runs as your OS user, or from root; the server asks
the kernel who owns each end.

Exit status, with one line saying which:
  0   the holder took the message
  75  no live process holds NAME
  77  another OS user holds NAME, or NAME is another OS user's per-user id:
      the message was not handed over
  73  the server refused the message at one of its limits (requests waiting
      for verifications): your OS user's share of it, or the total, as the
      message says
  68  no server answers on the port
  69  the server on the port runs as another OS user than root, yours or
      NAMASTE_SERVER_USER's: the message was not sent
  1   the holder is alive but did not take it (a client of namaste 0.6.0,
      say), the server could not tell the users apart, or another error
  2   a command line that makes no sense, or a NAMASTE_PORT that names no
      port

Options:
  --uid HEX     the lock's id as 128 hex digits, instead of the id of NAME;
                NAME may then be left out, and given only names the lock in
                messages (not with --per-user)
  --per-user    the id of NAME for this OS user alone (as `hold --per-user`)
  --port N      the server's port on 127.0.0.1 (default: NAMASTE_PORT if
                set, else 64009)
  -q, --quiet   no line when the holder took the message or nobody holds
                NAME (errors and refusals are still said)
";

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let NameAnd {
        target,
        quiet,
        name,
        word: message,
    } = name_and("notify", "MESSAGE", args)?;
    let Lock { id, shown: name } = target.lock("notify", name)?;
    let uid = id.uid();
    let client = target.client()?;
    let notified = match trust::vouched(client.port(), || client.notify(uid, message.as_bytes())) {
        Ok(notified) => notified,
        Err(untrusted) => return Ok(untrusted),
    };
    Ok(match notified {
        Ok(Notified::Delivered) => {
            if !quiet {
                say(format_args!("the holder of {name} took the message"));
            }
            ExitCode::SUCCESS
        }
        Ok(Notified::NoHolder) => {
            if !quiet {
                say(format_args!("no live process holds {name}"));
            }
            ExitCode::from(EX_TEMPFAIL)
        }
        Ok(Notified::Declined) => fail(format_args!(
            "the holder of {name} is alive but did not take the message"
        )),
        Ok(Notified::OtherUser) => {
            // SAFETY: geteuid has no preconditions and touches no memory.
            let me = unsafe { libc::geteuid() };
            match uid.per_user_owner() {
                Some(owner) if owner != me && me != 0 => say(format_args!(
                    "{name} is the per-user id of OS user {owner}; only that user (or root) may message its holder"
                )),
                _ => say(format_args!(
                    "another OS user holds {name}; messages go only to holders of your own user"
                )),
            }
            ExitCode::from(EX_NOPERM)
        }
        Ok(Notified::UserUnknown) => fail(format_args!(
            "the server could not tell whether the holder of {name} runs as your OS user, so it did not hand the message over"
        )),
        // Notified may grow: an answer this build does not know.
        Ok(other) => fail(format_args!(
            "the holder of {name} did not take the message ({other:?})"
        )),
        Err(e) => fail_request(e),
    })
}
