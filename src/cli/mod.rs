//! The `namaste` command line: the server and the client commands.

mod args;
mod check;
mod etcd;
mod hold;
mod json;
mod list;
mod lock_env;
mod message_pipe;
mod notify;
mod printer;
mod process;
mod run;
mod shell;
mod status;
mod status_json;
mod supervise;
mod systemd;
mod target;
mod trust;
mod users;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use args::{Usage, quoted};
use namaste::uid::LockId;

/// The exit status of a command refused for want of the lock, as
/// sysexits.h's EX_TEMPFAIL: try again later.
const EX_TEMPFAIL: u8 = 75;

/// The exit status of a command refused at one of the server's limits,
/// as sysexits.h's EX_CANTCREAT: the booking (or the wait, the message)
/// could not be made.
const EX_CANTCREAT: u8 = 73;

/// The exit status when the lock is another OS user's: a holder of another
/// user (notify), or another user's per-user id; as sysexits.h's EX_NOPERM.
const EX_NOPERM: u8 = 77;

/// The exit status when no server answers on the port (nothing listens
/// there), as sysexits.h's EX_NOHOST: the server named does not exist.
/// Its own, so that a script tells it from a lock held elsewhere (75), a
/// server not believed (69) and the command's own failure.
const EX_NOHOST: u8 = 68;

/// The exit status of a request for slots that met another count in
/// force, or of one shared that met slots (or slots that met shared), as
/// sysexits.h's EX_CONFIG: the callers disagree on how the lock is used.
const EX_CONFIG: u8 = 78;

/// The exit status of a command line that makes no sense.
const EX_USAGE: u8 = 2;

const HELP: &str = "\
namaste: named locks for the processes of one machine

Usage:
  namaste run [OPTIONS]                 run the lock server in the foreground
  namaste hold NAME [OPTIONS] -- COMMAND [ARGS...]
                                        run COMMAND while holding the lock NAME
  namaste notify NAME MESSAGE [OPTIONS] hand MESSAGE to the holder of NAME
  namaste status [NAME] [OPTIONS]       print the server's counters, or who
                                        holds the lock NAME
  namaste list [OPTIONS]                print every lock held
  namaste check NAME TOKEN [OPTIONS]    whether TOKEN is the fencing token of
                                        the current holder of NAME
  namaste version                       print the version and the protocol
  namaste help [COMMAND]                print this help, or a command's

Every command takes --help. The client commands ask the server on port
NAMASTE_PORT of 127.0.0.1 when the variable is set (--port wins over it),
else on 64009.

Exit statuses: 0 success, 1 failure, 2 a command line that makes no sense
(or a NAMASTE_PORT that names no port), 75 (hold, notify) nobody free or
nobody there: the lock is held elsewhere, or nobody holds it, 73 (hold,
notify) refused at one of the server's limits (your OS user's share of it,
or the total; the message says which), 77 (hold, notify) the lock is
another OS user's: another user holds it (notify), or its id is another
user's per-user id, 68 (hold, notify, status, list, check) no server
answers on the port, 69 (hold, notify, status, list, check) the server
runs as another OS user than root, yours or the one NAMASTE_SERVER_USER
names (default: namaste), so it is not believed, 78 (hold) --slots N met
another count in force, or --shared met slots, or --slots met shared.
`hold` exits with its
command's status otherwise; `check` with 1 when TOKEN is not the current
holder's.
";

/// What `namaste version` prints: the version, and every request and reply
/// this build adds to the wire protocol of namaste 0.6.0, so that one can
/// tell what a client of it may ask.
const VERSION_LINE: &str = concat!(
    "namaste ",
    env!("CARGO_PKG_VERSION"),
    " (wire protocol of namaste 0.6.0, with STATUS, NOTIFY, WAIT, QUERY, LINE, ATTACH, LIST and NAME, ",
    "and LINE and WAIT with a fencing token, and LINE and WAIT shared or with slots, ",
    "and the replies for another OS user, a user unknown, no line, a limit reached, ",
    "and another mode or count in force)\n"
);

const VERSION_HELP: &str = "\
namaste version: print the version and the protocol

Usage: namaste version

Prints one line: this build's version, and the requests and replies it adds
to the wire protocol of namaste 0.6.0 (whose BOOK and CHECK OUT it keeps
byte for byte). Exits with 0, or 2 when given any word.
";

const HELP_HELP: &str = "\
namaste help: print the help of namaste, or of one command

Usage: namaste help [COMMAND]

COMMAND is one of run, hold, notify, status, list, check, version and help; without it,
prints what every command is for and every exit status. Exits with 0, or 2
for a COMMAND there is none of.
";

/// Runs the command line `args` (without the program name).
pub fn main(args: &[OsString]) -> ExitCode {
    let Some((command, rest)) = args.split_first() else {
        return usage_error(None, Usage("no command given".into()));
    };
    let Some(command) = command.to_str() else {
        return usage_error(
            None,
            Usage(format!("no command is named {}", quoted(command))),
        );
    };
    let result = match command {
        "run" | "hold" | "notify" | "status" | "list" | "check" if args::asks_for_help(rest) => {
            help(Some(command))
        }
        "version" | "--version" | "-V" if args::asks_for_help(rest) => help(Some("version")),
        "help" | "--help" | "-h" if args::asks_for_help(rest) => help(Some("help")),
        "run" => run::main(rest),
        "hold" => hold::main(rest),
        "notify" => notify::main(rest),
        "status" => status::main(rest),
        "list" => list::main(rest),
        "check" => check::main(rest),
        "version" | "--version" | "-V" => match rest.first() {
            None => {
                out(VERSION_LINE);
                Ok(ExitCode::SUCCESS)
            }
            Some(word) => Err(Usage(format!(
                "version takes no words, not {}",
                quoted(word)
            ))),
        },
        "help" | "--help" | "-h" => match rest {
            [] => help(None),
            [_, extra, ..] => Err(Usage(format!(
                "help takes at most one COMMAND, not also {}",
                quoted(extra)
            ))),
            [word] => match word.to_str() {
                Some(word) => help(Some(word)),
                None => Err(Usage(format!(
                    "no help for {}: no such command",
                    quoted(word)
                ))),
            },
        },
        other => Err(Usage(format!(
            "unknown command {}",
            quoted(OsStr::new(other))
        ))),
    };
    result.unwrap_or_else(|usage| usage_error(Some(command), usage))
}

fn help(command: Option<&str>) -> Result<ExitCode, Usage> {
    let text = match command {
        None => HELP,
        Some("run") => run::HELP,
        Some("hold") => hold::HELP,
        Some("notify") => notify::HELP,
        Some("status") => status::HELP,
        Some("list") => list::HELP,
        Some("check") => check::HELP,
        Some("version") => VERSION_HELP,
        Some("help") => HELP_HELP,
        Some(other) => {
            return Err(Usage(format!(
                "no help for {}: no such command",
                quoted(OsStr::new(other))
            )));
        }
    };
    out(text);
    Ok(ExitCode::SUCCESS)
}

fn usage_error(command: Option<&str>, usage: Usage) -> ExitCode {
    let see = match command {
        Some(command @ ("run" | "hold" | "notify" | "status" | "check" | "version")) => {
            format!("namaste help {command}")
        }
        _ => "namaste help".to_string(),
    };
    say(format_args!("{usage}; see `{see}`"));
    ExitCode::from(EX_USAGE)
}

/// The id of `name`: for everyone, or for this OS user alone.
fn id_of(name: &OsStr, per_user: bool) -> LockId {
    if per_user {
        LockId::per_user_named(name.as_bytes())
    } else {
        LockId::named(name.as_bytes())
    }
}

/// Reports a failed request in one line: no server, a refusal at a limit
/// or for another user's id each with its own status, anything else with
/// status 1.
fn fail_request(e: namaste::client::Error) -> ExitCode {
    use namaste::client::Error;
    let code = match e {
        // The hint names the port asked, so that it starts the server
        // this command would have found.
        Error::NoServer { port, source } => {
            say(format_args!(
                "no Namaste server answers on 127.0.0.1:{port} ({source}); start one with `namaste run --port {port}`"
            ));
            return ExitCode::from(EX_NOHOST);
        }
        Error::Full { .. } => EX_CANTCREAT,
        Error::OtherUsersId => EX_NOPERM,
        Error::SlotsInForce(_) | Error::SharedInForce => EX_CONFIG,
        e => return fail(e),
    };
    say(e);
    ExitCode::from(code)
}

/// Reports a failure in one line and answers status 1.
fn fail(what: impl fmt::Display) -> ExitCode {
    say(what);
    ExitCode::FAILURE
}

/// One line on standard error, after "namaste: ". A standard error that is
/// gone (a closed pipe, say) must not stop a command: what it says is lost,
/// nothing else.
fn say(line: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "namaste: {line}");
}

/// `text` on standard output, where the user asked for it; if nobody
/// reads it any more, it is lost, and nothing else.
fn out(text: impl fmt::Display) {
    let _ = write!(io::stdout(), "{text}");
}
