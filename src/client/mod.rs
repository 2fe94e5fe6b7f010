//! A small blocking client: book an id, hold it while working, check out.
//!
//! ```no_run
//! use namaste::Uid;
//! use namaste::client::Client;
//!
//! let client = Client::new();
//! match client.book(Uid::from_name("com.example.editor"))? {
//!     Some(booking) => {
//!         // The only instance: do the work. Dropping `booking` checks out.
//!         while let Ok(message) = booking.messages().recv() {
//!             println!("another instance asked: {}", String::from_utf8_lossy(&message.bytes));
//!         }
//!     }
//!     None => {
//!         client.notify(Uid::from_name("com.example.editor"), b"open notes.txt")?;
//!     }
//! }
//! # Ok::<(), namaste::client::Error>(())
//! ```

mod booking;
mod error;
mod exchange;
mod inherit;
mod line;
mod responder;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use booking::{Booking, Message};
pub use error::Error;
pub use line::LineState;
use responder::Responder;

use crate::status::{LockStatus, Status};
use crate::uid::Uid;
use crate::wire::{
    MAX_MESSAGE_LEN, MAX_WAIT, REPLY_DECLINED, REPLY_NO, REPLY_OTHER_USER, REPLY_USER_UNKNOWN,
    REPLY_YES, Request,
};

/// How many rw timeouts to wait for a reply: a book may need the holder and
/// then the booker verified, each within the server's rw timeout, and may
/// wait behind another request for the same id.
const REPLY_PATIENCE: u32 = 4;

/// Messages a booking keeps for its holder to read; past them, a NOTIFY is
/// declined (`0x02`), so a holder that does not read its messages keeps at
/// most this many of at most 64 KiB each.
pub const MAX_UNREAD_MESSAGES: usize = 16;

/// Where the server is and how long to wait for it. Clones share what
/// they learnt of the server: whether it keeps lines.
#[derive(Debug, Clone)]
pub struct Client {
    port: u16,
    rw_timeout: Duration,
    /// Whether to ask for lines: cleared once the server showed it knows
    /// none (it closed a LINE without a reply and its STATUS says nothing
    /// of lines).
    lines: Arc<AtomicBool>,
}

/// Equal when they talk to the same port with the same rw timeout.
impl PartialEq for Client {
    fn eq(&self, other: &Client) -> bool {
        (self.port, self.rw_timeout) == (other.port, other.rw_timeout)
    }
}

impl Eq for Client {}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

/// What became of a NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    /// The holder took the message.
    Delivered,
    /// No live process holds the id.
    NoHolder,
    /// The holder is alive but did not take the message (it may be a
    /// client that does not know NOTIFY).
    Declined,
    /// The holder is alive and runs as another OS user: the server hands
    /// messages over only within one user, or from root.
    OtherUser,
    /// The holder is alive, but the server could not tell its OS user or
    /// the sender's, so it did not hand the message over.
    UserUnknown,
}

impl Client {
    /// A client of the server on 127.0.0.1:64009 with a 3 s rw timeout.
    pub fn new() -> Client {
        Client {
            port: crate::DEFAULT_PORT,
            rw_timeout: crate::DEFAULT_RW_TIMEOUT,
            lines: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The same client, for a server on another port of 127.0.0.1 (of
    /// which it has learnt nothing yet).
    pub fn with_port(self, port: u16) -> Client {
        Client {
            port,
            lines: Arc::new(AtomicBool::new(true)),
            ..self
        }
    }

    /// The same client with another rw timeout: how long connecting and
    /// writing may take, and (times four) how long to wait for a reply.
    pub fn with_rw_timeout(self, rw_timeout: Duration) -> Client {
        Client { rw_timeout, ..self }
    }

    /// The server port this client talks to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Books `uid`: answers the [`Booking`] when granted, `None` when
    /// another live process holds it.
    ///
    /// Our server grants it on a line (a LINE request): the connection
    /// stays open while the booking is held, and its close frees the lock
    /// at once, even when this process is killed. A server that keeps no
    /// lines, such as the published 0.6.0, closes that request; then this
    /// sends a plain BOOK, and, from then on, so does this client and its
    /// clones.
    pub fn book(&self, uid: Uid) -> Result<Option<Booking>, Error> {
        if self.lines.load(Ordering::Relaxed) {
            match self.book_by(uid, Duration::ZERO, |handshake, port| {
                line_request(uid, handshake, port, Duration::ZERO, true)
            }) {
                Err(Error::Refused) => self.learn_whether_lines_are_kept(),
                lined => return lined,
            }
        }
        self.book_by(uid, Duration::ZERO, |handshake, port| Request::Book {
            uid,
            handshake,
            port,
        })
    }

    /// After a LINE closed without a reply: stops asking for lines if the
    /// server keeps none. Our server at one of its limits, or restarting,
    /// closes a LINE too; only its STATUS, which names `lines=`, tells the
    /// two apart.
    fn learn_whether_lines_are_kept(&self) {
        match self.status() {
            Ok(status) if status.lines.is_some() => {}
            Err(Error::NoServer { .. } | Error::Io(_)) => {}
            _ => self.lines.store(false, Ordering::Relaxed),
        }
    }

    /// Books `uid`, waiting for at most `timeout` while another live
    /// process holds it; `Duration::ZERO` tries once. Answers `None` when
    /// the time is up; an error at once when no server answers the first
    /// request.
    ///
    /// Our server serves waiters in arrival order and grants the id the
    /// moment its holder checks out, proves dead or its line closes (a LINE
    /// request, granted on a line as [`book`](Client::book) is; a WAIT to
    /// a server without lines). A server without WAIT, such as the
    /// published 0.6.0, closes such a request at once; then, and whenever
    /// a wait is cut short (its waiter
    /// limits, or the server restarting: waiters are not recorded in its
    /// state file), this tries a plain book and pauses, with growing,
    /// jittered pauses up to a second, before it waits again, until the
    /// time is up. A server that has answered once and then stops
    /// answering is taken for one restarting.
    pub fn book_wait(&self, uid: Uid, timeout: Duration) -> Result<Option<Booking>, Error> {
        // Too far ahead for the clock to name: as good as for ever.
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_millis(20);
        let mut answered = false;
        loop {
            let left = deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return self.book(uid);
            }
            let wait = left.min(MAX_WAIT);
            let line = self.lines.load(Ordering::Relaxed);
            let waited = self.book_by(uid, wait, |handshake, port| {
                line_request(uid, handshake, port, wait, line)
            });
            let waited = match waited {
                Err(Error::Refused) => {
                    answered = true;
                    if line {
                        self.learn_whether_lines_are_kept();
                    }
                    self.book(uid)
                }
                other => other,
            };
            match waited {
                Ok(Some(booking)) => return Ok(Some(booking)),
                // Its time is up, or it was not granted for want of proof
                // that this process is alive: try again while time is left.
                Ok(None) | Err(Error::Refused) => answered = true,
                Err(Error::NoServer { .. }) if answered => {}
                Err(e) => return Err(e),
            }
            let left = deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(jittered(pause).min(left));
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Starts a liveness responder with a fresh handshake, sends the
    /// request `make` builds for them, and waits for the reply `wait`
    /// longer than for a plain request.
    fn book_by(
        &self,
        uid: Uid,
        wait: Duration,
        make: impl FnOnce(Uid, u16) -> Request,
    ) -> Result<Option<Booking>, Error> {
        let handshake = loop {
            let handshake = Uid::random().map_err(Error::Random)?;
            if handshake != uid {
                break handshake;
            }
        };
        let (sender, messages) = mpsc::sync_channel(MAX_UNREAD_MESSAGES);
        let responder = Responder::start(uid, handshake, self.rw_timeout, self.port, sender)
            .map_err(Error::Io)?;
        let request = make(handshake, responder.port());
        let lined = matches!(request, Request::Wait { line: true, .. });
        let (reply, stream) = self.exchange(&request, wait)?;
        if reply == REPLY_NO {
            return Ok(None);
        }
        let booking = Booking {
            uid,
            handshake,
            client: self.clone(),
            responder,
            messages,
            owes_check_out: true,
        };
        if lined && reply == REPLY_YES {
            // Dropped on failure, the booking checks out.
            booking.responder.line().keep(stream).map_err(Error::Io)?;
        }
        Ok(Some(booking))
    }

    /// Hands `message` (at most 64 KiB) to the live holder of `uid`, for
    /// instance a second instance passing its command line to the first.
    pub fn notify(&self, uid: Uid, message: &[u8]) -> Result<Notified, Error> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong(message.len()));
        }
        let request = Request::Notify {
            uid,
            message: message.to_vec(),
        };
        match self.ask(&request)? {
            REPLY_YES => Ok(Notified::Delivered),
            REPLY_NO => Ok(Notified::NoHolder),
            REPLY_DECLINED => Ok(Notified::Declined),
            REPLY_OTHER_USER => Ok(Notified::OtherUser),
            REPLY_USER_UNKNOWN => Ok(Notified::UserUnknown),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// The server's counters.
    pub fn status(&self) -> Result<Status, Error> {
        self.read_line(&Request::Status)?
            .parse()
            .map_err(Error::BadStatus)
    }

    /// Who holds `uid`, since when, and how many wait for it, as the
    /// server knows it (a server that does not know QUERY, such as 0.6.0,
    /// closes the request: [`Error::Refused`]).
    ///
    /// ```no_run
    /// use namaste::Uid;
    /// use namaste::client::Client;
    ///
    /// let lock = Client::new().query(Uid::from_name("nightly-backup"))?;
    /// match lock.holder {
    ///     Some(holder) => println!("held by OS user {:?} since {:?}", holder.user, holder.since),
    ///     None => println!("free"),
    /// }
    /// # Ok::<(), namaste::client::Error>(())
    /// ```
    pub fn query(&self, uid: Uid) -> Result<LockStatus, Error> {
        self.read_line(&Request::Query { uid })?
            .parse()
            .map_err(Error::BadStatus)
    }

    /// Sends `request` and reads the line of text the server answers.
    fn read_line(&self, request: &Request) -> Result<String, Error> {
        let mut stream = self.send(request)?;
        let deadline = Instant::now() + self.rw_timeout * REPLY_PATIENCE;
        let mut line = vec![0; 1024];
        let mut got = 0;
        while got < line.len() {
            match read_before(&mut stream, &mut line[got..], deadline).map_err(Error::Io)? {
                0 => break,
                n => got += n,
            }
        }
        line.truncate(got);
        if line.is_empty() {
            return Err(Error::Refused);
        }
        String::from_utf8(line)
            .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    }

    fn check_out(&self, uid: Uid, handshake: Uid) -> Result<bool, Error> {
        Ok(self.ask(&Request::CheckOut { uid, handshake })? != REPLY_NO)
    }

    /// Checks out on the booking's `line`; `None` when the line gave no
    /// answer (the server had closed it), so that a new connection must.
    fn check_out_on(&self, mut line: TcpStream, uid: Uid, handshake: Uid) -> Option<bool> {
        let request = Request::CheckOut { uid, handshake }.encode();
        line.set_write_timeout(Some(self.rw_timeout))
            .and_then(|()| line.write_all(&request))
            .ok()?;
        let deadline = Instant::now() + self.rw_timeout * REPLY_PATIENCE;
        let mut reply = [0];
        match read_before(&mut line, &mut reply, deadline) {
            Ok(1) => Some(reply[0] != REPLY_NO),
            _ => None,
        }
    }

    /// Sends `request` and reads its one-byte reply.
    fn ask(&self, request: &Request) -> Result<u8, Error> {
        self.exchange(request, Duration::ZERO)
            .map(|(reply, _)| reply)
    }

    /// Sends `request` and reads its one-byte reply, waiting `wait` longer
    /// for it than for a plain request; answers the connection too, still
    /// open if the server keeps it.
    fn exchange(&self, request: &Request, wait: Duration) -> Result<(u8, TcpStream), Error> {
        let mut stream = self.send(request)?;
        let patience = (self.rw_timeout * REPLY_PATIENCE).saturating_add(wait);
        // Too far ahead for the clock to name: as good as for ever.
        let deadline = Instant::now()
            .checked_add(patience)
            .unwrap_or_else(|| Instant::now() + MAX_WAIT);
        let mut reply = [0];
        match read_before(&mut stream, &mut reply, deadline) {
            Ok(1) => Ok((reply[0], stream)),
            Ok(_) => Err(Error::Refused),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(Error::Refused),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Connects and writes `request`. `connect_timeout` and `write_all`
    /// retry by themselves when a signal interrupts them.
    fn send(&self, request: &Request) -> Result<TcpStream, Error> {
        let server = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream =
            TcpStream::connect_timeout(&server, self.rw_timeout).map_err(|source| {
                Error::NoServer {
                    port: self.port,
                    source,
                }
            })?;
        stream
            .set_write_timeout(Some(self.rw_timeout))
            .and_then(|()| stream.write_all(&request.encode()))
            .map_err(Error::Io)?;
        Ok(stream)
    }
}

/// A LINE (when `line`) or a WAIT for `uid`.
fn line_request(uid: Uid, handshake: Uid, port: u16, wait: Duration, line: bool) -> Request {
    Request::Wait {
        uid,
        handshake,
        port,
        wait,
        line,
    }
}

/// One read from `stream` that gives up at `deadline`. A signal, or a
/// stop and continue (Ctrl-Z, fg), interrupts a socket read that has a
/// timeout even when the handler asks for restarts; such a read is tried
/// again with the time that is left, so the caller never sees it.
fn read_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

/// A pause between half of `pause` and all of it, so that waiters who
/// collided once do not collide again.
fn jittered(pause: Duration) -> Duration {
    let mut random = [0; 4];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    };
    pause.mul_f64(0.5 + fraction / 2.0)
}
