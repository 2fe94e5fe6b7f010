//! Serving client requests: reading them, handing them to the registry,
//! and carrying out its answers (replies, refusals, verifications), with
//! the state file told of every change before the client is.

use std::io;
use std::time::{Duration, Instant};

use log::{debug, error};

use super::Server;
use super::conn::{Kept, MessageFrom, Phase, ReadProgress, Verification, read_request};
use crate::deadlines::ConnRef;
use crate::owner::ROOT;
use crate::registry::{Action, Answer, Ask, UNKNOWN_USER, User};
use crate::status::{Status, UserUse};
use crate::wire::Request;

/// The most OS users a STATUS line tells the use of: at about 40 bytes
/// each, the line stays within the few KiB a fresh socket's send buffer
/// takes at once.
const MAX_USERS_IN_STATUS: usize = 100;

impl Server {
    /// A client or verification connection is ready for I/O.
    pub(super) fn ready(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match &mut conn.phase {
            Phase::Reading { ip, decoder } => match read_request(&mut conn.stream, decoder) {
                ReadProgress::Complete(request) => {
                    let (ip, name) = (*ip, decoder.take_name());
                    let Some(phase) =
                        Phase::complete(ip, request, name, &conn.stream, &mut self.owners)
                    else {
                        debug!("closing {ip} without a reply: it has closed its connection");
                        return self.close(key);
                    };
                    conn.phase = phase;
                    let generation = conn.generation;
                    self.submit(ConnRef { key, generation }, now);
                }
                ReadProgress::Pending => {}
                ReadProgress::Failed(why) => {
                    debug!("closing {ip} without a reply: {why}");
                    self.close(key);
                }
            },
            Phase::Waiting {
                kept: Kept::Pending | Kept::Queued,
                ..
            } => self.kept_ready(key, now),
            // The request is complete; whatever else arrives is ignored.
            Phase::Waiting { .. } => {}
            Phase::Verifying(_) => self.verification_ready(key, now),
            Phase::Line { .. } => self.line_ready(key, now),
            Phase::Listing(_) => self.listing_ready(key),
        }
    }

    /// Hands the complete request of `from` to the registry, or answers a
    /// STATUS or QUERY at once.
    pub(super) fn submit(&mut self, from: ConnRef, now: Instant) {
        let Some(Phase::Waiting {
            ip, request, user, ..
        }) = self.conns.get(from.key).map(|c| &c.phase)
        else {
            return;
        };
        if let Some(ask) = Ask::of(request, now) {
            let (ip, user) = (*ip, *user);
            // A holder whose line closed in this very turn is gone: a
            // contender or a message finds the lock as it now is.
            if matches!(ask, Ask::Book { .. } | Ask::Wait { .. } | Ask::Notify { .. }) {
                self.end_closed_line(&ask.uid(), now);
            }
            self.registry
                .request(from, ip, user, ask, &mut self.actions);
            self.carry_out(now);
            return;
        }
        let queried = match *request {
            Request::Query { uid } => Some(uid),
            _ => None,
        };
        let asker = *user;
        self.counters.requests += 1;
        if *request == Request::List {
            return self.start_listing(from, asker, now);
        }
        let mut line = match queried {
            Some(uid) => {
                self.end_closed_line(&uid, now);
                self.lock_status(&uid).to_string()
            }
            // STATUS, the other request the registry is not asked about.
            None => Status {
                version: env!("CARGO_PKG_VERSION").to_string(),
                bookings: self.registry.len() as u64,
                connections: self.conns.len() as u64,
                requests: self.counters.requests,
                verifications_failed: self.counters.verifications_failed,
                uptime: Duration::from_secs(now.duration_since(self.counters.started).as_secs()),
                lines: Some(self.registry.lines() as u64),
                names: Some(self.registry.names() as u64),
                tokens: Some(self.registry.last_token()),
                usage: self.usage_for(asker),
            }
            .to_string(),
        };
        line.push('\n');
        // A fresh socket's send buffer takes a line this short whole.
        let _ = io::Write::write(&mut self.conns[from.key].stream, line.as_bytes());
        self.close(from.key);
    }

    /// What STATUS tells `asker` of the use per OS user: root every user's
    /// (the first `MAX_USERS_IN_STATUS` by user id, so that the line stays
    /// short enough for one write), anyone else their own.
    fn usage_for(&self, asker: User) -> Vec<UserUse> {
        self.registry
            .usage()
            .into_iter()
            .filter(|(user, _)| asker == ROOT || *user == asker)
            .take(MAX_USERS_IN_STATUS)
            .map(|(user, used)| UserUse {
                user,
                bookings: used.bookings as u64,
                lines: used.lines as u64,
                waiters: used.waiters as u64,
                pending: used.pending as u64,
            })
            .collect()
    }

    /// The message of a waiting NOTIFY request, to hand to the holder, and
    /// the OS user who sent it, as the kernel told when it arrived.
    pub(super) fn message_of(&mut self, from: ConnRef) -> Option<MessageFrom<'_>> {
        let conn = self
            .conns
            .get(from.key)
            .filter(|conn| conn.generation == from.generation)?;
        let Phase::Waiting {
            request: Request::Notify { message, .. },
            user,
            ..
        } = &conn.phase
        else {
            return None;
        };
        Some(MessageFrom {
            sender: (*user != UNKNOWN_USER).then_some(*user),
            bytes: message,
        })
    }

    /// Carries out the registry's actions in the order it gave them: the
    /// state file hears that a dead holder's booking was dropped before
    /// anyone is told the id is free. Actions that carrying out brings
    /// (an undelivered grant, a verification refused at once) follow.
    pub(super) fn carry_out(&mut self, now: Instant) {
        while !self.actions.is_empty() {
            let mut batch = std::mem::take(&mut self.actions);
            for action in batch.drain(..) {
                self.carry_out_one(action, now);
            }
            // Keeps the buffer's room for the next time.
            if self.actions.is_empty() {
                self.actions = batch;
            }
        }
    }

    fn carry_out_one(&mut self, action: Action<ConnRef>, now: Instant) {
        match action {
            Action::Reply { to, answer } => {
                if answer == Answer::OtherUser {
                    self.warnings.other_user.warn(
                        now,
                        format_args!(
                            "refused to hand a holder a message from another OS user (not root)"
                        ),
                    );
                }
                self.reply(to, answer, now);
            }
            Action::Refuse { to, why } => {
                self.refuse(to, why, now);
            }
            Action::Verify {
                uid,
                handshake,
                at,
                message_from,
            } => {
                let message = message_from.and_then(|from| self.message_of(from));
                let verification = Verification::new(uid, handshake, message);
                self.verify(verification, at, now);
            }
            Action::Queued { to } => self.keep(to, Kept::Queued),
            Action::CloseLine { to } => self.close_line(to),
            Action::Pending { to } => {
                self.patience.start(now, to);
                self.keep(to, Kept::Pending);
            }
            Action::Dropped { uid } => {
                if let Err(e) = self.record_released(&uid) {
                    error!("cannot record in the state file that {uid:?} is free: {e}");
                }
            }
        }
    }

    pub(super) fn reply(&mut self, to: ConnRef, answer: Answer, now: Instant) {
        self.counters.requests += 1;
        if matches!(answer, Answer::Granted | Answer::Lined | Answer::NoLine) {
            self.keep_name(to, now);
        }
        if answer == Answer::Lined {
            return self.reply_on_line(to);
        }
        let Some(mut conn) = self.take(to) else {
            return;
        };
        let Phase::Waiting { ip, request, .. } = &conn.phase else {
            return;
        };
        // The state file hears of a change before the client does.
        let granted = match (answer, request) {
            (
                Answer::Granted | Answer::NoLine,
                Request::Book { uid, handshake, .. } | Request::Wait { uid, handshake, .. },
            ) => Some((*uid, *handshake)),
            _ => None,
        };
        // The key the grant is kept under: its slot's, for a shared one.
        let key = granted.and_then(|(uid, handshake)| self.key_held_with(&uid, &handshake));
        let recorded = match (key, request) {
            (Some(key), _) => self.record_booked(&key),
            // A shared holder's check out was recorded under its slot key
            // (`Dropped`); this release of its name records nothing held.
            (None, Request::CheckOut { uid, .. }) if answer == Answer::CheckedOut => {
                self.record_released(uid)
            }
            _ => Ok(()),
        };
        if let Err(e) = recorded {
            error!("cannot write the state file: {e}; closing {ip}'s {request} without a reply");
            if let Some((uid, handshake)) = granted {
                self.registry
                    .grant_undelivered(uid, handshake, &mut self.actions);
            }
            return;
        }
        let delivered = self.reply_bytes(request, answer).is_some_and(|reply| {
            matches!(io::Write::write(&mut conn.stream, reply.bytes()), Ok(n) if n == reply.bytes().len())
        });
        if delivered {
            debug!("{ip}: {request}: {answer:?}");
            return;
        }
        debug!("{ip}: {request}: {answer:?}, but the client is gone");
        if let (Some((uid, handshake)), Some(key)) = (granted, key)
            && self
                .registry
                .grant_undelivered(uid, handshake, &mut self.actions)
            && let Err(e) = self.record_released(&key)
        {
            error!("cannot write the state file: {e}");
        }
    }

    /// Keeps the name that came with the request of `to`, just granted,
    /// beside its booking, if the uid is the name's; says so in the log,
    /// throttled, when it is not.
    fn keep_name(&mut self, to: ConnRef, now: Instant) {
        let Some(Phase::Waiting {
            ip,
            request:
                Request::Book { uid, handshake, .. } | Request::Wait { uid, handshake, .. },
            user,
            name,
            ..
        }) = self
            .conns
            .get_mut(to.key)
            .filter(|conn| conn.generation == to.generation)
            .map(|conn| &mut conn.phase)
        else {
            return;
        };
        let Some(name) = name.take() else {
            return;
        };
        let (ip, uid, handshake, user) = (*ip, *uid, *handshake, *user);
        let key = self.key_held_with(&uid, &handshake).unwrap_or(uid);
        if !self.registry.name(&key, user, name) {
            self.warnings.false_name.warn(
                now,
                format_args!("{ip}: not keeping the name sent with a book of {uid:?}: the id is not that name's"),
            );
        }
    }
}
