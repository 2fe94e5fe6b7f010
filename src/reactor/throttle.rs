//! Warnings that a hostile or overloaded peer could trigger thousands of
//! times a second: said at once the first time, then at most once per
//! interval with a count of what was held back, so the log stays readable.

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
