//! `namaste status`: the server's counters, or who holds one lock.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::process::ExitCode;

use namaste::client::Client;
use namaste::status::{Holder, LockStatus, UserUse};

use super::args::{Arg, Args, Usage, counted, escaped, shortened, unknown};
use super::etcd;
use super::process::{Processes, command_line, holding};
use super::shell;
use super::target::{Lock, Target};
use super::users::name_of;
use super::{fail_request, out, say, status_json, trust};

pub const HELP: &str = "\
namaste status: print the server's counters, or who holds a lock

Usage: namaste status [NAME] [--json] [OPTIONS]
       namaste status --uid HEX [NAME] [OPTIONS]

Without NAME, prints one line: the server's version, bookings held, open
connections, requests served, verifications that found no live process,
uptime, lines kept, bookings that have a name (`namaste list`) and the
last fencing token given; then one line for each OS user that uses any
of the server's limits (for root, every such user; for anyone else,
their own):
  user=NAME user_id=N bookings=N lines=N waiters=N pending=N
bookings held, lines kept (bookings held on their holder's connection),
waiters queued (`hold --wait`) and requests pending behind verifications;
each user may take at most a share of each limit (`namaste run --shares`).
User `?` (user_id=?) stands for requests whose user the kernel could not
tell and bookings restored from an older state file: they share one share.

With NAME (or --uid), prints one line of space-separated key=value fields
about that lock, in this order:
  state=free waiters=N
  state=held since=TIME user=NAME user_id=N port=N token=N waiters=N pid=N[,N...] command=...
  state=shared [slots=N] holders=N waiters=N tokens=N[,N...] pid=N[,N...]
since is when it was granted (UTC, ISO 8601); user and user_id the OS user
that owns the holder's liveness responder; port that responder's port;
token the fencing token of its grant (`hold` gives it to its command as
NAMASTE_TOKEN; `namaste check` compares one with it); waiters how many `hold --wait` queue for it; pid every process that has the
responder open (`hold` and its command both do): the socket listening at
the exact address and port the server calls, owned by that user, found
through the kernel and /proc as lslocks finds them; command the first
one's command line to the end of the line, each argument a word quoted
as a shell would (`sleep '10 20'`: one argument after sleep), what a
terminal would act on written as $'\\xHH' escapes. A value nobody can tell
is `?`; when the holder's processes are hidden (they belong to another
user and you are not root), one line on standard error says so.
A lock held shared (`hold --shared`) or with slots (`hold --slots N`, whose
N shows as slots) shows how many hold it, and the tokens and processes of
the first 32 holders.
The holder is not verified: a holder that died since its last
verification still shows as held.

Exits with 68 and says so when no server answers on the port, with 69
when the server on the port runs as another OS user than root, yours or
NAMASTE_SERVER_USER's, with 2 for a command line that makes no sense (or a
NAMASTE_PORT that names no port), and with 1 for another error.

Options:
  --json        print one JSON document instead. Without NAME: version,
                bookings, connections, requests, verifications_failed,
                uptime_seconds, lines and names (null from a server that
                keeps none) and users, an array of objects with user (or
                null), user_id (or null), bookings, lines, waiters and
                pending. With NAME: name (a string, invalid UTF-8 replaced
                by U+FFFD, or null with --uid), name_hex (its exact
                bytes in hex, or null), state (\"free\" or \"held\"),
                waiters, and for a held lock since, user, user_id, port,
                pids (an array) and command (an array of the arguments, or
                null); a value nobody can tell is null
  --uid HEX     the lock's id as 128 hex digits, instead of the id of NAME;
                NAME may then be left out, and given only names the lock in
                messages (not with --per-user)
  --per-user    the id of NAME for this OS user alone (as `hold --per-user`)
  --port N      the server's port on 127.0.0.1 (default: NAMASTE_PORT if
                set, else 64009)
  --etcd URL[,URL...]
                the lock NAME in etcd instead (default: NAMASTE_ETCD if
                set), as `hold --etcd` keeps it: prints the holder's
                since, host, user, pid, token, lease and key, then one
                line per waiter, in the order they will be served
  --etcd-prefix P
                the key prefix (default namaste/)
";

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let mut target = Target::default();
    let mut etcd = etcd::Options::default();
    let mut words: Vec<&OsStr> = Vec::new();
    let mut as_json = false;
    let mut args = Args::new(args);
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Option("--json") => as_json = true,
            Arg::Option(option) if target.take(option, &mut args)? => {}
            Arg::Option(option) if etcd.take(option, &mut args, false)? => {}
            Arg::Option(other) => return Err(unknown("status", other)),
            Arg::Positional(word) => words.push(word),
            Arg::Rest(rest) => words.extend(rest.iter().map(OsString::as_os_str)),
        }
    }
    if let Some(etcd) = etcd.chosen()? {
        if as_json {
            return Err(Usage("status --json is not for locks in etcd".into()));
        }
        let name = match words[..] {
            [name] => Some(name),
            _ => None,
        };
        let name = etcd::lock_name("status", name, &target, false)?;
        return etcd::status(etcd, name);
    }
    let name = match words[..] {
        [] if !target.names_a_lock() => {
            let client = target.client()?;
            return Ok(counters(&client, as_json));
        }
        [] => None,
        [name] => Some(name),
        _ => {
            return Err(Usage(format!(
                "status takes at most one NAME, not {}",
                counted(words.len(), "word", "words")
            )));
        }
    };
    let Lock { id, shown } = target.lock("status", name)?;
    let uid = id.uid();
    let client = target.client()?;
    let queried = match trust::vouched(client.port(), || client.query(uid)) {
        Ok(queried) => queried,
        Err(untrusted) => return Ok(untrusted),
    };
    Ok(match queried {
        Ok(lock) => {
            let seen = Seen::of(&lock, &shown);
            match as_json {
                true => out(format_args!(
                    "{}\n",
                    status_json::lock(&lock, &seen, id.name())
                )),
                false => out(format_args!("{}\n", lock_line(&lock, &seen))),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail_request(e),
    })
}

fn counters(client: &Client, as_json: bool) -> ExitCode {
    let status = match trust::vouched(client.port(), || client.status()) {
        Ok(status) => status,
        Err(untrusted) => return untrusted,
    };
    match status {
        Ok(status) if as_json => {
            out(format_args!("{}\n", status_json::counters(&status)));
            ExitCode::SUCCESS
        }
        Ok(mut status) => {
            let usage = std::mem::take(&mut status.usage);
            out(format_args!("{status}\n"));
            for used in usage {
                out(format_args!("{}\n", use_line(&used)));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail_request(e),
    }
}

/// One OS user's use of the server's limits, readable.
fn use_line(used: &UserUse) -> String {
    let (name, id) = match used.user {
        u32::MAX => ("?".to_string(), "?".to_string()),
        id => (
            name_of(id).unwrap_or_else(|| "?".to_string()),
            id.to_string(),
        ),
    };
    format!(
        "user={name} user_id={id} bookings={} lines={} waiters={} pending={}",
        used.bookings, used.lines, used.waiters, used.pending
    )
}

/// What this process sees of a lock's holder through the kernel and
/// `/proc`: its processes and the first one's command line.
pub struct Seen {
    pub pids: Vec<u32>,
    pub command: Option<Vec<Vec<u8>>>,
}

impl Seen {
    /// What can be seen of the holders of `lock` (its exclusive one, or
    /// the shared ones it names), called `name` in messages; says on
    /// standard error what cannot.
    fn of(lock: &LockStatus, name: &str) -> Seen {
        let pids: Vec<u32> = lock
            .holders()
            .flat_map(|holder| Seen::pids_of(holder, name))
            .collect();
        let command = pids.first().and_then(|pid| command_line(*pid));
        Seen { pids, command }
    }

    /// The processes of `holder` of the lock called `name`.
    fn pids_of(holder: &Holder, name: &str) -> Vec<u32> {
        let &Holder {
            user,
            address,
            port,
            ..
        } = holder;
        let responder = SocketAddr::new(address, port);
        let processes = holding(responder, user);
        match processes {
            Processes {
                listening: false, ..
            } => say(format_args!(
                "no socket of the holder's user listens any more at {responder}, where the server calls {name}'s holder: it has probably exited, and the server will find out at the next contention"
            )),
            Processes {
                ref pids, hidden, ..
            } if pids.is_empty() && hidden > 0 => say(format_args!(
                "cannot see which process holds {name}: {} belong to other users (run as the holder's user, or as root)",
                counted(hidden, "process", "processes")
            )),
            _ => {}
        }
        processes.pids
    }
}

/// The line `status NAME` prints for `lock`, whose holder shows as `seen`.
fn lock_line(lock: &LockStatus, seen: &Seen) -> String {
    let pids = |seen: &Seen| match &seen.pids[..] {
        [] => "?".to_string(),
        pids => pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    if let Some(shared) = &lock.shared {
        let slots = shared
            .slots
            .map_or(String::new(), |n| format!(" slots={n}"));
        let tokens = shared.holders.iter().map(|holder| {
            holder
                .token
                .map_or_else(|| "?".to_string(), |token| token.to_string())
        });
        return format!(
            "state=shared{slots} holders={} waiters={} tokens={} pid={}",
            shared.count,
            lock.waiters,
            tokens.collect::<Vec<_>>().join(","),
            pids(seen),
        );
    }
    let Some(Holder {
        since,
        user,
        port,
        token,
        ..
    }) = lock.holder
    else {
        return format!("state=free waiters={}", lock.waiters);
    };
    let unknown = || "?".to_string();
    let command = seen.command.as_ref().map_or_else(unknown, |args| {
        let bytes = args.iter().map(|arg| arg.len() + 1).sum::<usize>() - 1;
        shortened(shell::words(args), 1000, bytes)
    });
    format!(
        "state=held since={} user={} user_id={} port={port} token={} waiters={} pid={} command={command}",
        since.map_or_else(unknown, utc),
        user.and_then(name_of)
            .map_or_else(unknown, |user| escaped(user.as_bytes(), 64)),
        user.map_or_else(unknown, |user| user.to_string()),
        token.map_or_else(unknown, |token| token.to_string()),
        lock.waiters,
        pids(seen),
    )
}

/// `unix_seconds` as UTC in ISO 8601, to the second.
pub fn utc(unix_seconds: u64) -> String {
    let (days, rest) = (unix_seconds / 86_400, unix_seconds % 86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01, counted in
/// 400-year eras of 146,097 days that begin on a 1 March, so that the leap
/// day falls at the end of each year of the era.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_dates_across_leap_days_and_centuries() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(utc(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(utc(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(utc(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn a_free_lock_is_one_short_line() {
        let lock = LockStatus {
            holder: None,
            shared: None,
            waiters: 2,
        };
        let seen = Seen {
            pids: Vec::new(),
            command: None,
        };
        assert_eq!(lock_line(&lock, &seen), "state=free waiters=2");
    }
}
