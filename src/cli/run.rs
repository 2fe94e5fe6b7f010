//! `namaste run`: the server in the foreground.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use log::LevelFilter;
use namaste::reactor::{Config, MAX_DURATION, Server};

use super::args::{Arg, Args, Usage, unknown};
use super::{fail, systemd};

pub const HELP: &str = "\
namaste run: run the lock server in the foreground

Usage: namaste run [OPTIONS]

Options:
  --port N               port to listen on (default 64009; 0 picks a free one)
  --bind ADDR            loopback address to listen on (default 127.0.0.1)
  --rw-timeout SECS      time a client has to send its request, and a holder
                         to answer a verification (default 3; fractions allowed)
  --max-connections N    client connections open at once (default 1024)
  --max-bookings N       bookings held at once (default 65536)
  --max-waiting N        requests for one id waiting behind its verification
                         (default 64)
  --max-waiters N        WAITs queued for held ids, in all (default 512)
  --max-waiters-per-id N WAITs queued for one held id (default 64)
  --probe-interval SECS  while someone waits for an id, verify its holder this
                         often (default 1; fractions allowed)
  --state FILE           record bookings in FILE so that they survive a restart
                         of the server (default: $STATE_DIRECTORY/bookings
                         under systemd's StateDirectory=, else none)
  --log-level LEVEL      error, warn, info, debug or trace (default info)

The server logs to standard error. A request past a limit is closed without
a reply, which its client sees as an error, never as a lock held elsewhere.
SIGTERM or SIGINT: it stops accepting, lets requests in flight finish, and
exits with 0. Under systemd it reports readiness (NOTIFY_SOCKET) and takes
a socket passed by socket activation (LISTEN_FDS) instead of binding one.
";

pub fn main(args: &[String]) -> Result<ExitCode, Usage> {
    let mut config = Config::default();
    let mut ip: IpAddr = config.addr.ip();
    let mut port = config.addr.port();
    let mut level = LevelFilter::Info;
    let mut args = Args::new(args);
    while let Some(arg) = args.next() {
        match arg {
            Arg::Option(name @ "--port") => port = args.value(name)?,
            Arg::Option(name @ "--bind") => ip = args.value(name)?,
            Arg::Option(name @ "--rw-timeout") => {
                config.rw_timeout = args.seconds(name, MAX_DURATION)?
            }
            Arg::Option(name @ "--max-connections") => {
                config.max_connections = at_least_one(name, args.value(name)?)?
            }
            Arg::Option(name @ "--max-bookings") => {
                config.max_bookings = at_least_one(name, args.value(name)?)?
            }
            Arg::Option(name @ "--max-waiting") => config.max_waiting = args.value(name)?,
            Arg::Option(name @ "--max-waiters") => config.max_waiters = args.value(name)?,
            Arg::Option(name @ "--max-waiters-per-id") => {
                config.max_waiters_per_id = args.value(name)?
            }
            Arg::Option(name @ "--probe-interval") => {
                config.probe_interval = args.seconds(name, MAX_DURATION)?
            }
            Arg::Option(name @ "--log-level") => level = log_level(&args.value::<String>(name)?)?,
            Arg::Option(name @ "--state") => config.state = Some(args.value(name)?),
            Arg::Option(other) => return Err(unknown("run", other)),
            Arg::Positional(word) => return Err(Usage(format!("run takes no {word:?}"))),
            Arg::Rest(_) => return Err(Usage("run takes nothing after --".into())),
        }
    }
    config.addr.set_ip(ip);
    config.addr.set_port(port);
    if config.state.is_none() {
        config.state = default_state_file();
    }
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
        Err(e) => return fail(format_args!("cannot start on {addr}: {e}")),
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

/// Where systemd's `StateDirectory=` puts state, if it set one.
fn default_state_file() -> Option<PathBuf> {
    let dirs = std::env::var_os("STATE_DIRECTORY")?;
    // A list when the unit names several; ours is the first.
    let first = dirs.to_str()?.split(':').next()?.to_string();
    Some(PathBuf::from(first).join("bookings"))
}

fn at_least_one(name: &str, n: usize) -> Result<usize, Usage> {
    match n {
        0 => Err(Usage(format!("{name} must be at least 1"))),
        n => Ok(n),
    }
}

fn log_level(value: &str) -> Result<LevelFilter, Usage> {
    match value {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err(Usage(format!(
            "--log-level {value:?} is not one of error, warn, info, debug, trace"
        ))),
    }
}
