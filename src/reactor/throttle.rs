//! Warnings that a hostile or overloaded peer could trigger thousands of
//! times a second, logged sparingly so the log stays readable: events at
//! most once per interval with a count of what was held back, lasting
//! conditions once when they begin and once when they end.

use std::fmt;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Throttled {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttled {
    pub fn warn(&mut self, now: Instant, message: fmt::Arguments) {
        match self.last {
            Some(last) if now.duration_since(last) < INTERVAL => self.held_back += 1,
            _ => {
                if self.held_back > 0 {
                    log::warn!("{message} (and {} more like it)", self.held_back);
                } else {
                    log::warn!("{message}");
                }
                self.last = Some(now);
                self.held_back = 0;
            }
        }
    }
}

/// A condition that lasts a while, such as running out of file
/// descriptors: one warning when it begins, one line when it is over, and
/// nothing per occurrence in between.
#[derive(Default)]
pub(super) struct Episode {
    since: Option<Instant>,
    occurrences: u64,
}

impl Episode {
    /// The condition occurred; warns only if it was not already on.
    pub fn occurred(&mut self, now: Instant, message: fmt::Arguments) {
        self.occurrences += 1;
        if self.since.is_none() {
            self.since = Some(now);
            log::warn!("{message}");
        }
    }

    /// The condition is over; says so, with how long it lasted and how
    /// often it occurred, if it was on.
    pub fn over(&mut self, now: Instant, message: &str, occurrence: &str) {
        if let Some(since) = self.since.take() {
            log::info!(
                "{message} after {:.1?} ({} {occurrence})",
                now.duration_since(since),
                self.occurrences
            );
            self.occurrences = 0;
        }
    }
}
