//! What can go wrong when talking to the server.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::status::ParseStatusError;
use crate::wire::MAX_MESSAGE_LEN;

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// Nothing accepted the connection: no server runs on this port.
    NoServer {
        /// The port tried on 127.0.0.1.
        port: u16,
        /// What connecting reported.
        source: io::Error,
    },
    /// Something listens on the port but did not take the connection in
    /// time: its queue of connections not yet accepted is full, which the
    /// kernel answers by ignoring new ones, as when all of a server's
    /// connection slots are taken and clients keep arriving.
    NotAccepted {
        /// The port tried on 127.0.0.1.
        port: u16,
        /// How long connecting was tried: the client's rw timeout.
        waited: Duration,
    },
    /// The server closed without a reply: one of its limits was reached,
    /// or it does not know the request (a 0.6.0 server and STATUS, say).
    Refused,
    /// Writing the request or reading the reply failed or timed out.
    Io(io::Error),
    /// The system's random source failed, so no handshake could be made.
    Random(getrandom::Error),
    /// A NOTIFY message longer than the protocol allows.
    MessageTooLong(usize),
    /// A reply byte the protocol does not define.
    UnexpectedReply(u8),
    /// The STATUS or QUERY reply was not the line it should be.
    BadStatus(ParseStatusError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoServer { port, source } => write!(
                f,
                "no Namaste server answers on 127.0.0.1:{port} ({source}); start one with `namaste run`"
            ),
            Error::NotAccepted { port, waited } => write!(
                f,
                "the server on 127.0.0.1:{port} did not accept the connection within {waited:?}: its queue of new connections is full (all its connection slots are busy); try again later"
            ),
            Error::Refused => f.write_str(
                "the server closed the connection without a reply: one of its limits was reached (connection slots, requests waiting on verifications, bookings, waiters), or it does not know this request",
            ),
            Error::Io(e) => write!(f, "talking to the server failed: {e}"),
            Error::Random(e) => write!(f, "no random handshake could be made: {e}"),
            Error::MessageTooLong(len) => {
                write!(f, "a message of {len} bytes is longer than the {MAX_MESSAGE_LEN} allowed")
            }
            Error::UnexpectedReply(byte) => write!(f, "the server replied {byte:#04x}, which means nothing here"),
            Error::BadStatus(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NoServer { source, .. } | Error::Io(source) => Some(source),
            Error::BadStatus(e) => Some(e),
            _ => None,
        }
    }
}
