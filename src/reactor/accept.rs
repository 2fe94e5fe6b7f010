//! Accepting clients: taking them in while slots are free, pausing when
//! all are taken or the system runs short, and resuming.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::Server;
use super::conn::{Conn, Phase, ReadProgress, read_request};
use crate::deadlines::ConnRef;
use crate::registry::ResponderIp;
use crate::wire::Decoder;

/// How long to wait before accepting again after `accept` failed for want
/// of resources (file descriptors, memory): long enough not to spin, short
/// enough that clients barely notice.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// How many clients to take in at most before the connections already in
/// have their turn: one user's stream of arrivals, each with a request to
/// read, must not keep the server from the replies and verifications that
/// others wait for.
const ACCEPTS_PER_TURN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepting {
    Open,
    /// A turn's share of clients was taken in and more may wait in the
    /// backlog: accept again as soon as the others had their turn.
    Yielded,
    /// All client slots are taken; accept again when one frees.
    Full,
    /// `accept` failed for want of resources; try again at this time.
    Failing {
        retry_at: Instant,
    },
}

impl Server {
    /// Takes in the clients waiting in the backlog, up to a turn's share,
    /// and notes why it stopped.
    pub(super) fn accept(&mut self, now: Instant) {
        self.accepting = Accepting::Open;
        for _ in 0..ACCEPTS_PER_TURN {
            // All slots taken: room only at the expense of a connection
            // that has not sent a whole request, once someone is there.
            let victim = if self.clients < self.config.max_connections {
                None
            } else {
                match self.oldest_incomplete() {
                    Some(victim) => Some(victim),
                    None => {
                        self.accepting = Accepting::Full;
                        self.note_full(now);
                        return;
                    }
                }
            };
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Some(victim) = victim {
                        self.evict(victim, now);
                    }
                    self.admit(stream, peer.ip(), now);
                }
                // Everyone waiting is in: whatever held clients back is over.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.warnings.accept_failing.over(
                        now,
                        "accepting connections again",
                        "failed attempts",
                    );
                    self.warnings
                        .full
                        .over(now, "connection slots free again", "arrivals");
                    return;
                }
                // The peer gave up before we got to it: nothing to do.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    self.warnings.accept_failing.occurred(
                        now,
                        format_args!(
                            "cannot accept connections ({e}); retrying every {ACCEPT_RETRY:?} until it passes"
                        ),
                    );
                    self.accepting = Accepting::Failing {
                        retry_at: now + ACCEPT_RETRY,
                    };
                    return;
                }
            }
        }
        self.accepting = Accepting::Yielded;
    }

    /// The connection that has been sending its request longest without
    /// finishing it: the one to close when all slots are taken and someone
    /// new waits. A flood of connections that say nothing cannot then keep
    /// everyone else out; one of requests waiting on slow responders is
    /// bounded by the registry (half the slots) instead.
    fn oldest_incomplete(&self) -> Option<ConnRef> {
        self.deadlines.oldest_first().find(|conn| {
            self.conns.get(conn.key).is_some_and(|c| {
                c.generation == conn.generation && matches!(c.phase, Phase::Reading { .. })
            })
        })
    }

    fn evict(&mut self, victim: ConnRef, now: Instant) {
        self.warnings.evicting.warn(
            now,
            format_args!(
                "all {} connection slots in use: closing the oldest connections that have not sent a whole request, to make room",
                self.config.max_connections
            ),
        );
        self.close(victim.key);
    }

    pub(super) fn note_full(&mut self, now: Instant) {
        self.warnings.full.occurred(
            now,
            format_args!(
                "all {} connection slots in use (--max-connections); new clients wait until one frees",
                self.config.max_connections
            ),
        );
    }

    /// Accepts again once the reason to stop has passed. Connections that
    /// arrived meanwhile are in the backlog; with edge-triggered readiness
    /// no new event announces them, so this accepts without one.
    pub(super) fn resume_accepting(&mut self, now: Instant) {
        let resume = match self.accepting {
            Accepting::Open => false,
            Accepting::Yielded => true,
            Accepting::Full => self.clients < self.config.max_connections,
            Accepting::Failing { retry_at } => retry_at <= now,
        };
        if resume {
            self.accept(now);
        }
    }

    /// Takes in a new client. Its request has usually arrived already, so
    /// reading at once mostly saves registering it with the poll at all.
    pub(super) fn admit(&mut self, mut stream: TcpStream, ip: IpAddr, now: Instant) {
        let Some(ip) = ResponderIp::new(ip) else {
            // Only reachable through a misconfigured network stack; there
            // would be nowhere to call the requester back.
            warn!("closing a connection from {ip}, which a loopback server cannot call back");
            return;
        };
        let conn = ConnRef {
            key: self.conns.vacant_key(),
            generation: self.next_generation(),
        };
        let mut decoder = Decoder::new();
        let (phase, complete) = match read_request(&mut stream, &mut decoder) {
            ReadProgress::Complete(request) => {
                let name = decoder.take_name();
                match Phase::complete(ip, request, name, &stream, &mut self.owners) {
                    Some(phase) => (phase, true),
                    None => {
                        debug!("closing {ip} without a reply: it has closed its connection");
                        return;
                    }
                }
            }
            ReadProgress::Pending => {
                if let Err(e) =
                    self.poll
                        .registry()
                        .register(&mut stream, Token(conn.key), Interest::READABLE)
                {
                    warn!("cannot watch a connection from {ip}: {e}; closing it");
                    return;
                }
                self.deadlines.start(now, conn);
                (Phase::Reading { ip, decoder }, false)
            }
            ReadProgress::Failed(why) => {
                debug!("closing {ip} without a reply: {why}");
                return;
            }
        };
        self.conns.insert(Conn {
            stream,
            generation: conn.generation,
            phase,
        });
        self.clients += 1;
        if complete {
            self.submit(conn, now);
        }
    }

    pub(super) fn next_generation(&mut self) -> u32 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }
}
