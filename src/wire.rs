//! The wire format, byte for byte that of namaste 0.6.0, shared by the
//! server and the client: request encoding, an incremental request decoder,
//! and the reply bytes.

use std::fmt;

use crate::uid::{UID_LEN, Uid};

/// Command byte of BOOK: uid, handshake, listener port follow.
pub const CMD_BOOK: u8 = 0x00;
/// Command byte of CHECK OUT: uid and handshake follow.
pub const CMD_CHECK_OUT: u8 = 0x01;

/// Length of a whole BOOK request.
pub const BOOK_LEN: usize = 1 + 2 * UID_LEN + 2;
/// Length of a whole CHECK OUT request.
pub const CHECK_OUT_LEN: usize = 1 + 2 * UID_LEN;
/// Length of the longest request, the size of a decoder's buffer.
pub const MAX_REQUEST_LEN: usize = BOOK_LEN;

/// The reply meaning "no": not granted, or not checked out.
pub const REPLY_NO: u8 = 0x00;
/// The reply meaning "yes". Readers must take any non-zero byte as yes.
pub const REPLY_YES: u8 = 0x01;

/// A complete request, as a client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Book `uid`; the server proves the booker alive by connecting to
    /// `port` on the booker's address and exchanging `handshake` for `uid`.
    Book {
        /// The id to book.
        uid: Uid,
        /// The booker's secret for this booking.
        handshake: Uid,
        /// The booker's liveness responder port.
        port: u16,
    },
    /// Release `uid`; honoured only with the holder's `handshake`.
    CheckOut {
        /// The id to release.
        uid: Uid,
        /// The secret given when the id was booked.
        handshake: Uid,
    },
}

impl Request {
    /// The id this request is about.
    pub fn uid(&self) -> Uid {
        match *self {
            Request::Book { uid, .. } | Request::CheckOut { uid, .. } => uid,
        }
    }

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
            Request::CheckOut { uid, handshake } => {
                bytes.push(CMD_CHECK_OUT);
                bytes.extend_from_slice(uid.as_bytes());
                bytes.extend_from_slice(handshake.as_bytes());
            }
        }
        bytes
    }
}

/// For logs: the command, the uid in short and the responder port; never
/// the handshake, which is the holder's secret.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Book { uid, port, .. } => write!(f, "book {uid:?} (responder port {port})"),
            Request::CheckOut { uid, .. } => write!(f, "check out {uid:?}"),
        }
    }
}

/// Why bytes are not a request. The server closes such a connection
/// without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The first byte is no command this server knows.
    UnknownCommand(u8),
    /// The handshake equals the uid, which would let anyone who knows the
    /// uid answer a verification.
    HandshakeIsUid,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownCommand(byte) => write!(f, "unknown command byte {byte:#04x}"),
            DecodeError::HandshakeIsUid => f.write_str("handshake equals uid"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Assembles one request from bytes as they arrive, one at a time or all at
/// once. Bytes after a complete request are ignored.
#[derive(Clone)]
pub struct Decoder {
    buf: [u8; MAX_REQUEST_LEN],
    len: usize,
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
        }
    }

    /// Takes the next bytes of the stream. Answers the request once it is
    /// complete, `Ok(None)` while more bytes are needed, and an error as
    /// soon as the bytes cannot be a request.
    ///
    /// ```
    /// use namaste::{Uid, wire::{Decoder, Request}};
    ///
    /// let request = Request::CheckOut { uid: Uid::from_name("a"), handshake: Uid::from_name("b") };
    /// let bytes = request.encode();
    /// let mut decoder = Decoder::new();
    /// assert_eq!(decoder.feed(&bytes[..100]), Ok(None));
    /// assert_eq!(decoder.feed(&bytes[100..]), Ok(Some(request)));
    /// ```
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<Request>, DecodeError> {
        if let Some(&command) = self.buf[..self.len].first().or(input.first()) {
            let need = request_len(command).ok_or(DecodeError::UnknownCommand(command))?;
            let take = input.len().min(need.saturating_sub(self.len));
            self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
            self.len += take;
            if self.len == need {
                return self.request().map(Some);
            }
        }
        Ok(None)
    }

    fn request(&self) -> Result<Request, DecodeError> {
        let uid = self.uid_at(1);
        let handshake = self.uid_at(1 + UID_LEN);
        if uid == handshake {
            return Err(DecodeError::HandshakeIsUid);
        }
        Ok(match self.buf[0] {
            CMD_BOOK => Request::Book {
                uid,
                handshake,
                port: u16::from_be_bytes([self.buf[BOOK_LEN - 2], self.buf[BOOK_LEN - 1]]),
            },
            _ => Request::CheckOut { uid, handshake },
        })
    }
}

impl Decoder {
    fn uid_at(&self, offset: usize) -> Uid {
        let mut bytes = [0; UID_LEN];
        bytes.copy_from_slice(&self.buf[offset..offset + UID_LEN]);
        Uid(bytes)
    }
}

/// The whole length of a request starting with `command`, if it is one.
fn request_len(command: u8) -> Option<usize> {
    match command {
        CMD_BOOK => Some(BOOK_LEN),
        CMD_CHECK_OUT => Some(CHECK_OUT_LEN),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Request {
        Request::Book {
            uid: Uid::from_name("uid"),
            handshake: Uid::from_name("handshake"),
            port: 0xbeef,
        }
    }

    fn check_out() -> Request {
        Request::CheckOut {
            uid: Uid::from_name("uid"),
            handshake: Uid::from_name("handshake"),
        }
    }

    #[test]
    fn encoding_is_the_0_6_0_layout() {
        let bytes = book().encode();
        assert_eq!(bytes.len(), 131);
        assert_eq!(bytes[0], 0x00);
        assert_eq!(&bytes[1..65], Uid::from_name("uid").as_bytes());
        assert_eq!(&bytes[65..129], Uid::from_name("handshake").as_bytes());
        assert_eq!(&bytes[129..], &[0xbe, 0xef]);
        let bytes = check_out().encode();
        assert_eq!(bytes.len(), 129);
        assert_eq!(bytes[0], 0x01);
        assert_eq!(&bytes[1..], &book().encode()[1..129]);
    }

    #[test]
    fn decodes_whole_requests() {
        for request in [book(), check_out()] {
            assert_eq!(Decoder::new().feed(&request.encode()), Ok(Some(request)));
        }
    }

    #[test]
    fn decodes_one_byte_at_a_time() {
        for request in [book(), check_out()] {
            let bytes = request.encode();
            let mut decoder = Decoder::new();
            let (last, head) = bytes.split_last().unwrap();
            for byte in head {
                assert_eq!(decoder.feed(std::slice::from_ref(byte)), Ok(None));
            }
            assert_eq!(decoder.feed(&[*last]), Ok(Some(request)));
        }
    }

    #[test]
    fn ignores_bytes_after_the_request() {
        for request in [book(), check_out()] {
            let mut bytes = request.encode();
            bytes.extend_from_slice(&[0xff; 300]);
            assert_eq!(Decoder::new().feed(&bytes), Ok(Some(request)));
        }
    }

    #[test]
    fn display_never_shows_the_handshake() {
        let handshake = Uid::from_name("handshake").to_string();
        for request in [book(), check_out()] {
            let shown = request.to_string();
            assert!(!shown.contains(&handshake[..16]), "{shown}");
            assert!(
                shown.contains(&Uid::from_name("uid").to_string()[..16]),
                "{shown}"
            );
        }
        assert!(book().to_string().contains("port 48879"));
    }

    #[test]
    fn empty_input_needs_more() {
        let mut decoder = Decoder::new();
        assert_eq!(decoder.feed(&[]), Ok(None));
        assert_eq!(decoder.feed(&[CMD_BOOK]), Ok(None));
        assert_eq!(decoder.feed(&[]), Ok(None));
    }

    #[test]
    fn rejects_unknown_commands_at_once() {
        for command in 0x02..=0xff {
            assert_eq!(
                Decoder::new().feed(&[command]),
                Err(DecodeError::UnknownCommand(command))
            );
        }
    }

    #[test]
    fn rejects_handshake_equal_to_uid() {
        let same = Uid::from_name("same");
        for request in [
            Request::Book {
                uid: same,
                handshake: same,
                port: 1,
            },
            Request::CheckOut {
                uid: same,
                handshake: same,
            },
        ] {
            assert_eq!(
                Decoder::new().feed(&request.encode()),
                Err(DecodeError::HandshakeIsUid)
            );
        }
    }
}
