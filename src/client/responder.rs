//! A holder's liveness responder: the listener the server calls back to
//! prove the holder alive, and where NOTIFY messages arrive.
//!
//! Any process on the machine can connect to it, so it must not be
//! stallable: one thread polls every connection without blocking, each has
//! a deadline, and when too many are open, whatever has arrived on them is
//! read first (a verification whose handshake is in is answered and
//! leaves), and only then is the oldest dropped. So silent connections can
//! never make the server's verification wait, and a flood cannot push it
//! out once its handshake is in. (Sparing connections that sent a correct
//! prefix of the handshake would do more, but would tell a flooder, by
//! which of its connections survive, the handshake byte by byte.) Should
//! a flood still push a verification out, the server hears silence, which
//! proves nothing: the booking stays.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::Message;
use super::exchange::{Exchange, Step};
use super::line::{ATTACH, LINE, Line, Watch};
use crate::deadlines::{ConnRef, Deadlines};
use crate::handshake::Handshake;
use crate::uid::{UID_LEN, Uid};

const LISTENER: Token = Token(usize::MAX);
const STOP: Token = Token(usize::MAX - 1);

/// Takes one NOTIFY message; answers whether it was taken (acknowledged to
/// the sender).
pub(crate) type Deliver = Box<dyn Fn(Message) -> bool + Send>;

/// Connections served at once. The server's verification needs one; more
/// only let an attacker keep some open longer.
const MAX_EXCHANGES: usize = 16;

/// A running responder; stopping it (on drop) closes its port and ends its
/// thread before `drop` returns.
pub(crate) struct Responder {
    port: u16,
    /// The listening socket's descriptor, owned by the thread; open for as
    /// long as this value lives.
    listener_fd: RawFd,
    /// Where the responder thread hands NOTIFY messages.
    deliver: Arc<Mutex<Deliver>>,
    /// The booking's line, if the server keeps one, which the thread
    /// watches.
    line: Line,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Listens on 127.0.0.1 at a port of the system's choosing; answers
    /// `handshake` with `uid`, and passes NOTIFY messages to `messages`
    /// until [`forward`](Responder::forward) names another receiver. A
    /// line given to [`line`](Responder::line) is re-attached to the server
    /// on 127.0.0.1:`server_port` if the server closes it.
    pub fn start(
        uid: Uid,
        handshake: Handshake,
        rw_timeout: Duration,
        server_port: u16,
        messages: SyncSender<Message>,
    ) -> io::Result<Responder> {
        // Full or gone: not taken.
        let deliver: Deliver = Box::new(move |message| messages.try_send(message).is_ok());
        let deliver = Arc::new(Mutex::new(deliver));
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = listener.local_addr()?.port();
        let listener_fd = listener.as_raw_fd();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), STOP)?;
        let line = Line::new(poll.registry().try_clone()?);
        let serve = Serve {
            watch: line.watcher(uid, handshake, server_port, rw_timeout),
            poll,
            listener,
            uid,
            handshake,
            deliver: deliver.clone(),
            exchanges: Slab::with_capacity(MAX_EXCHANGES),
            deadlines: Deadlines::new(rw_timeout),
            next_generation: 0,
        };
        let thread = thread::Builder::new()
            // Fits the 15 characters Linux keeps of a thread name.
            .name(format!("responder:{port}"))
            .spawn(move || serve.run())?;
        Ok(Responder {
            port,
            listener_fd,
            deliver,
            line,
            waker,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The booking's line, which this responder's thread watches.
    pub fn line(&self) -> &Line {
        &self.line
    }

    /// Hands the NOTIFY messages that arrive from now on to `deliver`
    /// (on the responder's thread) instead; it answers whether it took
    /// each one.
    pub fn forward(&self, deliver: Deliver) {
        if let Ok(mut current) = self.deliver.lock() {
            *current = deliver;
        }
    }

    /// A second descriptor of the listening socket, which keeps the port
    /// listening for as long as it, or any copy a child inherits, is open.
    pub fn duplicate_listener(&self) -> io::Result<OwnedFd> {
        // SAFETY: the thread that owns the listener runs, and keeps it
        // open, until `self` is dropped; `&self` outlives this borrow.
        unsafe { BorrowedFd::borrow_raw(self.listener_fd) }.try_clone_to_owned()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let (Ok(()), Some(thread)) = (self.waker.wake(), self.thread.take()) {
            let _ = thread.join();
        }
    }
}

struct Serve {
    poll: Poll,
    listener: TcpListener,
    uid: Uid,
    handshake: Handshake,
    deliver: Arc<Mutex<Deliver>>,
    exchanges: Slab<Exchange>,
    deadlines: Deadlines,
    next_generation: u32,
    watch: Watch,
}

impl Serve {
    fn run(mut self) {
        let mut events = Events::with_capacity(32);
        loop {
            let next = match (self.deadlines.next(), self.watch.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Nothing sensible is left to do; the booking will fail its
                // next verification, as a dead holder's would.
                Err(_) => return,
            }
            for event in events.iter() {
                match event.token() {
                    STOP => return,
                    LISTENER => self.accept(),
                    LINE => self.watch.line_ready(self.poll.registry(), Instant::now()),
                    ATTACH => self
                        .watch
                        .attach_ready(self.poll.registry(), Instant::now()),
                    Token(key) => self.advance(key),
                }
            }
            let now = Instant::now();
            self.watch.tick(self.poll.registry(), now);
            while let Some(expired) = self.deadlines.expired(now) {
                self.close(expired);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors, say: the connection stays in the
                // backlog, and the next event retries.
                Err(_) => return,
            };
            if self.exchanges.len() == MAX_EXCHANGES {
                // Whatever has arrived is read before anyone is given up:
                // a verification whose handshake is in is answered now,
                // and leaves.
                self.advance_all();
            }
            if self.exchanges.len() == MAX_EXCHANGES {
                self.drop_oldest();
            }
            let key = self.exchanges.vacant_key();
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            self.next_generation = self.next_generation.wrapping_add(1);
            let generation = self.next_generation;
            self.exchanges.insert(Exchange {
                stream,
                generation,
                step: Step::Handshake {
                    got: 0,
                    heard: [0; UID_LEN],
                },
            });
            self.deadlines
                .start(Instant::now(), ConnRef { key, generation });
            // The server writes its handshake right after connecting.
            self.advance(key);
        }
    }

    fn advance_all(&mut self) {
        let keys: Vec<usize> = self.exchanges.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.advance(key);
        }
    }

    /// Makes room for a new connection by giving up the longest-open one.
    fn drop_oldest(&mut self) {
        while let Some(oldest) = self.deadlines.pop_oldest() {
            if self.close(oldest) {
                return;
            }
        }
    }

    /// Closes `conn` if it is still open; answers whether it was.
    fn close(&mut self, conn: ConnRef) -> bool {
        let open = self
            .exchanges
            .get(conn.key)
            .is_some_and(|exchange| exchange.generation == conn.generation);
        if open {
            self.exchanges.remove(conn.key);
        }
        open
    }

    fn advance(&mut self, key: usize) {
        let Some(exchange) = self.exchanges.get_mut(key) else {
            return;
        };
        let finished = exchange.advance(&self.uid, &self.handshake, &self.deliver);
        if finished {
            self.exchanges.remove(key);
        }
    }
}
