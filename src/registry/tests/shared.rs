//! Shared locks and counting semaphores: holders side by side under slot
//! keys, first come first served across modes, the count in force, and a
//! slot freed by its holder's death.

use std::time::Instant;

use super::*;
use crate::registry::model::{TICK, line, shared, wait};

fn lines(max_lines: usize) -> Limits {
    Limits { max_lines, ..ROOMY }
}

fn queued(client: u32) -> Action<u32> {
    Action::Queued { to: client }
}

/// Client `client` asks for uid 1 in `mode` on a line, waiting 5 ticks.
fn ask(h: &mut Harness, client: u32, mode: Mode, now: Instant) -> Vec<Action<u32>> {
    h.request(client, shared(1, client, now, 5, mode, true))
}

/// The handshakes of the holders of uid 1, lowest slot first.
fn holders(h: &Harness) -> Vec<Handshake> {
    h.registry
        .lock(&uid(1))
        .map_or(Vec::new(), |lock| lock.holders.iter().map(|b| b.handshake).collect())
}

#[test]
fn shared_holders_are_granted_side_by_side_each_under_its_own_slot() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    for client in 1..=3 {
        assert_eq!(ask(&mut h, client, Mode::Shared, now), [answer(client, Answer::Lined)]);
    }
    assert_eq!(holders(&h), [handshake(1), handshake(2), handshake(3)]);
    let lock = h.registry.lock(&uid(1)).unwrap();
    assert_eq!((lock.mode, lock.in_force), (Mode::Shared, Some(Mode::Shared)));
    let keys: Vec<Uid> = lock.holders.iter().map(|b| b.uid).collect();
    assert_eq!(keys, (0..3).map(|i| slot_key(&uid(1), i)).collect::<Vec<_>>());
    assert_eq!(h.registry.lock_of(&keys[1]), uid(1));
    assert!(h.registry.has_line(&keys[2]));
    assert_eq!(h.holder_handshake(1), None, "nobody holds it alone");
}

#[test]
fn an_exclusive_request_waits_for_every_shared_holder_and_later_readers_wait_behind_it() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    ask(&mut h, 1, Mode::Shared, now);
    ask(&mut h, 2, Mode::Shared, now);
    // Lined holders are alive: no call-back, the writer queues; a BOOK is
    // told the name is held.
    assert_eq!(h.request(3, line(1, 3, now, 5)), [queued(3)]);
    assert_eq!(h.request(9, book(1, 9)), [answer(9, Answer::Denied)]);
    // A reader that comes after the writer does not slip past it.
    assert_eq!(ask(&mut h, 4, Mode::Shared, now), [queued(4)]);
    assert_eq!(h.ended(1, 1), [dropped_key(1, 0)]);
    assert_eq!(h.ended(2, 1), [dropped_key(1, 1), answer(3, Answer::Lined)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(3)));
    // The writer's end lets the reader in, and the next readers with it.
    assert_eq!(ask(&mut h, 5, Mode::Shared, now), [queued(5)]);
    assert_eq!(
        h.ended(3, 1),
        [dropped(1), answer(4, Answer::Lined), answer(5, Answer::Lined)]
    );
    assert_eq!(holders(&h), [handshake(4), handshake(5)]);
}

/// The `Dropped` of slot `index` of uid `u`.
fn dropped_key(u: u8, index: u32) -> Action<u32> {
    Action::Dropped {
        uid: slot_key(&uid(u), index),
    }
}

#[test]
fn no_more_than_n_hold_a_counted_name_and_the_rest_are_served_in_arrival_order() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    for client in 1..=3 {
        assert_eq!(ask(&mut h, client, Mode::Slots(2), now).len(), 1);
    }
    assert_eq!(holders(&h), [handshake(1), handshake(2)]);
    assert_eq!(h.registry.lock(&uid(1)).unwrap().waiters, 1);
    assert_eq!(ask(&mut h, 4, Mode::Slots(2), now), [queued(4)]);
    // Death frees one slot, at once, and the first in line takes it.
    assert_eq!(h.ended(1, 1), [dropped_key(1, 0), answer(3, Answer::Lined)]);
    assert_eq!(holders(&h), [handshake(3), handshake(2)]);
    assert_eq!(h.ended(2, 1), [dropped_key(1, 1), answer(4, Answer::Lined)]);
}

#[test]
fn another_count_is_refused_with_the_count_in_force_until_nobody_holds_or_waits() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    ask(&mut h, 1, Mode::Slots(3), now);
    let in_force = Answer::SlotsInForce(3);
    assert_eq!(ask(&mut h, 2, Mode::Slots(2), now), [answer(2, in_force)]);
    assert_eq!(ask(&mut h, 3, Mode::Shared, now), [answer(3, in_force)]);
    // An exclusive request takes every slot: it has no count to disagree.
    assert_eq!(h.request(4, line(1, 4, now, 5)), [queued(4)]);
    assert_eq!(h.ended(1, 1), [dropped_key(1, 0), answer(4, Answer::Lined)]);
    // Held alone, with nobody waiting with a count: any count goes.
    assert_eq!(h.registry.in_force(&uid(1)), None);
    assert_eq!(ask(&mut h, 5, Mode::Slots(2), now), [queued(5)]);
    assert_eq!(h.registry.in_force(&uid(1)), Some(Mode::Slots(2)));
    let shared_in_force = ask(&mut h, 6, Mode::Shared, now);
    assert_eq!(shared_in_force, [answer(6, Answer::SlotsInForce(2))]);
    assert_eq!(h.ended(4, 1), [dropped(1), answer(5, Answer::Lined)]);
    assert_eq!(h.ended(5, 1), [dropped_key(1, 0)]);
    assert_eq!(h.registry.lock(&uid(1)), None, "forgotten");
    assert_eq!(ask(&mut h, 7, Mode::Shared, now), [answer(7, Answer::Lined)]);
    let slotted = ask(&mut h, 8, Mode::Slots(2), now);
    assert_eq!(slotted, [answer(8, Answer::SharedInForce)]);
}

#[test]
fn a_shared_holder_without_a_line_is_verified_for_an_exclusive_contender_and_dropped_only_dead()
{
    let mut h = Harness::new(lines(0));
    let now = Instant::now();
    // No line to be had: proved alive by call-back, answering the name.
    assert_eq!(ask(&mut h, 1, Mode::Shared, now), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(1, Answer::NoLine)]);
    assert_eq!(ask(&mut h, 2, Mode::Shared, now), [verify(1, 2)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::NoLine)]);
    // The writer has the least recently checked holder called back.
    assert_eq!(h.request(3, wait(1, 3, now, 5)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Silent), [queued(3)]);
    assert_eq!(holders(&h), [handshake(1), handshake(2)]);
    // Its probes take turns: the other holder next, found dead.
    let mut out = Vec::new();
    h.registry.handle_timeout(now + TICK, &mut out);
    assert_eq!(out, [verify(1, 2)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped_key(1, 1)]);
    assert_eq!(holders(&h), [handshake(1)]);
    // Its check out, recorded under its slot's key, lets the writer in.
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [dropped_key(1, 0), answer(1, Answer::CheckedOut), verify(1, 3)]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
}

#[test]
fn a_holder_checks_out_its_own_slot_and_no_other() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    ask(&mut h, 1, Mode::Slots(2), now);
    ask(&mut h, 2, Mode::Slots(2), now);
    assert_eq!(
        h.request(9, check_out(1, 9)),
        [answer(9, Answer::NotCheckedOut)]
    );
    assert_eq!(
        h.request(7, check_out(1, 2)),
        [
            dropped_key(1, 1),
            answer(7, Answer::CheckedOut),
            Action::CloseLine { to: 2 }
        ]
    );
    assert_eq!(holders(&h), [handshake(1)]);
    // One booking per handshake and name: asking again is denied.
    let again = h.request(8, shared(1, 1, now, 0, Mode::Slots(2), true));
    assert_eq!(again, [answer(8, Answer::Denied)]);
}

#[test]
fn slot_keys_cannot_be_asked_for_by_key() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    ask(&mut h, 1, Mode::Shared, now);
    let key = slot_key(&uid(1), 0);
    let by_key = Ask::CheckOut {
        uid: key,
        handshake: handshake(1),
    };
    assert_eq!(h.request(9, by_key), [answer(9, Answer::Denied)]);
    assert_eq!(holders(&h), [handshake(1)]);
}

#[test]
fn a_shared_booking_restored_after_a_restart_rejoins_its_group() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    ask(&mut h, 1, Mode::Slots(2), now);
    let held = *h.registry.lock(&uid(1)).unwrap().holders[0];
    let mut restarted = Harness::new(lines(10));
    assert!(!restarted.registry.restore_shared(uid(2), Mode::Slots(2), held));
    assert!(restarted.registry.restore_shared(uid(1), Mode::Slots(2), held));
    assert!(!restarted.registry.restore_shared(uid(1), Mode::Slots(2), held));
    let lock = restarted.registry.lock(&uid(1)).unwrap();
    assert_eq!((lock.mode, lock.holders.len()), (Mode::Slots(2), 1));
    assert_eq!(restarted.registry.usage()[0].1.bookings, 1);
    // Its holder attaches by name, and gets its slot's line.
    let attach = Ask::Attach {
        uid: uid(1),
        handshake: handshake(1),
    };
    assert_eq!(restarted.request(5, attach), [answer(5, Answer::Lined)]);
    assert!(restarted.registry.has_line(&held.uid));
}

#[test]
fn readers_kept_out_by_a_writer_go_in_as_soon_as_it_stops_waiting() {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    ask(&mut h, 1, Mode::Shared, now);
    assert_eq!(h.request(2, line(1, 2, now, 1)), [queued(2)]);
    assert_eq!(h.request(3, line(1, 3, now, 5)), [queued(3)]);
    assert_eq!(ask(&mut h, 4, Mode::Shared, now), [queued(4)]);
    // The first writer's wait is over: the second still keeps the reader out.
    let mut out = Vec::new();
    h.registry.handle_timeout(now + TICK, &mut out);
    assert_eq!(out, [answer(2, Answer::Denied)]);
    // The second writer's connection ends: the reader goes in beside 1.
    assert_eq!(h.ended(3, 1), [answer(4, Answer::Lined)]);
    assert_eq!(holders(&h), [handshake(1), handshake(4)]);
}

#[test]
fn a_0_6_0_book_of_a_name_held_shared_is_denied_while_a_holder_lives() {
    let mut h = Harness::new(lines(0));
    let now = Instant::now();
    assert_eq!(ask(&mut h, 1, Mode::Slots(2), now), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(1, Answer::NoLine)]);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Denied)]);
    // Its holder proved dead, the slot is free, and the book is served.
    assert_eq!(h.request(3, book(1, 3)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped_key(1, 0), verify(1, 3)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
    assert_eq!(h.registry.lock(&uid(1)).unwrap().mode, Mode::Exclusive);
}
