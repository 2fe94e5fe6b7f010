//! Requests kept waiting: pending behind verifications, or queued WAITs
//! for a held id. Their connections stay open for as long as they wait, so
//! they are watched: a connection that ends, by its client or by the
//! reactor, takes its request out of the registry in the same turn, and so
//! never costs the others a turn nor gets a grant nobody can receive.
//! Queued WAITs leave the client slots for the waiter limits.

use std::io::{ErrorKind, Read};

use log::{debug, warn};
use mio::{Interest, Token};

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
        // A request that arrived in pieces is registered already.
        let registry = self.poll.registry();
        let token = Token(to.key);
        let registered = match registry.register(&mut conn.stream, token, Interest::READABLE) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                registry.reregister(&mut conn.stream, token, Interest::READABLE)
            }
            other => other,
        };
        if let Err(e) = registered {
            // It is still answered in turn; only its end goes unseen until
            // patience or its wait runs out.
            warn!("cannot watch the connection of {ip}, which waits: {e}");
        }
    }

    /// A kept request's connection is readable: a client says nothing
    /// more after its request, so this is its close, or bytes to discard.
    pub(super) fn kept_ready(&mut self, key: usize) {
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
        self.end(ConnRef { key, generation });
    }

    /// Closes the client connection `conn`, whose request is with the
    /// registry, without a reply, and takes that request out of the
    /// registry.
    pub(super) fn end(&mut self, conn: ConnRef) {
        let Some(ended) = self.take(conn) else {
            return;
        };
        if let Phase::Waiting { request, .. } = &ended.phase
            && let Some(uid) = asked_about(request)
        {
            self.registry.ended(conn, uid);
        }
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
        Request::Status | Request::Query { .. } => None,
    }
}
