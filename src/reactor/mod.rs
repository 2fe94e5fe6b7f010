//! The server: one thread, one `mio::Poll` holding the listener, the client
//! connections and the outgoing verification calls. It turns readiness into
//! registry events and registry actions into I/O. Nothing here blocks, and
//! every connection has a deadline: one still sending its request, or a
//! verification, the rw timeout; a request pending behind
//! verifications, four of them; a queued WAIT, its own wait. So a slow or
//! silent peer costs a slot for a bounded time, never anyone else's.

mod accept;
mod config;
mod conn;
mod fds;
mod held;
mod journal;
mod line;
mod list;
mod refusals;
mod serve;
mod start;
mod stop;
mod throttle;
mod verify;
mod wait;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::deadlines::{ConnRef, Deadlines};
use crate::owner::Owners;
use crate::registry::{Action, RECLAIM_ROUNDS, Registry};
use crate::wire::Limit;
use accept::Accepting;
pub use config::{Config, MAX_DURATION};
use config::{refuse_non_loopback, refuse_past_bounds};
use conn::{Conn, Kept, Phase};
use journal::Journal;
use list::Listings;
use throttle::{Episode, Throttled};

const LISTENER: Token = Token(usize::MAX);
const STOP: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// How many connections the kernel may hold for the server before it
/// accepts them (capped by `net.core.somaxconn`, 4096 by default). mio and
/// the standard library ask for 128, which one user's burst of connections
/// fills in an instant; past it the kernel drops new clients' SYNs, and
/// they connect only a second or more later, or time out as if no server
/// listened.
const BACKLOG: i32 = 4096;

/// How many rw timeouts a request may be pending behind verifications
/// before it is closed without a reply, as clients wait for their reply.
const PENDING_PATIENCE: u32 = 4;

// A request parked at the bookings bound waits for a round of reclaiming
// at a time, each at most an rw timeout long: it must be answered with its
// refusal before its patience runs out and it is closed unanswered.
const _: () = assert!((RECLAIM_ROUNDS as u32) < PENDING_PATIENCE);

/// Stops a running [`Server`] from another thread.
#[derive(Clone)]
pub struct Stopper(Arc<Waker>);

impl Stopper {
    /// Asks the server to stop; its `run` returns soon after.
    pub fn stop(&self) -> io::Result<()> {
        self.0.wake()
    }
}

/// A bound, not yet running, lock server.
///
/// ```no_run
/// use namaste::reactor::{Config, Server};
///
/// let server = Server::bind(Config::default())?;
/// println!("listening on {}", server.local_addr());
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server {
    poll: Poll,
    /// `None` once a signal asked the server to stop: new clients are
    /// refused while those in flight finish.
    listener: Option<TcpListener>,
    addr: SocketAddr,
    stopper: Stopper,
    config: Config,
    conns: Slab<Conn>,
    /// Client connections in `conns`, the ones `max_connections` bounds.
    clients: usize,
    next_generation: u32,
    deadlines: Deadlines,
    /// When requests pending behind verifications must have
    /// their answer: a few rw timeouts after they joined it.
    patience: Deadlines,
    registry: Registry<ConnRef>,
    /// Actions the registry asked for, not yet carried out.
    actions: Vec<Action<ConnRef>>,
    accepting: Accepting,
    warnings: Warnings,
    counters: Counters,
    /// LISTs being written, by the OS user who asked.
    listings: Listings,
    journal: Option<Journal>,
    /// Asks the kernel which OS user a connection belongs to.
    owners: Owners,
    signals: Option<Signals>,
    /// Since which signal, and until when, requests in flight may finish.
    draining: Option<(&'static str, Instant)>,
}

/// What STATUS reports beyond the current sizes.
struct Counters {
    started: Instant,
    requests: u64,
    verifications_failed: u64,
}

/// Conditions a peer can cause over and over, each logged sparingly.
#[derive(Default)]
struct Warnings {
    full: Episode,
    accept_failing: Episode,
    cannot_verify: Throttled,
    /// One per limit and per kind of bound (a user's share, the total).
    limits: [[Throttled; 2]; Limit::ALL.len()],
    other_users_id: Throttled,
    evicting: Throttled,
    other_user: Throttled,
    false_name: Throttled,
    lists: Throttled,
}

impl Server {
    /// Binds the listening socket. Refuses a non-loopback address: the
    /// liveness call-back only proves anything about processes of this
    /// machine.
    pub fn bind(config: Config) -> io::Result<Server> {
        refuse_non_loopback(config.addr.ip())?;
        refuse_past_bounds(&config)?;
        let addr = config.addr;
        let listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        Server::with_listener(listener, config)
    }

    /// Serves on a listening socket made elsewhere, as systemd's socket
    /// activation hands one over, instead of binding one; `config.addr` is
    /// ignored. Refuses a socket that does not listen on loopback.
    pub fn from_listener(listener: std::net::TcpListener, config: Config) -> io::Result<Server> {
        refuse_non_loopback(listener.local_addr()?.ip())?;
        refuse_past_bounds(&config)?;
        listener.set_nonblocking(true)?;
        Server::with_listener(TcpListener::from_std(listener), config)
    }

    fn with_listener(mut listener: TcpListener, config: Config) -> io::Result<Server> {
        // Listening again on a listening socket sets its backlog; so does a
        // socket systemd made with a smaller one.
        socket2::SockRef::from(&listener).listen(BACKLOG)?;
        let poll = Poll::new()?;
        let addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let stopper = Stopper(Arc::new(Waker::new(poll.registry(), STOP)?));
        let lines_kept = fds::lines_within_limit(&config);
        let mut registry = start::registry(&config, lines_kept.lines);
        let journal = start::restore(&config, &mut registry)?;
        // Once nothing can stop the start any more, so that a start that
        // fails says only why.
        lines_kept.log();
        Ok(Server {
            poll,
            listener: Some(listener),
            addr,
            stopper,
            deadlines: Deadlines::new(config.rw_timeout),
            patience: Deadlines::new(config.rw_timeout * PENDING_PATIENCE),
            registry,
            config,
            conns: Slab::new(),
            clients: 0,
            next_generation: 0,
            actions: Vec::new(),
            accepting: Accepting::Open,
            warnings: Warnings::default(),
            listings: Listings::default(),
            counters: Counters {
                started: Instant::now(),
                requests: 0,
                verifications_failed: 0,
            },
            journal,
            owners: Owners::open(),
            signals: None,
            draining: None,
        })
    }

    /// Makes SIGTERM and SIGINT stop the server gracefully: it stops
    /// accepting, lets the requests in flight finish (for at most twice the
    /// rw timeout: a holder's verification, then a booker's), and `run`
    /// returns.
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// The address the server listens on (with the real port when it was
    /// bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Serves until stopped by a [`Stopper`]. Returns an error only when
    /// polling itself fails.
    pub fn run(mut self) -> io::Result<()> {
        info!(
            "listening on {}: rw timeout {:?}, up to {} connections, {} bookings, {} waiting per id",
            self.addr,
            self.config.rw_timeout,
            self.config.max_connections,
            self.config.max_bookings,
            self.config.max_waiting
        );
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .next_wakeup()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.registry.set_wall_clock(unix_seconds());
            for event in events.iter() {
                match event.token() {
                    STOP => {
                        info!(
                            "stopping with {}, {} open",
                            self.kept(),
                            plural(self.conns.len(), "connection", "connections")
                        );
                        return Ok(());
                    }
                    SIGNALS => self.begin_draining(now),
                    LISTENER => match self.accepting {
                        // Someone new is waiting in the backlog (when full,
                        // perhaps to take the place of a silent one).
                        Accepting::Open | Accepting::Yielded | Accepting::Full => self.accept(now),
                        Accepting::Failing { .. } => {}
                    },
                    Token(key) => self.ready(key, now),
                }
            }
            self.expire(now);
            self.resume_accepting(now);
            if let Some((signal, until)) = self.draining
                && (self.clients == 0 || now >= until)
            {
                info!(
                    "stopped on {signal}: {}; {} cut short",
                    self.kept(),
                    plural(self.clients, "request", "requests")
                );
                return Ok(());
            }
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let retry = match self.accepting {
            Accepting::Failing { retry_at } => Some(retry_at),
            // Clients may wait in the backlog: poll without waiting.
            Accepting::Yielded => Some(Instant::now()),
            Accepting::Open | Accepting::Full => None,
        };
        let drained = self.draining.map(|(_, until)| until);
        [
            self.deadlines.next(),
            self.patience.next(),
            self.registry.poll_timeout(),
            retry,
            drained,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Closes connections whose deadline passed: a client still sending
    /// its request, or a responder that has not answered, which is silent:
    /// no proof either way. Tells the registry the time.
    fn expire(&mut self, now: Instant) {
        while let Some(expired) = self.deadlines.expired(now) {
            let Some(conn) = self.conns.get(expired.key) else {
                continue;
            };
            if conn.generation != expired.generation {
                continue;
            }
            match &conn.phase {
                Phase::Reading { ip, .. } => {
                    debug!(
                        "closing {ip} without a reply: no whole request within {:?}",
                        self.config.rw_timeout
                    );
                    self.close(expired.key);
                }
                // Their own bounds: patience, the wait, the line's booking.
                Phase::Waiting { .. } | Phase::Line { .. } => {}
                Phase::Listing(_) => {
                    debug!(
                        "closing a LIST not read whole within {:?}",
                        self.config.rw_timeout
                    );
                    self.close(expired.key);
                }
                Phase::Verifying(verification) => {
                    let (uid, verdict) = (verification.uid, verification.verdict_on_timeout());
                    self.close(expired.key);
                    self.decide(uid, verdict);
                }
            }
        }
        while let Some(expired) = self.patience.expired(now) {
            if let Some(Conn {
                generation,
                phase:
                    Phase::Waiting {
                        ip,
                        request,
                        kept: Kept::Pending,
                        ..
                    },
                ..
            }) = self.conns.get(expired.key)
                && *generation == expired.generation
            {
                debug!(
                    "{ip}: {request}: no answer within {:?} pending; closing without a reply",
                    self.config.rw_timeout * PENDING_PATIENCE
                );
                self.end(expired, now);
            }
        }
        // Waits that are over, and holders due for a probe.
        self.registry.handle_timeout(now, &mut self.actions);
        self.carry_out(now);
    }

    /// Takes the client connection `to` out of the slab, if it is still
    /// the one the registry knows; dropping it closes it.
    fn take(&mut self, to: ConnRef) -> Option<Conn> {
        let current = self
            .conns
            .get(to.key)
            .is_some_and(|conn| conn.generation == to.generation);
        current.then(|| self.remove(to.key))
    }

    fn close(&mut self, key: usize) {
        // Closing the socket also takes it out of the poll.
        drop(self.remove(key));
    }

    fn remove(&mut self, key: usize) -> Conn {
        let conn = self.conns.remove(key);
        if conn.phase.is_client() {
            self.clients -= 1;
        }
        if let Phase::Listing(listing) = &conn.phase {
            self.listings.ended(listing);
        }
        conn
    }
}

/// The wall-clock time in whole seconds since the Unix epoch; 0 for a
/// clock set before it.
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `n` and the noun, singular or plural as `n` wants.
pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
