//! The promises the modelled world checks after every event, and at the
//! end of a history.

use crate::handshake::Handshake;
use super::{Event, Kind, Pending, World};
use crate::registry::model::{handshake, uid};
use crate::registry::{Answer, Mode};

impl World {
    /// A grant to request `r`: the uid has room for it (exclusive: nobody
    /// holds it; shared: nobody holds it alone, the shared holders were
    /// granted in its mode, and fewer than its count), the booker just
    /// proved alive (or asked on a line, whose open connection is its
    /// proof), a waiter's wait is not over, and nobody queued before it
    /// still waits, whatever it asked for.
    pub(super) fn check_grant(&self, r: u32, pending: &Pending, mine: Option<Handshake>, on_line: bool) {
        let u = pending.uid;
        assert_eq!(
            self.table[u as usize], None,
            "granted while held alone: {:?}",
            self.trace
        );
        let (holders, in_force) = &self.groups[u as usize];
        match pending.mode {
            Mode::Exclusive => {
                assert!(holders.is_empty(), "granted alone while shared: {:?}", self.trace)
            }
            mode => {
                assert!(in_force.is_none_or(|held| held == mode), "{:?}", self.trace);
                if let Mode::Slots(n) = mode {
                    assert!(holders.len() < n as usize, "past the count: {:?}", self.trace);
                }
            }
        }
        if !on_line {
            assert_eq!(
                self.proved_alive, mine,
                "granted without proof of life: {:?}",
                self.trace
            );
        }
        if matches!(pending.kind, Kind::Wait | Kind::Line) {
            assert!(
                self.now < pending.until || pending.queued.is_none(),
                "granted after its wait: {:?}",
                self.trace
            );
        }
        let place = pending.queued.unwrap_or(u64::MAX);
        let ahead = self.pending.iter().find(|&(&other, p)| {
            other != r && p.uid == u && !p.left && p.queued.is_some_and(|q| q < place)
        });
        assert!(
            ahead.is_none(),
            "granted past waiter {ahead:?}: {:?}",
            self.trace
        );
    }

    /// The fencing token of a grant of `u` to `mine`: greater than every
    /// token given before, for any uid and across restarts, so that it
    /// only grows for each uid, exclusive and shared grants alike.
    pub(super) fn check_token(&mut self, u: u8, mine: &Handshake) {
        let holder = self.registry.held_with(&uid(u), mine);
        let Some(token) = holder.map(|b| b.token) else {
            // Released in the same call, by its own check out pending
            // behind the verification: the reactor has no token to send,
            // and closes a request that asked for one unanswered.
            return;
        };
        assert!(
            token > self.last_token,
            "token {token} given after {}: {:?}",
            self.last_token,
            self.trace
        );
        self.last_token = token;
    }

    pub(super) fn check(&self) {
        self.check_users();
        self.check_rounds();
        assert_eq!(
            self.holders(),
            self.expected_holders(),
            "the table changed without cause: {:?}",
            self.trace
        );
        for u in 0..self.uids {
            self.check_believers(u);
            if let Some(head) = self.registry.waiting.front(&uid(u)) {
                assert!(
                    !self.has_room(u, head.mode) || self.in_flight[u as usize].is_some(),
                    "the first waiter kept out of room: {:?}",
                    self.trace
                );
            }
        }
        let pending: usize = self
            .registry
            .pending
            .values()
            .map(|l| l.waiting.len())
            .sum::<usize>()
            + self.parked().count();
        assert_eq!(pending, self.registry.pending_requests, "{:?}", self.trace);
        for pending in self.registry.pending.values() {
            // One more than the limit when a waiter from the queue goes
            // before the contender whose verification freed the uid.
            assert!(
                pending.waiting.len() <= self.limits.max_waiting + 1,
                "{:?}",
                self.trace
            );
        }
        assert!(
            self.registry.len() + self.registry.reserved <= self.limits.max_bookings,
            "{:?}",
            self.trace
        );
        assert!(self.registry.waiters() <= self.limits.max_waiters);
        let lines = self.lines.len();
        assert_eq!(self.registry.lines(), lines, "{:?}", self.trace);
        assert!(lines <= self.limits.max_lines, "{:?}", self.trace);
        for &(u, c) in self.lines.keys() {
            // A process's lines close when it dies.
            assert!(self.clients[c].alive, "{:?}", self.trace);
            let held = self.registry.held_with(&uid(u), &handshake(c as u32));
            assert!(
                held.is_some_and(|booking| self.registry.has_line(&booking.uid)),
                "{:?}",
                self.trace
            );
        }
        assert!(
            self.registry.waiting.timers()
                <= 2 * (self.registry.waiters() + self.uids as usize) + 65,
            "timers pile up: {:?}",
            self.trace
        );
    }

    /// The live clients that believe they hold `u` are its holders: one
    /// alone, or several side by side, no more than their count.
    fn check_believers(&self, u: u8) {
        let believers = self.alive_believers(u);
        let alone = believers
            .iter()
            .any(|&c| self.clients[c].shares & 1 << u == 0);
        assert!(
            !alone || believers.len() <= 1,
            "two holders {believers:?}: {:?}",
            self.trace
        );
        for &c in &believers {
            let hs = handshake(c as u32);
            assert!(
                self.has(u, hs),
                "a live holder lost its booking: {:?}",
                self.trace
            );
        }
        if let (holders, Some(Mode::Slots(n))) = &self.groups[u as usize] {
            assert!(holders.len() <= *n as usize, "past the count: {:?}", self.trace);
        }
        let lock = self.registry.lock(&uid(u));
        let mode = self.groups[u as usize].1;
        let held_shared = lock.filter(|lock| lock.holders.iter().any(|b| b.uid != uid(u)));
        assert_eq!(held_shared.map(|lock| lock.mode), mode, "{:?}", self.trace);
    }

    /// Whether `u` has room for one more holder in `mode`, as the
    /// legitimate events left it.
    fn has_room(&self, u: u8, mode: Mode) -> bool {
        let (holders, _) = &self.groups[u as usize];
        self.table[u as usize].is_none()
            && match mode {
                Mode::Exclusive => holders.is_empty(),
                Mode::Shared => true,
                Mode::Slots(n) => holders.len() < n as usize,
            }
    }

    /// `answer`, an answer naming a count or shared mode in force, came to
    /// a request of `u` in `mode`: the holders or the first waiter with a
    /// count or shared fixed another.
    pub(super) fn check_in_force(&self, u: u8, mode: Mode, answer: Answer) {
        let first_waiting = self
            .pending
            .values()
            .filter(|p| p.uid == u && !p.left && p.mode != Mode::Exclusive)
            .filter_map(|p| p.queued.map(|place| (place, p.mode)))
            .min_by_key(|&(place, _)| place);
        let in_force = self.groups[u as usize]
            .1
            .or(first_waiting.map(|(_, mode)| mode));
        let expected = match in_force {
            Some(Mode::Slots(n)) => Answer::SlotsInForce(n),
            _ => Answer::SharedInForce,
        };
        assert!(
            in_force.is_some_and(|held| held != mode) && answer == expected,
            "{answer:?} to {mode:?} with {in_force:?} in force: {:?}",
            self.trace
        );
    }

    /// Lets every verification end truthfully and every wait run out; then
    /// nothing may be left unanswered.
    pub fn settle(mut self) {
        loop {
            if let Some(uid) = (0..self.uids).find(|&u| self.in_flight[u as usize].is_some()) {
                self.step(Event::Resolve { uid });
            } else if self
                .pending
                .values()
                .any(|p| matches!(p.kind, Kind::Wait | Kind::Line) && !p.left)
            {
                self.step(Event::Tick);
            } else {
                break;
            }
        }
        assert!(self.registry.is_idle(), "{:?}", self.trace);
        assert!(
            self.pending.values().all(|p| p.left),
            "unanswered: {:?}",
            self.trace
        );
    }
}
