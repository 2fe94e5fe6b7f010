//! The bounds that keep one registry's memory proportional to its load,
//! and each OS user's share of them.

use std::time::Duration;

use super::Refusal;
use crate::wire::Limit;

/// The bounds that keep one registry's memory proportional to its load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bookings held at once; a book past it is refused.
    pub max_bookings: usize,
    /// Requests waiting behind a uid's verification in flight; a request
    /// past it is refused.
    pub max_waiting: usize,
    /// WAITs waiting for a held uid to free, for all uids together; one
    /// past it is refused.
    pub max_waiters: usize,
    /// WAITs waiting for one held uid; one past it is refused.
    pub max_waiters_per_id: usize,
    /// Requests pending behind verifications, for all uids together;
    /// past it a request that would be pending is refused (a
    /// check out is not), so that requests stuck behind slow responders
    /// cannot take every connection slot.
    pub max_pending: usize,
    /// How often the holder of a uid that someone waits for is verified,
    /// so that a holder that died without checking out is noticed.
    pub probe_interval: Duration,
    /// Lines kept at once; past it a LINE is verified by call-back and
    /// granted without one, and an ATTACH gets none.
    pub max_lines: usize,
    /// How many OS users the bounds are shared between: each may take at
    /// most [`Limits::share`] of every bound, so that one user cannot lock
    /// the others out; 1 is no sharing.
    pub shares: usize,
    /// How often the sweep verifies one old call-back booking, so that the
    /// bookings of the dead leave without anyone asking for their ids.
    pub sweep_interval: Duration,
    /// How old a call-back booking is (by the wall clock) before the sweep
    /// verifies it.
    pub sweep_age: Duration,
}

impl Limits {
    /// What one OS user may take of `bound`: `bound / shares`, at least 1.
    pub fn share(&self, bound: usize) -> usize {
        (bound / self.shares.max(1)).max(1)
    }

    /// The bound that `limit` names.
    pub fn bound(&self, limit: Limit) -> usize {
        match limit {
            Limit::Bookings => self.max_bookings,
            Limit::Waiters => self.max_waiters,
            Limit::WaitersForId => self.max_waiters_per_id,
            Limit::Pending => self.max_pending,
            Limit::PendingForId => self.max_waiting,
        }
    }

    /// Why one more of `limit` cannot be taken by a user that takes `mine`
    /// of it while everyone takes `total`, if it cannot. The user's share
    /// is told first, so that a refusal for the total says that others are
    /// past theirs; a share as big as the bound (no sharing) is the total.
    pub(super) fn full(&self, limit: Limit, mine: usize, total: usize) -> Option<Refusal> {
        let bound = self.bound(limit);
        let share = self.share(bound);
        if share < bound && mine >= share {
            Some(Refusal::Full { limit, share: true })
        } else if total >= bound {
            Some(Refusal::Full {
                limit,
                share: false,
            })
        } else {
            None
        }
    }
}
