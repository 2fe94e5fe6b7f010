//! `namaste run`: the server in the foreground.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;

use log::LevelFilter;
use namaste::server::{Config, MAX_DURATION, Server};

use super::args::{Arg, Args, Usage, chosen_port, quoted, unknown};
use super::{fail, systemd};

pub const HELP: &str = "\
namaste run: run the lock server in the foreground

Usage: namaste run [OPTIONS]

Options:
  --port N               port to listen on (default NAMASTE_PORT if set, else
                         64009; 0 picks a free one)
  --bind ADDR            loopback address to listen on (default 127.0.0.1)
  --rw-timeout SECS      time a client has to send its request, and a holder
                         to answer a verification (default 3; fractions allowed)
  --max-connections N    client connections open at once (default 1024)
  --max-bookings N       bookings held at once (default 65536)
  --max-waiting N        requests for one id waiting behind its verification
                         (default 64)
  --max-waiters N        WAITs queued for held ids, in all (default 512)
  --max-waiters-per-id N WAITs queued for one held id (default 512)
  --shares N             each OS user may take at most 1/N of each limit above
                         (of bookings, waiters, waiters for one id, requests
                         waiting for verifications, lines; at least 1 each),
                         so no one user locks the others out; root too
                         (default 8; 1 shares nothing)
  --probe-interval SECS  while someone waits for an id, verify its holder this
                         often (default 1; fractions allowed)
  --sweep-interval SECS  verify one booking older than --sweep-age this often,
                         so the dead leave without anyone asking for their ids
                         (default 0.25; fractions allowed; at most 3600)
  --sweep-age SECS       age at which a booking without a line is swept
                         (default 60; 0 sweeps every one; at most 3600)
  --max-lines N          lines kept open at once: connections on which holders
                         keep their bookings, ended by their close; past it a
                         booking is verified by call-back instead (default
                         65536; lines take no --max-connections slot)
  --state FILE           record bookings in FILE so that they survive a restart
                         of the server; one server per file (default:
                         $STATE_DIRECTORY/bookings under systemd's
                         StateDirectory=, else $XDG_STATE_HOME/namaste/ or
                         ~/.local/state/namaste/, file bookings-PORT; with
                         --port 0, none)
  --no-state             keep bookings in memory only: a restart loses them
  --log-level LEVEL      error, warn, info, debug or trace (default info)

The server logs to standard error. A request past a limit, or for another OS
user's per-user id, is refused: our clients get a reply that says which limit
and whose share (`hold` and `notify` exit with 73, or 77 for another user's
id); a BOOK of 0.6.0 is closed without a reply, which its client sees as an
error, never as a lock held elsewhere. When a limit of bookings is reached,
bookings without a line are verified, the user's own for its share, the
least recently verified first, and the dead dropped.
SIGTERM or SIGINT: it stops accepting, lets requests in flight finish, and
exits with 0. Under systemd it reports readiness (NOTIFY_SOCKET) and takes
a socket passed by socket activation (LISTEN_FDS) instead of binding one.
";

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let mut config = Config::default();
    let mut ip: IpAddr = config.addr.ip();
    let mut port = None;
    let mut level = LevelFilter::Info;
    let mut state = State::Default;
    let mut args = Args::new(args);
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Option(name @ "--port") => port = Some(args.port(name, Some("a free port"))?),
            Arg::Option(name @ "--bind") => ip = args.ip(name)?,
            Arg::Option(name @ "--rw-timeout") => {
                config.rw_timeout = args.seconds(name, false, Some(MAX_DURATION))?
            }
            Arg::Option(name @ "--max-connections") => {
                config.max_connections = args.count(name, 1)?
            }
            Arg::Option(name @ "--max-bookings") => config.max_bookings = args.count(name, 1)?,
            Arg::Option(name @ "--max-waiting") => config.max_waiting = args.count(name, 0)?,
            Arg::Option(name @ "--max-waiters") => config.max_waiters = args.count(name, 0)?,
            Arg::Option(name @ "--max-waiters-per-id") => {
                config.max_waiters_per_id = args.count(name, 0)?
            }
            Arg::Option(name @ "--max-lines") => config.max_lines = args.count(name, 0)?,
            Arg::Option(name @ "--shares") => config.shares = args.count(name, 1)?,
            Arg::Option(name @ "--sweep-interval") => {
                config.sweep_interval = args.seconds(name, false, Some(MAX_DURATION))?
            }
            Arg::Option(name @ "--sweep-age") => {
                config.sweep_age = args.seconds(name, true, Some(MAX_DURATION))?
            }
            Arg::Option(name @ "--probe-interval") => {
                config.probe_interval = args.seconds(name, false, Some(MAX_DURATION))?
            }
            Arg::Option(name @ "--log-level") => level = log_level(args.choice(name, LEVELS)?),
            Arg::Option(name @ "--state") => state = State::File(args.path(name)?),
            Arg::Option("--no-state") => state = State::None,
            Arg::Option(other) => return Err(unknown("run", other)),
            Arg::Positional(word) => {
                return Err(Usage(format!("run takes no words, not {}", quoted(word))));
            }
            Arg::Rest(_) => return Err(Usage("run takes nothing after --".into())),
        }
    }
    let port = chosen_port(port, Some("a free port"))?;
    config.addr.set_ip(ip);
    config.addr.set_port(port);
    config.state = match state {
        State::File(path) => Some(path),
        State::None => None,
        State::Default => match default_state_file(port) {
            Ok(path) => path,
            Err(e) => return Ok(fail(e)),
        },
    };
    Ok(serve(config, level))
}

fn serve(config: Config, level: LevelFilter) -> ExitCode {
    let log_config = simplelog::ConfigBuilder::new()
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    // Only fails when a logger is already set, which cannot be the case here.
    let _ = simplelog::WriteLogger::init(level, log_config, std::io::stderr());
    let addr = config.addr;
    let started = match systemd::activated_listener() {
        Ok(Some(listener)) => Server::from_listener(listener, config),
        Ok(None) => Server::bind(config),
        Err(e) => return fail(format_args!("cannot take the socket systemd passed: {e}")),
    };
    let mut server = match started {
        Ok(server) => server,
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            return fail(format_args!(
                "cannot listen on {addr}: address in use; another server is already listening on {addr}?"
            ));
        }
        Err(e) => return fail(format_args!("cannot start: {e}")),
    };
    if let Err(e) = server.stop_on_signals() {
        return fail(format_args!("cannot handle signals: {e}"));
    }
    if let Err(e) = systemd::notify_ready() {
        log::warn!("cannot tell systemd the server is ready: {e}");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where bookings are kept unless the command line says otherwise.
enum State {
    Default,
    File(PathBuf),
    None,
}

/// The state file when none is named: systemd's `StateDirectory=` if it
/// set one, else one per port in the user's state directory, created
/// (mode 0700) if missing. A server on port 0 picks a new port at every
/// start, so a file of its own would never be found again: none.
fn default_state_file(port: u16) -> Result<Option<PathBuf>, String> {
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY") {
        // A list when the unit names several; ours is the first.
        let dirs = PathBuf::from(dirs);
        let first = dirs
            .to_str()
            .and_then(|dirs| dirs.split(':').next())
            .map_or(dirs.clone(), PathBuf::from);
        return Ok(Some(first.join("bookings")));
    }
    if port == 0 {
        return Ok(None);
    }
    let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(state), _) if !state.is_empty() => PathBuf::from(state),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".local/state"),
        _ => return Ok(None),
    };
    let dir = base.join("namaste");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            format!(
                "cannot create {} for the state file: {e}; name one with --state FILE, or run with --no-state",
                dir.display()
            )
        })?;
    Ok(Some(dir.join(format!("bookings-{port}"))))
}

/// The levels `--log-level` takes, least to most.
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

fn log_level(level: &str) -> LevelFilter {
    match level {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => LevelFilter::Info,
    }
}
