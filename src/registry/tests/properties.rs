//! Random histories across several uids and users, with tight limits and
//! shares, reclaiming at the bound and the sweep, deaths,
//! clients that give up waiting, lines and restarts, shared locks and
//! counts, checked by the model after every event.

use proptest::prelude::*;

use crate::registry::model::{Event, World, limits};

const CLIENTS: usize = 4;
/// Ids 0 to 2 are plain; 4, the per-user id, is asked for less often.
const UIDS: u8 = 5;

fn event() -> impl Strategy<Value = Event> {
    let client = 0..CLIENTS;
    let uid = prop_oneof![4 => 0..3u8, 1 => Just(UIDS - 1)];
    prop_oneof![
        3 => (client.clone(), uid.clone()).prop_map(|(client, uid)| Event::Book { client, uid }),
        2 => (client.clone(), uid.clone()).prop_map(|(client, uid)| Event::CheckOut { client, uid }),
        1 => uid.clone().prop_map(|uid| Event::Notify { uid }),
        1 => client.clone().prop_map(|client| Event::Die { client }),
        1 => client.clone().prop_map(|client| Event::GiveUp { client }),
        4 => uid.clone().prop_map(|uid| Event::Resolve { uid }),
        1 => uid.clone().prop_map(|uid| Event::ResolveInconclusive { uid }),
        1 => uid.clone().prop_map(|uid| Event::ResolveSilent { uid }),
        3 => (client.clone(), uid.clone(), 0u8..4).prop_map(|(client, uid, ticks)| Event::Wait { client, uid, ticks }),
        3 => (client.clone(), uid.clone(), 0u8..4).prop_map(|(client, uid, ticks)| Event::Line { client, uid, ticks }),
        4 => (client.clone(), uid.clone(), 0u8..4, 0u8..4).prop_map(|(client, uid, ticks, slots)| Event::Shared { client, uid, ticks, slots }),
        1 => (client.clone(), uid.clone()).prop_map(|(client, uid)| Event::CheckOutOnLine { client, uid }),
        1 => (client.clone(), uid).prop_map(|(client, uid)| Event::Attach { client, uid }),
        1 => Just(Event::Restart),
        2 => Just(Event::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_histories_keep_the_promises(
        events in proptest::collection::vec(event(), 0..80),
        max_bookings in 1usize..7,
        max_waiting in 0usize..3,
        max_pending in 1usize..8,
        max_lines in 0usize..4,
        max_waiters in 1usize..7,
        shares in 1usize..4,
    ) {
        let mut limits = limits(max_bookings, max_waiting);
        limits.max_pending = max_pending;
        limits.max_lines = max_lines;
        limits.max_waiters = max_waiters;
        limits.max_waiters_per_id = max_waiters;
        limits.shares = shares;
        let mut world = World::new(CLIENTS, UIDS, limits);
        for event in events {
            world.step(event);
        }
        world.settle();
    }
}
