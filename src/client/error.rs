//! What can go wrong when talking to the server.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::status::ParseStatusError;
use crate::wire::{Limit, MAX_MESSAGE_LEN, REPLY_OTHER_USER};

/// Why a booking was not granted, or a request got no answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another live process holds the id: a book was denied, or a wait's
    /// time ran out before the id was granted.
    Held,
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
    /// The server closed without a reply: one of its limits was reached
    /// (for a BOOK, which 0.6.0 defines no reply for), or it does not know
    /// the request (a 0.6.0 server and STATUS, say).
    Refused,
    /// The server refused a WAIT, LINE, ATTACH or NOTIFY because `limit`
    /// was reached: with `share`, this OS user's share of it (another user
    /// may still get in), else the server's total.
    Full {
        /// Which limit.
        limit: Limit,
        /// Whether it was this OS user's share rather than the total.
        share: bool,
    },
    /// The id is another OS user's per-user id ([`Uid::per_user`]), which
    /// only that user may book or wait for.
    ///
    /// [`Uid::per_user`]: crate::Uid::per_user
    OtherUsersId,
    /// A request for slots met the lock held or waited for with another
    /// count, this one: the first request fixes the count while anyone
    /// holds or waits.
    SlotsInForce(u32),
    /// A request shared met the lock held or waited for with slots, or a
    /// request for slots met it held or waited for shared.
    SharedInForce,
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
            Error::Held => f.write_str("the lock is held by another live process"),
            Error::NoServer { port, source } => write!(
                f,
                "no Namaste server answers on 127.0.0.1:{port} ({source}); start one with `namaste run{}`",
                if *port == crate::DEFAULT_PORT { String::new() } else { format!(" --port {port}") }
            ),
            Error::NotAccepted { port, waited } => write!(
                f,
                "the server on 127.0.0.1:{port} did not accept the connection within {waited:?}: its queue of new connections is full (all its connection slots are busy); try again later"
            ),
            Error::Refused => f.write_str(
                "the server closed the connection without a reply: one of its limits was reached (connection slots, requests waiting on verifications, bookings, waiters), or it does not know this request",
            ),
            Error::Full { limit, share: true } => write!(
                f,
                "the server's limit of {limit} for your OS user is reached (its share, {} / --shares); try again once some of yours are done",
                limit.option()
            ),
            Error::Full { limit, share: false } => write!(
                f,
                "the server's limit of {limit} is reached (in all, {}); try again later",
                limit.option()
            ),
            Error::OtherUsersId => f.write_str(
                "the id is another OS user's per-user id: only that user may book it or wait for it",
            ),
            Error::SlotsInForce(n) => write!(
                f,
                "the lock is held or waited for with {n} slots: ask for {n}, or wait until nobody holds or waits"
            ),
            Error::SharedInForce => f.write_str(
                "the lock is held or waited for in the other of shared and slots: ask the same, or wait until nobody holds or waits",
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

impl Error {
    /// Whether this is [`Error::Held`]: the id was not granted because
    /// another live process holds it, as opposed to the server failing.
    pub fn is_held(&self) -> bool {
        matches!(self, Error::Held)
    }

    /// The refusal a reply byte to a WAIT, LINE or ATTACH stands for, if
    /// it is one; a NOTIFY reads `REPLY_OTHER_USER` as an answer of its
    /// own, so only limits count for it.
    pub(super) fn of_refusal(reply: u8) -> Option<Error> {
        if reply == REPLY_OTHER_USER {
            return Some(Error::OtherUsersId);
        }
        Limit::of_reply(reply).map(|(limit, share)| Error::Full { limit, share })
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
