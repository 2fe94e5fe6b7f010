//! The registry's sense of time, which it is told and never reads: waits
//! that end, probes of holders someone waits for, the sweep's steps and
//! the ends of reclaiming's rests.

use std::time::{Duration, Instant};

use super::waiting::Due;
use super::{Action, Answer, Checking, Counter, Fate, Pending, Registry, reply};

impl<R: Copy + PartialEq> Registry<R> {
    /// When the registry next needs [`handle_timeout`](Registry::handle_timeout):
    /// a waiter's deadline or a probe, if anyone waits, the sweep's next
    /// step, if it has anything to sweep, or the end of a scope's rest
    /// from reclaiming.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.waiting.next_timeout(),
            self.next_sweep(),
            self.next_rest_end(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// It is now `now`: ends the waits that are over, probes the holders
    /// that are due, and takes the sweep's step if it is due.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Action<R>>) {
        self.now = self.now.max(Some(now));
        // A zero interval would make every probe due again at once.
        let next_probe = now + self.limits.probe_interval.max(Duration::from_millis(1));
        // Those a waiter kept out are served once every wait that is over
        // has ended, so that none of them is granted past its own.
        let mut left = Vec::new();
        while let Some(due) = self.waiting.next_due(now, next_probe) {
            match due {
                Due::Deadline { uid, waiter } => {
                    self.users.give(waiter.user, Counter::Waiters);
                    reply(waiter.from, Answer::Denied, out);
                    left.push(uid);
                }
                Due::Lapsed { uid, ticket } => {
                    if let Some(Pending {
                        checking:
                            Checking::Candidate {
                                ticket: Some(candidate),
                                fate: fate @ Fate::Open,
                                ..
                            },
                        ..
                    }) = self.pending.get_mut(&uid)
                        && *candidate == ticket
                    {
                        *fate = Fate::Lapsed;
                    }
                }
                Due::Probe { uid } => self.probe(uid, out),
            }
        }
        left.sort_unstable_by_key(|uid| *uid.as_bytes());
        left.dedup();
        for uid in left {
            self.serve_behind(uid, out);
        }
        self.sweep(now, out);
        self.end_rests(now);
    }
}
