//! When each connection must be done by, for the server and for a
//! holder's liveness responder alike. Every deadline is "now + the one
//! rw timeout", so deadlines arrive in order and a FIFO queue is already
//! sorted: no heap, O(1) at both ends.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A connection, named by slab key and the generation that tells it apart
/// from later connections in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnRef {
    pub key: usize,
    pub generation: u32,
}

pub(crate) struct Deadlines {
    timeout: Duration,
    /// What deadlines are counted from.
    epoch: Instant,
    queue: VecDeque<Entry>,
}

/// A deadline in 16 bytes: one is queued per connection, so under load
/// there are tens of thousands.
#[derive(Clone, Copy)]
struct Entry {
    /// Microseconds after the epoch.
    at: u64,
    /// Slab keys stay below the number of open files, far below 2^32.
    key: u32,
    generation: u32,
}

impl Deadlines {
    pub fn new(timeout: Duration) -> Deadlines {
        Deadlines {
            timeout,
            epoch: Instant::now(),
            queue: VecDeque::new(),
        }
    }

    /// Starts the clock of `conn`. A connection that finishes early leaves
    /// its entry behind; [`Deadlines::expired`] hands it out anyway and the
    /// caller skips it by its generation.
    pub fn start(&mut self, now: Instant, conn: ConnRef) {
        self.queue.push_back(Entry {
            // Saturating: a timeout too long to add is as good as none.
            at: self
                .micros(now)
                .saturating_add(u64::try_from(self.timeout.as_micros()).unwrap_or(u64::MAX)),
            key: conn.key as u32,
            generation: conn.generation,
        });
    }

    /// The connections with a deadline, oldest first, finished ones among
    /// them (the caller tells them by their generation).
    #[cfg(feature = "server")]
    pub fn oldest_first(&self) -> impl Iterator<Item = ConnRef> + '_ {
        self.queue.iter().map(|entry| ConnRef {
            key: entry.key as usize,
            generation: entry.generation,
        })
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        let entry = self.queue.front()?;
        self.epoch.checked_add(Duration::from_micros(entry.at))
    }

    /// The next connection whose deadline has passed at `now`.
    pub fn expired(&mut self, now: Instant) -> Option<ConnRef> {
        match self.queue.front() {
            Some(entry) if entry.at <= self.micros(now) => self.pop_oldest(),
            _ => None,
        }
    }

    /// The connection started longest ago, deadline passed or not: the
    /// one to give up when room is needed.
    pub fn pop_oldest(&mut self) -> Option<ConnRef> {
        let entry = self.queue.pop_front()?;
        // Give back what a burst of load grew, so an idle process returns
        // to its idle footprint.
        if self.queue.capacity() > 64 && self.queue.len() < self.queue.capacity() / 4 {
            self.queue.shrink_to(self.queue.len() * 2);
        }
        Some(ConnRef {
            key: entry.key as usize,
            generation: entry.generation,
        })
    }

    /// `at` in whole microseconds after the epoch, rounded up so that no
    /// deadline passes early.
    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .div_ceil(1000) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(key: usize) -> ConnRef {
        ConnRef { key, generation: 0 }
    }

    #[test]
    fn hands_out_deadlines_in_order_once_passed() {
        let timeout = Duration::from_secs(3);
        let mut deadlines = Deadlines::new(timeout);
        let start = deadlines.epoch + Duration::from_micros(5);
        deadlines.start(start, conn(1));
        deadlines.start(start + Duration::from_secs(1), conn(2));
        assert_eq!(deadlines.next(), Some(start + timeout));
        assert_eq!(deadlines.expired(start + Duration::from_secs(2)), None);
        assert_eq!(deadlines.expired(start + timeout), Some(conn(1)));
        assert_eq!(deadlines.expired(start + timeout), None);
        assert_eq!(
            deadlines.expired(start + Duration::from_secs(4)),
            Some(conn(2))
        );
        assert_eq!(deadlines.next(), None);
    }

    #[test]
    fn an_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn gives_back_memory_after_a_burst() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new(Duration::ZERO);
        for key in 0..10_000 {
            deadlines.start(start, conn(key));
        }
        while deadlines.expired(start).is_some() {}
        assert!(
            deadlines.queue.capacity() <= 128,
            "{}",
            deadlines.queue.capacity()
        );
    }
}
