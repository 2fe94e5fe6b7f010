//! The server: one thread, one `mio::Poll` holding the listener, the client
//! connections and the outgoing verification calls. It turns readiness into
//! registry events and registry actions into I/O. Nothing here blocks, and
//! every connection has a deadline, so a slow or silent peer costs one slot
//! and at most one timeout, never anyone else's time.

mod conn;
mod journal;
mod throttle;

use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::deadlines::{ConnRef, Deadlines};
use crate::registry::{Action, Answer, Ask, Limits, Refusal, Registry, ResponderIp, Verdict};
use crate::status::Status;
use crate::uid::Uid;
use crate::wire::{Decoder, Request};
use conn::{Conn, Phase, ReadProgress, Verification, read_request};
use journal::Journal;
use throttle::{Episode, Throttled};

const LISTENER: Token = Token(usize::MAX);
const STOP: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// How long to wait before accepting again after `accept` failed for want
/// of resources (file descriptors, memory): long enough not to spin, short
/// enough that clients barely notice.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// How the server runs: where it listens and the limits that bound its
/// memory and the time any peer can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen; must be a loopback address.
    pub addr: SocketAddr,
    /// How long a client may take to send its request, and a liveness
    /// responder to answer a verification.
    pub rw_timeout: Duration,
    /// Client connections open at once. Past it the server stops
    /// accepting (new clients wait in the kernel's backlog) until one
    /// closes. Verification calls come on top: at most one per waiting
    /// client.
    pub max_connections: usize,
    /// Bookings held at once; a book past it is closed without a reply.
    pub max_bookings: usize,
    /// Requests for one id that may wait behind its verification; one past
    /// it is closed without a reply.
    pub max_waiting: usize,
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
            state: None,
        }
    }
}

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
    registry: Registry<ConnRef>,
    /// Actions the registry asked for, not yet carried out.
    actions: Vec<Action<ConnRef>>,
    accepting: Accepting,
    warnings: Warnings,
    counters: Counters,
    journal: Option<Journal>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Open,
    /// All client slots are taken; accept again when one frees.
    Full,
    /// `accept` failed for want of resources; try again at this time.
    Failing {
        retry_at: Instant,
    },
}

/// Conditions a peer can cause over and over, each logged sparingly.
#[derive(Default)]
struct Warnings {
    full: Episode,
    accept_failing: Episode,
    cannot_verify: Throttled,
    line_full: Throttled,
    bookings_full: Throttled,
}

impl Server {
    /// Binds the listening socket. Refuses a non-loopback address: the
    /// liveness call-back only proves anything about processes of this
    /// machine.
    pub fn bind(config: Config) -> io::Result<Server> {
        refuse_non_loopback(config.addr.ip())?;
        let listener = TcpListener::bind(config.addr)?;
        Server::with_listener(listener, config)
    }

    /// Serves on a listening socket made elsewhere, as systemd's socket
    /// activation hands one over, instead of binding one; `config.addr` is
    /// ignored. Refuses a socket that does not listen on loopback.
    pub fn from_listener(listener: std::net::TcpListener, config: Config) -> io::Result<Server> {
        refuse_non_loopback(listener.local_addr()?.ip())?;
        listener.set_nonblocking(true)?;
        Server::with_listener(TcpListener::from_std(listener), config)
    }

    fn with_listener(mut listener: TcpListener, config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let stopper = Stopper(Arc::new(Waker::new(poll.registry(), STOP)?));
        let mut registry = Registry::new(Limits {
            max_bookings: config.max_bookings,
            max_waiting: config.max_waiting,
        });
        let journal = match &config.state {
            Some(path) => {
                let (journal, recorded) = Journal::open(path)?;
                let total = recorded.len();
                let restored = recorded
                    .into_iter()
                    .filter(|b| registry.restore(*b))
                    .count();
                if restored < total {
                    warn!(
                        "{}: {} of {total} recorded bookings are past --max-bookings and were dropped",
                        path.display(),
                        total - restored
                    );
                }
                info!(
                    "{}: {restored} bookings restored; each holder is verified at its next contention",
                    path.display()
                );
                Some(journal)
            }
            None => None,
        };
        Ok(Server {
            poll,
            listener: Some(listener),
            addr,
            stopper,
            deadlines: Deadlines::new(config.rw_timeout),
            registry,
            config,
            conns: Slab::new(),
            clients: 0,
            next_generation: 0,
            actions: Vec::new(),
            accepting: Accepting::Open,
            warnings: Warnings::default(),
            counters: Counters {
                started: Instant::now(),
                requests: 0,
                verifications_failed: 0,
            },
            journal,
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
            for event in events.iter() {
                match event.token() {
                    STOP => {
                        info!(
                            "stopping with {} bookings held and {} connections open",
                            self.registry.len(),
                            self.conns.len()
                        );
                        return Ok(());
                    }
                    SIGNALS => self.begin_draining(now),
                    LISTENER => match self.accepting {
                        Accepting::Open => self.accept(now),
                        // Someone new is waiting in the backlog.
                        Accepting::Full => self.note_full(now),
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
                    "stopped on {signal}: {} bookings held{}, {} requests cut short",
                    self.registry.len(),
                    self.journal.as_ref().map_or(String::new(), |j| format!(
                        " (recorded in {})",
                        j.path().display()
                    )),
                    self.clients
                );
                return Ok(());
            }
        }
    }

    /// Stops accepting on SIGTERM or SIGINT; the loop ends once the
    /// requests in flight are done.
    fn begin_draining(&mut self, now: Instant) {
        let Some(signals) = &mut self.signals else {
            return;
        };
        let Some(signal) = signals.pending().next() else {
            return;
        };
        if self.draining.is_none() {
            // Clients already in the backlog are served; dropping the
            // listener then makes new ones fail at once instead of waiting
            // for a server that is leaving.
            if self.accepting == Accepting::Open {
                self.accept(now);
            }
            self.listener = None;
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            self.draining = Some((name, now + 2 * self.config.rw_timeout));
            debug!("{name}: finishing {} requests in flight", self.clients);
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let retry = match self.accepting {
            Accepting::Failing { retry_at } => Some(retry_at),
            Accepting::Open | Accepting::Full => None,
        };
        let drained = self.draining.map(|(_, until)| until);
        [self.deadlines.next(), retry, drained]
            .into_iter()
            .flatten()
            .min()
    }

    fn accept(&mut self, now: Instant) {
        while self.clients < self.config.max_connections {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer.ip(), now),
                // Everyone waiting is in: whatever held clients back is over.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.warnings.accept_failing.over(
                        now,
                        "accepting connections again",
                        "failed attempts",
                    );
                    self.warnings
                        .full
                        .over(now, "connection slots free again", "arrivals");
                    return;
                }
                // The peer gave up before we got to it: nothing to do.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    self.warnings.accept_failing.occurred(
                        now,
                        format_args!(
                            "cannot accept connections ({e}); retrying every {ACCEPT_RETRY:?} until it passes"
                        ),
                    );
                    self.accepting = Accepting::Failing {
                        retry_at: now + ACCEPT_RETRY,
                    };
                    return;
                }
            }
        }
        self.accepting = Accepting::Full;
        self.note_full(now);
    }

    fn note_full(&mut self, now: Instant) {
        self.warnings.full.occurred(
            now,
            format_args!(
                "all {} connection slots in use (--max-connections); new clients wait until one frees",
                self.config.max_connections
            ),
        );
    }

    /// Accepts again once the reason to stop has passed. Connections that
    /// arrived meanwhile are in the backlog; with edge-triggered readiness
    /// no new event announces them, so this accepts without one.
    fn resume_accepting(&mut self, now: Instant) {
        let resume = match self.accepting {
            Accepting::Open => false,
            Accepting::Full => self.clients < self.config.max_connections,
            Accepting::Failing { retry_at } => retry_at <= now,
        };
        if resume {
            self.accepting = Accepting::Open;
            self.accept(now);
        }
    }

    /// Takes in a new client. Its request has usually arrived already, so
    /// reading at once mostly saves registering it with the poll at all.
    fn admit(&mut self, mut stream: TcpStream, ip: IpAddr, now: Instant) {
        let Some(ip) = ResponderIp::new(ip) else {
            // Only reachable through a misconfigured network stack; there
            // would be nowhere to call the requester back.
            warn!("closing a connection from {ip}, which a loopback server cannot call back");
            return;
        };
        let conn = ConnRef {
            key: self.conns.vacant_key(),
            generation: self.next_generation(),
        };
        let mut decoder = Decoder::new();
        let (phase, complete) = match read_request(&mut stream, &mut decoder) {
            ReadProgress::Complete(request) => (Phase::Waiting { ip, request }, true),
            ReadProgress::Pending => {
                if let Err(e) =
                    self.poll
                        .registry()
                        .register(&mut stream, Token(conn.key), Interest::READABLE)
                {
                    warn!("cannot watch a connection from {ip}: {e}; closing it");
                    return;
                }
                self.deadlines.start(now, conn);
                (Phase::Reading { ip, decoder }, false)
            }
            ReadProgress::Failed(why) => {
                debug!("closing {ip} without a reply: {why}");
                return;
            }
        };
        self.conns.insert(Conn {
            stream,
            generation: conn.generation,
            phase,
        });
        self.clients += 1;
        if complete {
            self.submit(conn, now);
        }
    }

    fn next_generation(&mut self) -> u32 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }

    fn ready(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match &mut conn.phase {
            Phase::Reading { ip, decoder } => match read_request(&mut conn.stream, decoder) {
                ReadProgress::Complete(request) => {
                    conn.phase = Phase::Waiting { ip: *ip, request };
                    let generation = conn.generation;
                    self.submit(ConnRef { key, generation }, now);
                }
                ReadProgress::Pending => {}
                ReadProgress::Failed(why) => {
                    debug!("closing {ip} without a reply: {why}");
                    self.close(key);
                }
            },
            // The request is complete; whatever else arrives is ignored.
            Phase::Waiting { .. } => {}
            Phase::Verifying(verification) => {
                if let Some(verdict) = verification.advance(&mut conn.stream) {
                    let uid = verification.uid;
                    // Everything the exchange needs is read: a reset spares
                    // both ends the closing handshake and this side the
                    // TIME_WAIT of an outgoing connection per verification.
                    let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
                    self.close(key);
                    self.decide(uid, verdict);
                    self.carry_out(now);
                }
            }
        }
    }

    /// Hands the complete request of `from` to the registry, or answers a
    /// STATUS at once.
    fn submit(&mut self, from: ConnRef, now: Instant) {
        let Some(Phase::Waiting { ip, request }) = self.conns.get(from.key).map(|c| &c.phase)
        else {
            return;
        };
        match Ask::of(request) {
            Some(ask) => {
                let ip = *ip;
                self.registry.request(from, ip, ask, &mut self.actions);
                self.carry_out(now);
            }
            None => self.report_status(from.key, now),
        }
    }

    fn report_status(&mut self, key: usize, now: Instant) {
        self.counters.requests += 1;
        let line = format!(
            "{}\n",
            Status {
                version: env!("CARGO_PKG_VERSION").to_string(),
                bookings: self.registry.len() as u64,
                connections: self.conns.len() as u64,
                requests: self.counters.requests,
                verifications_failed: self.counters.verifications_failed,
                uptime: Duration::from_secs(now.duration_since(self.counters.started).as_secs()),
            }
        );
        // A fresh socket's send buffer takes a line this short whole.
        let _ = io::Write::write(&mut self.conns[key].stream, line.as_bytes());
        self.close(key);
    }

    fn decide(&mut self, uid: Uid, verdict: Verdict) {
        debug!("verified the process behind {uid:?}: {verdict:?}");
        if verdict == Verdict::Dead {
            self.counters.verifications_failed += 1;
        }
        self.registry.verified(uid, verdict, &mut self.actions);
    }

    /// The message of a waiting NOTIFY request, to hand to the holder.
    fn message_of(&self, from: ConnRef) -> Option<&[u8]> {
        match &self.conns.get(from.key)?.phase {
            Phase::Waiting {
                request: Request::Notify { message, .. },
                ..
            } => Some(message),
            _ => None,
        }
    }

    fn carry_out(&mut self, now: Instant) {
        while let Some(action) = self.actions.pop() {
            match action {
                Action::Reply { to, answer } => self.reply(to, answer),
                Action::Refuse { to, why } => {
                    self.warn_refusal(why, now);
                    self.refuse(to, why);
                }
                Action::Verify {
                    uid,
                    handshake,
                    at,
                    message_from,
                } => {
                    let message = message_from.and_then(|from| self.message_of(from));
                    self.verify(Verification::new(uid, handshake, message), at, now);
                }
            }
        }
    }

    fn reply(&mut self, to: ConnRef, answer: Answer) {
        self.counters.requests += 1;
        let Some(mut conn) = self.take(to) else {
            return;
        };
        let Phase::Waiting { ip, request } = &conn.phase else {
            return;
        };
        // The state file hears of a change before the client does.
        let granted = match (answer, request) {
            (Answer::Granted, Request::Book { uid, handshake, .. }) => Some((*uid, *handshake)),
            _ => None,
        };
        let recorded = match (granted, request) {
            (Some((uid, _)), _) => self.record_booked(&uid),
            (None, Request::CheckOut { uid, .. }) if answer == Answer::CheckedOut => {
                self.record_released(uid)
            }
            _ => Ok(()),
        };
        if let Err(e) = recorded {
            error!("cannot write the state file: {e}; closing {ip}'s {request} without a reply");
            if let Some((uid, handshake)) = granted {
                self.registry.grant_undelivered(uid, handshake);
            }
            return;
        }
        let delivered = matches!(io::Write::write(&mut conn.stream, &[answer.byte()]), Ok(1));
        if delivered {
            debug!("{ip}: {request}: {answer:?}");
            return;
        }
        debug!("{ip}: {request}: {answer:?}, but the client is gone");
        if let Some((uid, handshake)) = granted
            && self.registry.grant_undelivered(uid, handshake)
            && let Err(e) = self.record_released(&uid)
        {
            error!("cannot write the state file: {e}");
        }
    }

    /// Records in the state file, if there is one, that `uid` is now held.
    fn record_booked(&mut self, uid: &Uid) -> io::Result<()> {
        let (Some(journal), Some(booking)) = (&mut self.journal, self.registry.holder(uid)) else {
            return Ok(());
        };
        journal.booked(booking)?;
        journal.compact_if_grown(self.registry.len(), self.registry.bookings())
    }

    /// Records in the state file, if there is one, that `uid` is free.
    fn record_released(&mut self, uid: &Uid) -> io::Result<()> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        journal.released(uid)?;
        journal.compact_if_grown(self.registry.len(), self.registry.bookings())
    }

    fn verify(&mut self, mut verification: Verification, at: SocketAddr, now: Instant) {
        let uid = verification.uid;
        let mut stream = match TcpStream::connect(at) {
            Ok(stream) => stream,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return self.decide(uid, Verdict::Dead);
            }
            Err(e) => return self.cannot_verify(uid, at, e, now),
        };
        // On loopback the connection is often up by now, and writing early
        // saves a round through the poll.
        if let Some(verdict) = verification.advance(&mut stream) {
            return self.decide(uid, verdict);
        }
        let key = self.conns.vacant_key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.cannot_verify(uid, at, e, now);
        }
        let generation = self.next_generation();
        self.conns.insert(Conn {
            stream,
            generation,
            phase: Phase::Verifying(verification),
        });
        self.deadlines.start(now, ConnRef { key, generation });
    }

    /// The server's own failure, not the process's: neither grant nor
    /// release anything on it.
    fn cannot_verify(&mut self, uid: Uid, at: SocketAddr, e: io::Error, now: Instant) {
        self.warnings.cannot_verify.warn(
            now,
            format_args!("cannot call back {at} to verify it: {e}; its request is refused"),
        );
        self.decide(uid, Verdict::Inconclusive);
    }

    fn warn_refusal(&mut self, why: Refusal, now: Instant) {
        match why {
            Refusal::LineFull => self.warnings.line_full.warn(
                now,
                format_args!(
                    "refused a request: {} requests for one id already wait behind its verification (--max-waiting)",
                    self.config.max_waiting
                ),
            ),
            Refusal::BookingsFull => self.warnings.bookings_full.warn(
                now,
                format_args!(
                    "refused a book: {} bookings held (--max-bookings)",
                    self.config.max_bookings
                ),
            ),
            // Already warned about by `cannot_verify`.
            Refusal::Inconclusive => {}
        }
    }

    /// Closes connections whose deadline passed: a client still sending
    /// its request, or a responder that has not answered, which is silent:
    /// no proof either way.
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
                Phase::Waiting { .. } => {}
                Phase::Verifying(verification) => {
                    let (uid, verdict) = (verification.uid, verification.verdict_on_timeout());
                    self.close(expired.key);
                    self.decide(uid, verdict);
                }
            }
        }
        self.carry_out(now);
    }

    fn refuse(&mut self, to: ConnRef, why: Refusal) {
        self.counters.requests += 1;
        if let Some(Conn {
            phase: Phase::Waiting { ip, request },
            ..
        }) = self.take(to)
        {
            debug!("{ip}: {request}: refused, closing without a reply ({why:?})");
        }
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
        conn
    }
}

fn refuse_non_loopback(ip: IpAddr) -> io::Result<()> {
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
