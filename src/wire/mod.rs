//! The wire format, shared by the server and the client: request encoding,
//! an incremental request decoder, and the reply bytes. BOOK and CHECK OUT
//! are byte for byte those of namaste 0.6.0; STATUS, NOTIFY, WAIT, QUERY,
//! LINE, ATTACH, LIST, the NAME prefix, LINE and WAIT with a fencing
//! token, and LINE and WAIT shared or with slots are ours.

use std::fmt;
use std::time::Duration;

use crate::handshake::Handshake;
use crate::uid::{UID_LEN, Uid};

#[cfg(feature = "server")]
mod decode;
mod limit;
#[cfg(feature = "server")]
pub use decode::{DecodeError, Decoder};
pub use limit::Limit;

/// Command byte of BOOK: uid, handshake, listener port follow.
pub const CMD_BOOK: u8 = 0x00;
/// Command byte of CHECK OUT: uid and handshake follow.
pub const CMD_CHECK_OUT: u8 = 0x01;
/// Command byte of STATUS: nothing follows; the server answers one line of
/// text instead of a reply byte.
pub const CMD_STATUS: u8 = 0x02;
/// Command byte of NOTIFY: uid, message length (u32, big-endian) and the
/// message follow.
pub const CMD_NOTIFY: u8 = 0x03;
/// Command byte of WAIT: uid, handshake, listener port and the longest wait
/// in milliseconds (u32, big-endian) follow.
pub const CMD_WAIT: u8 = 0x04;
/// Command byte of QUERY: the uid follows; the server answers one line of
/// text about that lock ([`LockStatus`](crate::status::LockStatus))
/// instead of a reply byte.
pub const CMD_QUERY: u8 = 0x05;
/// Command byte of LINE: a WAIT (same fields) whose booker asks the server
/// to keep this connection open as the booking's *line* for as long as it
/// holds the booking; its close, without a check out, ends the booking.
pub const CMD_LINE: u8 = 0x06;
/// Command byte of ATTACH: uid and handshake follow. Makes the connection
/// the line of a booking held with that handshake, as after a restart of
/// the server, which closes every line.
pub const CMD_ATTACH: u8 = 0x07;
/// Command byte of a LINE (same fields) whose booker asks for the
/// booking's fencing token: a grant's reply byte is followed by the token
/// ([`TOKEN_LEN`] bytes, big-endian).
pub const CMD_LINE_TOKEN: u8 = 0x0A;
/// Command byte of a WAIT (same fields) whose booker asks for the
/// booking's fencing token, as [`CMD_LINE_TOKEN`] does.
pub const CMD_WAIT_TOKEN: u8 = 0x0B;
/// Command byte of a LINE with a token ([`CMD_LINE_TOKEN`], same fields)
/// that asks to hold the lock beside others: a count follows (u32,
/// big-endian), 0 for shared ([`Mode::Shared`]), `n` for one of `n` slots
/// ([`Mode::Slots`]). A grant's reply byte is followed by the token.
pub const CMD_LINE_SHARED: u8 = 0x0C;
/// Command byte of a WAIT with a token ([`CMD_WAIT_TOKEN`], same fields)
/// and a count, as [`CMD_LINE_SHARED`].
pub const CMD_WAIT_SHARED: u8 = 0x0D;
/// Length of the fencing token that follows the reply byte of a grant to
/// a request that asked for it.
pub const TOKEN_LEN: usize = 8;

/// Command byte of the NAME prefix: a length (u8, 1 to [`MAX_NAME_LEN`])
/// and that many bytes of the lock's name follow, then a BOOK, WAIT or
/// LINE on the same connection. The server keeps the name beside the
/// booking, to show in LIST, if it is the name of the booked uid.
pub const CMD_NAME: u8 = 0x08;
/// Command byte of LIST: nothing follows; the server answers one line of
/// text for every booking held ([`Listed`](crate::listing::Listed)), then
/// closes.
pub const CMD_LIST: u8 = 0x09;
/// The longest name a NAME prefix carries: its length is one byte.
pub const MAX_NAME_LEN: usize = u8::MAX as usize;

/// Length of a whole BOOK request.
pub const BOOK_LEN: usize = 1 + 2 * UID_LEN + 2;
/// Length of a whole CHECK OUT request.
#[cfg(any(test, feature = "server"))]
pub const CHECK_OUT_LEN: usize = 1 + 2 * UID_LEN;
/// Length of a NOTIFY request before its message.
#[cfg(any(test, feature = "server"))]
pub const NOTIFY_HEADER_LEN: usize = 1 + UID_LEN + 4;
/// Length of a whole QUERY request.
#[cfg(any(test, feature = "server"))]
pub const QUERY_LEN: usize = 1 + UID_LEN;
/// Length of a whole LINE request, with or without a token, laid out as
/// WAIT.
#[cfg(any(test, feature = "server"))]
pub const LINE_LEN: usize = WAIT_LEN;
/// Length of a whole ATTACH request, laid out as CHECK OUT.
#[cfg(any(test, feature = "server"))]
pub const ATTACH_LEN: usize = CHECK_OUT_LEN;
/// Length of a whole WAIT request.
pub const WAIT_LEN: usize = BOOK_LEN + 4;
/// Length of a whole LINE or WAIT shared or with slots: a WAIT and its
/// count.
pub const SHARED_LEN: usize = WAIT_LEN + 4;
/// Length of the longest fixed part of a request, the size of a decoder's
/// buffer.
pub const MAX_REQUEST_LEN: usize = SHARED_LEN;
/// The longest wait a WAIT can ask for: its field counts milliseconds in 32
/// bits, about 49.7 days.
pub const MAX_WAIT: Duration = Duration::from_millis(u32::MAX as u64);
/// The longest NOTIFY message, enforced by the server, the client and the
/// holder's responder.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The reply meaning "no": not granted, not checked out, or (to NOTIFY)
/// no live process holds the id.
pub const REPLY_NO: u8 = 0x00;
/// The reply meaning "yes". Readers of BOOK and CHECK OUT replies must take
/// any non-zero byte as yes.
pub const REPLY_YES: u8 = 0x01;
/// The reply to NOTIFY when the holder is alive but did not take the
/// message (a 0.6.0 client, say).
pub const REPLY_DECLINED: u8 = 0x02;
/// The reply to NOTIFY when the holder is alive but runs as another OS
/// user than the sender (and the sender is not root): the message was not
/// handed over. Also the reply to WAIT, LINE, ATTACH and NOTIFY when the
/// id is another OS user's per-user id, which only that user may book,
/// wait for or message (and root may message).
pub const REPLY_OTHER_USER: u8 = 0x03;
/// The reply to NOTIFY when the holder is alive but the server could not
/// tell the OS user of the sender or of the holder: the message was not
/// handed over.
pub const REPLY_USER_UNKNOWN: u8 = 0x04;
/// The reply to LINE when the booking is granted but the server keeps no
/// line for it (its bound of lines is reached), and to ATTACH when the
/// booking is held with that handshake but gets no line: the server
/// closes, and the booking lives under the call-back rules, as a BOOK's.
pub const REPLY_NO_LINE: u8 = 0x02;
/// The reply to a LINE or WAIT with slots while the lock is held or waited
/// for with another count: the count in force follows (u32, big-endian).
pub const REPLY_SLOTS_IN_FORCE: u8 = 0x05;
/// The reply to a LINE or WAIT shared while the lock is held or waited for
/// with slots, or with slots while it is held or waited for shared.
pub const REPLY_SHARED_IN_FORCE: u8 = 0x06;
/// What a holder's responder writes once it has taken a NOTIFY message.
pub const MESSAGE_ACK: u8 = 0x01;

/// How a booker asks to hold an id. A holder cannot change its mode in
/// place: it checks out and asks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Alone: no other holder, shared or not.
    Exclusive,
    /// Beside any number of other shared holders, and no exclusive one.
    Shared,
    /// Beside at most `n - 1` other holders of the same count (a counting
    /// semaphore), and no exclusive one. The first request fixes `n` while
    /// anyone holds the id or waits for it.
    Slots(u32),
}

impl Mode {
    /// The count a LINE or WAIT shared or with slots carries; `None` for
    /// exclusive, which none carries.
    fn count(self) -> Option<u32> {
        match self {
            Mode::Exclusive => None,
            Mode::Shared => Some(0),
            Mode::Slots(n) => Some(n),
        }
    }

    /// The mode a count on the wire asks for.
    #[cfg(feature = "server")]
    fn of_count(count: u32) -> Mode {
        match count {
            0 => Mode::Shared,
            n => Mode::Slots(n),
        }
    }
}

/// A complete request, as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Book `uid`; the server proves the booker alive by connecting to
    /// `port` on the booker's address and exchanging `handshake` for `uid`.
    Book {
        /// The id to book.
        uid: Uid,
        /// The booker's secret for this booking.
        handshake: Handshake,
        /// The booker's liveness responder port.
        port: u16,
    },
    /// Release `uid`; honoured only with the holder's `handshake`.
    CheckOut {
        /// The id to release.
        uid: Uid,
        /// The secret given when the id was booked.
        handshake: Handshake,
    },
    /// Ask for the server's counters.
    Status,
    /// Hand `message` to the live holder of `uid`.
    Notify {
        /// The id whose holder gets the message.
        uid: Uid,
        /// At most [`MAX_MESSAGE_LEN`] bytes.
        message: Vec<u8>,
    },
    /// Book `uid` as BOOK does, but if a live process holds it, wait in
    /// its queue, first come first served, for at most `wait`. Sent as LINE
    /// when `line` is set: the booker asks to hold the booking on this
    /// connection; with `token`, as the LINE or WAIT that also asks for the
    /// booking's fencing token; in a `mode` other than exclusive, as the
    /// LINE or WAIT shared or with slots, which always asks for the token.
    Wait {
        /// The id to book.
        uid: Uid,
        /// The booker's secret for this booking.
        handshake: Handshake,
        /// The booker's liveness responder port.
        port: u16,
        /// The longest wait, at most [`MAX_WAIT`]; carried in whole
        /// milliseconds.
        wait: Duration,
        /// Whether the booker asks for a line (LINE rather than WAIT).
        line: bool,
        /// Whether the booker asks for the fencing token with a grant.
        token: bool,
        /// How the booker asks to hold it.
        mode: Mode,
    },
    /// Ask who holds `uid`, since when, and how many wait for it.
    Query {
        /// The id asked about.
        uid: Uid,
    },
    /// Ask for every booking held.
    List,
    /// Make this connection the line of the booking of `uid`; honoured
    /// only with the holder's `handshake`.
    Attach {
        /// The id held.
        uid: Uid,
        /// The secret given when the id was booked.
        handshake: Handshake,
    },
}

impl Request {
    /// The request's bytes, ready to be written to the server.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MAX_REQUEST_LEN);
        match self {
            Request::Book {
                uid,
                handshake,
                port,
            } => {
                bytes.push(CMD_BOOK);
                bytes.extend_from_slice(uid.as_bytes());
                bytes.extend_from_slice(handshake.as_bytes());
                bytes.extend_from_slice(&port.to_be_bytes());
            }
            Request::CheckOut { uid, handshake } | Request::Attach { uid, handshake } => {
                bytes.push(if matches!(self, Request::Attach { .. }) {
                    CMD_ATTACH
                } else {
                    CMD_CHECK_OUT
                });
                bytes.extend_from_slice(uid.as_bytes());
                bytes.extend_from_slice(handshake.as_bytes());
            }
            Request::Status => bytes.push(CMD_STATUS),
            Request::List => bytes.push(CMD_LIST),
            Request::Notify { uid, message } => {
                bytes.push(CMD_NOTIFY);
                bytes.extend_from_slice(uid.as_bytes());
                bytes.extend_from_slice(&message_len_prefix(message));
                bytes.extend_from_slice(message);
            }
            Request::Wait {
                uid,
                handshake,
                port,
                wait,
                line,
                token,
                mode,
            } => {
                bytes.push(match (line, token, mode.count()) {
                    (true, _, Some(_)) => CMD_LINE_SHARED,
                    (false, _, Some(_)) => CMD_WAIT_SHARED,
                    (false, false, None) => CMD_WAIT,
                    (true, false, None) => CMD_LINE,
                    (true, true, None) => CMD_LINE_TOKEN,
                    (false, true, None) => CMD_WAIT_TOKEN,
                });
                bytes.extend_from_slice(uid.as_bytes());
                bytes.extend_from_slice(handshake.as_bytes());
                bytes.extend_from_slice(&port.to_be_bytes());
                let millis = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
                bytes.extend_from_slice(&millis.to_be_bytes());
                if let Some(count) = mode.count() {
                    bytes.extend_from_slice(&count.to_be_bytes());
                }
            }
            Request::Query { uid } => {
                bytes.push(CMD_QUERY);
                bytes.extend_from_slice(uid.as_bytes());
            }
        }
        bytes
    }
}

/// The NAME prefix that tells the server the name of the uid a BOOK, WAIT
/// or LINE asks for; `None` for a name that is empty or longer than
/// [`MAX_NAME_LEN`], which no prefix carries.
pub fn name_prefix(name: &[u8]) -> Option<Vec<u8>> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return None;
    }
    let len = u8::try_from(name.len()).ok()?;
    Some([&[CMD_NAME, len][..], name].concat())
}

/// The big-endian length that goes before a NOTIFY message on the way to
/// the server.
pub fn message_len_prefix(message: &[u8]) -> [u8; 4] {
    u32::try_from(message.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
}

/// Length of what goes before a message on the way to its holder.
pub const MESSAGE_HEADER_LEN: usize = 8;

/// What goes before a message on the way to its holder, once the holder has
/// answered its uid: the sender's OS user id and the message's length,
/// both u32, big-endian.
#[cfg(feature = "server")]
pub fn message_header(sender: u32, message: &[u8]) -> [u8; MESSAGE_HEADER_LEN] {
    let mut header = [0; MESSAGE_HEADER_LEN];
    header[..4].copy_from_slice(&sender.to_be_bytes());
    header[4..].copy_from_slice(&message_len_prefix(message));
    header
}

/// For logs: the command, the uid in short and the responder port; never
/// the handshake, which is the holder's secret.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Book { uid, port, .. } => write!(f, "book {uid:?} (responder port {port})"),
            Request::CheckOut { uid, .. } => write!(f, "check out {uid:?}"),
            Request::Status => f.write_str("status"),
            Request::List => f.write_str("list"),
            Request::Notify { uid, message } => {
                write!(f, "notify {uid:?} ({} bytes)", message.len())
            }
            Request::Wait {
                uid,
                port,
                wait,
                line,
                token,
                mode,
                ..
            } => {
                let on = if *line { " on a line" } else { "" };
                let token = if *token { ", with its token" } else { "" };
                let mode = match mode {
                    Mode::Exclusive => String::new(),
                    Mode::Shared => ", shared".to_string(),
                    Mode::Slots(n) => format!(", one of {n} slots"),
                };
                write!(
                    f,
                    "wait {wait:?} for {uid:?}{on}{token}{mode} (responder port {port})"
                )
            }
            Request::Query { uid } => write!(f, "query {uid:?}"),
            Request::Attach { uid, .. } => write!(f, "attach {uid:?}"),
        }
    }
}

#[cfg(test)]
mod tests;
