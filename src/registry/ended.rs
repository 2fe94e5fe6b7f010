//! A requester's connection that ends: its request leaves the registry
//! wherever it waits, and a line's end ends its booking.

use std::collections::VecDeque;

use super::{Action, Checking, Counter, Fate, Registry};
use crate::uid::Uid;

impl<R: Copy + PartialEq> Registry<R> {
    /// The connection of the requester `from`, whose request is about
    /// `uid`, ended: its client closed it, or the reactor did (patience, a
    /// limit, a line misused). The request leaves the registry now,
    /// wherever it is (the requests pending for the uid, its queue of
    /// waiters, its verification), and is never answered: nothing is
    /// granted to a requester that cannot learn of it. A holder verified
    /// on its behalf is still verified, as a probe, since that verdict is
    /// worth having. If the connection was the line of the booking of
    /// `uid` (exclusive or shared), the booking ends: `Dropped`, then the
    /// uid's queue is served; so it is when a waiter left that kept others
    /// out.
    /// O(the uid's pending requests and queue, and the parked requests).
    pub fn ended(&mut self, from: R, uid: Uid, out: &mut Vec<Action<R>>) {
        if self.leave(from, uid) {
            self.serve_behind(uid, out);
        }
        if let Some(key) = self.line_key(&uid, from) {
            self.line_ended(uid, key, out);
        }
    }

    /// Room was made in `uid`, or a waiter left its queue: those queued
    /// that it kept out (shared requests behind an exclusive one) may go
    /// now, unless a verification for the uid is in flight, whose verdict
    /// serves them.
    pub(super) fn serve_behind(&mut self, uid: Uid, out: &mut Vec<Action<R>>) {
        if !self.pending.contains_key(&uid) {
            self.serve_pending(uid, VecDeque::new(), None, false, out);
        }
    }

    /// Takes the request of `from` about `uid` out of wherever it waits;
    /// answers whether it left the uid's queue.
    fn leave(&mut self, from: R, uid: Uid) -> bool {
        if let Some(waiter) = self.waiting.leave(&uid, from) {
            self.users.give(waiter.user, Counter::Waiters);
            return true;
        }
        if self.unpark(from) {
            return false;
        }
        let Some(pending) = self.pending.get_mut(&uid) else {
            return false;
        };
        if let Some(place) = pending.waiting.iter().position(|w| w.from == from) {
            if let Some(waiter) = pending.waiting.remove(place) {
                self.pending_requests -= 1;
                self.users.give(waiter.user, Counter::Pending);
            }
            return false;
        }
        match &mut pending.checking {
            Checking::Holder { handshake, waiter } if waiter.from == from => {
                pending.checking = Checking::Probe {
                    handshake: *handshake,
                    round: None,
                };
            }
            Checking::Candidate {
                from: candidate,
                fate,
                ..
            } if *candidate == from => *fate = Fate::Ended,
            _ => {}
        }
        false
    }
}
