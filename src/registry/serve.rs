//! Serving the requests of one uid in order: those pending behind a
//! verification, the queue of waiters first whenever the uid frees, and the
//! probes of a holder that someone waits for.

use std::collections::VecDeque;

use super::waiting::Queued;
use super::{
    Action, Answer, Ask, Booking, Checking, Counter, Fate, Mode, Refusal, Registry, ResponderIp,
    User, Waiter, first_full, is_slot_key, refuse, reply,
};
use crate::handshake::Handshake;
use crate::uid::Uid;
use crate::wire::Limit;

impl<R: Copy + PartialEq> Registry<R> {
    /// Serves `first`, then the `waiting` requests of `uid` in order, until
    /// one needs a verification; the rest are then pending behind it.
    /// Whenever the uid has room for the first in its queue, the first in
    /// the queue goes before them all, and those after it while there is
    /// room for them too. `holder_alive` says the current
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
                let held = self.held_with(&uid, &handshake).map(|holder| holder.uid);
                let on_line = self.line_key(&uid, waiter.from);
                if let Some(line) = on_line.filter(|&line| Some(line) != held) {
                    // Anything but its own check out closes a line, and
                    // so ends its booking, as its close would.
                    self.release(&line);
                    *holder_alive = false;
                    out.push(Action::Dropped { uid: line });
                    refuse(waiter.from, Refusal::LineMisused, out);
                    return None;
                }
                let Some(key) = held else {
                    reply(waiter.from, Answer::NotCheckedOut, out);
                    return None;
                };
                let line = self.lines.get(&key).copied();
                self.release(&key);
                *holder_alive = false;
                if is_slot_key(&key) {
                    // The reactor records the check out of the name it
                    // was asked; a shared holder's record is its slot's.
                    out.push(Action::Dropped { uid: key });
                }
                reply(waiter.from, Answer::CheckedOut, out);
                if let Some(line) = line.filter(|&line| line != waiter.from) {
                    out.push(Action::CloseLine { to: line });
                }
                None
            }
            Ask::Attach { uid, handshake } => {
                self.attach(waiter.from, uid, handshake, out);
                None
            }
            Ask::Notify { uid } => match self.bookings.get(&uid) {
                // Held shared, by nobody in particular: nobody takes it.
                None if self.is_held(&uid) => {
                    reply(waiter.from, Answer::Declined, out);
                    None
                }
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
            } => {
                let mode = waiter.ask.mode();
                if let Some(answer) = self.conflict(&uid, mode) {
                    reply(waiter.from, answer, out);
                    return None;
                }
                if self.room_for(&uid, mode) && self.waiting.count_for(&uid) == 0 {
                    let line = matches!(waiter.ask, Ask::Wait { line: true, .. });
                    let booking = new_booking(uid, handshake, waiter.ip, port, waiter.user);
                    return match self.book_free(waiter.from, booking, line, mode, out) {
                        Ok(checking) => checking,
                        Err(why) => {
                            self.park_or_refuse(waiter, why, out);
                            None
                        }
                    };
                }
                // A holder without a line may have died, and it holds
                // what the request needs (an exclusive one, or one of a
                // full group): its verification tells, unless a verdict
                // just did. A request that only the queue keeps out
                // waits its turn.
                let needs_holders = !self.room_for(&uid, mode);
                match self.callback_holder(&uid) {
                    Some(holder) if needs_holders && !*holder_alive => {
                        Some(verify_holder(&holder, waiter, None, out))
                    }
                    _ => {
                        if matches!(waiter.ask, Ask::Wait { .. }) {
                            self.enqueue(waiter, out);
                        } else {
                            reply(waiter.from, Answer::Denied, out);
                        }
                        None
                    }
                }
            }
        }
    }

    /// Books the uid of `booking` in `mode` for `from`, while it has room
    /// for it, unless the bookings bound is reached (its user's share or
    /// the total), which it answers: at once on its line if it asked for
    /// one and one more can be kept, or else once it proves alive, which
    /// this starts verifying.
    fn book_free(
        &mut self,
        from: R,
        booking: Booking,
        line: bool,
        mode: Mode,
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
            self.grant_on_line(from, booking, mode, out);
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
            mode,
        }))
    }

    /// Books `uid` for the first waiters queued for it, while there is
    /// room for them: at once on their lines, or by starting to verify the
    /// first that has none. One past the bookings bound is refused, and the
    /// next one tried: the queue's order is not held up for a round of
    /// reclaiming.
    fn verify_next_waiter(&mut self, uid: Uid, out: &mut Vec<Action<R>>) -> Option<Checking<R>> {
        while let Some(mode) = self.waiting.front(&uid).map(|waiter| waiter.mode)
            && self.room_for(&uid, mode)
            && let Some(waiter) = self.waiting.pop_front(&uid)
        {
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
            match self.book_free(from, booking, line, mode, out) {
                Ok(Some(Checking::Candidate {
                    from,
                    booking,
                    fate,
                    line,
                    mode,
                    ..
                })) => {
                    return Some(Checking::Candidate {
                        from,
                        booking,
                        ticket: Some(ticket),
                        fate,
                        line,
                        mode,
                    });
                }
                Err(why) => refuse(from, why, out),
                // Granted on its line: the next may go beside it.
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
            mode,
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
            mode,
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

    /// Verifies a holder of `uid` without a line for its waiters (one at a
    /// time, taking turns), unless a verification for the uid is already
    /// in flight (its verdict will serve them too).
    pub(super) fn probe(&mut self, uid: Uid, out: &mut Vec<Action<R>>) {
        if self.pending.contains_key(&uid) {
            return;
        }
        match self.callback_holder(&uid) {
            Some(holder) => self.verify_alone(holder, None, out),
            // Held on lines alone: their ends free it; nobody needs to ask.
            None if self.is_held(&uid) => {}
            // Free with waiters queued: hand it on.
            None => self.serve_pending(uid, VecDeque::new(), None, false, out),
        }
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

/// Verifies `holder` on behalf of `waiter`: called back, it answers the
/// name the waiter asked for, whatever key its booking is kept under.
fn verify_holder<R>(
    holder: &Booking,
    waiter: Waiter<R>,
    message_from: Option<R>,
    out: &mut Vec<Action<R>>,
) -> Checking<R> {
    out.push(Action::Verify {
        uid: waiter.ask.uid(),
        handshake: holder.handshake,
        at: holder.responder(),
        message_from,
    });
    Checking::Holder {
        handshake: holder.handshake,
        waiter,
    }
}
