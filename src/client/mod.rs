//! A small blocking client: book an id, hold it while working, check out.
//!
//! ```no_run
//! use namaste::Uid;
//! use namaste::client::{Client, Error};
//!
//! let client = Client::new();
//! match client.book(Uid::from_name("com.example.editor")) {
//!     Ok(booking) => {
//!         // The only instance: do the work. Dropping `booking` checks out.
//!         while let Ok(message) = booking.messages().recv() {
//!             println!("another instance asked: {}", String::from_utf8_lossy(&message.bytes));
//!         }
//!     }
//!     Err(Error::Held) => {
//!         client.notify(Uid::from_name("com.example.editor"), b"open notes.txt")?;
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), namaste::client::Error>(())
//! ```

mod book;
mod booking;
mod env;
mod error;
mod exchange;
mod inherit;
mod line;
mod responder;
mod shared;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub use crate::wire::{Limit, Mode};
pub use booking::{Booking, Message};
pub use env::{PORT_VAR, PortVarError, port_from_env};
pub use error::Error;
pub use line::LineState;

use crate::handshake::Handshake;
use crate::listing::{LIST_END, Listed};
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
/// they learnt of the server: whether it keeps lines and names, and
/// whether it gives fencing tokens.
#[derive(Debug, Clone)]
pub struct Client {
    port: u16,
    rw_timeout: Duration,
    /// Whether to ask for lines: cleared once the server showed it knows
    /// none (it closed a LINE without a reply and its STATUS says nothing
    /// of lines).
    lines: Arc<AtomicBool>,
    /// Whether to send names with bookings: cleared once the server showed
    /// it knows none (it closed a named request without a reply and its
    /// STATUS says nothing of names).
    names: Arc<AtomicBool>,
    /// Whether to ask for fencing tokens: cleared once the server showed
    /// it gives none (it closed such a LINE without a reply and its STATUS
    /// says nothing of tokens).
    tokens: Arc<AtomicBool>,
    /// Whether a booking whose line the server closes re-attaches.
    reattach: bool,
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
#[non_exhaustive]
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
    /// A client of the server on 127.0.0.1 with a 3 s rw timeout, on the
    /// port `NAMASTE_PORT` names, else 64009. A `NAMASTE_PORT` that is no
    /// port (see [`port_from_env`]) is ignored: the client asks 64009;
    /// [`Client::from_env`] reports it instead.
    pub fn new() -> Client {
        Client::from_env().unwrap_or_else(|_| Client::on_port(crate::DEFAULT_PORT))
    }

    /// As [`Client::new`], but a `NAMASTE_PORT` that is set and not a port
    /// is an error, for a program that should say so rather than ask
    /// another server.
    pub fn from_env() -> Result<Client, PortVarError> {
        let port = port_from_env()?.unwrap_or(crate::DEFAULT_PORT);
        Ok(Client::on_port(port))
    }

    fn on_port(port: u16) -> Client {
        Client {
            port,
            rw_timeout: crate::DEFAULT_RW_TIMEOUT,
            lines: Arc::new(AtomicBool::new(true)),
            names: Arc::new(AtomicBool::new(true)),
            tokens: Arc::new(AtomicBool::new(true)),
            reattach: true,
        }
    }

    /// The same client, for a server on another port of 127.0.0.1 (of
    /// which it has learnt nothing yet).
    pub fn with_port(self, port: u16) -> Client {
        Client {
            port,
            lines: Arc::new(AtomicBool::new(true)),
            names: Arc::new(AtomicBool::new(true)),
            tokens: Arc::new(AtomicBool::new(true)),
            ..self
        }
    }

    /// The same client with another rw timeout: how long connecting and
    /// writing may take, and (times four) how long to wait for a reply.
    pub fn with_rw_timeout(self, rw_timeout: Duration) -> Client {
        Client { rw_timeout, ..self }
    }

    /// The same client, with its bookings re-attaching (`true`, the
    /// default) or not once the server closes their line while they are
    /// held, as a restart of the server does. An ATTACH carries the
    /// booking's handshake to whatever listens on the port; a program that
    /// cannot vouch for the server there (while it restarts, another user
    /// may listen in its place) turns this off, and its bookings then live
    /// under the call-back rules after a restart. A booking handed down to
    /// child processes ([`Booking::share_with`]) never re-attaches: the new
    /// line would be this process's alone.
    pub fn with_reattach(self, reattach: bool) -> Client {
        Client { reattach, ..self }
    }

    /// The server port this client talks to.
    pub fn port(&self) -> u16 {
        self.port
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
        let reply = self.ask(&request)?;
        if let Some((limit, share)) = Limit::of_reply(reply) {
            return Err(Error::Full { limit, share });
        }
        match reply {
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

    /// Every lock held, as the server lists them to this process's OS
    /// user: names only of its own locks (all of them for root). A lock
    /// that is booked or checked out while the list is written may be
    /// missing; none held all along is, and none is listed twice. A lock
    /// held shared or with slots is listed once for each holder. A
    /// server that does not know LIST, such as 0.6.0, closes the request:
    /// [`Error::Refused`].
    pub fn list(&self) -> Result<Vec<Listed>, Error> {
        let mut stream = self.send(&Request::List)?;
        let deadline = Instant::now() + self.rw_timeout * REPLY_PATIENCE;
        let mut text = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            match read_before(&mut stream, &mut chunk, deadline).map_err(Error::Io)? {
                0 => break,
                n => text.extend_from_slice(&chunk[..n]),
            }
        }
        if text.is_empty() {
            return Err(Error::Refused);
        }
        let text = String::from_utf8(text).map_err(|e| Error::Io(invalid_data(e)))?;
        let Some(lines) = text.strip_suffix(&format!("{LIST_END}\n")) else {
            return Err(Error::Io(invalid_data("a list cut short")));
        };
        let mut seen = HashSet::new();
        let mut locks = Vec::new();
        for line in lines.lines() {
            let lock: Listed = line.parse().map_err(Error::BadStatus)?;
            // Each holder once: a lock held shared has several, each with
            // a token of its own (and, from a server that lists none, at a
            // responder of its own).
            if seen.insert((lock.uid, lock.address, lock.port, lock.token)) {
                locks.push(lock);
            }
        }
        Ok(locks)
    }

    /// Sends `request` and reads the line of text the server answers.
    fn read_line(&self, request: &Request) -> Result<String, Error> {
        let mut stream = self.send(request)?;
        let deadline = Instant::now() + self.rw_timeout * REPLY_PATIENCE;
        // A status line that tells root the use of a hundred OS users
        // takes some 4 KiB.
        let mut line = vec![0; 8192];
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
        String::from_utf8(line).map_err(|e| Error::Io(invalid_data(e)))
    }

    fn check_out(&self, uid: Uid, handshake: Handshake) -> Result<bool, Error> {
        Ok(self.ask(&Request::CheckOut { uid, handshake })? != REPLY_NO)
    }

    /// Checks out on the booking's `line`; `None` when the line gave no
    /// answer (the server had closed it), so that a new connection must.
    fn check_out_on(&self, mut line: TcpStream, uid: Uid, handshake: Handshake) -> Option<bool> {
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
        self.exchange(&request.encode(), Duration::ZERO)
            .map(|(reply, _)| reply)
    }

    /// Sends a request, its `bytes`, and reads its one-byte reply, waiting
    /// `wait` longer for it than for a plain request; answers the
    /// connection too, still open if the server keeps it.
    fn exchange(&self, bytes: &[u8], wait: Duration) -> Result<(u8, TcpStream), Error> {
        let mut stream = self.send_bytes(bytes)?;
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

    /// Connects and writes `request`.
    fn send(&self, request: &Request) -> Result<TcpStream, Error> {
        self.send_bytes(&request.encode())
    }

    /// Connects and writes `bytes`. `connect_timeout` and `write_all`
    /// retry by themselves when a signal interrupts them.
    fn send_bytes(&self, bytes: &[u8]) -> Result<TcpStream, Error> {
        let server = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream =
            TcpStream::connect_timeout(&server, self.rw_timeout).map_err(|source| {
                // On loopback, a port nobody listens on refuses at once;
                // one whose backlog is full ignores the SYN, so connecting
                // times out.
                match source.kind() {
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        Error::NotAccepted {
                            port: self.port,
                            waited: self.rw_timeout,
                        }
                    }
                    _ => Error::NoServer {
                        port: self.port,
                        source,
                    },
                }
            })?;
        stream
            .set_write_timeout(Some(self.rw_timeout))
            .and_then(|()| stream.write_all(bytes))
            .map_err(Error::Io)?;
        Ok(stream)
    }
}

/// An error for bytes from the server that are not what they should be.
fn invalid_data(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
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
