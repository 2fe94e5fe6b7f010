//! A model of the processes around a registry, for the registry's
//! exhaustive and property tests and its fuzz target: clients that book,
//! wait, check out, die or give up waiting, a sender of messages, a clock,
//! and verifications that end truthfully (alive exactly when the process
//! is), silently (whether the process is alive or not) or inconclusively.
//! After every event it checks the promises the registry makes:
//!
//! - a uid is granted only while nobody holds it, so never two live
//!   processes believe they hold one uid, and a live believer is the
//!   registry's holder;
//! - a grant follows the booker's proof of life (the uid back, or its
//!   LINE on its open connection), never silence;
//! - a line is kept only for a live holder of the booking, and ends with
//!   its process: the booking is released and the uid's queue served in
//!   the same call, in arrival order; lines stay within their bound, a
//!   LINE past it is granted without one, an ATTACH gets one only with the
//!   holder's handshake;
//! - a booking is released only by its holder's check out, its holder's
//!   proven death, its line's end, or a grant that could not be delivered:
//!   the model keeps
//!   its own copy of the table, changed only by those events, and it must
//!   equal the registry's after every event (so a silent holder is never
//!   replaced);
//! - waiters are granted in the order they were queued, never after their
//!   wait ended, and denied only when their wait ended or they failed their
//!   own verification;
//! - a request whose connection ended, once the reactor watches it (pending or
//!   queued) and so reports the end, is never answered: it left
//!   the registry, and nothing is granted to it;
//! - a uid someone is queued for is held or being verified, so no waiter
//!   waits for a free uid;
//! - one verification in flight per uid; pending requests, queues, reservations and
//!   timers bounded;
//! - a message is delivered only to a live holder, and reported
//!   undeliverable only when there is none;
//! - every request answered or refused exactly once, once verifications
//!   are allowed to end;
//! - each client runs as one of [`USERS`] OS users: every user's use
//!   equals a recount from the registry's state; no user holds more than
//!   its share of bookings, lines or queued waiters (requests pending may
//!   pass theirs: check outs and a request whose turn came are never
//!   turned away); a refusal for a share comes only to a user at that
//!   share, and a refusal for a total only when the users cannot all fit
//!   their shares under it (more users than shares) or some user is past
//!   its share;
//! - a per-user id is refused to every other user (a message to it too,
//!   except from root);
//! - bookings are dropped only for their holder's proven death, whether a
//!   contender, a reclaim at the bound or the sweep asked.
//! - reclaiming at the bound runs at most one round per scope (a user's
//!   share, or the total), of a few verifications of the scope's own
//!   bookings; a request is parked only in its own user's round or the
//!   total's, and for a bounded number of rounds;
//! - a verification that keeps a holder makes its booking the most
//!   recently checked of all, so rounds walk the table past live holders;
//! - every grant's fencing token is greater than every token granted
//!   before it, for any uid and in any mode, and across restarts (the
//!   state file keeps the last one given), and a restored booking keeps
//!   its own;
//! - a uid is held by one holder alone, or by shared holders all granted
//!   in one mode: never an exclusive holder beside a shared one, never
//!   more holders than a count; a request with another count (or shared
//!   against a count, or a count against shared) is answered with the
//!   mode in force, which the holders or the first such waiter fixed;
//! - first come first served across modes: nobody is granted past a
//!   waiter queued before it, whatever either asked for (no writer is
//!   overtaken by later readers), and the first waiter never stays queued
//!   while the uid has room for it and no verification is in flight (so
//!   readers behind it go in together, and a slot freed by a death or a
//!   waiter that left goes to the next at once).

mod world;

use crate::handshake::Handshake;
use std::time::{Duration, Instant};

pub use world::World;

use super::{Ask, Limits, Mode, ResponderIp, User};
use crate::uid::Uid;

/// One step of the modelled clock, the probe interval and the sweep's.
pub const TICK: Duration = Duration::from_secs(1);

/// The OS users the modelled clients run as.
pub const USERS: u32 = 3;

/// The uid that is a per-user id, and whose it is.
pub const PER_USER: (u8, User) = (4, 1);

/// The user that sends the modelled messages: neither root nor the owner
/// of the per-user id.
pub const SENDER: User = 2;

/// Limits with `max_bookings` and `max_waiting`, room for every waiter the
/// model makes, a probe every tick, no sharing, and a sweep every tick of
/// bookings two ticks old.
pub const fn limits(max_bookings: usize, max_waiting: usize) -> Limits {
    Limits {
        max_bookings,
        max_waiting,
        max_waiters: 64,
        max_waiters_per_id: 64,
        max_pending: 1000,
        probe_interval: TICK,
        max_lines: 0,
        shares: 1,
        sweep_interval: TICK,
        sweep_age: Duration::from_secs(2),
    }
}

/// The OS user client `client` runs as.
pub fn user(client: u32) -> User {
    client % USERS
}

/// Where every modelled client connects from.
pub const LOCAL: ResponderIp = ResponderIp::LOCALHOST;

// Ids cheap to make, so explorations spend their time in the registry.

/// The id numbered `n`: the per-user id of [`PER_USER`] for its number.
pub fn uid(n: u8) -> Uid {
    let mut bytes = [n; 64];
    if n == PER_USER.0 {
        let per_user = Uid::per_user(b"", PER_USER.1);
        bytes[..12].copy_from_slice(&per_user.as_bytes()[..12]);
    }
    Uid::from_bytes(bytes)
}

/// The number of the id `uid`, made by [`uid`].
pub fn number(uid: &Uid) -> u8 {
    uid.as_bytes()[63]
}

/// The handshake of client `client`; never equal to an id.
pub fn handshake(client: u32) -> Handshake {
    let mut bytes = [0xff; 64];
    bytes[..4].copy_from_slice(&client.to_be_bytes());
    Handshake::from_bytes(bytes)
}

/// The responder port of client `client`.
pub fn port(client: u32) -> u16 {
    10_000 + client as u16
}

/// Client `client`'s BOOK of id `u`.
pub fn book(u: u8, client: u32) -> Ask {
    Ask::Book {
        uid: uid(u),
        handshake: handshake(client),
        port: port(client),
    }
}

/// Client `client`'s CHECK OUT of id `u`.
pub fn check_out(u: u8, client: u32) -> Ask {
    Ask::CheckOut {
        uid: uid(u),
        handshake: handshake(client),
    }
}

/// A NOTIFY for id `u`.
pub fn notify(u: u8) -> Ask {
    Ask::Notify { uid: uid(u) }
}

/// Client `client`'s WAIT for id `u`, arrived at `now`, for `ticks` ticks.
pub fn wait(u: u8, client: u32, now: Instant, ticks: u32) -> Ask {
    Ask::Wait {
        uid: uid(u),
        handshake: handshake(client),
        port: port(client),
        arrived: now,
        until: now + TICK * ticks,
        line: false,
        mode: Mode::Exclusive,
    }
}

/// Client `client`'s LINE for id `u`, arrived at `now`, for `ticks` ticks.
pub fn line(u: u8, client: u32, now: Instant, ticks: u32) -> Ask {
    in_mode(wait(u, client, now, ticks), true, Mode::Exclusive)
}

/// Client `client`'s WAIT for id `u` in `mode`, on a line if `line`,
/// arrived at `now`, for `ticks` ticks.
pub fn shared(u: u8, client: u32, now: Instant, ticks: u32, mode: Mode, line: bool) -> Ask {
    in_mode(wait(u, client, now, ticks), line, mode)
}

/// `ask`, a WAIT, asking for a line if `line`, in `mode`.
fn in_mode(ask: Ask, line: bool, mode: Mode) -> Ask {
    match ask {
        Ask::Wait {
            uid,
            handshake,
            port,
            arrived,
            until,
            ..
        } => Ask::Wait {
            uid,
            handshake,
            port,
            arrived,
            until,
            line,
            mode,
        },
        other => other,
    }
}

/// Client `client`'s ATTACH to its booking of id `u`.
pub fn attach(u: u8, client: u32) -> Ask {
    Ask::Attach {
        uid: uid(u),
        handshake: handshake(client),
    }
}

/// Something that can happen around the registry.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A client books a uid.
    Book { client: usize, uid: u8 },
    /// A client waits for a uid for some ticks.
    Wait { client: usize, uid: u8, ticks: u8 },
    /// A client waits for a uid for some ticks, asking for a line.
    Line { client: usize, uid: u8, ticks: u8 },
    /// A client waits for a uid for some ticks, asking for a line, to hold
    /// it shared (`slots` 0) or as one of `slots`.
    Shared {
        client: usize,
        uid: u8,
        ticks: u8,
        slots: u8,
    },
    /// A client checks out on the line of the uid it holds.
    CheckOutOnLine { client: usize, uid: u8 },
    /// A client that holds a uid attaches a line to its booking.
    Attach { client: usize, uid: u8 },
    /// The server restarts with its state file.
    Restart,
    /// A tick of the clock passes, and of the wall clock, which the sweep
    /// reads.
    Tick,
    /// A client checks a uid out, whether or not it holds it.
    CheckOut { client: usize, uid: u8 },
    /// A message is sent to a uid's holder.
    Notify { uid: u8 },
    /// A client's process dies.
    Die { client: usize },
    /// The client stops waiting for its reply, as after a read timeout,
    /// and closes its connection.
    GiveUp { client: usize },
    /// The verification in flight for a uid ends truthfully.
    Resolve { uid: u8 },
    /// The verification in flight for a uid cannot tell.
    ResolveInconclusive { uid: u8 },
    /// The verification in flight for a uid gets no answer, whether its
    /// process is alive (stopped, flooded) or not (its port handed down
    /// to a process that never answers).
    ResolveSilent { uid: u8 },
}

impl Event {
    /// The event two bytes of fuzzer input name, among `clients` clients
    /// and `uids` uids.
    pub fn from_bytes(kind: u8, arg: u8, clients: usize, uids: u8) -> Event {
        let client = arg as usize % clients;
        let uid = arg % uids;
        match kind % 15 {
            0 => Event::Book { client, uid },
            1 => Event::CheckOut { client, uid },
            2 => Event::Notify { uid },
            3 => Event::Die { client },
            4 => Event::GiveUp { client },
            5 => Event::Resolve { uid },
            6 => Event::ResolveSilent { uid },
            7 => Event::Wait {
                client,
                uid,
                ticks: kind / 10 % 4,
            },
            8 => Event::Tick,
            10 => Event::Line {
                client,
                uid,
                ticks: kind / 14 % 4,
            },
            11 => Event::CheckOutOnLine { client, uid },
            12 => Event::Attach { client, uid },
            13 => Event::Restart,
            14 => Event::Shared {
                client,
                uid,
                ticks: kind / 15 % 4,
                slots: arg / 16 % 4,
            },
            _ => Event::ResolveInconclusive { uid },
        }
    }
}
