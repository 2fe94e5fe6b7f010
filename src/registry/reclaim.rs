//! Reclaiming bookings at the bound: a request that finds the bookings
//! bound reached (its user's share or the total) does not give up on a
//! table full of the dead. The oldest call-back bookings whose holders
//! could be gone are verified first, the request parked meanwhile; once
//! those verifications end, the dead have left and the parked requests are
//! served again, in arrival order. One round at a time, a handful of
//! verifications each, and a parked request gets no second round, so
//! nothing loops.

use std::collections::VecDeque;

use super::{Action, Booking, Checking, Counter, Refusal, Registry, User, Waiter, refuse};
use crate::uid::Uid;

/// Verifications in one round: enough to make room for a few requests,
/// few enough that a round costs little even when every holder is alive.
const ROUND: usize = 4;

impl<R: Copy + PartialEq> Registry<R> {
    /// `waiter` would be refused `full`, a bookings bound: it is parked
    /// while a round of reclaiming runs, unless it was parked once already,
    /// no request more may wait, or there is nothing to reclaim.
    pub(super) fn park_or_refuse(
        &mut self,
        waiter: Waiter<R>,
        full: Refusal,
        out: &mut Vec<Action<R>>,
    ) {
        let parked = !waiter.reclaimed
            && self.pending_full(waiter.user).is_none()
            && (!self.reclaiming.is_empty() || self.start_reclaiming(full, waiter.user, out));
        if !parked {
            refuse(waiter.from, full, out);
            return;
        }
        self.parked.push_back(waiter);
        self.pending_requests += 1;
        self.users.take(waiter.user, Counter::Pending);
        out.push(Action::Pending { to: waiter.from });
    }

    /// Starts verifying the oldest call-back bookings: of `user` if its
    /// share was the bound, of everyone if the total was. Answers whether
    /// any verification started. O(bookings): only at a bound.
    fn start_reclaiming(&mut self, full: Refusal, user: User, out: &mut Vec<Action<R>>) -> bool {
        let whose = match full {
            Refusal::Full { share: true, .. } => Some(user),
            _ => None,
        };
        let mut oldest: Vec<Booking> = Vec::with_capacity(ROUND + 1);
        for booking in self.bookings.iter() {
            if whose.is_some_and(|user| booking.user != user) || !self.may_sweep(&booking.uid) {
                continue;
            }
            let at = oldest.partition_point(|older| older.since <= booking.since);
            if at < ROUND {
                oldest.insert(at, *booking);
                oldest.truncate(ROUND);
            }
        }
        for booking in oldest {
            self.reclaiming.push(booking.uid);
            self.verify_alone(booking, out);
        }
        !self.reclaiming.is_empty()
    }

    /// Whether the booking of `uid` may be verified unasked: a line proves
    /// its holder alive, and a verification in flight will tell.
    pub(super) fn may_sweep(&self, uid: &Uid) -> bool {
        !self.lines.contains_key(uid) && !self.pending.contains_key(uid)
    }

    /// Verifies `holder` on nobody's behalf: a probe, whose verdict drops
    /// it if it proves dead.
    pub(super) fn verify_alone(&mut self, holder: Booking, out: &mut Vec<Action<R>>) {
        out.push(Action::Verify {
            uid: holder.uid,
            handshake: holder.handshake,
            at: holder.responder(),
            message_from: None,
        });
        let checking = Checking::Probe {
            handshake: holder.handshake,
        };
        self.insert_pending(holder.uid, checking, VecDeque::new());
    }

    /// The verification of `uid` ended, and its verdict was carried out:
    /// if it was the last of the round, the parked requests are served
    /// again, in arrival order, for the last time.
    pub(super) fn reclaim_verified(&mut self, uid: Uid, out: &mut Vec<Action<R>>) {
        let Some(at) = self.reclaiming.iter().position(|round| *round == uid) else {
            return;
        };
        self.reclaiming.swap_remove(at);
        if !self.reclaiming.is_empty() {
            return;
        }
        for mut waiter in std::mem::take(&mut self.parked) {
            self.pending_requests -= 1;
            self.users.give(waiter.user, Counter::Pending);
            waiter.reclaimed = true;
            self.admit(waiter, out);
        }
    }

    /// Takes the parked request of `from`, whose connection ended, out of
    /// the park; answers whether it was there.
    pub(super) fn unpark(&mut self, from: R) -> bool {
        let Some(at) = self.parked.iter().position(|waiter| waiter.from == from) else {
            return false;
        };
        if let Some(waiter) = self.parked.remove(at) {
            self.pending_requests -= 1;
            self.users.give(waiter.user, Counter::Pending);
        }
        true
    }
}
