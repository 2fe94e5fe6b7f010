//! Serving the requests of one uid in order: those pending behind a
//! verification, the queue of waiters first whenever the uid frees, and the
//! probes of a holder that someone waits for.

use std::collections::VecDeque;

use super::waiting::{Full, Queued};
use super::{
    Action, Answer, Ask, Booking, Checking, Fate, Refusal, Registry, ResponderIp, User, Waiter,
    full, refuse, reply,
};
use crate::uid::Uid;
use crate::wire::Limit;

impl<R: Copy + PartialEq> Registry<R> {
    /// Serves `first`, then the `waiting` requests of `uid` in order, until
    /// one needs a verification; the rest are then pending behind it.
    /// Whenever the uid is free and someone is queued for it, the first in
    /// the queue goes before them all. `holder_alive` says the current
    /// holder has just proved alive (or stayed silent), so books are denied
    /// and waits queued without asking it again.
    pub(super) fn serve_pending(
        &mut self,
        uid: Uid,
        mut waiting: VecDeque<Waiter<R>>,
        first: Option<Waiter<R>>,
        mut holder_alive: bool,
        out: &mut Vec<Action<R>>,
    ) {
        let mut next = first.or_else(|| waiting.pop_front());
        loop {
            // Checked first, as cheaply as can be: most uids have no queue.
            if self.waiting.count() > 0
                && self.bookings.get(&uid).is_none()
                && let Some(checking) = self.verify_next_waiter(uid, out)
            {
                if let Some(next) = next {
                    waiting.push_front(next);
                }
                self.insert_pending(uid, checking, waiting);
                return;
            }
            let Some(waiter) = next else {
                return;
            };
            if let Some(checking) = self.serve(waiter, &mut holder_alive, out) {
                self.insert_pending(uid, checking, waiting);
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
                let line = self.lines.get(&uid).copied();
                let on_line = line == Some(waiter.from);
                let by_holder = self
                    .bookings
                    .get(&uid)
                    .is_some_and(|holder| holder.handshake.matches_secret(&handshake));
                if by_holder || on_line {
                    self.release(&uid);
                    *holder_alive = false;
                }
                if !by_holder && on_line {
                    // Anything but its own check out closes a line, and
                    // so ends its booking, as its close would.
                    out.push(Action::Dropped { uid });
                    refuse(waiter.from, Refusal::LineMisused, out);
                    return None;
                }
                let answer = if by_holder {
                    Answer::CheckedOut
                } else {
                    Answer::NotCheckedOut
                };
                reply(waiter.from, answer, out);
                if let Some(line) = line.filter(|_| by_holder && !on_line) {
                    out.push(Action::CloseLine { to: line });
                }
                None
            }
            Ask::Attach { uid, handshake } => {
                self.attach(waiter.from, uid, handshake, out);
                None
            }
            Ask::Notify { uid } => match self.bookings.get(&uid) {
                None => {
                    reply(waiter.from, Answer::NoHolder, out);
                    None
                }
                Some(holder) => Some(verify_holder(holder, waiter, Some(waiter.from), out)),
            },
            Ask::Book {
                uid,
                handshake,
                port,
            }
            | Ask::Wait {
                uid,
                handshake,
                port,
                ..
            } => match self.bookings.get(&uid) {
                // An open line proves its holder alive: no call-back.
                Some(_) if *holder_alive || self.lines.contains_key(&uid) => {
                    if matches!(waiter.ask, Ask::Wait { .. }) {
                        self.enqueue(waiter, out);
                    } else {
                        reply(waiter.from, Answer::Denied, out);
                    }
                    None
                }
                Some(holder) => Some(verify_holder(holder, waiter, None, out)),
                None => {
                    let line = matches!(waiter.ask, Ask::Wait { line: true, .. });
                    self.book_free(
                        waiter.from,
                        waiter.ip,
                        waiter.user,
                        uid,
                        handshake,
                        port,
                        line,
                        out,
                    )
                }
            },
        }
    }

    /// Books the free `uid` for `from`, unless the table is full: at once
    /// on its line if it asked for one and one more can be kept, or else
    /// once it proves alive, which this starts verifying.
    #[allow(clippy::too_many_arguments)]
    fn book_free(
        &mut self,
        from: R,
        ip: ResponderIp,
        user: User,
        uid: Uid,
        handshake: Uid,
        port: u16,
        line: bool,
        out: &mut Vec<Action<R>>,
    ) -> Option<Checking<R>> {
        if self.bookings.len() + self.reserved >= self.limits.max_bookings {
            refuse(from, full(Limit::Bookings), out);
            return None;
        }
        let booking = Booking {
            uid,
            handshake,
            ip,
            port,
            since: 0,
            user,
        };
        if line && self.room_for_line() {
            self.grant_on_line(from, booking, out);
            return None;
        }
        self.reserved += 1;
        out.push(Action::Verify {
            uid,
            handshake,
            at: booking.responder(),
            message_from: None,
        });
        Some(Checking::Candidate {
            from,
            booking,
            ticket: None,
            fate: Fate::Open,
            line,
        })
    }

    /// Books the free `uid` for the first waiter queued for it: at once
    /// on its line, or by starting to verify it. One the table has no room
    /// for is refused, and the next one tried.
    fn verify_next_waiter(&mut self, uid: Uid, out: &mut Vec<Action<R>>) -> Option<Checking<R>> {
        while let Some(waiter) = self.waiting.pop_front(&uid) {
            let Queued {
                from,
                ip,
                user,
                handshake,
                port,
                ticket,
                line,
                ..
            } = waiter;
            match self.book_free(from, ip, user, uid, handshake, port, line, out) {
                Some(Checking::Candidate {
                    from,
                    booking,
                    fate,
                    line,
                    ..
                }) => {
                    return Some(Checking::Candidate {
                        from,
                        booking,
                        ticket: Some(ticket),
                        fate,
                        line,
                    });
                }
                // Granted on its line.
                _ if self.bookings.get(&uid).is_some() => return None,
                _ => {}
            }
        }
        None
    }

    /// Puts a WAIT whose uid a live holder has at the back of the uid's
    /// queue; a WAIT whose time is up (no time at all, or spent pending
    /// behind a verification) is denied instead, as a BOOK is.
    pub(super) fn enqueue(&mut self, waiter: Waiter<R>, out: &mut Vec<Action<R>>) {
        let Ask::Wait {
            uid,
            handshake,
            port,
            arrived,
            until,
            line,
        } = waiter.ask
        else {
            return;
        };
        if Some(until) <= self.now.max(Some(arrived)) {
            reply(waiter.from, Answer::Denied, out);
            return;
        }
        let queued = Queued {
            from: waiter.from,
            ip: waiter.ip,
            user: waiter.user,
            handshake,
            port,
            until,
            ticket: self.waiting.ticket(),
            line,
        };
        let joined = self.waiting.join(
            uid,
            queued,
            arrived + self.limits.probe_interval,
            self.limits.max_waiters_per_id,
            self.limits.max_waiters,
        );
        match joined {
            Ok(()) => out.push(Action::Queued { to: waiter.from }),
            Err(Full) => refuse(waiter.from, full(Limit::Waiters), out),
        }
    }

    /// Verifies the holder of `uid` for its waiters, unless a verification
    /// for the uid is already in flight (its verdict will serve them too).
    pub(super) fn probe(&mut self, uid: Uid, out: &mut Vec<Action<R>>) {
        if self.pending.contains_key(&uid) {
            return;
        }
        let Some(holder) = self.bookings.get(&uid) else {
            // Free with waiters queued: hand it on.
            self.serve_pending(uid, VecDeque::new(), None, false, out);
            return;
        };
        if self.lines.contains_key(&uid) {
            // Its line's end frees it; nobody needs to ask.
            return;
        }
        out.push(Action::Verify {
            uid,
            handshake: holder.handshake,
            at: holder.responder(),
            message_from: None,
        });
        let checking = Checking::Probe {
            handshake: holder.handshake,
        };
        self.insert_pending(uid, checking, VecDeque::new());
    }
}

fn verify_holder<R>(
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
