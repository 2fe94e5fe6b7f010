//! Stopping: a signal starts draining the requests in flight, and the last
//! log line says what becomes of the bookings held.

use std::time::Instant;

use log::debug;
use signal_hook::consts::SIGINT;

use super::accept::Accepting;
use super::{Server, plural};

impl Server {
    /// What becomes of the bookings held as the server stops, for its last
    /// log line.
    pub(super) fn kept(&self) -> String {
        let held = plural(self.registry.len(), "booking", "bookings");
        match &self.journal {
            Some(journal) => format!(
                "{held} held, kept in {} for the next start",
                journal.path().display()
            ),
            None if self.registry.is_empty() => format!("{held} held"),
            None => format!("{held} held and lost: no state file (--no-state)"),
        }
    }

    /// Stops accepting on SIGTERM or SIGINT; the loop ends once the
    /// requests in flight are done.
    pub(super) fn begin_draining(&mut self, now: Instant) {
        let Some(signals) = &mut self.signals else {
            return;
        };
        let Some(signal) = signals.pending().next() else {
            return;
        };
        if self.draining.is_none() {
            // Clients already in the backlog are served; dropping the
            // listener then makes new ones fail at once instead of waiting
            // for a server that is leaving.
            if matches!(self.accepting, Accepting::Open | Accepting::Yielded) {
                self.accept(now);
                while self.accepting == Accepting::Yielded {
                    self.accept(now);
                }
            }
            self.listener = None;
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            self.draining = Some((name, now + 2 * self.config.rw_timeout));
            debug!("{name}: finishing {} requests in flight", self.clients);
        }
    }
}
