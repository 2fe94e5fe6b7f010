//! Every sequence of events up to a depth, for three clients contending for
//! one uid on lines and by call-back (asking for a line, waiting without
//! one, checking out on the line and elsewhere, attaching, dying), a
//! restart and a clock, with room for one line only, checked by the model.

use super::exhaustive::explore;
use super::*;
use crate::registry::model::{Event, World};

const CLIENTS: usize = 3;
const DEPTH: usize = 6;

fn events() -> Vec<Event> {
    (0..CLIENTS)
        .flat_map(|client| {
            [
                Event::Line {
                    client,
                    uid: 0,
                    ticks: 2,
                },
                Event::Wait {
                    client,
                    uid: 0,
                    ticks: 2,
                },
                Event::CheckOut { client, uid: 0 },
                Event::CheckOutOnLine { client, uid: 0 },
                Event::Attach { client, uid: 0 },
                Event::Die { client },
            ]
        })
        .chain([
            Event::Restart,
            Event::Resolve { uid: 0 },
            Event::ResolveSilent { uid: 0 },
            Event::Tick,
        ])
        .collect()
}

#[test]
fn every_short_history_with_lines_keeps_the_promises() {
    let events = events();
    let start = World::new(
        CLIENTS,
        1,
        Limits {
            max_lines: 1,
            ..ROOMY
        },
    );
    let mut visited = 0;
    explore(&start, DEPTH, &events, &mut visited);
    // A guard against an exploration that stops early and proves nothing.
    assert!(visited > 100_000, "only {visited} states visited");
}
