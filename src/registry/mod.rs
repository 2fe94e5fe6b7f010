//! The booking rules as a pure state machine: no sockets, no clock, no
//! logging. The reactor tells it what happened (a request arrived, a
//! verification ended, a grant could not be delivered, a requester's
//! connection ended, the time) and carries out the [`Action`]s it answers
//! with.
//!
//! Requests for one uid are served one at a time: while a verification for
//! a uid is in flight, later requests for it are pending behind it. This is
//! what keeps two contenders from both being granted.
//!
//! A WAIT that finds its uid held joins the uid's queue of waiters. Whenever
//! the uid frees (its holder checks out or proves dead, a grant cannot be
//! delivered), the first waiter is verified and granted before anything else
//! is served; while anyone waits, the holder is probed every
//! `probe_interval`, so a holder that died is noticed without a contender.
//!
//! A uid may be held by one holder alone (exclusive, as every 0.6.0 BOOK
//! asks), or by several side by side: shared, or as one of `n` slots (a
//! counting semaphore), as [`Mode`] says. Each of those holders has a
//! booking of its own, under a slot key derived from the uid, so lines,
//! probes, the sweep and reclaiming work per holder; requests,
//! verifications and the queue stay keyed by the uid. The queue is first
//! come first served across modes: a queued exclusive request keeps later
//! shared ones behind it, and the shared requests at its head go in
//! together while there is room. See `groups.rs`.
//!
//! A booking may have a *line*: the connection of the requester it was
//! granted to (a LINE) or that attached to it (an ATTACH), kept open by the
//! reactor for as long as the booking lasts. An open line is proof of life:
//! its holder is never called back, and a booker on a line is granted
//! without a call-back. The line's end, reported with [`Registry::ended`]
//! as every watched connection's is, releases the booking and serves the
//! uid's queue in the same call. Lines are kept beside the table, not in
//! its records: a restart loses them, and the bookings it restores are
//! under the call-back rules until their holders attach.

mod admit;
mod booking;
mod ended;
mod events;
mod groups;
mod limits;
mod lines;
mod names;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod model;
mod reclaim;
mod serve;
mod sweep;
mod table;
mod timeouts;
mod users;
mod verdict;
mod waiting;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

pub use booking::{Booking, ResponderIp};
pub use events::{Action, Answer, Ask, Mode, Refusal, UNKNOWN_USER, Use, User, Verdict, Withheld};
pub use limits::Limits;
use groups::Groups;
pub use groups::is_slot_key;
#[cfg(any(test, feature = "fuzzing"))]
pub use groups::slot_key;
pub use reclaim::ROUNDS as RECLAIM_ROUNDS;
use reclaim::{Reclaim, Scope};
use sweep::Sweep;
use table::Table;
use users::{Counter, Users};
use waiting::Waiting;

use crate::handshake::Handshake;
use crate::uid::Uid;
use admit::{first_full, may_ask};

/// The booking table, the requests pending behind verifications, and
/// the queues of WAITs waiting for held uids.
///
/// `R` names a requester (the reactor's connection handle); the registry
/// only copies it into actions and compares it.
#[derive(Clone)]
pub struct Registry<R> {
    bookings: Table,
    pending: HashMap<Uid, Pending<R>>,
    /// Requests pending behind verifications or parked, for all uids
    /// together.
    pending_requests: usize,
    /// Candidates being verified: each will need a booking if it passes, so
    /// they count against `max_bookings` from the start.
    reserved: usize,
    waiting: Waiting<R>,
    /// The bookings that have a line, and the requester whose connection
    /// it is; every key is held in `bookings`.
    lines: HashMap<Uid, R>,
    /// The names held shared or with slots, and their slots' keys.
    groups: Groups,
    /// The latest time the registry was told, by an arrival or a timeout.
    now: Option<Instant>,
    /// The wall-clock time new bookings are stamped with, in seconds since
    /// the Unix epoch.
    wall_clock: u64,
    limits: Limits,
    /// What each OS user takes of the bounds.
    users: Users,
    /// The scopes reclaiming bookings at the bound, or resting from it:
    /// at most one round each.
    reclaims: HashMap<Scope, Reclaim<R>>,
    /// The rests of scopes, in the order they end.
    rests: VecDeque<(Scope, Instant)>,
    /// Verifications that proved a holder alive or silent so far: the
    /// count a booking's `checked` is stamped with.
    checks: u64,
    /// The last fencing token given to a grant, restored booking or
    /// restart: the next grant takes the one after it.
    last_token: u64,
    sweep: Sweep,
}

/// A request and who sent it.
#[derive(Debug, Clone, Copy)]
struct Waiter<R> {
    from: R,
    ip: ResponderIp,
    user: User,
    ask: Ask,
    /// The rounds of reclaiming it was parked for: past a bound again
    /// after its last, it is refused, so no request waits without end.
    rounds: u8,
}

/// A uid with a verification in flight: what is being verified, and the
/// requests that arrived meanwhile, in arrival order.
#[derive(Clone)]
struct Pending<R> {
    checking: Checking<R>,
    waiting: VecDeque<Waiter<R>>,
}

#[derive(Clone)]
enum Checking<R> {
    /// The holder with this handshake, on behalf of `waiter`: a book or
    /// wait that contends for its uid, or a notify for it.
    Holder { handshake: Handshake, waiter: Waiter<R> },
    /// The booker `from` of a free uid, and the booking it gets if it
    /// passes.
    Candidate {
        from: R,
        booking: Booking,
        /// For a waiter taken from the queue: the ticket of its deadline.
        ticket: Option<u64>,
        /// What its verdict may still decide.
        fate: Fate,
        /// It asked for a line, and gets none: the bound was reached.
        line: bool,
        /// How it asked to hold the uid.
        mode: Mode,
    },
    /// The holder with this handshake, verified on nobody's behalf:
    /// probed because someone waits, swept, or in the round of reclaiming
    /// of `round`.
    Probe {
        handshake: Handshake,
        round: Option<Scope>,
    },
}

/// What a candidate's verdict may still decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// It is granted if it proves alive.
    Open,
    /// Its wait ended while it was verified: it is denied whatever the
    /// verdict.
    Lapsed,
    /// Its connection ended while it was verified: nobody is left to
    /// answer, and nothing is granted.
    Ended,
}

impl<R: Copy + PartialEq> Registry<R> {
    /// An empty registry.
    pub fn new(limits: Limits) -> Registry<R> {
        Registry {
            bookings: Table::new(),
            pending: HashMap::new(),
            pending_requests: 0,
            reserved: 0,
            waiting: Waiting::new(),
            lines: HashMap::new(),
            groups: Groups::default(),
            now: None,
            wall_clock: 0,
            limits,
            users: Users::default(),
            reclaims: HashMap::new(),
            rests: VecDeque::new(),
            checks: 0,
            last_token: 0,
            sweep: Sweep::default(),
        }
    }

    /// The bounds it keeps, and each OS user's share of them.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The number of bookings held.
    pub fn len(&self) -> usize {
        self.bookings.len()
    }

    /// Whether no booking is held.
    pub fn is_empty(&self) -> bool {
        self.bookings.len() == 0
    }

    /// The booking kept under the key `uid`, if any: the exclusive holder
    /// of a name, or the holder of a slot key. [`lock`](Registry::lock)
    /// tells of a name's shared holders.
    pub fn holder(&self, uid: &Uid) -> Option<&Booking> {
        self.bookings.get(uid)
    }

    /// The requester whose book of `uid` is being verified, and that a
    /// passing verdict would grant, if any: the reactor makes sure it is
    /// still there before it tells the verdict.
    pub fn candidate(&self, uid: &Uid) -> Option<R> {
        match self.pending.get(uid)?.checking {
            Checking::Candidate {
                from,
                fate: Fate::Open,
                ..
            } => Some(from),
            _ => None,
        }
    }

    /// Every booking held, in no particular order.
    pub fn bookings(&self) -> impl Iterator<Item = &Booking> {
        self.bookings.iter()
    }

    /// WAITs queued for held uids, in all.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn waiters(&self) -> usize {
        self.waiting.count()
    }

    /// Takes back a booking recorded before a restart, as held, without
    /// verifying it: like any holder, it is verified at the next contention.
    /// Answers false when its uid is already held or the table is full.
    /// Only the total bounds it, not its user's share: a restart must not
    /// lose bookings their holders count on, and a user past its share
    /// only gets no more until it is under it again.
    /// It keeps its fencing token, and later grants take greater ones.
    /// A slot key's booking is refused: without its name and mode it
    /// would be a slot of no group ([`restore_shared`](Registry::restore_shared)
    /// takes those).
    pub fn restore(&mut self, mut booking: Booking) -> bool {
        booking.checked = self.checks;
        self.resume_tokens_after(booking.token);
        let restored = !is_slot_key(&booking.uid)
            && self.bookings.len() < self.limits.max_bookings
            && self.bookings.insert(booking);
        if restored {
            self.users.take(booking.user, Counter::Bookings);
            self.sweep_later(booking.since);
        }
        restored
    }

    /// Tokens up to `last` were given out before a restart, to bookings
    /// restored or released since: grants from now on take greater ones,
    /// so that a token never goes back for any uid.
    pub fn resume_tokens_after(&mut self, last: u64) {
        self.last_token = self.last_token.max(last);
    }

    /// The last fencing token given out, or the one grants go on above
    /// (0 before the first, unless [`resume_tokens_after`] raised it).
    ///
    /// [`resume_tokens_after`]: Registry::resume_tokens_after
    pub fn last_token(&self) -> u64 {
        self.last_token
    }

    /// What each OS user takes of the bounds, sorted by user; users that
    /// take nothing are left out.
    pub fn usage(&self) -> Vec<(User, Use)> {
        self.users.all()
    }

    /// It is now `unix_seconds` by the wall clock: bookings granted from
    /// now on say they were granted then. The registry reads no clock.
    pub fn set_wall_clock(&mut self, unix_seconds: u64) {
        self.wall_clock = unix_seconds;
    }

    /// WAITs queued for `uid`.
    pub fn waiters_for(&self, uid: &Uid) -> usize {
        self.waiting.count_for(uid)
    }

    /// Whether any uid has a verification in flight.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// A request arrived from `from`, connected from `ip`, owned by the
    /// OS user `user`. Its answer may come now or after verifications;
    /// either way exactly one `Reply` or `Refuse` names `from`, unless it
    /// is a waiter that leaves first.
    pub fn request(
        &mut self,
        from: R,
        ip: ResponderIp,
        user: User,
        ask: Ask,
        out: &mut Vec<Action<R>>,
    ) {
        if let Ask::Wait { arrived, .. } = ask {
            self.now = self.now.max(Some(arrived));
        }
        if !may_ask(user, &ask) {
            refuse(from, Refusal::OtherUsersId, out);
            return;
        }
        // Slot keys are the registry's own: no request books, checks out,
        // messages or attaches one by its key, only by its name.
        if is_slot_key(&ask.uid()) {
            reply(from, Answer::Denied, out);
            return;
        }
        let waiter = Waiter {
            from,
            ip,
            user,
            ask,
            rounds: 0,
        };
        self.admit(waiter, out);
    }

    /// The `Granted` reply for `uid` could not be written: the booker never
    /// learns it holds the id, so the booking is dropped again (the one
    /// held with `handshake`, exclusive or shared), and the id goes to its
    /// next waiter. Answers whether the booking was dropped.
    pub fn grant_undelivered(
        &mut self,
        uid: Uid,
        handshake: Handshake,
        out: &mut Vec<Action<R>>,
    ) -> bool {
        let key = self.held_with(&uid, &handshake).map(|holder| holder.uid);
        let dropped = key.is_some_and(|key| self.release(&key).is_some());
        if dropped {
            self.serve_behind(uid, out);
        }
        dropped
    }

    /// Starts a verification for `uid`: `checking` is verified, `waiting`
    /// is pending behind it.
    fn insert_pending(&mut self, uid: Uid, checking: Checking<R>, waiting: VecDeque<Waiter<R>>) {
        self.pending_requests += waiting.len();
        for waiter in &waiting {
            self.users.take(waiter.user, Counter::Pending);
        }
        self.pending.insert(uid, Pending { checking, waiting });
    }

    fn remove_pending(&mut self, uid: &Uid) -> Option<Pending<R>> {
        let pending = self.pending.remove(uid)?;
        self.pending_requests -= pending.waiting.len();
        for waiter in &pending.waiting {
            self.users.give(waiter.user, Counter::Pending);
        }
        Some(pending)
    }

    /// Whether `uid` is held with `handshake`, exclusive or shared.
    fn holds(&self, uid: &Uid, handshake: &Handshake) -> bool {
        self.held_with(uid, handshake).is_some()
    }
}

fn reply<R>(to: R, answer: Answer, out: &mut Vec<Action<R>>) {
    out.push(Action::Reply { to, answer });
}

fn refuse<R>(to: R, why: Refusal, out: &mut Vec<Action<R>>) {
    out.push(Action::Refuse { to, why });
}

#[cfg(test)]
mod tests;
