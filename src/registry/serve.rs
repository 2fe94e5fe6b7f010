//! Serving the requests of one uid in order: those pending behind a
//! verification, the queue of waiters first whenever the uid frees, and the
//! probes of a holder that someone waits for.

use std::collections::VecDeque;

use super::waiting::Queued;
use super::{
    Action, Answer, Ask, Booking, Checking, Counter, Fate, Refusal, Registry, ResponderIp, User,
    Waiter, first_full, refuse, reply,
};
use crate::handshake::Handshake;
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
                    .is_some_and(|holder| holder.handshake.matches(&handshake));
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
                    let booking = new_booking(uid, handshake, waiter.ip, port, waiter.user);
                    match self.book_free(waiter.from, booking, line, out) {
                        Ok(checking) => checking,
                        Err(why) => {
                            self.park_or_refuse(waiter, why, out);
                            None
                        }
                    }
                }
            },
        }
    }

    /// Books the free uid of `booking` for `from`, unless the bookings
    /// bound is reached (its user's share or the total), which it answers:
    /// at once on its line if it asked for one and one more can be kept,
    /// or else once it proves alive, which this starts verifying.
    fn book_free(
        &mut self,
        from: R,
        booking: Booking,
        line: bool,
        out: &mut Vec<Action<R>>,
    ) -> Result<Option<Checking<R>>, Refusal> {
        let user = booking.user;
        let mine = self.users.count(user, Counter::Bookings);
        let total = self.bookings.len() + self.reserved;
        let limits = &self.limits;
        if let Some(why) = limits.full(Limit::Bookings, mine, total) {
            return Err(why);
        }
        if line && self.room_for_line(user) {
            self.grant_on_line(from, booking, out);
            return Ok(None);
        }
        self.reserved += 1;
        self.users.take(user, Counter::Bookings);
        out.push(Action::Verify {
            uid: booking.uid,
            handshake: booking.handshake,
            at: booking.responder(),
            message_from: None,
        });
        Ok(Some(Checking::Candidate {
            from,
            booking,
            ticket: None,
            fate: Fate::Open,
            line,
        }))
    }

    /// Books the free `uid` for the first waiter queued for it: at once
    /// on its line, or by starting to verify it. One past the bookings
    /// bound is refused, and the next one tried: the queue's order is not
    /// held up for a round of reclaiming.
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
            self.users.give(user, Counter::Waiters);
            let booking = new_booking(uid, handshake, ip, port, user);
            match self.book_free(from, booking, line, out) {
                Ok(Some(Checking::Candidate {
                    from,
                    booking,
                    fate,
                    line,
                    ..
                })) => {
                    return Some(Checking::Candidate {
                        from,
                        booking,
                        ticket: Some(ticket),
                        fate,
                        line,
                    });
                }
                Err(why) => refuse(from, why, out),
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
        if let Some(why) = self.waiters_full(uid, waiter.user) {
            refuse(waiter.from, why, out);
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
        let first_probe = arrived + self.limits.probe_interval;
        self.waiting.join(uid, queued, first_probe);
        self.users.take(waiter.user, Counter::Waiters);
        out.push(Action::Queued { to: waiter.from });
    }

    /// Why one more waiter of `user` cannot join the queue of `uid`, if it
    /// cannot: its shares first, so that a refusal for a total says that
    /// others are past theirs.
    fn waiters_full(&self, uid: Uid, user: User) -> Option<Refusal> {
        let limits = &self.limits;
        let in_all = (
            self.users.count(user, Counter::Waiters),
            self.waiting.count(),
        );
        let for_id = (
            self.waiting.count_for_user(&uid, user),
            self.waiting.count_for(&uid),
        );
        let in_all = limits.full(Limit::Waiters, in_all.0, in_all.1);
        let for_id = limits.full(Limit::WaitersForId, for_id.0, for_id.1);
        first_full([in_all, for_id])
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
        self.verify_alone(*holder, None, out);
    }
}

/// The booking a request for `uid` gets if granted; its time and check
/// are stamped when it is.
fn new_booking(uid: Uid, handshake: Handshake, ip: ResponderIp, port: u16, user: User) -> Booking {
    Booking {
        uid,
        handshake,
        ip,
        port,
        since: 0,
        user,
        checked: 0,
        token: 0,
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
