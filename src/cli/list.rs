//! `namaste list`: every lock held, as `lslocks` lists file locks.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::process::ExitCode;

use namaste::client::Client;
use namaste::listing::Listed;
use namaste::owner::ROOT;

use super::args::{Arg, Args, Usage, escaped, quoted, unknown};
use super::json;
use super::process::holding_each;
use super::status::utc;
use super::status_json::user_name;
use super::target::Target;
use super::users::name_of;
use super::{fail_request, out, trust};

pub const HELP: &str = "\
namaste list: print every lock held

Usage: namaste list [--json] [--noheadings] [--port N]

Prints a header line, then one line for each lock held, sorted by name
(locks without a name shown last, by id), in columns:
  USER     the OS user whose request was granted the lock (? if unknown)
  PIDS     the processes that hold it, found as `status NAME` finds them
           (comma-separated); ? for another user's lock unless you are root
  SINCE    when it was granted (UTC, ISO 8601; ? if unknown)
  WAITERS  how many `hold --wait` queue for it
  MODE     exclusive, shared (`hold --shared`) or slots:N (`hold --slots
           N`): a lock held shared or with slots has a line per holder
  NAME     the name it was booked by, escaped as `status` escapes words;
           uid:HEX (its id, 128 hex digits) when it was booked by id, when
           its booker sent no name (0.6.0 clients and older ones send none),
           or when it is another OS user's lock and you are not root; a
           name that begins with uid: shows as \\x75id:..., so that none
           passes for a lock whose name is not shown
The holders are not verified: one that died since its last verification
still shows until the server finds out.

Exits with 68 and says so when no server answers on the port, with 69
when the server on the port runs as another OS user than root, yours or
NAMASTE_SERVER_USER's, with 2 for a command line that makes no sense (or a
NAMASTE_PORT that names no port), and with 1 for another error (a server
that does not know LIST, such as 0.6.0, among them).

Options:
  --json        print one JSON document instead: {\"locks\": [...]}, each lock
                an object with name (a string, invalid UTF-8 replaced by
                U+FFFD, or null), name_hex (its exact bytes in hex, or null),
                uid, mode, user (or null), user_id (or null), pids (an array,
                or null when hidden or none was found), since (or null),
                token (the fencing token of the holder's grant, or null),
                line (whether the holder's connection keeps it) and waiters
  --noheadings  leave out the header line
  --port N      the server's port on 127.0.0.1 (default: NAMASTE_PORT if
                set, else 64009)
";

/// A held lock, with what this process could find out about its holder.
struct Shown {
    lock: Listed,
    /// `None` when hidden: another user's lock, and we are not root.
    pids: Option<Vec<u32>>,
}

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let mut target = Target::default();
    let (mut as_json, mut headings) = (false, true);
    let mut args = Args::new(args);
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Option("--json") => as_json = true,
            Arg::Option("--noheadings") => headings = false,
            Arg::Option("--port") if target.take("--port", &mut args)? => {}
            Arg::Option(other) => return Err(unknown("list", other)),
            Arg::Positional(word) => return Err(no_words(word)),
            Arg::Rest([word, ..]) => return Err(no_words(word)),
            Arg::Rest([]) => {}
        }
    }
    let client: Client = target.client()?;
    let listed = match trust::vouched(client.port(), || client.list()) {
        Ok(listed) => listed,
        Err(untrusted) => return Ok(untrusted),
    };
    let mut locks = match listed {
        Ok(locks) => locks,
        Err(e) => return Ok(fail_request(e)),
    };
    locks.sort_by(|a, b| {
        (a.name.is_none(), &a.name, a.uid.as_bytes()).cmp(&(
            b.name.is_none(),
            &b.name,
            b.uid.as_bytes(),
        ))
    });
    // SAFETY: geteuid has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    let visible = |lock: &Listed| me == ROOT || lock.user == Some(me);
    let responders: Vec<_> = locks
        .iter()
        .filter(|lock| visible(lock))
        .map(|lock| (SocketAddr::new(lock.address, lock.port), lock.user))
        .collect();
    let mut found = holding_each(&responders).into_iter();
    let shown: Vec<Shown> = locks
        .into_iter()
        .map(|lock| Shown {
            pids: visible(&lock).then(|| found.next().unwrap_or_default().pids),
            lock,
        })
        .collect();
    if as_json {
        out(format_args!("{}\n", document(&shown)));
    } else {
        if headings {
            out("USER PIDS SINCE WAITERS MODE NAME\n");
        }
        for lock in &shown {
            out(format_args!("{}\n", row(lock)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn no_words(word: &OsStr) -> Usage {
    Usage(format!("list takes no words, not {}", quoted(word)))
}

/// One lock's line of the table.
fn row(Shown { lock, pids }: &Shown) -> String {
    let unknown = || "?".to_string();
    let pids = match pids {
        Some(pids) if !pids.is_empty() => pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        _ => unknown(),
    };
    let name = lock
        .name
        .as_deref()
        .map_or_else(|| format!("uid:{}", lock.uid), shown_name);
    format!(
        "{} {pids} {} {} {} {name}",
        user_shown(lock.user).unwrap_or_else(unknown),
        lock.since.map_or_else(unknown, utc),
        lock.waiters,
        lock.mode_word(),
    )
}

/// A lock's name as the table shows it: escaped, and one that begins
/// with `uid:` with its first letter escaped, so that no name passes for
/// a lock whose name is not shown.
fn shown_name(name: &[u8]) -> String {
    match name.strip_prefix(b"u") {
        Some(rest) if rest.starts_with(b"id:") => format!("\\x75{}", escaped(rest, 299)),
        _ => escaped(name, 300),
    }
}

/// The name of OS user `user`, else its number; `None` when unknown.
fn user_shown(user: Option<u32>) -> Option<String> {
    user.map(|user| {
        name_of(user)
            .map(|name| escaped(name.as_bytes(), 64))
            .unwrap_or_else(|| user.to_string())
    })
}

/// The `--json` document of every lock.
fn document(shown: &[Shown]) -> String {
    let locks = shown.iter().map(|Shown { lock, pids }| {
        json::object(&[
            (
                "name",
                json::or_null(lock.name.as_deref().map(json::string)),
            ),
            (
                "name_hex",
                json::or_null(lock.name.as_deref().map(json::hex)),
            ),
            ("uid", json::string(lock.uid.to_string().as_bytes())),
            ("mode", json::string(lock.mode_word().as_bytes())),
            ("user", user_name(lock.user)),
            ("user_id", json::number(lock.user.map(u64::from))),
            (
                "pids",
                json::or_null(
                    pids.as_ref()
                        .filter(|pids| !pids.is_empty())
                        .map(|pids| json::array(pids.iter().map(u32::to_string))),
                ),
            ),
            (
                "since",
                json::or_null(lock.since.map(|since| json::string(utc(since).as_bytes()))),
            ),
            ("token", json::number(lock.token)),
            ("line", lock.line.to_string()),
            ("waiters", lock.waiters.to_string()),
        ])
    });
    json::object(&[("locks", json::array(locks))])
}

#[cfg(test)]
mod tests {
    use super::shown_name;

    #[test]
    fn a_name_that_begins_with_uid_cannot_pass_for_a_lock_without_one() {
        assert_eq!(shown_name(b"uid:5a5a"), r"\x75id:5a5a");
        assert_eq!(shown_name(b"uidx"), "uidx");
        assert_eq!(shown_name(b"build\x1b"), r"build\u{1b}");
    }
}
