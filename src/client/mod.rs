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
//!             println!("another instance asked: {}", String::from_utf8_lossy(&message));
//!         }
//!     }
//!     None => {
//!         client.notify(Uid::from_name("com.example.editor"), b"open notes.txt")?;
//!     }
//! }
//! # Ok::<(), namaste::client::Error>(())
//! ```

mod error;
mod inherit;
mod responder;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub use error::Error;
use responder::Responder;

use crate::status::Status;
use crate::uid::Uid;
use crate::wire::{MAX_MESSAGE_LEN, REPLY_DECLINED, REPLY_NO, REPLY_YES, Request};

/// How many rw timeouts to wait for a reply: a book may need the holder and
/// then the booker verified, each within the server's rw timeout, and may
/// wait behind another request for the same id.
const REPLY_PATIENCE: u32 = 4;

/// Where the server is and how long to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    port: u16,
    rw_timeout: Duration,
}

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
}

impl Client {
    /// A client of the server on 127.0.0.1:64009 with a 3 s rw timeout.
    pub fn new() -> Client {
        Client {
            port: crate::DEFAULT_PORT,
            rw_timeout: crate::DEFAULT_RW_TIMEOUT,
        }
    }

    /// The same client, for a server on another port of 127.0.0.1.
    pub fn with_port(self, port: u16) -> Client {
        Client { port, ..self }
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
    pub fn book(&self, uid: Uid) -> Result<Option<Booking>, Error> {
        let handshake = loop {
            let handshake = Uid::random().map_err(Error::Random)?;
            if handshake != uid {
                break handshake;
            }
        };
        let (sender, messages) = mpsc::channel();
        let responder =
            Responder::start(uid, handshake, self.rw_timeout, sender).map_err(Error::Io)?;
        let request = Request::Book {
            uid,
            handshake,
            port: responder.port(),
        };
        Ok(match self.ask(&request)? {
            REPLY_NO => None,
            _ => Some(Booking {
                uid,
                handshake,
                client: *self,
                responder,
                messages,
                owes_check_out: true,
            }),
        })
    }

    /// Books `uid`, retrying with growing, jittered pauses while another
    /// live process holds it, for at most `timeout`. Answers `None` when the
    /// time is up; an error at once when no server answers.
    pub fn book_wait(&self, uid: Uid, timeout: Duration) -> Result<Option<Booking>, Error> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.book(uid) {
                Ok(Some(booking)) => return Ok(Some(booking)),
                // Refused: a limit of the server's, which may pass.
                Ok(None) | Err(Error::Refused) => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(jittered(pause).min(deadline - now));
            pause = (pause * 2).min(Duration::from_secs(1));
        }
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
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// The server's counters.
    pub fn status(&self) -> Result<Status, Error> {
        let stream = self.send(&Request::Status)?;
        let mut line = String::new();
        stream
            .take(1024)
            .read_to_string(&mut line)
            .map_err(Error::Io)?;
        if line.is_empty() {
            return Err(Error::Refused);
        }
        line.parse().map_err(Error::BadStatus)
    }

    fn check_out(&self, uid: Uid, handshake: Uid) -> Result<bool, Error> {
        Ok(self.ask(&Request::CheckOut { uid, handshake })? != REPLY_NO)
    }

    /// Sends `request` and reads its one-byte reply.
    fn ask(&self, request: &Request) -> Result<u8, Error> {
        let mut stream = self.send(request)?;
        let mut reply = [0];
        match stream.read(&mut reply) {
            Ok(1) => Ok(reply[0]),
            Ok(_) => Err(Error::Refused),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(Error::Refused),
            Err(e) => Err(Error::Io(e)),
        }
    }

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
            .and_then(|()| stream.set_read_timeout(Some(self.rw_timeout * REPLY_PATIENCE)))
            .and_then(|()| stream.write_all(&request.encode()))
            .map_err(Error::Io)?;
        Ok(stream)
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

/// A held id. While it lives, its liveness responder answers the server;
/// dropping it checks out (best effort) and stops the responder, so no
/// thread, socket or port outlives it.
pub struct Booking {
    uid: Uid,
    handshake: Uid,
    client: Client,
    responder: Responder,
    messages: Receiver<Vec<u8>>,
    /// Whether dropping it should check out: not once it has, or once the
    /// booking is left to child processes.
    owes_check_out: bool,
}

impl Booking {
    /// The id held.
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The port of the liveness responder, for diagnostics.
    pub fn responder_port(&self) -> u16 {
        self.responder.port()
    }

    /// The messages other processes send with [`Client::notify`], in the
    /// order they arrived.
    pub fn messages(&self) -> &Receiver<Vec<u8>> {
        &self.messages
    }

    /// Releases the id; answers whether the server released it (`false`
    /// means the booking was already gone, for instance taken over after
    /// the responder stopped answering).
    pub fn check_out(mut self) -> Result<bool, Error> {
        self.owes_check_out = false;
        self.client.check_out(self.uid, self.handshake)
    }
}

/// Shows the id and the responder port; never the handshake.
impl std::fmt::Debug for Booking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Booking")
            .field("uid", &self.uid)
            .field("responder_port", &self.responder.port())
            .finish_non_exhaustive()
    }
}

impl Drop for Booking {
    fn drop(&mut self) {
        if self.owes_check_out {
            // Best effort: if the server cannot be told, the stopped
            // responder makes the booking fail its next verification.
            let _ = self.client.check_out(self.uid, self.handshake);
        }
    }
}
