//! The modelled world: clients, the registry, and the checks made after
//! every event.

mod answers;
mod checks;
mod lines;
mod rounds;
mod users;

use std::collections::BTreeMap;
use std::time::Instant;

use super::{
    Event, LOCAL, SENDER, TICK, attach, book, check_out, line, notify, shared, uid, user, wait,
};
use crate::handshake::Handshake;
use crate::registry::{Action, Booking, Limits, Mode, Registry, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Book,
    Wait,
    /// A WAIT that asks for a line.
    Line,
    CheckOut,
    Notify,
    Attach,
}

#[derive(Clone, Debug)]
struct Client {
    alive: bool,
    /// Bit `u` set: believes it holds uid `u`.
    holds: u32,
    /// Bit `u` set: believes it holds uid `u` beside others (shared or
    /// with slots).
    shares: u32,
    waiting: Option<u32>,
}

#[derive(Clone, Debug)]
struct Pending {
    /// `None` for a message sender, which is no client.
    client: Option<usize>,
    kind: Kind,
    uid: u8,
    /// How it asks to hold its uid.
    mode: Mode,
    abandoned: bool,
    /// For a WAIT: when its wait ends, and whether it came with no time.
    until: Instant,
    /// For a WAIT in its uid's queue: its place in the order of queueing.
    queued: Option<u64>,
    /// It waits, or waited, pending or in its uid's queue, so the reactor
    /// watches its connection for its end.
    watched: bool,
    /// Its connection ended and the registry was told: it must never be
    /// answered.
    left: bool,
}

/// When the modelled wall clock starts, in seconds.
const START: u64 = 1_000;

/// The registry among modelled clients; see the module's documentation.
#[derive(Clone)]
pub struct World {
    registry: Registry<u32>,
    limits: Limits,
    clients: Vec<Client>,
    uids: u8,
    pending: BTreeMap<u32, Pending>,
    next_request: u32,
    next_queued: u64,
    now: Instant,
    /// The wall clock, in seconds, as the registry is told it.
    wall_clock: u64,
    /// Per uid: the handshake sent by the verification in flight.
    in_flight: Vec<Option<Handshake>>,
    /// Per uid: the exclusive holder's handshake, as the legitimate events
    /// left it.
    table: Vec<Option<Handshake>>,
    /// Per uid: the shared holders' handshakes, as the legitimate events
    /// left them, and the mode they were granted in.
    groups: Vec<(Vec<Handshake>, Option<Mode>)>,
    /// Per uid and client holding it: the requester whose connection is
    /// the booking's line.
    lines: BTreeMap<(u8, usize), u32>,
    /// The handshake whose verification the event being applied ended.
    resolved: Option<Handshake>,
    /// The handshake that the event being applied proved alive, if any:
    /// the only booker that may be granted now.
    proved_alive: Option<Handshake>,
    /// The greatest fencing token granted so far, restarts included.
    last_token: u64,
    trace: Vec<Event>,
}

impl World {
    /// A registry with `limits`, `clients` live clients and `uids` ids.
    pub fn new(clients: usize, uids: u8, limits: Limits) -> World {
        let mut registry = Registry::new(limits);
        registry.set_wall_clock(START);
        World {
            registry,
            limits,
            clients: vec![
                Client {
                    alive: true,
                    holds: 0,
                    shares: 0,
                    waiting: None,
                };
                clients
            ],
            uids,
            pending: BTreeMap::new(),
            next_request: 0,
            next_queued: 0,
            now: Instant::now(),
            wall_clock: START,
            in_flight: vec![None; uids as usize],
            table: vec![None; uids as usize],
            groups: vec![(Vec::new(), None); uids as usize],
            lines: BTreeMap::new(),
            resolved: None,
            proved_alive: None,
            last_token: 0,
            trace: Vec::new(),
        }
    }

    /// Applies `event` if it can happen now; answers whether it did.
    pub fn step(&mut self, event: Event) -> bool {
        let mut out = Vec::new();
        self.resolved = None;
        self.proved_alive = None;
        match event {
            Event::Book { client, uid }
            | Event::CheckOut { client, uid }
            | Event::Wait { client, uid, .. }
            | Event::Line { client, uid, .. }
            | Event::Shared { client, uid, .. } => {
                let c = &self.clients[client];
                let checking_out = matches!(event, Event::CheckOut { .. });
                // Any idle client may send a check out, holder or not; a
                // client books only what it does not believe it holds.
                if !c.alive || c.waiting.is_some() || (!checking_out && c.holds & 1 << uid != 0) {
                    return false;
                }
                let client_id = client as u32;
                let (ask, kind) = match event {
                    Event::Book { .. } => (book(uid, client_id), Kind::Book),
                    Event::Shared { ticks, slots, .. } => {
                        let mode = match slots {
                            0 => Mode::Shared,
                            n => Mode::Slots(u32::from(n)),
                        };
                        let ticks = u32::from(ticks);
                        (shared(uid, client_id, self.now, ticks, mode, true), Kind::Line)
                    }
                    Event::Wait { ticks, .. } => {
                        (wait(uid, client_id, self.now, u32::from(ticks)), Kind::Wait)
                    }
                    Event::Line { ticks, .. } => {
                        (line(uid, client_id, self.now, u32::from(ticks)), Kind::Line)
                    }
                    _ => (check_out(uid, client_id), Kind::CheckOut),
                };
                let until = match ask {
                    crate::registry::Ask::Wait { until, .. } => until,
                    _ => self.now,
                };
                let r = self.new_request(Some(client), kind, uid, until);
                if let Some(pending) = self.pending.get_mut(&r) {
                    pending.mode = ask.mode();
                }
                self.clients[client].waiting = Some(r);
                self.registry
                    .request(r, LOCAL, user(client as u32), ask, &mut out);
            }
            Event::CheckOutOnLine { client, uid: u } => {
                let c = &self.clients[client];
                let Some(&r) = self.lines.get(&(u, client)) else {
                    return false;
                };
                if !c.alive || c.waiting.is_some() {
                    return false;
                }
                self.pending
                    .insert(r, Pending::new(Some(client), Kind::CheckOut, u, self.now));
                self.clients[client].waiting = Some(r);
                let ask = check_out(u, client as u32);
                self.registry
                    .request(r, LOCAL, user(client as u32), ask, &mut out);
            }
            Event::Attach { client, uid: u } => {
                let c = &self.clients[client];
                let lined = self.lines.contains_key(&(u, client));
                if !c.alive || c.waiting.is_some() || c.holds & 1 << u == 0 || lined {
                    return false;
                }
                let r = self.new_request(Some(client), Kind::Attach, u, self.now);
                self.clients[client].waiting = Some(r);
                let ask = attach(u, client as u32);
                self.registry
                    .request(r, LOCAL, user(client as u32), ask, &mut out);
            }
            Event::Restart => self.restart(),
            Event::Notify { uid } => {
                let r = self.new_request(None, Kind::Notify, uid, self.now);
                self.registry
                    .request(r, LOCAL, SENDER, notify(uid), &mut out);
            }
            Event::Tick => {
                self.now += TICK;
                self.wall_clock += TICK.as_secs();
                self.registry.set_wall_clock(self.wall_clock);
                self.registry.handle_timeout(self.now, &mut out);
            }
            Event::Die { client } => {
                let c = &mut self.clients[client];
                if !c.alive {
                    return false;
                }
                // A dead process believes nothing, but what it sent before
                // dying may still be served.
                c.alive = false;
                if let Some(r) = c.waiting.take() {
                    self.abandon(r, &mut out);
                }
                // Its lines close with it, as a process's sockets do.
                for u in 0..self.uids {
                    if self.lines.contains_key(&(u, client)) {
                        self.end_line(u, client, &mut out);
                    }
                }
            }
            Event::GiveUp { client } => {
                let Some(r) = self.clients[client].waiting.take() else {
                    return false;
                };
                // Not knowing whether its check out went through, a client
                // no longer counts on holding the uid.
                if self.pending[&r].kind == Kind::CheckOut {
                    self.forget(client, self.pending[&r].uid);
                }
                self.abandon(r, &mut out);
            }
            Event::Resolve { uid: u }
            | Event::ResolveInconclusive { uid: u }
            | Event::ResolveSilent { uid: u } => {
                let Some(hs) = self.in_flight[u as usize].take() else {
                    return false;
                };
                let verdict = match event {
                    Event::ResolveInconclusive { .. } => Verdict::Inconclusive,
                    Event::ResolveSilent { .. } => Verdict::Silent,
                    _ if self.clients[client_of(hs)].alive => Verdict::Alive,
                    _ => Verdict::Dead,
                };
                self.resolved = Some(hs);
                if verdict == Verdict::Alive {
                    self.proved_alive = Some(hs);
                }
                // A holder's verification that found it dead proves that
                // death, and frees the uid.
                if verdict == Verdict::Dead {
                    self.release(u, hs);
                }
                let before: Vec<Booking> = self.registry.bookings().copied().collect();
                self.registry.verified(uid(u), verdict, &mut out);
                self.check_checked(u, hs, verdict, &before);
            }
        }
        self.trace.push(event);
        self.carry_out(out);
        self.check();
        true
    }

    fn new_request(&mut self, client: Option<usize>, kind: Kind, uid: u8, until: Instant) -> u32 {
        let r = self.next_request;
        self.next_request += 1;
        self.pending
            .insert(r, Pending::new(client, kind, uid, until));
        r
    }

    /// The client of `r` no longer listens and closes its connection,
    /// which the registry hears of if the reactor watches it.
    fn abandon(&mut self, r: u32, out: &mut Vec<Action<u32>>) {
        let pending = self.pending.get_mut(&r).expect("pending");
        pending.abandoned = true;
        self.report_end(r, out);
    }

    /// The reactor watches the connection of `r` from now on.
    fn watch(&mut self, r: u32) {
        self.pending
            .get_mut(&r)
            .expect("watched, not pending")
            .watched = true;
    }

    /// Tells the registry that the connection of `r` ended, once it is
    /// both closed and watched, as the reactor does. Only a line's end
    /// brings actions.
    fn report_end(&mut self, r: u32, out: &mut Vec<Action<u32>>) {
        let pending = self.pending.get_mut(&r).expect("pending");
        if pending.abandoned && pending.watched && !pending.left {
            pending.left = true;
            let u = pending.uid;
            if let Some(c) = pending.client
                && self.lines.get(&(u, c)) == Some(&r)
            {
                // A check out sent on the line, and the line closed.
                return self.end_line(u, c, out);
            }
            // A waiter that leaves may let in those it kept out.
            self.registry.ended(r, uid(u), out);
        }
    }

    /// The holders of every uid as the registry has them: the exclusive
    /// one, and the shared ones, sorted.
    fn holders(&self) -> Vec<(Option<Handshake>, Vec<Handshake>)> {
        (0..self.uids)
            .map(|u| {
                let exclusive = self.registry.holder(&uid(u)).map(|b| b.handshake);
                let lock = self.registry.lock(&uid(u));
                let holders = lock.iter().flat_map(|lock| lock.holders.iter());
                let mut shared: Vec<Handshake> = holders
                    .filter(|b| Some(b.handshake) != exclusive)
                    .map(|b| b.handshake)
                    .collect();
                shared.sort_by_key(|hs| *hs.as_bytes());
                (exclusive, shared)
            })
            .collect()
    }

    /// The holders of every uid as the legitimate events left them, in
    /// the form of [`holders`](World::holders).
    fn expected_holders(&self) -> Vec<(Option<Handshake>, Vec<Handshake>)> {
        (0..self.uids as usize)
            .map(|u| {
                let mut shared = self.groups[u].0.clone();
                shared.sort_by_key(|hs| *hs.as_bytes());
                (self.table[u], shared)
            })
            .collect()
    }

    /// Whether `hs` holds `u`, exclusive or shared, as the legitimate
    /// events left it.
    fn has(&self, u: u8, hs: Handshake) -> bool {
        self.table[u as usize] == Some(hs) || self.groups[u as usize].0.contains(&hs)
    }

    /// Whether nobody holds `u`, as the legitimate events left it.
    fn is_free(&self, u: u8) -> bool {
        self.table[u as usize].is_none() && self.groups[u as usize].0.is_empty()
    }

    /// The booking of `u` held with `hs` ends, if it is held; a group goes
    /// with its last holder.
    fn release(&mut self, u: u8, hs: Handshake) {
        if self.table[u as usize] == Some(hs) {
            self.table[u as usize] = None;
        }
        let (holders, mode) = &mut self.groups[u as usize];
        holders.retain(|&held| held != hs);
        if holders.is_empty() {
            *mode = None;
        }
    }

    /// Client `c` no longer believes it holds `u`.
    fn forget(&mut self, c: usize, u: u8) {
        self.clients[c].holds &= !(1 << u);
        self.clients[c].shares &= !(1 << u);
    }

    fn alive_believers(&self, uid: u8) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&c| self.clients[c].alive && self.clients[c].holds & 1 << uid != 0)
            .collect()
    }
}

fn client_of(hs: Handshake) -> usize {
    u32::from_be_bytes(hs.as_bytes()[..4].try_into().unwrap()) as usize
}
