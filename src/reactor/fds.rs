//! The server's file descriptors: every client, line, queued waiter and
//! verification is one, so at start the soft limit on open files is raised
//! to the hard one when the configured bounds need more than it allows.

use log::{debug, warn};

use super::Config;

/// Descriptors that are not connections: the listener, the poll, its
/// waker, the signal pipe, the state file and its lock, standard streams,
/// and room for the kernel's queries of owners.
const OWN: libc::rlim_t = 64;

/// The descriptors the bounds of `config` may need at once: clients, the
/// verifications of those pending (at most half of them) and of probed
/// holders, queued waiters, and lines (one per booking at most).
pub(super) fn needed(config: &Config) -> libc::rlim_t {
    let clients = config.max_connections as u64;
    let waiters = config.max_waiters as u64;
    let lines = config.max_lines.min(config.max_bookings) as u64;
    clients + clients / 2 + 2 * waiters + lines + OWN
}

/// Raises the soft limit on open files to the hard limit if `needed` is
/// past it; warns in one line when even the hard limit is short of it.
pub(super) fn raise_open_files_limit(needed: libc::rlim_t) {
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
        return;
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    if soft < needed && soft < hard {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given, nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            debug!("raised the limit on open files from {soft} to {hard}");
        } else {
            warn!(
                "cannot raise the limit on open files from {soft} to {hard}: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
    }
    if hard < needed {
        warn!(
            "the limit on open files is {hard}, short of the {needed} the limits may need (--max-connections, --max-waiters, --max-lines); past it, new clients wait until descriptors free"
        );
    }
}
