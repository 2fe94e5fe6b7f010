//! Waiters: WAIT requests queued for a held id. Their connections stay
//! open for as long as the wait, so they leave the client slots for the
//! waiter limits, and are watched so that a client that goes away leaves
//! its queue at once instead of costing the others a turn.

use std::io::{ErrorKind, Read};

use log::{debug, warn};
use mio::{Interest, Token};

use super::Server;
use super::conn::Phase;
use crate::deadlines::ConnRef;
use crate::wire::Request;

impl Server {
    /// The registry queued the WAIT of `to`: watch its connection for a
    /// close.
    pub(super) fn watch_waiter(&mut self, to: ConnRef) {
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
            queued,
            ..
        } = &mut conn.phase
        else {
            return;
        };
        if *queued {
            return;
        }
        *queued = true;
        debug!("{ip}: {request}: queued");
        let ip = *ip;
        self.clients -= 1;
        // A request that arrived in pieces is registered already.
        let registry = self.poll.registry();
        let token = Token(to.key);
        let watched = match registry.register(&mut conn.stream, token, Interest::READABLE) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                registry.reregister(&mut conn.stream, token, Interest::READABLE)
            }
            other => other,
        };
        if let Err(e) = watched {
            // It is still answered in turn; only its leaving goes unseen.
            warn!("cannot watch the wait of {ip}: {e}");
        }
    }

    /// A queued waiter's connection is readable: a client says nothing
    /// more after its request, so this is its close, or bytes to discard.
    pub(super) fn waiter_ready(&mut self, key: usize) {
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
        let from = ConnRef {
            key,
            generation: conn.generation,
        };
        if let Phase::Waiting {
            ip,
            request: request @ Request::Wait { uid, .. },
            ..
        } = &conn.phase
        {
            debug!("{ip}: {request}: the client left");
            let uid = *uid;
            self.close(key);
            self.registry.left(uid, from);
        }
    }
}
