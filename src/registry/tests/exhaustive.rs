//! Every sequence of events up to a depth, for three clients contending for
//! one uid, checked against the promises the registry makes: never two
//! live processes that both believe they hold the uid, a holder's check out
//! always succeeds, a message is delivered only to a live holder and reported
//! undeliverable only when there is none, one verification in flight at a
//! time, and every request answered exactly once.

use super::*;

const CLIENTS: u32 = 3;
const DEPTH: usize = 7;
const U: u8 = 1;
/// The requester number of a process that only sends NOTIFY.
const SENDER: u32 = 99;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Awaiting {
    Nothing,
    Book,
    CheckOut,
}

#[derive(Clone, Copy, Debug)]
struct Client {
    alive: bool,
    holds: bool,
    awaiting: Awaiting,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Book(u32),
    CheckOut(u32),
    Die(u32),
    Notify,
    Resolve,
    ResolveInconclusive,
}

#[derive(Clone)]
struct World {
    registry: Registry<u32>,
    clients: [Client; CLIENTS as usize],
    /// The handshake sent by the verification in flight.
    in_flight: Option<Uid>,
    sender_awaiting: bool,
    trace: Vec<Event>,
}

impl World {
    fn new() -> World {
        World {
            registry: Registry::new(ROOMY),
            clients: [Client {
                alive: true,
                holds: false,
                awaiting: Awaiting::Nothing,
            }; CLIENTS as usize],
            in_flight: None,
            sender_awaiting: false,
            trace: Vec::new(),
        }
    }

    /// Applies `event` if it can happen now; answers whether it did.
    fn step(&mut self, event: Event) -> bool {
        let mut out = Vec::new();
        match event {
            Event::Book(c) | Event::CheckOut(c) => {
                let client = &mut self.clients[c as usize];
                if !client.alive || client.awaiting != Awaiting::Nothing {
                    return false;
                }
                // Any idle client may send a check out, holder or not.
                let (request, awaiting) = match event {
                    Event::Book(_) if !client.holds => (book(U, c), Awaiting::Book),
                    Event::CheckOut(_) => (check_out(U, c), Awaiting::CheckOut),
                    _ => return false,
                };
                client.awaiting = awaiting;
                self.registry.request(c, LOCAL, request, &mut out);
            }
            Event::Notify => {
                if self.sender_awaiting {
                    return false;
                }
                self.sender_awaiting = true;
                self.registry
                    .request(SENDER, LOCAL, Ask::Notify { uid: uid(U) }, &mut out);
            }
            Event::Die(c) => {
                let client = &mut self.clients[c as usize];
                if !client.alive {
                    return false;
                }
                // A dead process believes nothing, but a check out it sent
                // before dying may still be served.
                client.alive = false;
            }
            Event::Resolve | Event::ResolveInconclusive => {
                let Some(hs) = self.in_flight.take() else {
                    return false;
                };
                let verdict = match event {
                    Event::ResolveInconclusive => Verdict::Inconclusive,
                    _ if self.client_of(hs).alive => Verdict::Alive,
                    _ => Verdict::Dead,
                };
                self.registry.verified(uid(U), verdict, &mut out);
            }
        }
        self.trace.push(event);
        self.carry_out(out);
        self.check();
        true
    }

    fn client_of(&self, hs: Uid) -> Client {
        self.clients[(0..CLIENTS).find(|&c| handshake(c) == hs).unwrap() as usize]
    }

    fn carry_out(&mut self, actions: Vec<Action<u32>>) {
        for action in actions {
            match action {
                Action::Verify { handshake: hs, .. } => {
                    assert!(
                        self.in_flight.is_none(),
                        "two verifications: {:?}",
                        self.trace
                    );
                    self.in_flight = Some(hs);
                }
                Action::Reply { to: SENDER, answer } => {
                    assert!(self.sender_awaiting, "{:?}", self.trace);
                    self.sender_awaiting = false;
                    let live_holder = self.clients.iter().any(|c| c.alive && c.holds);
                    match answer {
                        Answer::Delivered => assert!(live_holder, "{:?}", self.trace),
                        Answer::NoHolder => assert!(!live_holder, "{:?}", self.trace),
                        other => panic!("{other:?} to a notify: {:?}", self.trace),
                    }
                }
                Action::Reply { to, answer } => {
                    let client = &mut self.clients[to as usize];
                    let awaited = std::mem::replace(&mut client.awaiting, Awaiting::Nothing);
                    match (awaited, answer) {
                        (Awaiting::Book, Answer::Granted) if client.alive => client.holds = true,
                        // The reply cannot be written to a dead process.
                        (Awaiting::Book, Answer::Granted) => {
                            self.registry.grant_undelivered(uid(U), handshake(to))
                        }
                        (Awaiting::Book, Answer::Denied) => {}
                        (Awaiting::CheckOut, Answer::CheckedOut) => {
                            assert!(client.holds, "released for a non-holder: {:?}", self.trace);
                            client.holds = false;
                        }
                        (Awaiting::CheckOut, Answer::NotCheckedOut) => {
                            assert!(
                                !(client.holds && client.alive),
                                "a live holder could not check out: {:?}",
                                self.trace
                            );
                        }
                        other => panic!("unexpected reply {other:?}: {:?}", self.trace),
                    }
                }
                Action::Refuse { to: SENDER, why } => {
                    assert_eq!(why, Refusal::Inconclusive, "{:?}", self.trace);
                    assert!(self.sender_awaiting, "{:?}", self.trace);
                    self.sender_awaiting = false;
                }
                Action::Refuse { to, why } => {
                    assert_eq!(why, Refusal::Inconclusive, "{:?}", self.trace);
                    let client = &mut self.clients[to as usize];
                    assert_ne!(client.awaiting, Awaiting::Nothing, "{:?}", self.trace);
                    client.awaiting = Awaiting::Nothing;
                }
            }
        }
    }

    fn check(&self) {
        let believers: Vec<u32> = (0..CLIENTS)
            .filter(|&c| self.clients[c as usize].holds && self.clients[c as usize].alive)
            .collect();
        assert!(
            believers.len() <= 1,
            "two holders {believers:?}: {:?}",
            self.trace
        );
        if let Some(&c) = believers.first() {
            assert_eq!(
                self.registry.holder(&uid(U)).map(|b| b.handshake),
                Some(handshake(c)),
                "a live holder lost its booking: {:?}",
                self.trace
            );
        }
    }

    /// Lets every verification end truthfully; then nobody may be left
    /// waiting.
    fn settle(mut self) {
        while self.step(Event::Resolve) {}
        assert!(self.registry.is_idle(), "{:?}", self.trace);
        for client in &self.clients {
            assert_eq!(
                client.awaiting,
                Awaiting::Nothing,
                "unanswered: {:?}",
                self.trace
            );
        }
    }
}

fn explore(world: &World, depth: usize, visited: &mut u64) {
    *visited += 1;
    world.clone().settle();
    if depth == 0 {
        return;
    }
    let events = (0..CLIENTS)
        .flat_map(|c| [Event::Book(c), Event::CheckOut(c), Event::Die(c)])
        .chain([Event::Notify, Event::Resolve, Event::ResolveInconclusive]);
    for event in events {
        let mut next = world.clone();
        if next.step(event) {
            explore(&next, depth - 1, visited);
        }
    }
}

#[test]
fn every_short_history_keeps_the_promises() {
    let mut visited = 0;
    explore(&World::new(), DEPTH, &mut visited);
    // A guard against an explorer that stops early and proves nothing.
    assert!(visited > 100_000, "only {visited} states visited");
}
