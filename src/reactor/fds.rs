//! The server's file descriptors: every client, line, queued waiter and
//! verification is one, so at start the soft limit on open files is raised
//! to the hard one when the configured bounds need more than it allows,
//! and lines are kept only as far as the limit leaves room for them.

use log::{debug, info, warn};

use super::Config;

/// Descriptors that are not connections: the listener, the poll, its
/// waker, the signal pipe, the state file and its lock, standard streams,
/// and room for the kernel's queries of owners.
const OWN: libc::rlim_t = 64;

/// The descriptors the bounds of `config` may need at once besides lines:
/// clients, the verifications of those pending (at most half of them) and
/// of probed holders, and queued waiters.
fn needed_without_lines(config: &Config) -> libc::rlim_t {
    let clients = config.max_connections as u64;
    let waiters = config.max_waiters as u64;
    clients + clients / 2 + 2 * waiters + OWN
}

/// How many lines the server keeps at most, and what the limit on open
/// files cut short, to be said once the start can no longer fail.
pub(super) struct LinesKept {
    /// At most this many lines are kept.
    pub lines: usize,
    short: Option<Short>,
}

/// What the limit on open files is short of.
enum Short {
    /// Lines: only `room` of those asked for fit.
    Lines { room: usize, limit: libc::rlim_t },
    /// The other bounds themselves: no line fits.
    Others {
        others: libc::rlim_t,
        limit: libc::rlim_t,
    },
}

impl LinesKept {
    /// Says in one line what the limit on open files cut short, if
    /// anything.
    pub fn log(&self) {
        match self.short {
            None => {}
            Some(Short::Lines { room, limit }) => info!(
                "at most {room} lines are kept, as the limit on open files ({limit}) leaves room for no more; bookings past them are granted under the call-back rules (raise the hard limit to keep one per booking)"
            ),
            Some(Short::Others { others, limit }) => warn!(
                "the limit on open files is {limit}, short of the {others} that --max-connections and --max-waiters may need; past it, new clients wait until descriptors free, and no line is kept"
            ),
        }
    }
}

/// Raises the soft limit on open files to the hard one if the bounds of
/// `config` need more, and answers how many lines to keep at most: as many
/// as `--max-lines` asks, and as the limit leaves room for. Past that, a
/// grant is made without a line, under the call-back rules, rather than
/// let descriptors run out.
pub(super) fn lines_within_limit(config: &Config) -> LinesKept {
    let lines = config.max_lines.min(config.max_bookings);
    let others = needed_without_lines(config);
    let Some(limit) = raise_open_files_limit(others + lines as u64) else {
        return LinesKept { lines, short: None };
    };
    let room = usize::try_from(limit.saturating_sub(others)).unwrap_or(usize::MAX);
    let short = if limit < others {
        Some(Short::Others { others, limit })
    } else if room < lines {
        Some(Short::Lines { room, limit })
    } else {
        None
    };
    LinesKept {
        lines: lines.min(room),
        short,
    }
}

/// Raises the soft limit on open files to the hard limit if `needed` is
/// past it; answers the limit in effect, if it could be read.
fn raise_open_files_limit(needed: libc::rlim_t) -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        warn!(
            "cannot read the limit on open files: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    if soft >= needed || soft == hard {
        return Some(soft);
    }
    let raised = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given, nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        debug!("raised the limit on open files from {soft} to {hard}");
        Some(hard)
    } else {
        warn!(
            "cannot raise the limit on open files from {soft} to {hard}: {}",
            std::io::Error::last_os_error()
        );
        Some(soft)
    }
}
