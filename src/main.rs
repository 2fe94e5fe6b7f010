//! `namaste`: the lock server and its command line.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use log::LevelFilter;
use namaste::reactor::{Config, Server};

const HELP: &str = "\
namaste: named locks for the processes of one machine

Usage:
  namaste run [OPTIONS]   run the lock server in the foreground
  namaste version         print the version
  namaste help            print this help (also: --help, -h)

Options of run:
  --port N               port to listen on (default 64009; 0 picks a free one)
  --bind ADDR            loopback address to listen on (default 127.0.0.1)
  --rw-timeout SECS      time a client has to send its request, and a holder
                         to answer a verification (default 3; fractions allowed)
  --max-connections N    client connections open at once (default 1024)
  --max-bookings N       bookings held at once (default 65536)
  --max-waiting N        requests for one id waiting behind its verification
                         (default 64)
  --log-level LEVEL      error, warn, info, debug or trace (default info)

The server logs to standard error. A request past a limit is closed without
a reply, which its client sees as an error, never as a lock held elsewhere.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => match parse_run(&args[1..]) {
            Ok((config, level)) => run(config, level),
            Err(message) => usage_error(&message),
        },
        Some("version" | "--version" | "-V") => {
            println!(
                "namaste {} (wire protocol of namaste 0.6.0)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some("help" | "--help" | "-h") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown command {other:?}")),
        None => usage_error("no command given"),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("namaste: {message}; see `namaste help`");
    ExitCode::from(2)
}

fn run(config: Config, level: LevelFilter) -> ExitCode {
    let log_config = simplelog::ConfigBuilder::new()
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    // Only fails when a logger is already set, which cannot be the case here.
    let _ = simplelog::WriteLogger::init(level, log_config, std::io::stderr());
    let addr = config.addr;
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!(
                "namaste: cannot listen on {addr}: address in use; another server is already listening on {addr}?"
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("namaste: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the options of `namaste run`, each as `--name value` or
/// `--name=value`.
fn parse_run(args: &[String]) -> Result<(Config, LevelFilter), String> {
    let mut config = Config::default();
    let mut ip = config.addr.ip();
    let mut port = config.addr.port();
    let mut level = LevelFilter::Info;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if matches!(arg.as_str(), "--help" | "-h") {
            print!("{HELP}");
            std::process::exit(0);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| rest.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--port" => port = parse(name, &value()?)?,
            "--bind" => ip = parse::<IpAddr>(name, &value()?)?,
            "--rw-timeout" => config.rw_timeout = parse_seconds(name, &value()?)?,
            "--max-connections" => config.max_connections = parse_positive(name, &value()?)?,
            "--max-bookings" => config.max_bookings = parse_positive(name, &value()?)?,
            "--max-waiting" => config.max_waiting = parse(name, &value()?)?,
            "--log-level" => level = parse_level(&value()?)?,
            _ => return Err(format!("unknown option {arg:?} for run")),
        }
    }
    config.addr = SocketAddr::new(ip, port);
    Ok((config, level))
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name} {value:?} is not valid"))
}

fn parse_positive(name: &str, value: &str) -> Result<usize, String> {
    match parse(name, value)? {
        0 => Err(format!("{name} must be at least 1")),
        n => Ok(n),
    }
}

fn parse_seconds(name: &str, value: &str) -> Result<Duration, String> {
    let seconds: f64 = parse(name, value)?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|timeout| !timeout.is_zero())
        .ok_or_else(|| format!("{name} must be a positive number of seconds, not {value:?}"))
}

fn parse_level(value: &str) -> Result<LevelFilter, String> {
    match value {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err(format!(
            "--log-level {value:?} is not one of error, warn, info, debug, trace"
        )),
    }
}
