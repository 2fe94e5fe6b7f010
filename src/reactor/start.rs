//! What a server starts with: a registry bounded as configured, and the
//! bookings and the last fencing token its state file kept.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{info, warn};

use super::config::Config;
use super::journal::Journal;
use super::plural;
use crate::deadlines::ConnRef;
use crate::registry::{Limits, Registry};

/// An empty registry with the bounds of `config`, keeping at most
/// `max_lines` lines, whose tokens start above the clock.
pub(super) fn registry(config: &Config, max_lines: usize) -> Registry<ConnRef> {
    let mut registry = Registry::new(Limits {
        max_bookings: config.max_bookings,
        max_waiting: config.max_waiting,
        max_waiters: config.max_waiters,
        max_waiters_per_id: config.max_waiters_per_id,
        max_pending: max_pending(config),
        probe_interval: config.probe_interval,
        max_lines,
        shares: config.shares,
        sweep_interval: config.sweep_interval,
        sweep_age: config.sweep_age,
    });
    // Tokens start above the clock too, in microseconds: a state file
    // lost, cut short or garbled, or none (--no-state), cannot make them
    // go back, unless the clock itself goes back or grants outran a
    // million a second.
    registry.resume_tokens_after(unix_micros());
    registry
}

/// Opens the state file `config` names, if any, and gives `registry` what
/// it kept: its bookings and the last token given.
pub(super) fn restore(
    config: &Config,
    registry: &mut Registry<ConnRef>,
) -> io::Result<Option<Journal>> {
    let Some(path) = &config.state else {
        return Ok(None);
    };
    let (journal, recorded) = Journal::open(path)?;
    registry.resume_tokens_after(journal.last_token());
    let total = recorded.len();
    let restored = recorded
        .into_iter()
        .filter(|&(booking, group)| match group {
            Some((name, mode)) => registry.restore_shared(name, mode, booking),
            None => registry.restore(booking),
        })
        .count();
    if restored < total {
        warn!(
            "{}: {} of {total} recorded bookings are past --max-bookings and were dropped",
            path.display(),
            total - restored
        );
    }
    info!(
        "{}: {} restored; each holder is verified at its next contention",
        path.display(),
        plural(restored, "booking", "bookings")
    );
    Ok(Some(journal))
}

/// The wall-clock time in microseconds since the Unix epoch; 0 for a
/// clock set before it.
fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}

/// Requests that may be pending behind verifications, for all ids
/// together: half the slots at most wait on slow responders, and the other
/// half stay for requests answered at once (STATUS, a check out, a book of
/// a free id).
fn max_pending(config: &Config) -> usize {
    (config.max_connections / 2).max(1)
}
