//! A model of the processes around a registry, for the registry's
//! exhaustive and property tests and its fuzz target: clients that book, check
//! out, die or give up waiting, a sender of messages, and verifications that
//! end truthfully (alive exactly when the process is), silently (whether
//! the process is alive or not) or inconclusively. After every event it
//! checks the promises the registry makes:
//!
//! - a uid is granted only while nobody holds it, so never two live
//!   processes believe they hold one uid, and a live believer is the
//!   registry's holder;
//! - a grant follows the booker's proof of life (the uid back), never
//!   silence;
//! - a booking is released only by its holder's check out, its holder's
//!   proven death, or a grant that could not be delivered: the model keeps
//!   its own copy of the table, changed only by those events, and it must
//!   equal the registry's after every event (so a silent holder is never
//!   replaced);
//! - one verification in flight per uid; lines and reservations bounded;
//! - a message is delivered only to a live holder, and reported
//!   undeliverable only when there is none;
//! - every request answered or refused exactly once, once verifications
//!   are allowed to end.

use std::collections::BTreeMap;

use super::{Action, Answer, Ask, Limits, Refusal, Registry, ResponderIp, Verdict};
use crate::uid::Uid;

/// Where every modelled client connects from.
pub const LOCAL: ResponderIp = ResponderIp::LOCALHOST;

// Ids cheap to make, so explorations spend their time in the registry.

/// The id numbered `n`.
pub fn uid(n: u8) -> Uid {
    Uid([n; 64])
}

/// The handshake of client `client`; never equal to an id.
pub fn handshake(client: u32) -> Uid {
    let mut bytes = [0xff; 64];
    bytes[..4].copy_from_slice(&client.to_be_bytes());
    Uid(bytes)
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

/// Something that can happen around the registry.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A client books a uid.
    Book { client: usize, uid: u8 },
    /// A client checks a uid out, whether or not it holds it.
    CheckOut { client: usize, uid: u8 },
    /// A message is sent to a uid's holder.
    Notify { uid: u8 },
    /// A client's process dies.
    Die { client: usize },
    /// The client stops waiting for its reply, as after a read timeout.
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
        match kind % 8 {
            0 => Event::Book { client, uid },
            1 => Event::CheckOut { client, uid },
            2 => Event::Notify { uid },
            3 => Event::Die { client },
            4 => Event::GiveUp { client },
            5 => Event::Resolve { uid },
            6 => Event::ResolveSilent { uid },
            _ => Event::ResolveInconclusive { uid },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Book,
    CheckOut,
    Notify,
}

#[derive(Clone, Debug)]
struct Client {
    alive: bool,
    /// Bit `u` set: believes it holds uid `u`.
    holds: u32,
    waiting: Option<u32>,
}

#[derive(Clone, Debug)]
struct Pending {
    /// `None` for a message sender, which is no client.
    client: Option<usize>,
    kind: Kind,
    uid: u8,
    abandoned: bool,
}

#[derive(Clone)]
pub struct World {
    registry: Registry<u32>,
    limits: Limits,
    clients: Vec<Client>,
    uids: u8,
    pending: BTreeMap<u32, Pending>,
    next_request: u32,
    /// Per uid: the handshake sent by the verification in flight.
    in_flight: Vec<Option<Uid>>,
    /// Per uid: the holder's handshake, as the legitimate events left it.
    table: Vec<Option<Uid>>,
    /// The handshake that the event being applied proved alive, if any:
    /// the only booker that may be granted now.
    proved_alive: Option<Uid>,
    trace: Vec<Event>,
}

impl World {
    /// A registry with `limits`, `clients` live clients and `uids` ids.
    pub fn new(clients: usize, uids: u8, limits: Limits) -> World {
        World {
            registry: Registry::new(limits),
            limits,
            clients: vec![
                Client {
                    alive: true,
                    holds: 0,
                    waiting: None,
                };
                clients
            ],
            uids,
            pending: BTreeMap::new(),
            next_request: 0,
            in_flight: vec![None; uids as usize],
            table: vec![None; uids as usize],
            proved_alive: None,
            trace: Vec::new(),
        }
    }

    /// Applies `event` if it can happen now; answers whether it did.
    pub fn step(&mut self, event: Event) -> bool {
        let mut out = Vec::new();
        self.proved_alive = None;
        match event {
            Event::Book { client, uid } | Event::CheckOut { client, uid } => {
                let c = &self.clients[client];
                let booking = matches!(event, Event::Book { .. });
                // Any idle client may send a check out, holder or not; a
                // client books only what it does not believe it holds.
                if !c.alive || c.waiting.is_some() || (booking && c.holds & 1 << uid != 0) {
                    return false;
                }
                let (ask, kind) = if booking {
                    (book(uid, client as u32), Kind::Book)
                } else {
                    (check_out(uid, client as u32), Kind::CheckOut)
                };
                let r = self.new_request(Some(client), kind, uid);
                self.clients[client].waiting = Some(r);
                self.registry.request(r, LOCAL, ask, &mut out);
            }
            Event::Notify { uid } => {
                let r = self.new_request(None, Kind::Notify, uid);
                self.registry.request(r, LOCAL, notify(uid), &mut out);
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
                    self.abandon(r);
                }
            }
            Event::GiveUp { client } => {
                let Some(r) = self.clients[client].waiting.take() else {
                    return false;
                };
                // Not knowing whether its check out went through, a client
                // no longer counts on holding the uid.
                if self.pending[&r].kind == Kind::CheckOut {
                    self.clients[client].holds &= !(1 << self.pending[&r].uid);
                }
                self.abandon(r);
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
                if verdict == Verdict::Alive {
                    self.proved_alive = Some(hs);
                }
                // A holder's verification that found it dead proves that
                // death, and frees the uid.
                if verdict == Verdict::Dead && self.table[u as usize] == Some(hs) {
                    self.table[u as usize] = None;
                }
                self.registry.verified(uid(u), verdict, &mut out);
            }
        }
        self.trace.push(event);
        self.carry_out(out);
        self.check();
        true
    }

    fn new_request(&mut self, client: Option<usize>, kind: Kind, uid: u8) -> u32 {
        let r = self.next_request;
        self.next_request += 1;
        self.pending.insert(
            r,
            Pending {
                client,
                kind,
                uid,
                abandoned: false,
            },
        );
        r
    }

    fn abandon(&mut self, r: u32) {
        self.pending.get_mut(&r).expect("pending").abandoned = true;
    }

    fn holders(&self) -> Vec<Option<Uid>> {
        (0..self.uids)
            .map(|u| self.registry.holder(&uid(u)).map(|b| b.handshake))
            .collect()
    }

    fn alive_believers(&self, uid: u8) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&c| self.clients[c].alive && self.clients[c].holds & 1 << uid != 0)
            .collect()
    }

    /// Carries out the actions of one registry call. Grants that cannot be
    /// delivered are reported after them all, as the reactor does: by then
    /// the registry has served the rest of the uid's line.
    fn carry_out(&mut self, actions: Vec<Action<u32>>) {
        let mut undelivered = Vec::new();
        for action in actions {
            match action {
                Action::Verify { uid, handshake, .. } => {
                    let u = uid.0[0];
                    assert!(
                        self.in_flight[u as usize].is_none(),
                        "two verifications: {:?}",
                        self.trace
                    );
                    self.in_flight[u as usize] = Some(handshake);
                }
                Action::Reply { to, answer } => {
                    undelivered.extend(self.answered(to, Ok(answer)));
                }
                Action::Refuse { to, why } => {
                    undelivered.extend(self.answered(to, Err(why)));
                }
            }
        }
        for (u, hs) in undelivered {
            if self.table[u as usize] == Some(hs) {
                self.table[u as usize] = None;
            }
            self.registry.grant_undelivered(uid(u), hs);
        }
    }

    /// Takes the answer to request `r`; answers the uid and handshake of a
    /// grant its requester can no longer receive.
    fn answered(&mut self, r: u32, answer: Result<Answer, Refusal>) -> Option<(u8, Uid)> {
        let pending = self
            .pending
            .remove(&r)
            .unwrap_or_else(|| panic!("request {r} answered twice: {:?}", self.trace));
        let u = pending.uid;
        let Some(c) = pending.client else {
            let holder = self.table[u as usize];
            match answer {
                Ok(Answer::Delivered) => assert!(
                    holder.is_some_and(|hs| self.clients[client_of(hs)].alive),
                    "{:?}",
                    self.trace
                ),
                Ok(Answer::NoHolder) => assert_eq!(holder, None, "{:?}", self.trace),
                Ok(Answer::Declined) => assert!(holder.is_some(), "{:?}", self.trace),
                Err(Refusal::Inconclusive | Refusal::LineFull) => {}
                other => panic!("{other:?} to a notify: {:?}", self.trace),
            }
            return None;
        };
        if !pending.abandoned {
            self.clients[c].waiting = None;
        }
        let listening = self.clients[c].alive && !pending.abandoned;
        let mine = Some(handshake(c as u32));
        let slot = &mut self.table[u as usize];
        match (pending.kind, answer) {
            (Kind::Book, Ok(Answer::Granted)) => {
                assert_eq!(*slot, None, "granted while held: {:?}", self.trace);
                assert_eq!(
                    self.proved_alive, mine,
                    "granted without proof of life: {:?}",
                    self.trace
                );
                *slot = mine;
                if !listening {
                    // The reply cannot reach a process that is gone or
                    // stopped listening.
                    return mine.map(|hs| (u, hs));
                }
                self.clients[c].holds |= 1 << u;
            }
            (Kind::Book, Ok(Answer::Denied)) => {}
            (Kind::CheckOut, Ok(Answer::CheckedOut)) => {
                assert_eq!(*slot, mine, "released by a non-holder: {:?}", self.trace);
                *slot = None;
                self.clients[c].holds &= !(1 << u);
            }
            (Kind::CheckOut, Ok(Answer::NotCheckedOut)) => {
                assert_ne!(
                    *slot, mine,
                    "a holder could not check out: {:?}",
                    self.trace
                )
            }
            (Kind::Book, Err(Refusal::BookingsFull)) => assert!(
                self.registry.len() + self.registry.reserved >= self.limits.max_bookings,
                "refused with room left: {:?}",
                self.trace
            ),
            (_, Err(Refusal::LineFull | Refusal::Inconclusive)) => {}
            other => panic!("unexpected {other:?}: {:?}", self.trace),
        }
        None
    }

    fn check(&self) {
        assert_eq!(
            self.holders(),
            self.table,
            "the table changed without cause: {:?}",
            self.trace
        );
        for u in 0..self.uids {
            let believers = self.alive_believers(u);
            assert!(
                believers.len() <= 1,
                "two holders {believers:?}: {:?}",
                self.trace
            );
            if let Some(&c) = believers.first() {
                assert_eq!(
                    self.table[u as usize],
                    Some(handshake(c as u32)),
                    "a live holder lost its booking: {:?}",
                    self.trace
                );
            }
        }
        for line in self.registry.lines.values() {
            assert!(
                line.waiting.len() <= self.limits.max_waiting,
                "{:?}",
                self.trace
            );
        }
        assert!(
            self.registry.len() + self.registry.reserved <= self.limits.max_bookings,
            "{:?}",
            self.trace
        );
    }

    /// Lets every verification end truthfully; then nothing may be left
    /// unanswered.
    pub fn settle(mut self) {
        while let Some(uid) = (0..self.uids).find(|&u| self.in_flight[u as usize].is_some()) {
            self.step(Event::Resolve { uid });
        }
        assert!(self.registry.is_idle(), "{:?}", self.trace);
        assert!(self.pending.is_empty(), "unanswered: {:?}", self.trace);
    }
}

fn client_of(hs: Uid) -> usize {
    u32::from_be_bytes(hs.0[..4].try_into().unwrap()) as usize
}
