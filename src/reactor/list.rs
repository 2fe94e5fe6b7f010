//! LIST: every booking held, one line each, written to the asker as fast
//! as it reads. The lines are made a chunk at a time as the socket takes
//! them, so a list of the whole table (megabytes at the bookings bound)
//! is never held whole, and the reactor never blocks on a slow reader:
//! the rw timeout bounds the whole reply, as it bounds a request.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Write};
use std::time::Instant;

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};

use super::Server;
use super::conn::Phase;
use crate::deadlines::ConnRef;
use crate::listing::{LIST_END, Listed};
use crate::nonblocking::{Io, write_some};
use crate::owner::ROOT;
use crate::registry::{Booking, Mode, UNKNOWN_USER, User};

/// How many bytes of lines are made at a time: a list costs one such
/// chunk of memory while it is written, so that a thousand lists at once
/// (every client slot) hold some 9 MiB; a refill costs a few table
/// look-ups per line.
const CHUNK: usize = 8 * 1024;

/// How many bytes one list may write in one turn of the event loop before
/// it yields to the other connections: a reader as fast as the server
/// would otherwise keep it writing for as long as the list lasts.
const TURN: usize = 256 * 1024;

/// LISTs one OS user may have on their way out at once, root too: a list
/// keeps its connection slot for as long as its reader takes (up to the
/// rw timeout), so without a bound one user's lists that are never read
/// would hold every slot, and the others' requests would wait for one.
pub(super) const MAX_LISTS_PER_USER: usize = 4;

/// The LISTs on their way out, by the OS user who asked.
#[derive(Default)]
pub(super) struct Listings {
    by_user: HashMap<User, usize>,
}

impl Listings {
    /// Counts one more list of `asker`, unless it has its most already;
    /// answers whether it did.
    fn start(&mut self, asker: User) -> bool {
        let lists = self.by_user.entry(asker).or_default();
        let room = *lists < MAX_LISTS_PER_USER;
        if room {
            *lists += 1;
        }
        room
    }

    /// `listing` ended, written whole or not.
    pub(super) fn ended(&mut self, listing: &Listing) {
        if let Some(lists) = self.by_user.get_mut(&listing.asker) {
            *lists -= 1;
            if *lists == 0 {
                self.by_user.remove(&listing.asker);
            }
        }
    }
}

/// A LIST on its way out.
pub(super) struct Listing {
    /// The OS user who asked, as the kernel told: root and the holder's
    /// user are shown a booking's name.
    asker: User,
    /// The table slots not listed yet: `0..left`, listed from the top
    /// down, so that a booking moved by a removal meanwhile is listed
    /// twice rather than missed (`Registry::booking_at`).
    left: usize,
    /// Lines made and not yet written whole.
    chunk: Vec<u8>,
    written: usize,
    /// Whether the end line is in `chunk`.
    ended: bool,
}

impl Server {
    /// Starts answering the LIST of `from`, asked by `asker`: watched for
    /// writing, within the rw timeout from now.
    /// A user with [`MAX_LISTS_PER_USER`] on their way out is closed
    /// without a reply.
    pub(super) fn start_listing(&mut self, from: ConnRef, asker: User, now: Instant) {
        let left = self.registry.len();
        if !self.conns.contains(from.key) {
            return;
        }
        if !self.listings.start(asker) {
            self.warnings.lists.warn(
                now,
                format_args!(
                    "closed a LIST of user {asker} without a reply: {MAX_LISTS_PER_USER} of its lists are being written"
                ),
            );
            return self.close(from.key);
        }
        let Some(conn) = self.conns.get_mut(from.key) else {
            return;
        };
        conn.phase = Phase::Listing(Listing {
            asker,
            left,
            chunk: Vec::new(),
            written: 0,
            ended: false,
        });
        if let Err(e) = watch_writable(&self.poll, &mut conn.stream, from.key) {
            warn!("cannot watch a LIST's connection: {e}; closing it");
            return self.close(from.key);
        }
        self.deadlines.start(now, from);
        self.listing_ready(from.key);
    }

    /// Writes as much of the LIST in slot `key` as its reader takes, and
    /// closes it once the end line is out or the reader is gone.
    pub(super) fn listing_ready(&mut self, key: usize) {
        let mut turn = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Phase::Listing(listing) = &mut conn.phase else {
                return;
            };
            if listing.written == listing.chunk.len() {
                if listing.ended {
                    debug!("a LIST was written whole");
                    return self.close(key);
                }
                let (asker, left) = (listing.asker, listing.left);
                let (chunk, left, ended) = self.next_chunk(asker, left);
                let Some(Phase::Listing(listing)) = self.conns.get_mut(key).map(|c| &mut c.phase)
                else {
                    return;
                };
                (listing.chunk, listing.left, listing.ended) = (chunk, left, ended);
                listing.written = 0;
                continue;
            }
            if turn >= TURN {
                // Armed again, the socket reports itself writable in the
                // next turn, after the others have had theirs.
                if let Err(e) = watch_writable(&self.poll, &mut conn.stream, key) {
                    warn!("cannot watch a LIST's connection: {e}; closing it");
                    self.close(key);
                }
                return;
            }
            match write_some(&mut conn.stream, &listing.chunk[listing.written..]) {
                Io::Done(n) => {
                    listing.written += n;
                    turn += n;
                }
                Io::WouldBlock => return,
                Io::Failed | Io::Refused => {
                    debug!("a LIST's reader has gone");
                    return self.close(key);
                }
            }
        }
    }

    /// The lines of the bookings in the slots just below `left`, up to a
    /// chunk's worth, and the end line after the last; answers them, the
    /// slots left, and whether the end is in. Slots past the table's end
    /// (bookings removed since) are skipped.
    fn next_chunk(&self, asker: User, mut left: usize) -> (Vec<u8>, usize, bool) {
        let mut chunk = Vec::with_capacity(CHUNK + 1024);
        left = left.min(self.registry.len());
        while left > 0 && chunk.len() < CHUNK {
            left -= 1;
            if let Some(booking) = self.registry.booking_at(left).copied() {
                let _ = writeln!(chunk, "{}", self.listed(&booking, asker));
            }
        }
        let ended = left == 0;
        if ended {
            let _ = writeln!(chunk, "{LIST_END}");
        }
        (chunk, left, ended)
    }

    /// What LIST tells `asker` of `booking`: its name only when the asker
    /// is root or the booking's own user. A shared holder's booking, kept
    /// under its slot's key, is listed under its lock's uid, one line per
    /// holder.
    fn listed(&self, booking: &Booking, asker: User) -> Listed {
        let lock = self.registry.lock_of(&booking.uid);
        let known = |user: User| (user != UNKNOWN_USER).then_some(user);
        let may_see = asker == ROOT || (asker != UNKNOWN_USER && asker == booking.user);
        Listed {
            uid: lock,
            name: self
                .registry
                .name_of(&booking.uid)
                .filter(|_| may_see)
                .map(<[u8]>::to_vec),
            user: known(booking.user),
            address: booking.responder().ip(),
            port: booking.port,
            since: (booking.since != 0).then_some(booking.since),
            line: self.registry.has_line(&booking.uid),
            waiters: self.registry.waiters_for(&lock) as u64,
            token: Some(booking.token),
            mode: self
                .registry
                .group_of(&booking.uid)
                .map_or(Mode::Exclusive, |(_, mode)| mode),
        }
    }
}

/// Watches `stream`, the connection in slot `key`, for writing: registered
/// if it was not (a request read whole at once), armed again if it was.
fn watch_writable(poll: &Poll, stream: &mut TcpStream, key: usize) -> io::Result<()> {
    let registry = poll.registry();
    match registry.register(stream, Token(key), Interest::WRITABLE) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            registry.reregister(stream, Token(key), Interest::WRITABLE)
        }
        other => other,
    }
}
