//! What goes into the registry and what comes out: the requests it
//! serves, the verdicts of the verifications it asks for, and the actions
//! and answers it asks the reactor to carry out.

use std::net::SocketAddr;
use std::time::Instant;

use crate::handshake::Handshake;
use crate::uid::Uid;
pub use crate::wire::Mode;
use crate::wire::{
    Limit, MAX_WAIT, REPLY_DECLINED, REPLY_NO, REPLY_NO_LINE, REPLY_OTHER_USER,
    REPLY_SHARED_IN_FORCE, REPLY_SLOTS_IN_FORCE, REPLY_USER_UNKNOWN, REPLY_YES, Request,
};

/// The OS user of a request, as the kernel reports the owner of its
/// connection: the same numbers as [`crate::owner::UserId`].
pub type User = u32;

/// The user of a request whose owner the kernel could not tell, and of a
/// booking restored from a state file that did not record one: they all
/// share one share, like one user.
pub const UNKNOWN_USER: User = u32::MAX;

/// What one OS user takes of the registry's bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Use {
    /// Bookings held, and candidates being verified for one.
    pub bookings: usize,
    /// Lines kept for its bookings.
    pub lines: usize,
    /// WAITs queued for held uids.
    pub waiters: usize,
    /// Requests pending behind verifications, or parked while bookings
    /// are reclaimed.
    pub pending: usize,
}

/// A request, as far as the booking rules care. A NOTIFY's message stays
/// with the reactor, which sends it on the verification the registry asks
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Book `uid`, proving alive at `port` with `handshake`.
    Book {
        /// The id to book.
        uid: Uid,
        /// The booker's secret.
        handshake: Handshake,
        /// The booker's liveness responder port.
        port: u16,
    },
    /// Release `uid` if `handshake` is the holder's.
    CheckOut {
        /// The id to release.
        uid: Uid,
        /// The holder's secret, if the asker is the holder.
        handshake: Handshake,
    },
    /// Hand a message to the live holder of `uid`.
    Notify {
        /// The id whose holder gets the message.
        uid: Uid,
    },
    /// Book `uid` in `mode`; if it cannot be granted now, wait in its
    /// queue until it can, or until `until`. With `line`, the booker asks
    /// to keep the connection this arrived on as the booking's line.
    Wait {
        /// The id to book.
        uid: Uid,
        /// The booker's secret.
        handshake: Handshake,
        /// The booker's liveness responder port.
        port: u16,
        /// When the request arrived: the registry reads no clock.
        arrived: Instant,
        /// When the wait ends with a `Denied`.
        until: Instant,
        /// Whether the booker asks for a line (LINE): while the registry
        /// can keep one more, the open connection is its proof of life, so
        /// it is granted without a call-back and its booking lasts as long
        /// as that connection.
        line: bool,
        /// How it asks to hold `uid`: alone, or beside others.
        mode: Mode,
    },
    /// Make the requester's connection the line of the booking of `uid`,
    /// held with `handshake`: after a restart, which closes every line.
    Attach {
        /// The id held.
        uid: Uid,
        /// The holder's secret.
        handshake: Handshake,
    },
}

impl Ask {
    /// What `request`, arrived at `now`, asks of the registry; STATUS and
    /// QUERY ask nothing of it, only read it.
    pub fn of(request: &Request, now: Instant) -> Option<Ask> {
        match *request {
            Request::Book {
                uid,
                handshake,
                port,
            } => Some(Ask::Book {
                uid,
                handshake,
                port,
            }),
            Request::CheckOut { uid, handshake } => Some(Ask::CheckOut { uid, handshake }),
            Request::Notify { uid, .. } => Some(Ask::Notify { uid }),
            Request::Attach { uid, handshake } => Some(Ask::Attach { uid, handshake }),
            Request::Status | Request::Query { .. } | Request::List => None,
            Request::Wait {
                uid,
                handshake,
                port,
                wait,
                line,
                // The reactor writes the token with the reply.
                token: _,
                mode,
            } => Some(Ask::Wait {
                uid,
                handshake,
                port,
                arrived: now,
                // Past the end of time as an Instant can tell it, the wait
                // is as good as endless.
                until: now.checked_add(wait).unwrap_or(now + MAX_WAIT),
                line,
                mode,
            }),
        }
    }

    /// How the request asks to hold its id: a BOOK (0.6.0) always alone.
    pub fn mode(&self) -> Mode {
        match *self {
            Ask::Wait { mode, .. } => mode,
            _ => Mode::Exclusive,
        }
    }

    /// The id asked about.
    pub fn uid(&self) -> Uid {
        match *self {
            Ask::Book { uid, .. }
            | Ask::CheckOut { uid, .. }
            | Ask::Notify { uid }
            | Ask::Wait { uid, .. }
            | Ask::Attach { uid, .. } => uid,
        }
    }
}

/// What the reactor must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<R> {
    /// Write `answer` to the requester `to`, then close.
    Reply {
        /// The requester.
        to: R,
        /// What to tell it.
        answer: Answer,
    },
    /// The request of `to` is pending behind a verification of its uid,
    /// and may wait for several: bound how long it may keep its slot, and
    /// report its connection's end with [`Registry::ended`](super::Registry::ended).
    Pending {
        /// The requester.
        to: R,
    },
    /// The booking of `uid` was dropped because its holder proved dead or
    /// its line ended: record it as released before anyone learns that
    /// the id is free.
    Dropped {
        /// The id now free.
        uid: Uid,
    },
    /// The WAIT of `to` joined its uid's queue and may wait long: watch its
    /// connection, and report its end with [`Registry::ended`](super::Registry::ended).
    Queued {
        /// The waiter.
        to: R,
    },
    /// Close the requester `to` without a reply: its client sees an error,
    /// never a false "held elsewhere".
    Refuse {
        /// The requester.
        to: R,
        /// Why, for the log.
        why: Refusal,
    },
    /// The booking whose line is `to` was released by a check out sent on
    /// another connection: close `to` without writing anything. It has
    /// left the registry; its end need not be reported.
    CloseLine {
        /// The line's requester.
        to: R,
    },
    /// Call the liveness responder at `at`: send `handshake`, expect `uid`
    /// back. Report the outcome with [`Registry::verified`](super::Registry::verified).
    Verify {
        /// The id whose holder or candidate is being checked.
        uid: Uid,
        /// The secret to send.
        handshake: Handshake,
        /// The responder's address.
        at: SocketAddr,
        /// Whose NOTIFY message to hand over once the responder has proved
        /// alive, if any.
        message_from: Option<R>,
    },
}

/// The one-byte replies, by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The booker holds the id now.
    Granted,
    /// The booker of a LINE holds the id now, or the holder that ATTACHed
    /// got its line: its connection is the booking's line from now on.
    /// Keep it open, hand a check out that arrives on it to the registry,
    /// and report its end with [`Registry::ended`].
    ///
    /// [`Registry::ended`]: super::Registry::ended
    Lined,
    /// The booker of a LINE holds the id now but gets no line (the bound
    /// of lines is reached), or the holder that ATTACHed gets none: its
    /// booking lives under the call-back rules.
    NoLine,
    /// The ATTACH named no booking held with its handshake: it is lost.
    Lost,
    /// Another live process holds the id, or the booker did not prove alive.
    Denied,
    /// The booking was released.
    CheckedOut,
    /// Nothing was released: the id is not held with that handshake.
    NotCheckedOut,
    /// The booker asked for slots while the id is held or waited for with
    /// another count, which this carries: the count in force.
    SlotsInForce(u32),
    /// The booker asked for slots while the id is held or waited for
    /// shared, without a count.
    SharedInForce,
    /// The holder took the NOTIFY message.
    Delivered,
    /// No live process holds the id, so the message went nowhere.
    NoHolder,
    /// The holder is alive, or silent and so presumed alive, but did not
    /// take the message.
    Declined,
    /// The holder is alive and runs as another OS user than the sender of
    /// the message, which was not handed over.
    OtherUser,
    /// The holder is alive, but the OS user of the sender or of the holder
    /// could not be told, so the message was not handed over.
    UserUnknown,
}

impl Answer {
    /// The byte that carries this answer on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Answer::Granted | Answer::Lined | Answer::CheckedOut | Answer::Delivered => REPLY_YES,
            Answer::NoLine => REPLY_NO_LINE,
            Answer::Denied | Answer::NotCheckedOut | Answer::NoHolder | Answer::Lost => REPLY_NO,
            // The count follows, written by the reactor.
            Answer::SlotsInForce(_) => REPLY_SLOTS_IN_FORCE,
            Answer::SharedInForce => REPLY_SHARED_IN_FORCE,
            Answer::Declined => REPLY_DECLINED,
            Answer::OtherUser => REPLY_OTHER_USER,
            Answer::UserUnknown => REPLY_USER_UNKNOWN,
        }
    }
}

/// Why a request was refused rather than answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A bound is reached: the requester's own share of it (`share`), or
    /// the server's total.
    Full {
        /// Which bound.
        limit: Limit,
        /// Whether it was the requester's share of the bound, not the total.
        share: bool,
    },
    /// The uid is a per-user id of another OS user.
    OtherUsersId,
    /// The server could not tell whether a process is alive, so it
    /// neither grants nor denies.
    Inconclusive,
    /// A check out with the wrong handshake arrived on a booking's line:
    /// the line is closed, and so its booking ended.
    LineMisused,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The responder answered the handshake with the uid (and took the
    /// message, if it was handed one).
    Alive,
    /// The responder answered the handshake with the uid, but did not
    /// acknowledge the message it was handed.
    Declined,
    /// Proof that the responder is gone: the connection was refused
    /// (nothing listens on its port), or a complete answer was not the uid
    /// (the port belongs to someone else, impossible while the original
    /// listener is open).
    Dead,
    /// No proof either way: no complete answer within the rw timeout, a
    /// connect that timed out, or a close before the answer. A stopped,
    /// swapping or flooded process looks like this, and so does a listener
    /// handed down to a command that never accepts: a holder that is silent
    /// keeps its booking, and a booker that is silent is not granted.
    Silent,
    /// The server itself failed before it could ask (out of file
    /// descriptors, say); says nothing about the process.
    Inconclusive,
    /// The responder answered the handshake with the uid, so it is alive,
    /// but the message for it was not handed over: messages cross no OS
    /// user boundary.
    Withheld(Withheld),
}

/// Why a live holder was not handed a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// The sender runs as another OS user than the holder, and not as root.
    OtherUser,
    /// The OS user of the sender or of the holder could not be told.
    UserUnknown,
}

impl Withheld {
    /// The answer for the message's sender.
    pub fn answer(self) -> Answer {
        match self {
            Withheld::OtherUser => Answer::OtherUser,
            Withheld::UserUnknown => Answer::UserUnknown,
        }
    }
}
