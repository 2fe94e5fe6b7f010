//! The sweep: old call-back bookings are verified one at a time, at most
//! one every `sweep_interval`, so that the bookings of processes that died
//! without checking out leave even if nobody ever asks for their ids.
//! Silence keeps a booking; only proof of death drops it.
//!
//! The sweep walks the table's slots round-robin with a cursor, so every
//! call-back booking old enough is verified once per pass (a booking that
//! a removal moves behind the cursor waits for the next pass). Each step
//! looks at [`SCAN`] slots at most, so a tick costs little however big the
//! table. A pass that found nothing old enough puts the sweep to sleep
//! until its oldest call-back booking could be, or one that came in since.

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
    /// This pass verified a booking.
    verified: bool,
    /// The earliest wall-clock second at which a call-back booking this
    /// pass found too young, or one that came in during the pass, is old
    /// enough.
    earliest: Option<u64>,
}

impl<R: Copy + PartialEq> Registry<R> {
    /// A call-back booking granted at `since` (wall-clock seconds) came
    /// in: granted, restored, or left without its line. O(1).
    pub(super) fn sweep_later(&mut self, since: u64) {
        let old_at = since.saturating_add(self.limits.sweep_age.as_secs());
        let sweep = &mut self.sweep;
        sweep.due = Some(sweep.due.map_or(old_at, |due| due.min(old_at)));
        sweep.earliest = Some(sweep.earliest.map_or(old_at, |e| e.min(old_at)));
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
                self.sweep.verified = true;
                self.verify_alone(booking, out);
                return;
            }
            self.sweep_later(booking.since);
        }
    }

    /// The cursor went past the last slot: the next pass starts at the
    /// first when the earliest booking it found too young could be old
    /// enough, and, if this pass verified any, no later than `sweep_age`
    /// from now, so that a long-lived holder is called once an age, not at
    /// every step.
    fn end_pass(&mut self) {
        let again = self
            .wall_clock
            .saturating_add(self.limits.sweep_age.as_secs().max(1));
        let sweep = &mut self.sweep;
        sweep.cursor = 0;
        let verified = std::mem::take(&mut sweep.verified).then_some(again);
        sweep.due = match (sweep.earliest.take(), verified) {
            (Some(young), Some(again)) => Some(young.min(again)),
            (young, again) => young.or(again),
        };
    }
}

/// `now + by`, or as late as a wait can last when that is past what an
/// `Instant` can tell.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(MAX_WAIT))
        .unwrap_or(now)
}
