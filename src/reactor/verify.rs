//! Verifying: the server's calls to liveness responders, and what their
//! verdicts tell the registry.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::Server;
use super::conn::{Conn, Phase, Verification, is_open};
use crate::deadlines::ConnRef;
use crate::registry::Verdict;
use crate::uid::Uid;

impl Server {
    /// Moves the verification on connection `key` along; once it has a
    /// verdict, closes the connection and tells the registry.
    pub(super) fn verification_ready(&mut self, key: usize, now: Instant) {
        let Some(Conn {
            stream,
            phase: Phase::Verifying(verification),
            ..
        }) = self.conns.get_mut(key)
        else {
            return;
        };
        if let Some(verdict) = verification.advance(stream, &mut self.owners) {
            let uid = verification.uid;
            // Everything the exchange needs is read: a reset spares both
            // ends the closing handshake and this side the TIME_WAIT of an
            // outgoing connection per verification.
            let _ = socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO));
            self.close(key);
            self.decide(uid, verdict);
            self.carry_out(now);
        }
    }

    pub(super) fn verify(&mut self, mut verification: Verification, at: SocketAddr, now: Instant) {
        let uid = verification.uid;
        let mut stream = match TcpStream::connect(at) {
            Ok(stream) => stream,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return self.decide(uid, Verdict::Dead);
            }
            Err(e) => return self.cannot_verify(uid, at, e, now),
        };
        // On loopback the connection is often up by now, and writing early
        // saves a round through the poll.
        if let Some(verdict) = verification.advance(&mut stream, &mut self.owners) {
            return self.decide(uid, verdict);
        }
        let key = self.conns.vacant_key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.cannot_verify(uid, at, e, now);
        }
        let generation = self.next_generation();
        self.conns.insert(Conn {
            stream,
            generation,
            phase: Phase::Verifying(verification),
        });
        self.deadlines.start(now, ConnRef { key, generation });
    }

    /// The server's own failure, not the process's: neither grant nor
    /// release anything on it.
    pub(super) fn cannot_verify(&mut self, uid: Uid, at: SocketAddr, e: io::Error, now: Instant) {
        self.warnings.cannot_verify.warn(
            now,
            format_args!("cannot call back {at} to verify it: {e}; its request is refused"),
        );
        self.decide(uid, Verdict::Inconclusive);
    }

    pub(super) fn decide(&mut self, uid: Uid, verdict: Verdict) {
        debug!("verified the process behind {uid:?}: {verdict:?}");
        if verdict == Verdict::Dead {
            self.counters.verifications_failed += 1;
        }
        // A candidate whose client closed while it was verified is gone;
        // told of that first, the registry grants it nothing, so nobody
        // behind it is answered as if it held the id.
        if let Some(from) = self.registry.candidate(&uid)
            && let Some(conn) = self.conns.get(from.key)
            && conn.generation == from.generation
            && !is_open(&conn.stream)
        {
            debug!("the candidate for {uid:?} closed its connection while it was verified");
            self.take(from);
            self.registry.ended(from, uid, &mut self.actions);
        }
        self.registry.verified(uid, verdict, &mut self.actions);
    }
}
