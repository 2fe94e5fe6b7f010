//! Refusing a request: the reply byte that tells our clients which bound
//! was reached or whose per-user id they asked for (a 0.6.0 BOOK is closed
//! without one, as 0.6.0 expects), and a throttled warning that an
//! operator woken at 3 a.m. can act on: which limit, whether a user's
//! share or the total, and which user.

use std::io;
use std::time::Instant;

use log::{debug, info};

use super::Server;
use super::conn::{Conn, Phase};
use crate::deadlines::ConnRef;
use crate::registry::{Refusal, UNKNOWN_USER, User};
use crate::wire::{REPLY_OTHER_USER, Request};

impl Server {
    /// Closes the requester `to`, with the reply byte that says why if its
    /// request is one of ours.
    pub(super) fn refuse(&mut self, to: ConnRef, why: Refusal, now: Instant) {
        self.counters.requests += 1;
        let Some(Conn {
            mut stream,
            phase: Phase::Waiting {
                ip, request, user, ..
            },
            ..
        }) = self.take(to)
        else {
            return;
        };
        self.warn_refusal(why, &request, user, now);
        let byte = match why {
            Refusal::Full { limit, share } => Some(limit.reply(share)),
            Refusal::OtherUsersId => Some(REPLY_OTHER_USER),
            Refusal::Inconclusive | Refusal::LineMisused => None,
        };
        let ours = !matches!(request, Request::Book { .. });
        match byte.filter(|_| ours) {
            // A fresh request's socket has room for one byte; if it is
            // gone, it has nobody to tell.
            Some(byte) => {
                let _ = io::Write::write(&mut stream, &[byte]);
                debug!("{ip}: {request}: refused ({why:?}), replied {byte:#04x}");
            }
            None if why == Refusal::LineMisused => {
                info!("{ip}: {request} on its line, with the wrong handshake: its booking ended");
            }
            None => debug!("{ip}: {request}: refused, closing without a reply ({why:?})"),
        }
    }

    fn warn_refusal(&mut self, why: Refusal, request: &Request, user: User, now: Instant) {
        let what = match request {
            Request::Book { .. } => "book",
            Request::Wait { line: false, .. } => "wait",
            Request::Wait { line: true, .. } => "line",
            Request::Attach { .. } => "attach",
            Request::Notify { .. } => "notify",
            Request::CheckOut { .. } => "check out",
            Request::Status | Request::Query { .. } | Request::List => "question",
        };
        let who = Who(user);
        match why {
            Refusal::Full { limit, share } => {
                let limits = self.registry.limits();
                let bound = limits.bound(limit);
                let option = limit.option();
                let message = if share {
                    format!(
                        "refused a {what} from {who}: its share of {limit} ({} of {bound}, {option} / --shares {}) is taken",
                        limits.share(bound),
                        limits.shares
                    )
                } else {
                    format!(
                        "refused a {what} from {who}: the server's {bound} {limit} ({option}) are all taken"
                    )
                };
                self.warnings.limits[usize::from(limit.code())][usize::from(share)]
                    .warn(now, format_args!("{message}"));
            }
            Refusal::OtherUsersId => self.warnings.other_users_id.warn(
                now,
                format_args!(
                    "refused a {what} from {who}: the id is another OS user's per-user id"
                ),
            ),
            // Already warned about by `cannot_verify`; a client's own
            // mistake, logged with it.
            Refusal::Inconclusive | Refusal::LineMisused => {}
        }
    }
}

/// A requester's OS user, for the log.
struct Who(User);

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            UNKNOWN_USER => f.write_str("an OS user the kernel could not tell"),
            user => write!(f, "user {user}"),
        }
    }
}
