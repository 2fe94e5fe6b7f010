//! How a server is set up: its address, timeouts and limits, and the
//! checks a configuration must pass before the server binds.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The longest rw timeout or probe interval a server takes: an hour is
/// already far past any use, and it keeps every deadline computable.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// How the server runs: where it listens and the limits that bound its
/// memory and the time any peer can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen; must be a loopback address.
    pub addr: SocketAddr,
    /// How long a client may take to send its request, and a liveness
    /// responder to answer a verification.
    pub rw_timeout: Duration,
    /// Client connections open at once. Past it, a newcomer takes the
    /// slot of the connection that has been sending its request longest
    /// without finishing it; with none such, new clients wait in the
    /// kernel's backlog until one closes. Requests pending behind
    /// verifications take at most half the slots. Verification calls come
    /// on top: at most one per waiting client.
    pub max_connections: usize,
    /// Bookings held at once; a book past it is closed without a reply.
    pub max_bookings: usize,
    /// Requests for one id that may wait behind its verification; one past
    /// it is closed without a reply.
    pub max_waiting: usize,
    /// WAITs queued for held ids, in all; one past it is refused.
    /// Queued waiters do not count against `max_connections`.
    pub max_waiters: usize,
    /// WAITs queued for one held id; one past it is refused.
    pub max_waiters_per_id: usize,
    /// How many users' worth each bound is divided into: one OS user may
    /// take at most `max(1, bound / shares)` of the bookings, lines,
    /// waiters and pending requests, so that no one user locks the others
    /// out; 1 shares nothing.
    pub shares: usize,
    /// How often the sweep verifies one call-back booking older than
    /// `sweep_age`, so that the dead leave the table without anyone asking
    /// for their ids.
    pub sweep_interval: Duration,
    /// How old a call-back booking must be before the sweep verifies it;
    /// 0 sweeps every one.
    pub sweep_age: Duration,
    /// How often the holder of an id that someone waits for is verified.
    pub probe_interval: Duration,
    /// Lines kept open at once (connections on which holders keep their
    /// bookings); past it, a LINE is granted without one, by call-back.
    /// Lines do not count against `max_connections`.
    pub max_lines: usize,
    /// Where to record bookings so that they survive a restart of the
    /// server; `None` keeps them in memory only.
    pub state: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::new(crate::DEFAULT_IP, crate::DEFAULT_PORT),
            rw_timeout: crate::DEFAULT_RW_TIMEOUT,
            max_connections: 1024,
            max_bookings: 65_536,
            max_waiting: 64,
            max_waiters: 512,
            max_waiters_per_id: 512,
            shares: 8,
            sweep_interval: Duration::from_millis(250),
            sweep_age: Duration::from_secs(60),
            probe_interval: Duration::from_secs(1),
            max_lines: 65_536,
            state: None,
        }
    }
}

pub(super) fn refuse_past_bounds(config: &Config) -> io::Result<()> {
    for (name, duration) in [
        ("rw timeout", config.rw_timeout),
        ("probe interval", config.probe_interval),
        ("sweep interval", config.sweep_interval),
    ] {
        if duration.is_zero() || duration > MAX_DURATION {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the {name} must be more than 0 and at most {} s, not {duration:?}",
                    MAX_DURATION.as_secs()
                ),
            ));
        }
    }
    if config.sweep_age > MAX_DURATION {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the sweep age must be at most {} s, not {:?}",
                MAX_DURATION.as_secs(),
                config.sweep_age
            ),
        ));
    }
    if config.shares == 0 {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "the shares must be at least 1 (1 shares nothing)",
        ));
    }
    Ok(())
}

pub(super) fn refuse_non_loopback(ip: IpAddr) -> io::Result<()> {
    if ip.is_loopback() {
        return Ok(());
    }
    Err(io::Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{ip} is not a loopback address; Namaste serves the processes of this machine only (try 127.0.0.1 or ::1)"
        ),
    ))
}
