//! Reclaiming bookings at the bound: a request that finds the bookings
//! bound reached (its user's share or the total) does not give up on a
//! table full of the dead. Call-back bookings are verified, the request
//! parked meanwhile; once those verifications end, the dead have left and
//! the parked requests are served again, in arrival order.
//!
//! Rounds are per scope: a request refused for its user's share waits for
//! a round among that user's bookings, one refused for the total for a
//! round among everyone's, so no request waits for, or is refused at the
//! end of, a round of someone else's bookings. One round per scope at a
//! time, of [`ROUND`] verifications of the scope's bookings least recently
//! checked ([`Booking::checked`]): a holder proved alive by one round is
//! not picked again before the others, so rounds walk the table however
//! many long-lived holders sit at its old end.
//!
//! A parked request gets at most [`ROUNDS`] rounds. A scope whose round
//! freed nothing rests for `probe_interval`: a request new to it is
//! refused at once meanwhile, so a user that keeps asking past its share
//! gets the server to call back a few times a second at most.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::sweep::later;
use super::{Action, Booking, Checking, Counter, Refusal, Registry, User, Waiter, refuse};
use crate::handshake::Handshake;
use crate::uid::Uid;

/// Verifications in one round: enough to make room for a few requests,
/// few enough that a round costs little even when every holder is alive.
pub(super) const ROUND: usize = 4;

/// Rounds a parked request gets at most. A round lasts as long as its
/// slowest verification, at most the reactor's rw timeout, so the request
/// is answered within three of them: before the reactor's patience with a
/// pending request (four) runs out and closes it unanswered.
pub const ROUNDS: u8 = 3;

/// The bookings a round looks among.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Scope {
    /// Those of one user, whose share was the bound.
    Share(User),
    /// Everyone's: the total was the bound.
    Total,
}

/// The reclaiming of one scope.
#[derive(Clone)]
pub(super) struct Reclaim<R> {
    /// The bookings its round verifies, as the name they are held for and
    /// handshake; empty between rounds.
    pub(super) round: Vec<(Uid, Handshake)>,
    /// Whether a booking of the round left the table.
    freed: bool,
    /// The requests waiting for the round to end, in arrival order.
    pub(super) parked: VecDeque<Waiter<R>>,
    /// Its last round freed nothing: no round for a new request before
    /// this.
    resting_until: Option<Instant>,
}

impl<R: Copy + PartialEq> Registry<R> {
    /// `waiter` would be refused `full`, a bookings bound: it is parked
    /// while a round of reclaiming runs in its scope, unless it had its
    /// rounds already, no request more may wait, its scope rests, or
    /// there is nothing to reclaim.
    pub(super) fn park_or_refuse(
        &mut self,
        waiter: Waiter<R>,
        full: Refusal,
        out: &mut Vec<Action<R>>,
    ) {
        let scope = match full {
            Refusal::Full { share: true, .. } => Scope::Share(waiter.user),
            _ => Scope::Total,
        };
        let (running, resting_until) = self
            .reclaims
            .get(&scope)
            .map_or((false, None), |r| (!r.round.is_empty(), r.resting_until));
        // A request parked before goes on with its rounds: only new ones
        // are turned away by a rest.
        let resting = waiter.rounds == 0 && self.now < resting_until;
        let parked = waiter.rounds < ROUNDS
            && !resting
            && self.pending_full(waiter.user).is_none()
            && (running || self.start_round(scope, out));
        let Some(reclaim) = self.reclaims.get_mut(&scope).filter(|_| parked) else {
            refuse(waiter.from, full, out);
            return;
        };
        reclaim.parked.push_back(waiter);
        self.pending_requests += 1;
        self.users.take(waiter.user, Counter::Pending);
        // Parked again, it is watched already, its patience running.
        if waiter.rounds == 0 {
            out.push(Action::Pending { to: waiter.from });
        }
    }

    /// Starts verifying the call-back bookings of `scope` least recently
    /// checked, the oldest first among those checked alike. Answers
    /// whether any verification started. O(bookings): only at a bound,
    /// and a rest keeps a scope from asking again and again.
    fn start_round(&mut self, scope: Scope, out: &mut Vec<Action<R>>) -> bool {
        let key = |booking: &Booking| (booking.checked, booking.since);
        let mut picked: Vec<Booking> = Vec::with_capacity(ROUND + 1);
        for booking in self.bookings.iter() {
            let outside = matches!(scope, Scope::Share(user) if booking.user != user);
            if outside || !self.may_sweep(&booking.uid) {
                continue;
            }
            // One verification in flight per name: one of its slots at most.
            let name = self.lock_of(&booking.uid);
            if let Some(same) = picked.iter().position(|b| self.lock_of(&b.uid) == name) {
                if key(&picked[same]) <= key(booking) {
                    continue;
                }
                picked.remove(same);
            }
            let at = picked.partition_point(|earlier| key(earlier) <= key(booking));
            if at < ROUND {
                picked.insert(at, *booking);
                picked.truncate(ROUND);
            }
        }
        if picked.is_empty() {
            return false;
        }
        let reclaim = self.reclaims.entry(scope).or_insert_with(|| Reclaim {
            round: Vec::new(),
            freed: false,
            parked: VecDeque::new(),
            resting_until: None,
        });
        reclaim.freed = false;
        reclaim.round = picked
            .iter()
            .map(|b| (self.groups.lock_of(&b.uid).unwrap_or(b.uid), b.handshake))
            .collect();
        for booking in picked {
            self.verify_alone(booking, Some(scope), out);
        }
        true
    }

    /// Whether the booking under the key `uid` may be verified unasked: a
    /// line proves its holder alive, and a verification in flight for its
    /// name will tell.
    pub(super) fn may_sweep(&self, uid: &Uid) -> bool {
        !self.lines.contains_key(uid) && !self.pending.contains_key(&self.lock_of(uid))
    }

    /// Verifies `holder` on nobody's behalf, for the round of `round` if
    /// any: a probe, whose verdict drops it if it proves dead. Called
    /// back, a shared holder answers its name, not its key.
    pub(super) fn verify_alone(
        &mut self,
        holder: Booking,
        round: Option<Scope>,
        out: &mut Vec<Action<R>>,
    ) {
        let name = self.lock_of(&holder.uid);
        out.push(Action::Verify {
            uid: name,
            handshake: holder.handshake,
            at: holder.responder(),
            message_from: None,
        });
        let checking = Checking::Probe {
            handshake: holder.handshake,
            round,
        };
        self.insert_pending(name, checking, VecDeque::new());
    }

    /// The verification of `uid`'s holder with `handshake`, for the round
    /// of `scope`, ended and its verdict was carried out: if it was the
    /// last of the round, the scope rests unless the round freed room, and
    /// its parked requests are served again, in arrival order.
    pub(super) fn round_verified(
        &mut self,
        scope: Scope,
        uid: Uid,
        handshake: Handshake,
        out: &mut Vec<Action<R>>,
    ) {
        let left = !self.holds(&uid, &handshake);
        let rest = self.rest_until();
        let Some(reclaim) = self.reclaims.get_mut(&scope) else {
            return;
        };
        let verified = |&(of, held_with): &(Uid, Handshake)| of == uid && held_with == handshake;
        let Some(at) = reclaim.round.iter().position(verified) else {
            return;
        };
        reclaim.round.swap_remove(at);
        reclaim.freed |= left;
        if !reclaim.round.is_empty() {
            return;
        }
        let parked = std::mem::take(&mut reclaim.parked);
        if !reclaim.freed
            && let Some(until) = rest
        {
            reclaim.resting_until = Some(until);
            self.rests.push_back((scope, until));
        } else {
            self.reclaims.remove(&scope);
        }
        for mut waiter in parked {
            self.pending_requests -= 1;
            self.users.give(waiter.user, Counter::Pending);
            waiter.rounds += 1;
            self.admit(waiter, out);
        }
    }

    /// When a scope whose round freed nothing may start one for a new
    /// request again; `None` before the registry is told the time.
    fn rest_until(&self) -> Option<Instant> {
        // A zero interval would be no rest at all.
        let rest = self.limits.probe_interval.max(Duration::from_millis(1));
        self.now.map(|now| later(now, rest))
    }

    /// When the first rest ends, if any scope rests.
    pub(super) fn next_rest_end(&self) -> Option<Instant> {
        self.rests.front().map(|&(_, until)| until)
    }

    /// It is now `now`: the rests that are over end, and the scopes with
    /// nothing left to do are forgotten. O(1) a rest.
    pub(super) fn end_rests(&mut self, now: Instant) {
        while let Some(&(scope, until)) = self.rests.front().filter(|&&(_, until)| until <= now) {
            self.rests.pop_front();
            // A scope that rested again since has a later rest queued.
            if let Some(reclaim) = self.reclaims.get(&scope)
                && reclaim.resting_until == Some(until)
                && reclaim.round.is_empty()
            {
                self.reclaims.remove(&scope);
            }
        }
    }

    /// Takes the parked request of `from`, whose connection ended, out of
    /// the park; answers whether it was there. O(parked requests).
    pub(super) fn unpark(&mut self, from: R) -> bool {
        for reclaim in self.reclaims.values_mut() {
            let Some(at) = reclaim.parked.iter().position(|w| w.from == from) else {
                continue;
            };
            if let Some(waiter) = reclaim.parked.remove(at) {
                self.pending_requests -= 1;
                self.users.give(waiter.user, Counter::Pending);
            }
            return true;
        }
        false
    }
}
