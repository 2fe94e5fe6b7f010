//! Every sequence of events up to a depth, for three clients contending for
//! one uid and a sender of messages, checked by the model.

use super::*;
use crate::registry::model::{Event, World};

const CLIENTS: usize = 3;
const DEPTH: usize = 7;

fn explore(world: &World, depth: usize, visited: &mut u64) {
    *visited += 1;
    world.clone().settle();
    if depth == 0 {
        return;
    }
    let events = (0..CLIENTS)
        .flat_map(|client| {
            [
                Event::Book { client, uid: 0 },
                Event::CheckOut { client, uid: 0 },
                Event::Die { client },
            ]
        })
        .chain([
            Event::Notify { uid: 0 },
            Event::Resolve { uid: 0 },
            Event::ResolveInconclusive { uid: 0 },
            Event::ResolveSilent { uid: 0 },
        ]);
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
    explore(&World::new(CLIENTS, 1, ROOMY), DEPTH, &mut visited);
    // A guard against an explorer that stops early and proves nothing.
    assert!(visited > 100_000, "only {visited} states visited");
}
