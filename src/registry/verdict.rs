//! A verification's verdict: what it decides for the holder or candidate
//! verified, and for the requests pending behind it.

use super::{
    Action, Answer, Ask, Booking, Checking, Counter, Fate, Pending, Refusal, Registry, Verdict,
};
use super::{refuse, reply};
use crate::uid::Uid;

impl<R: Copy + PartialEq> Registry<R> {
    /// The verification of `uid` started by the last `Verify` action for it
    /// ended with `verdict`.
    pub fn verified(&mut self, uid: Uid, verdict: Verdict, out: &mut Vec<Action<R>>) {
        let Some(Pending { checking, waiting }) = self.remove_pending(&uid) else {
            return;
        };
        // The key of the booking of the holder verified, if it still holds.
        let key = match &checking {
            Checking::Holder { handshake, .. } | Checking::Probe { handshake, .. } => {
                self.held_with(&uid, handshake).map(|holder| holder.uid)
            }
            Checking::Candidate { .. } => None,
        };
        // An open line proves its holder alive whatever its responder
        // says: the booking ends with the line, not with the port.
        let verdict = match verdict {
            Verdict::Dead if key.is_some_and(|key| self.lines.contains_key(&key)) => {
                Verdict::Silent
            }
            verdict => verdict,
        };
        let mut alive = None;
        let mut retry = None;
        let mut round = None;
        match checking {
            Checking::Holder { waiter, .. } => {
                let notify = matches!(waiter.ask, Ask::Notify { .. });
                match (verdict, key) {
                    (Verdict::Inconclusive, _) => refuse(waiter.from, Refusal::Inconclusive, out),
                    // Without proof of its death, a holder keeps its
                    // booking: silence counts as alive.
                    (
                        Verdict::Alive | Verdict::Declined | Verdict::Silent | Verdict::Withheld(_),
                        Some(key),
                    ) => {
                        alive = Some(key);
                        match (verdict, waiter.ask) {
                            (_, Ask::Wait { .. }) => self.enqueue(waiter, out),
                            // Check outs and attaches need no verification:
                            // here for the match's sake.
                            (_, Ask::Book { .. } | Ask::CheckOut { .. } | Ask::Attach { .. }) => {
                                reply(waiter.from, Answer::Denied, out);
                            }
                            (Verdict::Alive, Ask::Notify { .. }) => {
                                reply(waiter.from, Answer::Delivered, out);
                            }
                            (Verdict::Withheld(why), Ask::Notify { .. }) => {
                                reply(waiter.from, why.answer(), out);
                            }
                            (_, Ask::Notify { .. }) => reply(waiter.from, Answer::Declined, out),
                        }
                    }
                    (Verdict::Dead, Some(key)) => {
                        self.release(&key);
                        out.push(Action::Dropped { uid: key });
                        if notify {
                            reply(waiter.from, Answer::NoHolder, out);
                        } else {
                            retry = Some(waiter);
                        }
                    }
                    // The booking changed hands while it was verified: the
                    // verdict is about someone else, so serve afresh.
                    (_, None) => retry = Some(waiter),
                }
            }
            Checking::Candidate {
                from,
                mut booking,
                fate,
                line,
                mode,
                ..
            } => {
                self.reserved -= 1;
                let user = booking.user;
                match verdict {
                    _ if fate == Fate::Ended => {}
                    _ if fate == Fate::Lapsed => reply(from, Answer::Denied, out),
                    // No message is handed to a candidate, so it cannot
                    // decline one; it answered, so it is alive.
                    Verdict::Alive | Verdict::Declined | Verdict::Withheld(_) => {
                        // Serving one at a time kept everyone else away from this uid, so
                        // the insert finds room.
                        self.stamp(&mut booking);
                        let held = self.hold(&mut booking, mode);
                        alive = held.then_some(booking.uid);
                        self.sweep_later(booking.since);
                        let answer = match (held, line) {
                            (true, false) => Answer::Granted,
                            (true, true) => Answer::NoLine,
                            (false, _) => Answer::Denied,
                        };
                        reply(from, answer, out);
                    }
                    // A grant needs the uid back, nothing less.
                    Verdict::Dead | Verdict::Silent => reply(from, Answer::Denied, out),
                    Verdict::Inconclusive => refuse(from, Refusal::Inconclusive, out),
                }
                // The reservation became the booking, or it goes.
                if alive.is_none() {
                    self.users.give(user, Counter::Bookings);
                }
            }
            Checking::Probe {
                handshake,
                round: of,
            } => {
                round = of.map(|scope| (scope, handshake));
                match (verdict, key) {
                    (Verdict::Dead, Some(key)) => {
                        self.release(&key);
                        out.push(Action::Dropped { uid: key });
                    }
                    (
                        Verdict::Alive | Verdict::Declined | Verdict::Silent | Verdict::Withheld(_),
                        Some(key),
                    ) => alive = Some(key),
                    _ => {}
                }
            }
        }
        if let Some(key) = alive {
            self.checked_now(&key);
        }
        self.serve_pending(uid, waiting, retry, alive.is_some(), out);
        if let Some((scope, handshake)) = round {
            self.round_verified(scope, uid, handshake, out);
        }
    }

    /// The holder of the booking under the key `key` was just proved
    /// alive or silent: it becomes the most recently checked booking, the
    /// last a round of reclaiming picks.
    fn checked_now(&mut self, key: &Uid) {
        self.checks += 1;
        self.bookings.set_checked(key, self.checks);
    }

    /// Stamps `booking`, granted now, with the time, the count of checks
    /// and the next fencing token. A grant that is then not made leaves a
    /// gap in the tokens, never a repeat. At the end of the count (only a
    /// forged state file gets near it) the last token is given again
    /// rather than wrapping to a smaller one.
    pub(super) fn stamp(&mut self, booking: &mut Booking) {
        booking.since = self.wall_clock;
        booking.checked = self.checks;
        self.last_token = self.last_token.saturating_add(1);
        booking.token = self.last_token;
    }
}
