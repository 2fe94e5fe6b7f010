//! The booking rules as a pure state machine: no sockets, no clock, no
//! logging. The reactor tells it what happened (a request arrived, a
//! verification ended, a grant could not be delivered) and carries out the
//! [`Action`]s it answers with.
//!
//! Requests for one uid are served one at a time: while a verification for
//! a uid is in flight, later requests for it wait in that uid's line. This is
//! what keeps two contenders from both being granted.

mod booking;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod model;
mod table;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

pub use booking::{Booking, ResponderIp};
use table::Table;

use crate::uid::Uid;
use crate::wire::{REPLY_DECLINED, REPLY_NO, REPLY_YES, Request};

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
        handshake: Uid,
        /// The booker's liveness responder port.
        port: u16,
    },
    /// Release `uid` if `handshake` is the holder's.
    CheckOut {
        /// The id to release.
        uid: Uid,
        /// The holder's secret, if the asker is the holder.
        handshake: Uid,
    },
    /// Hand a message to the live holder of `uid`.
    Notify {
        /// The id whose holder gets the message.
        uid: Uid,
    },
}

impl Ask {
    /// What `request` asks of the registry; STATUS asks nothing of it.
    pub fn of(request: &Request) -> Option<Ask> {
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
            Request::Status => None,
        }
    }

    /// The id asked about.
    pub fn uid(&self) -> Uid {
        match *self {
            Ask::Book { uid, .. } | Ask::CheckOut { uid, .. } | Ask::Notify { uid } => uid,
        }
    }
}

/// The bounds that keep one registry's memory proportional to its load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bookings held at once; a book past it is refused.
    pub max_bookings: usize,
    /// Requests waiting behind a uid's verification in flight; a request
    /// past it is refused.
    pub max_waiting: usize,
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
    /// Close the requester `to` without a reply: its client sees an error,
    /// never a false "held elsewhere".
    Refuse {
        /// The requester.
        to: R,
        /// Why, for the log.
        why: Refusal,
    },
    /// Call the liveness responder at `at`: send `handshake`, expect `uid`
    /// back. Report the outcome with [`Registry::verified`].
    Verify {
        /// The id whose holder or candidate is being checked.
        uid: Uid,
        /// The secret to send.
        handshake: Uid,
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
    /// Another live process holds the id, or the booker did not prove alive.
    Denied,
    /// The booking was released.
    CheckedOut,
    /// Nothing was released: the id is not held with that handshake.
    NotCheckedOut,
    /// The holder took the NOTIFY message.
    Delivered,
    /// No live process holds the id, so the message went nowhere.
    NoHolder,
    /// The holder is alive, or silent and so presumed alive, but did not
    /// take the message.
    Declined,
}

impl Answer {
    /// The byte that carries this answer on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Answer::Granted | Answer::CheckedOut | Answer::Delivered => REPLY_YES,
            Answer::Denied | Answer::NotCheckedOut | Answer::NoHolder => REPLY_NO,
            Answer::Declined => REPLY_DECLINED,
        }
    }
}

/// Why a request was refused rather than answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The uid's line of waiting requests is full.
    LineFull,
    /// The maximum number of bookings is reached.
    BookingsFull,
    /// The server could not tell whether a process is alive, so it
    /// neither grants nor denies.
    Inconclusive,
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
}

/// The booking table and the lines of requests waiting on verifications.
///
/// `R` names a requester (the reactor's connection handle); the registry
/// only copies it into actions.
#[derive(Clone)]
pub struct Registry<R> {
    bookings: Table,
    lines: HashMap<Uid, Line<R>>,
    /// Candidates being verified: each will need a booking if it passes, so
    /// they count against `max_bookings` from the start.
    reserved: usize,
    limits: Limits,
}

/// A request and who sent it.
#[derive(Debug, Clone, Copy)]
struct Waiter<R> {
    from: R,
    ip: ResponderIp,
    ask: Ask,
}

/// A uid with a verification in flight: what is being verified, and the
/// requests that arrived meanwhile, in arrival order.
#[derive(Clone)]
struct Line<R> {
    checking: Checking<R>,
    waiting: VecDeque<Waiter<R>>,
}

#[derive(Clone)]
enum Checking<R> {
    /// The holder with this handshake, on behalf of `waiter`: a book that
    /// contends for its uid, or a notify for it.
    Holder { handshake: Uid, waiter: Waiter<R> },
    /// The booker `from` of a free uid, and the booking it gets if it passes.
    Candidate { from: R, booking: Booking },
}

impl<R: Copy> Registry<R> {
    /// An empty registry.
    pub fn new(limits: Limits) -> Registry<R> {
        Registry {
            bookings: Table::new(),
            lines: HashMap::new(),
            reserved: 0,
            limits,
        }
    }

    /// The number of bookings held.
    pub fn len(&self) -> usize {
        self.bookings.len()
    }

    /// Whether no booking is held.
    pub fn is_empty(&self) -> bool {
        self.bookings.len() == 0
    }

    /// The booking of `uid`, if it is held.
    pub fn holder(&self, uid: &Uid) -> Option<&Booking> {
        self.bookings.get(uid)
    }

    /// Every booking held, in no particular order.
    pub fn bookings(&self) -> impl Iterator<Item = &Booking> {
        self.bookings.iter()
    }

    /// Takes back a booking recorded before a restart, as held, without
    /// verifying it: like any holder, it is verified at the next contention.
    /// Answers false when its uid is already held or the table is full.
    pub fn restore(&mut self, booking: Booking) -> bool {
        self.bookings.len() < self.limits.max_bookings && self.bookings.insert(booking)
    }

    /// Whether any uid has a verification in flight.
    pub fn is_idle(&self) -> bool {
        self.lines.is_empty()
    }

    /// A request arrived from `from`, connected from `ip`. Its answer may
    /// come now or after verifications; either way exactly one `Reply` or
    /// `Refuse` names `from`.
    pub fn request(&mut self, from: R, ip: ResponderIp, ask: Ask, out: &mut Vec<Action<R>>) {
        let waiter = Waiter { from, ip, ask };
        let uid = ask.uid();
        if let Some(line) = self.lines.get_mut(&uid) {
            if line.waiting.len() < self.limits.max_waiting {
                line.waiting.push_back(waiter);
            } else {
                out.push(Action::Refuse {
                    to: from,
                    why: Refusal::LineFull,
                });
            }
            return;
        }
        self.serve_line(uid, VecDeque::new(), Some(waiter), false, out);
    }

    /// The verification of `uid` started by the last `Verify` action for it
    /// ended with `verdict`.
    pub fn verified(&mut self, uid: Uid, verdict: Verdict, out: &mut Vec<Action<R>>) {
        let Some(Line { checking, waiting }) = self.lines.remove(&uid) else {
            return;
        };
        let mut holder_alive = false;
        let mut retry = None;
        match checking {
            Checking::Holder { handshake, waiter } => {
                let verified_holder_still_holds = self
                    .bookings
                    .get(&uid)
                    .is_some_and(|holder| holder.handshake == handshake);
                let notify = matches!(waiter.ask, Ask::Notify { .. });
                match (verdict, verified_holder_still_holds) {
                    (Verdict::Inconclusive, _) => refuse(waiter.from, Refusal::Inconclusive, out),
                    // Without proof of its death, a holder keeps its
                    // booking: silence counts as alive.
                    (Verdict::Alive | Verdict::Declined | Verdict::Silent, true) => {
                        holder_alive = true;
                        let answer = match verdict {
                            _ if !notify => Answer::Denied,
                            Verdict::Alive => Answer::Delivered,
                            _ => Answer::Declined,
                        };
                        reply(waiter.from, answer, out);
                    }
                    (Verdict::Dead, true) => {
                        self.bookings.remove(&uid);
                        if notify {
                            reply(waiter.from, Answer::NoHolder, out);
                        } else {
                            retry = Some(waiter);
                        }
                    }
                    // The booking changed hands while it was verified: the
                    // verdict is about someone else, so serve afresh.
                    (_, false) => retry = Some(waiter),
                }
            }
            Checking::Candidate { from, booking } => {
                self.reserved -= 1;
                match verdict {
                    // No message is handed to a candidate, so it cannot
                    // decline one; it answered, so it is alive.
                    Verdict::Alive | Verdict::Declined => {
                        // The line kept everyone else away from this uid, so
                        // the insert finds it free.
                        holder_alive = self.bookings.insert(booking);
                        let answer = if holder_alive {
                            Answer::Granted
                        } else {
                            Answer::Denied
                        };
                        reply(from, answer, out);
                    }
                    // A grant needs the uid back, nothing less.
                    Verdict::Dead | Verdict::Silent => reply(from, Answer::Denied, out),
                    Verdict::Inconclusive => refuse(from, Refusal::Inconclusive, out),
                }
            }
        }
        self.serve_line(uid, waiting, retry, holder_alive, out);
    }

    /// The `Granted` reply for `uid` could not be written: the booker never
    /// learns it holds the id, so the booking is dropped again. Answers
    /// whether it was.
    pub fn grant_undelivered(&mut self, uid: Uid, handshake: Uid) -> bool {
        self.bookings
            .get(&uid)
            .is_some_and(|holder| holder.handshake == handshake)
            && self.bookings.remove(&uid).is_some()
    }

    /// Serves `first`, then the `waiting` requests of `uid` in order, until
    /// one needs a verification; the rest then wait in the uid's line.
    /// `holder_alive` says the current holder has just proved alive, so
    /// books are denied without asking it again.
    fn serve_line(
        &mut self,
        uid: Uid,
        mut waiting: VecDeque<Waiter<R>>,
        first: Option<Waiter<R>>,
        mut holder_alive: bool,
        out: &mut Vec<Action<R>>,
    ) {
        let mut next = first.or_else(|| waiting.pop_front());
        while let Some(waiter) = next {
            if let Some(checking) = self.serve(waiter, &mut holder_alive, out) {
                self.lines.insert(uid, Line { checking, waiting });
                return;
            }
            next = waiting.pop_front();
        }
    }

    /// Serves one request for a uid with no verification in flight, and
    /// answers what must be verified before it can be answered, if anything.
    fn serve(
        &mut self,
        waiter: Waiter<R>,
        holder_alive: &mut bool,
        out: &mut Vec<Action<R>>,
    ) -> Option<Checking<R>> {
        match waiter.ask {
            Ask::CheckOut { uid, handshake } => {
                let released = self
                    .bookings
                    .get(&uid)
                    .is_some_and(|holder| holder.handshake.matches_secret(&handshake))
                    && self.bookings.remove(&uid).is_some();
                if released {
                    *holder_alive = false;
                }
                let answer = if released {
                    Answer::CheckedOut
                } else {
                    Answer::NotCheckedOut
                };
                reply(waiter.from, answer, out);
                None
            }
            Ask::Notify { uid } => match self.bookings.get(&uid) {
                None => {
                    reply(waiter.from, Answer::NoHolder, out);
                    None
                }
                Some(holder) => Some(self.verify_holder(holder, waiter, Some(waiter.from), out)),
            },
            Ask::Book {
                uid,
                handshake,
                port,
            } => match self.bookings.get(&uid) {
                Some(_) if *holder_alive => {
                    reply(waiter.from, Answer::Denied, out);
                    None
                }
                Some(holder) => Some(self.verify_holder(holder, waiter, None, out)),
                None if self.bookings.len() + self.reserved >= self.limits.max_bookings => {
                    refuse(waiter.from, Refusal::BookingsFull, out);
                    None
                }
                None => {
                    self.reserved += 1;
                    let booking = Booking {
                        uid,
                        handshake,
                        ip: waiter.ip,
                        port,
                    };
                    out.push(Action::Verify {
                        uid,
                        handshake,
                        at: booking.responder(),
                        message_from: None,
                    });
                    Some(Checking::Candidate {
                        from: waiter.from,
                        booking,
                    })
                }
            },
        }
    }

    fn verify_holder(
        &self,
        holder: &Booking,
        waiter: Waiter<R>,
        message_from: Option<R>,
        out: &mut Vec<Action<R>>,
    ) -> Checking<R> {
        out.push(Action::Verify {
            uid: holder.uid,
            handshake: holder.handshake,
            at: holder.responder(),
            message_from,
        });
        Checking::Holder {
            handshake: holder.handshake,
            waiter,
        }
    }
}

fn reply<R>(to: R, answer: Answer, out: &mut Vec<Action<R>>) {
    out.push(Action::Reply { to, answer });
}

fn refuse<R>(to: R, why: Refusal, out: &mut Vec<Action<R>>) {
    out.push(Action::Refuse { to, why });
}

#[cfg(test)]
mod tests;
