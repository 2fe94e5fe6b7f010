//! A requester's connection that ends: its request leaves the registry at
//! once, wherever it waited, and is never answered.

use std::time::Instant;

use super::*;
use crate::registry::model::wait;

/// A registry whose uid 1 is held by client 1, with a NOTIFY from client
/// 9 verifying the holder, so that later requests for uid 1 are pending.
fn held_and_verifying() -> Harness {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(9, notify(1)), [verify_with_message(1, 1, 9)]);
    h
}

#[test]
fn a_pending_book_whose_connection_ends_is_never_granted() {
    let mut h = held_and_verifying();
    assert_eq!(h.request(2, book(1, 2)), []);
    assert_eq!(h.registry.pending_requests, 1);
    h.ended(2, 1);
    assert_eq!(h.registry.pending_requests, 0);
    // The holder proves dead: the id frees, and nobody is left to book it.
    assert_eq!(
        h.verified(1, Verdict::Dead),
        [dropped(1), answer(9, Answer::NoHolder)]
    );
    assert_eq!(h.holder_handshake(1), None);
    assert!(h.registry.is_idle());
}

#[test]
fn a_pending_wait_whose_connection_ends_is_never_queued() {
    let mut h = held_and_verifying();
    let now = Instant::now();
    assert_eq!(h.request(2, wait(1, 2, now, 60)), []);
    h.ended(2, 1);
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(9, Answer::Delivered)]
    );
    assert_eq!(h.registry.waiters(), 0);
    assert_eq!(h.registry.waiting.next_timeout(), None, "no deadline left");
}

#[test]
fn a_holder_verified_for_a_requester_that_left_is_still_verified() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    h.ended(2, 1);
    // Its verdict still counts, as a probe's: nobody is answered.
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1)]);
    assert_eq!(h.holder_handshake(1), None);
    assert!(h.registry.is_idle());
}

#[test]
fn a_candidate_whose_connection_ends_is_answered_nothing() {
    let mut h = Harness::new(ROOMY);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 2)]);
    assert_eq!(h.request(3, book(1, 3)), []);
    h.ended(2, 1);
    // The next pending is served as if the candidate had failed.
    assert_eq!(h.verified(1, Verdict::Alive), [verify(1, 3)]);
    assert_eq!(h.registry.reserved, 1);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(3)));
}

#[test]
fn the_end_of_a_connection_the_registry_never_heard_of_changes_nothing() {
    let mut h = held_and_verifying();
    assert_eq!(h.request(2, book(1, 2)), []);
    h.ended(5, 1);
    h.ended(2, 3);
    assert_eq!(h.registry.pending_requests, 1);
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(9, Answer::Delivered), answer(2, Answer::Denied)]
    );
}
