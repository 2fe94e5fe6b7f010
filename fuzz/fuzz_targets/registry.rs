//! The registry against arbitrary histories of requests, waits, lines,
//! deaths, give-ups, restarts, ticks of the clock and verification
//! outcomes, checked after
//! every event by the same model as its property tests
//! (src/registry/model/).
#![no_main]

use libfuzzer_sys::fuzz_target;
use namaste::registry::model::{Event, World, limits};

const CLIENTS: usize = 4;
const UIDS: u8 = 5;

fuzz_target!(|data: &[u8]| {
    let Some((&[bounds, lines], events)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut limits = limits(usize::from(bounds & 0x0f) + 1, usize::from(bounds >> 4));
    limits.max_lines = usize::from(lines % 4);
    let mut world = World::new(CLIENTS, UIDS, limits);
    for pair in events.chunks_exact(2) {
        world.step(Event::from_bytes(pair[0], pair[1], CLIENTS, UIDS));
    }
    world.settle();
});
