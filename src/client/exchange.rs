//! One connection to a holder's liveness responder, moved on as far as its
//! socket allows: a verification (the server's handshake in, the uid
//! out), and for a NOTIFY the message after it and its acknowledgement.

use std::sync::Mutex;

use mio::net::TcpStream;

use super::Message;
use super::responder::Deliver;
use crate::handshake::Handshake;
use crate::nonblocking::{Io, read_some, write_some};
use crate::uid::{UID_LEN, Uid};
use crate::wire::{MAX_MESSAGE_LEN, MESSAGE_ACK, MESSAGE_HEADER_LEN};

pub(super) struct Exchange {
    pub stream: TcpStream,
    pub generation: u32,
    pub step: Step,
}

/// Where one connection is: a verification ends after `Answer`; a NOTIFY
/// goes on to its header (sender and length), its message and the
/// acknowledgement.
pub(super) enum Step {
    Handshake {
        got: usize,
        heard: [u8; UID_LEN],
    },
    /// The uid for our own handshake; for any other, the handshake heard,
    /// and then the end.
    Answer {
        answer: [u8; UID_LEN],
        sent: usize,
        own: bool,
    },
    Header {
        got: usize,
        bytes: [u8; MESSAGE_HEADER_LEN],
    },
    Message {
        sender: u32,
        want: usize,
        message: Vec<u8>,
    },
    Ack,
}

impl Exchange {
    /// Moves the exchange on as far as the socket allows; answers whether
    /// it is over.
    pub fn advance(&mut self, uid: &Uid, handshake: &Handshake, deliver: &Mutex<Deliver>) -> bool {
        loop {
            let io = match &mut self.step {
                Step::Handshake { got, heard } => {
                    let io = read_some(&mut self.stream, &mut heard[*got..]);
                    if let Io::Done(n) = io {
                        *got += n;
                        if *got == UID_LEN {
                            let own = Handshake::from_bytes(*heard).matches(handshake);
                            // A handshake not ours is a call for a booking
                            // that once had this port, now dead. Answered
                            // with itself, never the uid it was sent for
                            // (the server refuses a uid equal to its
                            // handshake), it proves that booking gone, as
                            // silence would not; and it tells the caller
                            // nothing it did not know.
                            let answer = if own { *uid.as_bytes() } else { *heard };
                            self.step = Step::Answer {
                                answer,
                                sent: 0,
                                own,
                            };
                        }
                    }
                    io
                }
                Step::Answer { answer, sent, own } => {
                    let io = write_some(&mut self.stream, &answer[*sent..]);
                    if let Io::Done(n) = io {
                        *sent += n;
                        if *sent == UID_LEN && !*own {
                            return true;
                        }
                        if *sent == UID_LEN {
                            self.step = Step::Header {
                                got: 0,
                                bytes: [0; MESSAGE_HEADER_LEN],
                            };
                        }
                    }
                    io
                }
                // A plain verification ends here, with the server closing.
                Step::Header { got, bytes } => {
                    let io = read_some(&mut self.stream, &mut bytes[*got..]);
                    if let Io::Done(n) = io {
                        *got += n;
                        if *got == bytes.len() {
                            let [s0, s1, s2, s3, l0, l1, l2, l3] = *bytes;
                            let want = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
                            if want > MAX_MESSAGE_LEN {
                                return true;
                            }
                            self.step = Step::Message {
                                sender: u32::from_be_bytes([s0, s1, s2, s3]),
                                want,
                                message: Vec::new(),
                            };
                        }
                    }
                    io
                }
                Step::Message {
                    sender,
                    want,
                    message,
                } if message.len() == *want => {
                    let message = Message {
                        sender: *sender,
                        bytes: std::mem::take(message),
                    };
                    // The receiver lives as long as the booking; if it is
                    // gone, nobody takes the message and no ack is owed.
                    let taken = match deliver.lock() {
                        Ok(deliver) => deliver(message),
                        Err(_) => false,
                    };
                    if !taken {
                        return true;
                    }
                    self.step = Step::Ack;
                    continue;
                }
                Step::Message { want, message, .. } => {
                    let mut chunk = [0; 4096];
                    let room = chunk.len().min(*want - message.len());
                    let io = read_some(&mut self.stream, &mut chunk[..room]);
                    if let Io::Done(n) = io {
                        message.extend_from_slice(&chunk[..n]);
                    }
                    io
                }
                Step::Ack => {
                    return !matches!(write_some(&mut self.stream, &[MESSAGE_ACK]), Io::WouldBlock);
                }
            };
            match io {
                Io::Done(_) => {}
                Io::WouldBlock => return false,
                Io::Failed | Io::Refused => return true,
            }
        }
    }
}
