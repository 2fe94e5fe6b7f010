//! Decoding requests, the server's side of the wire: an incremental
//! decoder that assembles one request, and the NAME prefix that may come
//! before it, from bytes as they arrive.

use std::fmt;
use std::time::Duration;

use super::*;

/// Why bytes are not a request. The server closes such a connection
/// without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The first byte is no command this server knows.
    UnknownCommand(u8),
    /// The handshake equals the uid, which would let anyone who knows the
    /// uid answer a verification.
    HandshakeIsUid,
    /// A NOTIFY message announced as longer than [`MAX_MESSAGE_LEN`].
    MessageTooLong(usize),
    /// A NAME prefix of length 0.
    EmptyName,
    /// A NAME prefix before a request that books nothing (this command).
    NameBefore(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownCommand(byte) => write!(f, "unknown command byte {byte:#04x}"),
            DecodeError::HandshakeIsUid => f.write_str("handshake equals uid"),
            DecodeError::MessageTooLong(len) => {
                write!(f, "message of {len} bytes, more than {MAX_MESSAGE_LEN}")
            }
            DecodeError::EmptyName => f.write_str("empty name"),
            DecodeError::NameBefore(byte) => {
                write!(f, "a name before command byte {byte:#04x}, which books nothing")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Assembles one request from bytes as they arrive, one at a time or all at
/// once. Bytes after a complete request are ignored.
#[derive(Clone)]
pub struct Decoder {
    /// The fixed part of the request.
    buf: [u8; MAX_REQUEST_LEN],
    len: usize,
    /// A NOTIFY message, grown as its bytes arrive rather than as its
    /// length claims.
    pub(super) message: Vec<u8>,
    prefix: Prefix,
    /// The name a NAME prefix carries, as much of it as has arrived.
    name: Vec<u8>,
}

/// How far the NAME prefix, which may come before a request, has arrived.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefix {
    /// Nothing has arrived: the first byte tells whether a prefix comes.
    Unseen,
    /// The prefix's command byte has arrived, its length not yet.
    Length,
    /// The name is arriving: this many bytes in all.
    Name(usize),
    /// The prefix is whole, or there is none: the request follows.
    Over,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that has seen nothing yet.
    pub fn new() -> Decoder {
        Decoder {
            buf: [0; MAX_REQUEST_LEN],
            len: 0,
            message: Vec::new(),
            prefix: Prefix::Unseen,
            name: Vec::new(),
        }
    }

    /// The name a NAME prefix carried before the request, once; `None`
    /// when none came.
    pub fn take_name(&mut self) -> Option<Box<[u8]>> {
        (!self.name.is_empty()).then(|| std::mem::take(&mut self.name).into_boxed_slice())
    }

    /// Takes the next bytes of the stream. Answers the request once it is
    /// complete, `Ok(None)` while more bytes are needed, and an error as
    /// soon as the bytes cannot be a request.
    ///
    /// ```
    /// use namaste::Uid;
    /// use namaste::handshake::Handshake;
    /// use namaste::wire::{Decoder, Request};
    ///
    /// let handshake = Handshake::from_bytes([0x5e; 64]);
    /// let request = Request::CheckOut { uid: Uid::from_name("a"), handshake };
    /// let bytes = request.encode();
    /// let mut decoder = Decoder::new();
    /// assert_eq!(decoder.feed(&bytes[..100]), Ok(None));
    /// assert_eq!(decoder.feed(&bytes[100..]), Ok(Some(request)));
    /// ```
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<Request>, DecodeError> {
        let input = self.feed_prefix(input)?;
        let Some(&command) = self.buf[..self.len].first().or(input.first()) else {
            return Ok(None);
        };
        let fixed = fixed_len(command).ok_or(DecodeError::UnknownCommand(command))?;
        let books = [
            CMD_BOOK,
            CMD_WAIT,
            CMD_LINE,
            CMD_WAIT_TOKEN,
            CMD_LINE_TOKEN,
            CMD_WAIT_SHARED,
            CMD_LINE_SHARED,
        ];
        if !self.name.is_empty() && !books.contains(&command) {
            return Err(DecodeError::NameBefore(command));
        }
        let take = input.len().min(fixed - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
        self.len += take;
        if self.len < fixed {
            return Ok(None);
        }
        if command != CMD_NOTIFY {
            return self.request().map(Some);
        }
        let len_bytes = &self.buf[1 + UID_LEN..NOTIFY_HEADER_LEN];
        let want =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        if want > MAX_MESSAGE_LEN {
            return Err(DecodeError::MessageTooLong(want));
        }
        let rest = &input[take..];
        let more = rest.len().min(want - self.message.len());
        self.message.extend_from_slice(&rest[..more]);
        if self.message.len() < want {
            return Ok(None);
        }
        Ok(Some(Request::Notify {
            uid: self.uid_at(1),
            message: std::mem::take(&mut self.message),
        }))
    }

    /// Takes what of `input` belongs to a NAME prefix; answers the rest,
    /// which is the request's.
    fn feed_prefix<'a>(&mut self, mut input: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        while let Some((&first, rest)) = input.split_first() {
            match self.prefix {
                Prefix::Over => break,
                Prefix::Unseen if first == CMD_NAME => self.prefix = Prefix::Length,
                Prefix::Unseen => {
                    self.prefix = Prefix::Over;
                    break;
                }
                Prefix::Length if first == 0 => return Err(DecodeError::EmptyName),
                Prefix::Length => self.prefix = Prefix::Name(usize::from(first)),
                Prefix::Name(want) => {
                    let take = input.len().min(want - self.name.len());
                    self.name.extend_from_slice(&input[..take]);
                    if self.name.len() == want {
                        self.prefix = Prefix::Over;
                    }
                    input = &input[take..];
                    continue;
                }
            }
            input = rest;
        }
        Ok(input)
    }

    fn request(&self) -> Result<Request, DecodeError> {
        match self.buf[0] {
            CMD_STATUS => return Ok(Request::Status),
            CMD_LIST => return Ok(Request::List),
            CMD_QUERY => {
                return Ok(Request::Query {
                    uid: self.uid_at(1),
                });
            }
            _ => {}
        }
        let uid = self.uid_at(1);
        let handshake = Handshake::from_bytes(self.bytes_at(1 + UID_LEN));
        if uid.as_bytes() == handshake.as_bytes() {
            return Err(DecodeError::HandshakeIsUid);
        }
        let port = u16::from_be_bytes([self.buf[BOOK_LEN - 2], self.buf[BOOK_LEN - 1]]);
        Ok(match self.buf[0] {
            CMD_BOOK => Request::Book {
                uid,
                handshake,
                port,
            },
            command @ (CMD_WAIT | CMD_LINE | CMD_WAIT_TOKEN | CMD_LINE_TOKEN | CMD_WAIT_SHARED
            | CMD_LINE_SHARED) => {
                let millis = &self.buf[BOOK_LEN..WAIT_LEN];
                let shared = matches!(command, CMD_WAIT_SHARED | CMD_LINE_SHARED);
                let count = &self.buf[WAIT_LEN..SHARED_LEN];
                let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);
                Request::Wait {
                    uid,
                    handshake,
                    port,
                    wait: Duration::from_millis(u64::from(u32::from_be_bytes([
                        millis[0], millis[1], millis[2], millis[3],
                    ]))),
                    line: matches!(command, CMD_LINE | CMD_LINE_TOKEN | CMD_LINE_SHARED),
                    token: shared || matches!(command, CMD_WAIT_TOKEN | CMD_LINE_TOKEN),
                    mode: if shared {
                        Mode::of_count(count)
                    } else {
                        Mode::Exclusive
                    },
                }
            }
            CMD_ATTACH => Request::Attach { uid, handshake },
            _ => Request::CheckOut { uid, handshake },
        })
    }
}

impl Decoder {
    fn uid_at(&self, offset: usize) -> Uid {
        Uid::from_bytes(self.bytes_at(offset))
    }

    fn bytes_at(&self, offset: usize) -> [u8; UID_LEN] {
        let mut bytes = [0; UID_LEN];
        bytes.copy_from_slice(&self.buf[offset..offset + UID_LEN]);
        bytes
    }
}

/// The length of the fixed part of a request starting with `command`, if
/// it is one.
fn fixed_len(command: u8) -> Option<usize> {
    match command {
        CMD_BOOK => Some(BOOK_LEN),
        CMD_CHECK_OUT => Some(CHECK_OUT_LEN),
        CMD_STATUS | CMD_LIST => Some(1),
        CMD_NOTIFY => Some(NOTIFY_HEADER_LEN),
        CMD_WAIT | CMD_WAIT_TOKEN => Some(WAIT_LEN),
        CMD_QUERY => Some(QUERY_LEN),
        CMD_LINE | CMD_LINE_TOKEN => Some(LINE_LEN),
        CMD_ATTACH => Some(ATTACH_LEN),
        CMD_WAIT_SHARED | CMD_LINE_SHARED => Some(SHARED_LEN),
        _ => None,
    }
}

