//! The sweep: old call-back bookings are verified one at a time, at most
//! one every `sweep_interval`, so that the bookings of processes that died
//! without checking out leave even if nobody ever asks for their ids.
//! Silence keeps a booking; only proof of death drops it.
//!
//! The sweep walks the table's slots round-robin with a cursor, so every
//! call-back booking old enough is verified once per pass (a booking that
//! a removal moves behind the cursor waits for the next pass). Each step
//! looks at [`SCAN`] slots at most, so a tick costs little however big the
//! table. Between passes the sweep sleeps until the first booking a pass
//! found too young is old enough, or one granted since, and at most
//! `sweep_age`: each long-lived holder is called about once an age.

use std::time::{Duration, Instant};

use super::{Action, Registry};
use crate::wire::MAX_WAIT;

/// Slots one step looks at, at most.
const SCAN: usize = 64;

/// Where the sweep is in its pass, and when it steps next.
#[derive(Clone, Default)]
pub(super) struct Sweep {
    /// The slot the next step looks at first.
    cursor: usize,
    /// The wall-clock second from which some call-back booking may be old
    /// enough; `None`: none may ever be, until one is granted.
    due: Option<u64>,
    /// The step after one is not before this, so that verifications stay
    /// `sweep_interval` apart.
    next: Option<Instant>,
    /// The earliest wall-clock second at which a call-back booking this
    /// pass found too young is old enough.
    earliest: Option<u64>,
}

impl<R: Copy + PartialEq> Registry<R> {
    /// A call-back booking granted at `since` (wall-clock seconds) came
    /// in: granted, restored, or left without its line. It is appended to
    /// the table, ahead of the cursor, so the pass under way reaches it;
    /// a sleeping sweep wakes when it is old enough. O(1).
    pub(super) fn sweep_later(&mut self, since: u64) {
        let old_at = self.old_at(since);
        self.sweep.due = Some(self.sweep.due.map_or(old_at, |due| due.min(old_at)));
    }

    /// When a booking granted at `since` is old enough to be swept.
    fn old_at(&self, since: u64) -> u64 {
        since.saturating_add(self.limits.sweep_age.as_secs())
    }

    /// When the sweep steps next: only when a call-back booking exists and
    /// may be old enough, so an idle server is not woken for nothing.
    pub(super) fn next_sweep(&self) -> Option<Instant> {
        if self.bookings.len() <= self.lines.len() {
            return None;
        }
        let now = self.now?;
        let wait = self.sweep.due?.saturating_sub(self.wall_clock);
        let due = later(now, Duration::from_secs(wait));
        Some(self.sweep.next.map_or(due, |next| next.max(due)))
    }

    /// Takes the sweep's step if it is due at `now`: looks at [`SCAN`]
    /// slots at most, and verifies the first call-back booking old enough
    /// among them.
    pub(super) fn sweep(&mut self, now: Instant, out: &mut Vec<Action<R>>) {
        if self.next_sweep().is_none_or(|due| due > now) {
            return;
        }
        // A zero interval would make the sweep due again at once.
        let interval = self.limits.sweep_interval.max(Duration::from_millis(1));
        self.sweep.next = Some(later(now, interval));
        let age = self.limits.sweep_age.as_secs();
        for _ in 0..SCAN {
            let Some(booking) = self.bookings.at(self.sweep.cursor).copied() else {
                self.end_pass();
                return;
            };
            self.sweep.cursor += 1;
            if !self.may_sweep(&booking.uid) {
                continue;
            }
            if self.wall_clock.saturating_sub(booking.since) >= age {
                self.verify_alone(booking, None, out);
                return;
            }
            let old_at = self.old_at(booking.since);
            let earliest = &mut self.sweep.earliest;
            *earliest = Some(earliest.map_or(old_at, |e| e.min(old_at)));
        }
    }

    /// The cursor went past the last slot: the next pass starts when the
    /// first booking it found too young is old enough, and no
    /// later than `sweep_age` from now while call-back bookings are held
    /// (those it verified, or moved behind the cursor by a removal): a
    /// long-lived holder is called once an age, not at every step.
    fn end_pass(&mut self) {
        let again = (self.bookings.len() > self.lines.len()).then(|| {
            self.wall_clock
                .saturating_add(self.limits.sweep_age.as_secs().max(1))
        });
        let sweep = &mut self.sweep;
        sweep.cursor = 0;
        sweep.due = match (sweep.earliest.take(), again) {
            (Some(young), Some(again)) => Some(young.min(again)),
            (young, again) => young.or(again),
        };
    }
}

/// `now + by`, or as late as a wait can last when that is past what an
/// `Instant` can tell.
pub(super) fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(MAX_WAIT))
        .unwrap_or(now)
}
