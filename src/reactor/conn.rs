//! The connections the reactor keeps in its slab, and the non-blocking I/O
//! steps that move each one along.

use std::fmt;
use std::io::{self, ErrorKind, Read};

use log::debug;
use mio::net::TcpStream;

use crate::handshake::Handshake;
use crate::nonblocking::{Io, read_some, write_some};
use crate::owner::{Owners, Unknown, UserId, may_message};
use crate::registry::{ResponderIp, UNKNOWN_USER, User, Verdict, Withheld};
use crate::uid::{UID_LEN, Uid};
use crate::wire::{DecodeError, Decoder, MAX_REQUEST_LEN, MESSAGE_ACK, Request, message_header};

pub(super) use super::list::Listing;

/// Reading room for one request plus what a sloppy client sends after it,
/// so that closing rarely finds unread bytes (which would reset the
/// connection and could destroy the reply before the client reads it).
const READ_CHUNK: usize = 2 * MAX_REQUEST_LEN;

pub(super) struct Conn {
    pub stream: TcpStream,
    /// Tells this connection apart from earlier ones in the same slot.
    pub generation: u32,
    pub phase: Phase,
}

pub(super) enum Phase {
    /// A client connection whose request is still arriving.
    Reading { ip: ResponderIp, decoder: Decoder },
    /// A client connection whose request is with the registry. The
    /// registry's answer closes it, which always comes, unless the
    /// connection ends first; the registry is told of that end.
    Waiting {
        ip: ResponderIp,
        request: Request,
        kept: Kept,
        /// The OS user of the requester of a BOOK, WAIT, LINE, ATTACH,
        /// NOTIFY or STATUS, asked of the kernel the moment the request was
        /// complete, while a requester that waits for its answer surely
        /// holds its connection; [`UNKNOWN_USER`] when the kernel could not
        /// vouch for one, and for other requests.
        user: User,
        /// The name that came before a BOOK, WAIT or LINE, kept with the
        /// booking if it is granted and the uid is the name's.
        name: Option<Box<[u8]>>,
    },
    /// A LIST being written, as fast as its reader takes it.
    Listing(Listing),
    /// A call to a liveness responder.
    Verifying(Verification),
    /// The line of the booking of `uid`: a client connection kept open for
    /// as long as the booking lasts. Read for the one request it may carry
    /// (the booking's CHECK OUT); no deadline; not a client slot, bounded
    /// by the registry's `max_lines` instead.
    Line {
        ip: ResponderIp,
        uid: Uid,
        decoder: Decoder,
    },
}

impl Phase {
    /// A client connection whose request, from `ip` on `stream`, has just
    /// arrived whole; `None` when its requester has already closed it, so
    /// that it is closed without a reply, which nobody could read.
    ///
    /// The requests that may take room, or name a per-user id, carry the OS
    /// user that the shares and the per-user ids are kept for: one look-up
    /// in the kernel each (a hash look-up, no scan).
    pub fn complete(
        ip: ResponderIp,
        request: Request,
        name: Option<Box<[u8]>>,
        stream: &TcpStream,
        owners: &mut Owners,
    ) -> Option<Phase> {
        let user = match request {
            Request::Book { .. }
            | Request::Wait { .. }
            | Request::Attach { .. }
            | Request::Notify { .. }
            | Request::Status
            | Request::List => match owners.peer(stream) {
                Ok(owned) => owned.user,
                Err(Unknown::NotLive { .. }) => return None,
                Err(why @ (Unknown::Gone | Unknown::Failed(_))) => {
                    debug!(
                        "{ip}: {request} from an OS user unknown ({why}), counted as one user with all other unknown ones"
                    );
                    UNKNOWN_USER
                }
            },
            Request::CheckOut { .. } | Request::Query { .. } => UNKNOWN_USER,
        };
        Some(Phase::Waiting {
            ip,
            request,
            kept: Kept::Answering,
            user,
            name,
        })
    }

    /// Whether this connection counts against `--max-connections`: a
    /// queued waiter counts against the waiter limits instead, a line
    /// against the registry's bound of lines.
    pub fn is_client(&self) -> bool {
        !matches!(
            self,
            Phase::Verifying { .. }
                | Phase::Line { .. }
                | Phase::Waiting {
                    kept: Kept::Queued,
                    ..
                }
        )
    }
}

/// Where a request the registry has not answered yet waits, which says how
/// long it may wait and whether its connection is watched for its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// Answered at once or after one verification, within the rw timeout:
    /// not watched.
    Answering,
    /// Pending behind verifications of its uid: watched for its end, and
    /// closed after `PENDING_PATIENCE` rw timeouts.
    Pending,
    /// A WAIT in its uid's queue, for as long as its wait: watched for its
    /// end; counts against the waiter limits, not the connection slots.
    Queued,
}

/// Where reading a request got to.
pub(super) enum ReadProgress {
    Complete(Request),
    Pending,
    /// Closed early, malformed, or failed: close without a reply.
    Failed(ReadFailure),
}

#[derive(Debug)]
pub(super) enum ReadFailure {
    ClosedEarly,
    Malformed(DecodeError),
    Io(io::Error),
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::ClosedEarly => f.write_str("closed before a whole request"),
            ReadFailure::Malformed(why) => write!(f, "malformed request: {why}"),
            ReadFailure::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

/// Reads what has arrived, until the request is complete or the socket
/// has nothing more for now.
pub(super) fn read_request(stream: &mut TcpStream, decoder: &mut Decoder) -> ReadProgress {
    let mut chunk = [0; READ_CHUNK];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return ReadProgress::Failed(ReadFailure::ClosedEarly),
            Ok(n) => match decoder.feed(&chunk[..n]) {
                Ok(Some(request)) => return ReadProgress::Complete(request),
                Ok(None) => {}
                Err(malformed) => return ReadProgress::Failed(ReadFailure::Malformed(malformed)),
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock => return ReadProgress::Pending,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return ReadProgress::Failed(ReadFailure::Io(e)),
        }
    }
}

/// A call to a liveness responder: handshake out, uid back, and for a
/// NOTIFY the message out and an acknowledgement back.
pub(super) struct Verification {
    pub uid: Uid,
    handshake: Handshake,
    sent: usize,
    received: usize,
    answer: [u8; UID_LEN],
    handover: Option<Handover>,
}

/// A NOTIFY message on its way to the holder: header and message, handed
/// over only once the holder's OS user is known to be the sender's (or the
/// sender is root).
struct Handover {
    /// The OS user of the sender, if the kernel could tell.
    sender: Option<UserId>,
    bytes: Vec<u8>,
    sent: usize,
    cleared: bool,
}

/// A NOTIFY message and the OS user who sent it, if known.
pub(super) struct MessageFrom<'a> {
    pub sender: Option<UserId>,
    pub bytes: &'a [u8],
}

impl Verification {
    pub fn new(uid: Uid, handshake: Handshake, message: Option<MessageFrom>) -> Verification {
        Verification {
            uid,
            handshake,
            sent: 0,
            received: 0,
            answer: [0; UID_LEN],
            handover: message.map(|MessageFrom { sender, bytes }| Handover {
                sender,
                // Nothing goes to the holder from a sender nobody knows.
                bytes: sender.map_or_else(Vec::new, |sender| {
                    [&message_header(sender, bytes)[..], bytes].concat()
                }),
                sent: 0,
                cleared: false,
            }),
        }
    }

    /// Moves the exchange on as far as the socket allows; answers the
    /// verdict once there is one. Reads no more than a uid and one
    /// acknowledgement byte, so a responder that floods costs nothing.
    ///
    /// Only proof counts as death: a refused connection, or a whole answer
    /// that is not the uid. A close or reset before the whole answer is
    /// silence, which a flood of other connections on the responder, or a
    /// listener closing with the call still in its backlog, can cause.
    ///
    /// A message goes only to a holder of the sender's OS user, or from
    /// root. The holder's user is that of the socket that answered the
    /// handshake: the responder's listener, whichever process it was
    /// handed down to, asked on the very connection that proved it alive.
    pub fn advance(&mut self, stream: &mut TcpStream, owners: &mut Owners) -> Option<Verdict> {
        while self.sent < UID_LEN {
            match write_some(stream, &self.handshake.as_bytes()[self.sent..]) {
                Io::Done(n) => self.sent += n,
                Io::WouldBlock => return None,
                Io::Refused => return Some(Verdict::Dead),
                Io::Failed => return Some(Verdict::Silent),
            }
        }
        while self.received < UID_LEN {
            match read_some(stream, &mut self.answer[self.received..]) {
                Io::Done(n) => self.received += n,
                Io::WouldBlock => return None,
                Io::Refused => return Some(Verdict::Dead),
                Io::Failed => return Some(Verdict::Silent),
            }
        }
        if &self.answer != self.uid.as_bytes() {
            return Some(Verdict::Dead);
        }
        let Some(handover) = &mut self.handover else {
            return Some(Verdict::Alive);
        };
        // From here on the holder has proved alive; what remains is whether
        // it may have the message, and whether it takes it.
        if !handover.cleared {
            let Some(sender) = handover.sender else {
                return Some(Verdict::Withheld(Withheld::UserUnknown));
            };
            match owners.peer(stream) {
                Ok(holder) if may_message(sender, holder.user) => handover.cleared = true,
                Ok(_) => return Some(Verdict::Withheld(Withheld::OtherUser)),
                // It hung up after its uid, as a client of 0.6.0 does: no
                // message can reach it.
                Err(Unknown::Gone | Unknown::NotLive { .. }) => return Some(Verdict::Declined),
                Err(Unknown::Failed(_)) => return Some(Verdict::Withheld(Withheld::UserUnknown)),
            }
        }
        let declined = Some(Verdict::Declined);
        while handover.sent < handover.bytes.len() {
            match write_some(stream, &handover.bytes[handover.sent..]) {
                Io::Done(n) => handover.sent += n,
                Io::WouldBlock => return None,
                Io::Failed | Io::Refused => return declined,
            }
        }
        let mut ack = [0];
        match read_some(stream, &mut ack) {
            Io::Done(_) if ack[0] == MESSAGE_ACK => Some(Verdict::Alive),
            Io::WouldBlock => None,
            Io::Done(_) | Io::Failed | Io::Refused => declined,
        }
    }

    /// The verdict when the deadline passes first: a responder that
    /// answered its uid is alive, even if it then kept the server waiting;
    /// one that did not is silent, which proves nothing.
    pub fn verdict_on_timeout(&self) -> Verdict {
        if self.received == UID_LEN && &self.answer == self.uid.as_bytes() {
            Verdict::Declined
        } else {
            Verdict::Silent
        }
    }
}

/// Whether the peer has neither closed nor reset `stream`, as far as the
/// bytes that arrived tell; bytes waiting to be read count as open. A
/// write to a connection its peer closed still succeeds, so a grant is
/// looked at this way before it is written.
pub(super) fn is_open(stream: &TcpStream) -> bool {
    loop {
        return match stream.peek(&mut [0]) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    use super::*;
    use crate::owner::ROOT;
    use crate::owner::test_users::{NOBODY, as_user};

    /// A holder's responder on a thread, its connection accepted as
    /// `user` (ours if `None`): answers the handshake with `uid`, then reads
    /// what follows until the server closes; answers what it read.
    fn holder(uid: Uid, user: Option<UserId>) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = thread::spawn(move || {
            let accept = || listener.accept().unwrap().0;
            let mut stream = match user {
                Some(user) => as_user("holder", user, accept).unwrap(),
                None => accept(),
            };
            let mut handshake = [0; UID_LEN];
            stream.read_exact(&mut handshake).unwrap();
            stream.write_all(uid.as_bytes()).unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            rest
        });
        (port, thread)
    }

    /// Verifies a holder run as `holder_user` with a message from
    /// `sender`; answers the verdict and what the holder was sent after
    /// its uid.
    fn hand_over(
        sender: Option<UserId>,
        holder_user: Option<UserId>,
        owners: &mut Owners,
    ) -> (Verdict, Vec<u8>) {
        let (uid, handshake) = (Uid::from_name("held"), Handshake::from_bytes([0x5e; UID_LEN]));
        let (port, holder) = holder(uid, holder_user);
        let message = MessageFrom {
            sender,
            bytes: b"hi",
        };
        let mut verification = Verification::new(uid, handshake, Some(message));
        let std = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std.set_nonblocking(true).unwrap();
        let mut stream = TcpStream::from_std(std);
        let verdict = loop {
            // The holder never acknowledges, so a handed-over message ends
            // in a verdict only once the deadline would; stop at the write.
            if let Some(verdict) = verification.advance(&mut stream, owners) {
                break verdict;
            }
            if verification
                .handover
                .as_ref()
                .is_some_and(|h| h.cleared && h.sent == h.bytes.len())
            {
                break Verdict::Alive;
            }
            thread::sleep(std::time::Duration::from_millis(1));
        };
        drop(stream);
        (verdict, holder.join().unwrap())
    }

    /// The header and message a holder is handed from `sender`.
    fn handed(sender: UserId) -> Vec<u8> {
        [&sender.to_be_bytes()[..], &[0, 0, 0, 2], b"hi"].concat()
    }

    #[test]
    fn a_message_goes_only_to_a_holder_of_the_senders_user() {
        // SAFETY: geteuid has no preconditions and touches no memory.
        let me = unsafe { libc::geteuid() };
        let mut owners = Owners::open();
        assert_eq!(
            hand_over(Some(me), None, &mut owners),
            (Verdict::Alive, handed(me))
        );
        let stranger = if me == ROOT { 1000 } else { me + 1 };
        let (verdict, sent) = hand_over(Some(stranger), None, &mut owners);
        assert_eq!(verdict, Verdict::Withheld(Withheld::OtherUser));
        assert!(sent.is_empty(), "{sent:?}");
        if me != ROOT {
            let from_root = hand_over(Some(ROOT), None, &mut owners);
            assert_eq!(from_root, (Verdict::Alive, handed(ROOT)));
            eprintln!("skipped the rest: a holder run as nobody needs root");
            return;
        }
        // A holder of another user than the test's (root): nobody's.
        let nobody = Some(NOBODY);
        assert_eq!(
            hand_over(nobody, nobody, &mut owners),
            (Verdict::Alive, handed(NOBODY))
        );
        assert_eq!(
            hand_over(Some(ROOT), nobody, &mut owners),
            (Verdict::Alive, handed(ROOT))
        );
        let (verdict, sent) = hand_over(Some(1000), nobody, &mut owners);
        assert_eq!(verdict, Verdict::Withheld(Withheld::OtherUser));
        assert!(sent.is_empty(), "{sent:?}");
    }

    #[test]
    fn a_message_whose_users_cannot_be_told_is_withheld() {
        // SAFETY: as above.
        let me = unsafe { libc::geteuid() };
        let (verdict, sent) = hand_over(Some(me), None, &mut Owners::unavailable());
        assert_eq!(verdict, Verdict::Withheld(Withheld::UserUnknown));
        assert!(sent.is_empty());
        let (verdict, sent) = hand_over(None, None, &mut Owners::open());
        assert_eq!(verdict, Verdict::Withheld(Withheld::UserUnknown));
        assert!(sent.is_empty());
    }
}
