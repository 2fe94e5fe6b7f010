//! Lines: a client connection kept open as its booking's line once the
//! registry answers `Lined`. It is read for the one request it may carry,
//! the booking's own CHECK OUT, handed to the registry; anything else, its
//! close or a reset is reported to the registry as its end, which ends the
//! booking there. The reactor never decides that a close frees anything.
//! A line has no deadline and takes no client slot: the registry bounds
//! how many there are.

use std::io;
use std::time::Instant;

use log::{debug, error, info, warn};

use super::Server;
use super::conn::{Kept, Phase, ReadFailure, ReadProgress, is_open, read_request};
use super::wait::watch_readable;
use crate::handshake::Handshake;
use crate::deadlines::ConnRef;
use crate::registry::{Answer, UNKNOWN_USER};
use crate::uid::Uid;
use crate::wire::{Decoder, Request};

impl Server {
    /// Answers `to` with `Lined`: its booking (granted now, or attached
    /// to) is recorded first if new, then the yes is written, and the
    /// connection stays open as the booking's line.
    pub(super) fn reply_on_line(&mut self, to: ConnRef) {
        let Some(conn) = self
            .conns
            .get(to.key)
            .filter(|conn| conn.generation == to.generation)
        else {
            return;
        };
        let Phase::Waiting { ip, request, .. } = &conn.phase else {
            return;
        };
        let (ip, request) = (*ip, request.clone());
        let (uid, granted) = match request {
            Request::Wait { uid, handshake, .. } => (uid, Some(handshake)),
            Request::Attach { uid, .. } => (uid, None),
            _ => return,
        };
        let key = granted.and_then(|handshake| self.key_held_with(&uid, &handshake));
        if let Some(key) = key
            && let Err(e) = self.record_booked(&key)
        {
            error!("cannot write the state file: {e}; closing {ip}'s {request} without a reply");
            return self.line_undelivered(to, granted, uid);
        }
        let reply = self.reply_bytes(&request, Answer::Lined);
        let conn = &mut self.conns[to.key];
        // The request is the proof of life only while its connection is
        // open; one that waited behind a verification, unwatched, may have
        // closed since, and a write to it would still succeed.
        let delivered = is_open(&conn.stream)
            && reply.is_some_and(|reply| {
                matches!(io::Write::write(&mut conn.stream, reply.bytes()), Ok(n) if n == reply.bytes().len())
            });
        if !delivered {
            debug!("{ip}: {request}: granted on a line, but the client is gone");
            return self.line_undelivered(to, granted, uid);
        }
        if conn.phase.is_client() {
            self.clients -= 1;
        }
        conn.phase = Phase::Line {
            ip,
            uid,
            decoder: Decoder::new(),
        };
        debug!("{ip}: {request}: kept as the line of {uid:?}");
        if let Err(e) = watch_readable(&self.poll, &mut conn.stream, to.key) {
            // Unwatched, its end would go unseen and the booking last
            // forever: better end it now, as its holder can retry.
            warn!("cannot watch the line of {uid:?} from {ip}: {e}; closing it");
            self.end(to, Instant::now());
        }
    }

    /// A `Lined` answer could not be given: the connection is closed, and
    /// the registry undoes what the client never learnt of.
    fn line_undelivered(&mut self, to: ConnRef, granted: Option<Handshake>, uid: Uid) {
        self.take(to);
        match granted {
            Some(handshake) => {
                let key = self.key_held_with(&uid, &handshake);
                if self
                    .registry
                    .grant_undelivered(uid, handshake, &mut self.actions)
                    && let Some(key) = key
                    && let Err(e) = self.record_released(&key)
                {
                    error!("cannot write the state file: {e}");
                }
            }
            None => self.registry.attach_undelivered(to, uid),
        }
    }

    /// A line is readable: its booking's CHECK OUT goes to the registry;
    /// anything else, or its close, ends it.
    pub(super) fn line_ready(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::Line { ip, uid, decoder } = &mut conn.phase else {
            return;
        };
        let (ip, uid) = (*ip, *uid);
        let why = match read_request(&mut conn.stream, decoder) {
            ReadProgress::Pending => return,
            ReadProgress::Complete(request @ Request::CheckOut { uid: named, .. })
                if named == uid =>
            {
                debug!("{ip}: {request} on its line");
                conn.phase = Phase::Waiting {
                    ip,
                    request,
                    kept: Kept::Answering,
                    user: UNKNOWN_USER,
                    name: None,
                };
                // Answered at once, or pending as any request: a client now.
                self.clients += 1;
                let generation = conn.generation;
                return self.submit(ConnRef { key, generation }, now);
            }
            ReadProgress::Complete(request) => format!("{request} sent on it"),
            ReadProgress::Failed(ReadFailure::ClosedEarly) => "closed".to_string(),
            ReadProgress::Failed(why) => why.to_string(),
        };
        info!("{ip}: the line of {uid:?} ended ({why}): its booking ends");
        let generation = conn.generation;
        self.end(ConnRef { key, generation }, now);
    }

    /// Ends the line of `uid` now if its client has closed it and the poll
    /// has not said so yet (a QUERY, a contender or a message accepted in
    /// the same turn as the close would otherwise find it held): QUERY
    /// never says held of a lock whose line is closed, nor is a contender
    /// denied for it. One peek per lined holder: the exclusive one, or
    /// each shared one.
    pub(super) fn end_closed_line(&mut self, uid: &Uid, now: Instant) {
        let lines: Vec<ConnRef> = self.registry.lines_of(uid).collect();
        for line in lines {
            let closed = self
                .conns
                .get(line.key)
                .is_some_and(|conn| conn.generation == line.generation && !is_open(&conn.stream));
            if closed {
                self.line_ready(line.key, now);
            }
        }
    }

    /// The booking of the line `to` was checked out on another
    /// connection: the line is closed, with nothing written on it.
    pub(super) fn close_line(&mut self, to: ConnRef) {
        if let Some(closed) = self.take(to)
            && let Phase::Line { ip, uid, .. } = closed.phase
        {
            debug!("{ip}: closing the line of {uid:?}: checked out elsewhere");
        }
    }
}
