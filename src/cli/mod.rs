//! The `namaste` command line: the server and the client commands.

mod args;
mod hold;
mod notify;
mod printer;
mod process;
mod run;
mod status;
mod systemd;
mod trust;
mod users;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use args::{Usage, quoted};
use namaste::Uid;

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
  namaste version                       print the version
  namaste help [COMMAND]                print this help, or a command's

Every command takes --help. Exit statuses: 0 success, 1 failure, 2 a
command line that makes no sense, 75 (hold, notify) nobody free or nobody
there: the lock is held elsewhere, or nobody holds it, 73 (hold, notify)
refused at one of the server's limits (your OS user's share of it, or the
total; the message says which), 77 (hold, notify) the lock is another OS
user's: another user holds it (notify), or its id is another user's
per-user id, 69 (hold, notify, status) the server runs as
another OS user than root, yours or the one NAMASTE_SERVER_USER names
(default: namaste), so it is not believed.
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
        "run" | "hold" | "notify" | "status" if args::asks_for_help(rest) => help(Some(command)),
        "run" => run::main(rest),
        "hold" => hold::main(rest),
        "notify" => notify::main(rest),
        "status" => status::main(rest),
        "version" | "--version" | "-V" => {
            out(format_args!(
                "namaste {} (wire protocol of namaste 0.6.0, with STATUS, NOTIFY and WAIT)\n",
                env!("CARGO_PKG_VERSION")
            ));
            Ok(ExitCode::SUCCESS)
        }
        "help" | "--help" | "-h" => match rest.first() {
            None => help(None),
            Some(word) => match word.to_str() {
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
        Some(command @ ("run" | "hold" | "notify" | "status")) => format!("namaste help {command}"),
        _ => "namaste help".to_string(),
    };
    say(format_args!("{usage}; see `{see}`"));
    ExitCode::from(EX_USAGE)
}

/// The id of `name`: for everyone, or for this OS user alone.
fn id_of(name: &OsStr, per_user: bool) -> Uid {
    if per_user {
        // SAFETY: geteuid has no preconditions and touches no memory.
        Uid::per_user(name.as_bytes(), unsafe { libc::geteuid() })
    } else {
        Uid::from_name_bytes(name.as_bytes())
    }
}

/// Reports a failed request in one line: a refusal at a limit or for
/// another user's id with its own status, anything else with status 1.
fn fail_request(e: namaste::client::Error) -> ExitCode {
    use namaste::client::Error;
    let code = match e {
        Error::Full { .. } => EX_CANTCREAT,
        Error::OtherUsersId => EX_NOPERM,
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
