//! Every sequence of events up to a depth, for three clients contending for
//! one uid (booking, waiting, checking out, dying), a sender of messages
//! and a clock, checked by the model.

use std::thread;

use super::*;
use crate::registry::model::{Event, World};

const CLIENTS: usize = 3;
const DEPTH: usize = 7;

fn events() -> Vec<Event> {
    (0..CLIENTS)
        .flat_map(|client| {
            [
                Event::Book { client, uid: 0 },
                Event::Wait {
                    client,
                    uid: 0,
                    ticks: 2,
                },
                Event::CheckOut { client, uid: 0 },
                Event::Die { client },
            ]
        })
        .chain([
            Event::Notify { uid: 0 },
            Event::Resolve { uid: 0 },
            Event::ResolveInconclusive { uid: 0 },
            Event::ResolveSilent { uid: 0 },
            Event::Tick,
        ])
        .collect()
}

/// Steps `world` through every sequence of `events` up to `depth` long,
/// settling (and so checking) each world reached; counts them in `visited`.
pub(super) fn explore(world: &World, depth: usize, events: &[Event], visited: &mut u64) {
    *visited += 1;
    world.clone().settle();
    if depth == 0 {
        return;
    }
    for &event in events {
        let mut next = world.clone();
        if next.step(event) {
            explore(&next, depth - 1, events, visited);
        }
    }
}

#[test]
fn every_short_history_keeps_the_promises() {
    let events = events();
    let start = World::new(CLIENTS, 1, ROOMY);
    // Each first event's subtree on a thread of its own: the same
    // histories, explored in a fraction of the time.
    let visited: u64 = thread::scope(|scope| {
        let explorers: Vec<_> = events
            .iter()
            .map(|&first| {
                let (start, events) = (&start, &events);
                scope.spawn(move || {
                    let mut world = start.clone();
                    let mut visited = 0;
                    if world.step(first) {
                        explore(&world, DEPTH - 1, events, &mut visited);
                    }
                    visited
                })
            })
            .collect();
        explorers.into_iter().map(|e| e.join().unwrap()).sum()
    });
    start.settle();
    // A guard against an explorer that stops early and proves nothing.
    assert!(visited > 1_000_000, "only {visited} states visited");
}
