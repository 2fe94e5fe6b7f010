//! Every sequence of events up to a depth, for three clients sharing one
//! uid (two slots of it, or shared without a count, or alone), checking
//! out, dying and restarting, with room for two lines only, so that a
//! holder past them lives under the call-back rules: checked by the model.

use super::exhaustive::explore;
use super::*;
use crate::registry::model::{Event, World};

const CLIENTS: usize = 3;
const DEPTH: usize = 6;

fn events() -> Vec<Event> {
    (0..CLIENTS)
        .flat_map(|client| {
            [
                Event::Shared {
                    client,
                    uid: 0,
                    ticks: 2,
                    slots: 2,
                },
                Event::Line {
                    client,
                    uid: 0,
                    ticks: 2,
                },
                Event::CheckOut { client, uid: 0 },
                Event::Die { client },
            ]
        })
        .chain([
            // Another mode than the count the others ask for.
            Event::Shared {
                client: 2,
                uid: 0,
                ticks: 2,
                slots: 0,
            },
            Event::Restart,
            Event::Resolve { uid: 0 },
            Event::ResolveSilent { uid: 0 },
            Event::Tick,
        ])
        .collect()
}

#[test]
fn every_short_history_of_shared_holders_keeps_the_promises() {
    let events = events();
    let start = World::new(
        CLIENTS,
        1,
        Limits {
            max_lines: 2,
            ..ROOMY
        },
    );
    let mut visited = 0;
    explore(&start, DEPTH, &events, &mut visited);
    // A guard against an exploration that stops early and proves nothing.
    assert!(visited > 100_000, "only {visited} states visited");
}
