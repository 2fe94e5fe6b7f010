//! Requests kept waiting: pending behind verifications, or queued WAITs
//! for a held id. Their connections stay open for as long as they wait, so
//! they are watched: a connection that ends, by its client or by the
//! reactor, takes its request out of the registry in the same turn, and so
//! never costs the others a turn nor gets a grant nobody can receive.
//! Queued WAITs leave the client slots for the waiter limits.

use std::io::{self, ErrorKind, Read};
use std::time::Instant;

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};

use super::Server;
use super::conn::{Kept, Phase};
use crate::deadlines::ConnRef;
use crate::uid::Uid;
use crate::wire::Request;

impl Server {
    /// The registry keeps the request of `to` waiting, as `kept` says:
    /// watch its connection for its end.
    pub(super) fn keep(&mut self, to: ConnRef, kept: Kept) {
        let Some(conn) = self
            .conns
            .get_mut(to.key)
            .filter(|conn| conn.generation == to.generation)
        else {
            return;
        };
        let Phase::Waiting {
            ip,
            request,
            kept: was,
            ..
        } = &mut conn.phase
        else {
            return;
        };
        if *was == kept {
            return;
        }
        let watched = *was != Kept::Answering;
        if kept == Kept::Queued {
            debug!("{ip}: {request}: queued");
            self.clients -= 1;
        }
        *was = kept;
        if watched {
            return;
        }
        let ip = *ip;
        if let Err(e) = watch_readable(&self.poll, &mut conn.stream, to.key) {
            // It is still answered in turn; only its end goes unseen until
            // patience or its wait runs out.
            warn!("cannot watch the connection of {ip}, which waits: {e}");
        }
    }

    /// A kept request's connection is readable: a client says nothing
    /// more after its request, so this is its close, or bytes to discard.
    pub(super) fn kept_ready(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut sink = [0; 256];
        let gone = loop {
            match conn.stream.read(&mut sink) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !gone {
            return;
        }
        if let Phase::Waiting { ip, request, .. } = &conn.phase {
            debug!("{ip}: {request}: the client left");
        }
        let generation = conn.generation;
        self.end(ConnRef { key, generation }, now);
    }

    /// Closes the client connection `conn`, whose request is with the
    /// registry or which is a line, without a reply, and tells the
    /// registry, which takes the request out, or ends the line's booking.
    pub(super) fn end(&mut self, conn: ConnRef, now: Instant) {
        let Some(ended) = self.take(conn) else {
            return;
        };
        let uid = match &ended.phase {
            Phase::Waiting { request, .. } => asked_about(request),
            Phase::Line { uid, .. } => Some(*uid),
            Phase::Reading { .. } | Phase::Verifying(_) | Phase::Listing(_) => None,
        };
        if let Some(uid) = uid {
            self.registry.ended(conn, uid, &mut self.actions);
            self.carry_out(now);
        }
    }
}

/// Watches `stream`, the connection in slot `key`, for reads and its end.
/// A request that arrived in pieces is registered already; registering
/// again re-arms it, so bytes that came meanwhile are announced too.
pub(super) fn watch_readable(poll: &Poll, stream: &mut TcpStream, key: usize) -> io::Result<()> {
    let registry = poll.registry();
    match registry.register(stream, Token(key), Interest::READABLE) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            registry.reregister(stream, Token(key), Interest::READABLE)
        }
        other => other,
    }
}

/// The id a request the registry serves is about.
fn asked_about(request: &Request) -> Option<Uid> {
    match request {
        Request::Book { uid, .. }
        | Request::CheckOut { uid, .. }
        | Request::Notify { uid, .. }
        | Request::Wait { uid, .. }
        | Request::Attach { uid, .. } => Some(*uid),
        Request::Status | Request::Query { .. } | Request::List => None,
    }
}
