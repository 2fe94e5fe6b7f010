//! The promises the modelled world checks after every event, and at the
//! end of a history.

use crate::handshake::Handshake;
use super::{Event, Kind, Pending, World};
use crate::registry::model::{handshake, uid};

impl World {
    /// A grant to request `r`: the uid is free, the booker just proved
    /// alive (or asked on a line, whose open connection is its proof), a
    /// waiter's wait is not over, and nobody queued before it still waits.
    pub(super) fn check_grant(&self, r: u32, pending: &Pending, mine: Option<Handshake>, on_line: bool) {
        let u = pending.uid;
        assert_eq!(
            self.table[u as usize], None,
            "granted while held: {:?}",
            self.trace
        );
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
    /// only grows for each uid.
    pub(super) fn check_token(&mut self, u: u8, mine: Option<Handshake>) {
        let holder = self.registry.holder(&uid(u));
        let Some(token) = holder.filter(|b| Some(b.handshake) == mine).map(|b| b.token) else {
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
            self.table,
            "the table changed without cause: {:?}",
            self.trace
        );
        for u in 0..self.uids {
            let believers = self.alive_believers(u);
            assert!(
                believers.len() <= 1,
                "two holders {believers:?}: {:?}",
                self.trace
            );
            if let Some(&c) = believers.first() {
                assert_eq!(
                    self.table[u as usize],
                    Some(handshake(c as u32)),
                    "a live holder lost its booking: {:?}",
                    self.trace
                );
            }
            if self.registry.waiting.count_for(&uid(u)) > 0 {
                assert!(
                    self.table[u as usize].is_some() || self.in_flight[u as usize].is_some(),
                    "waiters queued for a free uid: {:?}",
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
        let lines = self.lines.iter().flatten().count();
        assert_eq!(self.registry.lines(), lines, "{:?}", self.trace);
        assert!(lines <= self.limits.max_lines, "{:?}", self.trace);
        for u in 0..self.uids {
            let line = self.lines[u as usize];
            assert_eq!(
                self.registry.has_line(&uid(u)),
                line.is_some(),
                "{:?}",
                self.trace
            );
            if let Some((c, _)) = line {
                // A process's lines close when it dies.
                assert!(self.clients[c].alive, "{:?}", self.trace);
                assert_eq!(self.table[u as usize], Some(handshake(c as u32)));
            }
        }
        assert!(
            self.registry.waiting.timers()
                <= 2 * (self.registry.waiters() + self.uids as usize) + 65,
            "timers pile up: {:?}",
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
