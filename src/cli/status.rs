//! `namaste status`: the server's counters.

use std::ffi::OsString;
use std::process::ExitCode;

use namaste::client::Client;

use super::args::{Arg, Args, Usage, quoted, unknown};
use super::{fail, out};

pub const HELP: &str = "\
namaste status: print the server's counters

Usage: namaste status [--port N]

Prints one line: the server's version, bookings held, open connections,
requests served, verifications that found no live process, and uptime.
Exits with 1 and says so when no server answers.

Options:
  --port N      the server's port on 127.0.0.1 (default 64009)
";

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let mut client = Client::new();
    let mut args = Args::new(args);
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Option(option @ "--port") => {
                client = client.with_port(args.port(option, None)?);
            }
            Arg::Option(other) => return Err(unknown("status", other)),
            Arg::Positional(word) => {
                return Err(Usage(format!(
                    "status takes no words, not {}",
                    quoted(word)
                )));
            }
            Arg::Rest(_) => return Err(Usage("status takes nothing after --".into())),
        }
    }
    Ok(match client.status() {
        Ok(status) => {
            out(format_args!("{status}\n"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    })
}
