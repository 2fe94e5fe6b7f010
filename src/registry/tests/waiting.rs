//! WAIT: the queue of a held uid, first come first served; deadlines,
//! waiters that leave or fail, probes of the holder, and the bounds.

use std::time::{Duration, Instant};

use super::*;
use crate::registry::model::{TICK, limits, wait};

fn queued(client: u32) -> Action<u32> {
    Action::Queued { to: client }
}

/// A registry whose uid 1 is held by client 1, and the time.
fn held() -> (Harness, Instant) {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    (h, Instant::now())
}

impl Harness {
    /// Client `client` waits `ticks` for uid 1 while its live holder has
    /// it: verified, then queued.
    fn queue(&mut self, client: u32, now: Instant, ticks: u32) {
        assert_eq!(
            self.request(client, wait(1, client, now, ticks)),
            [verify(1, 1)]
        );
        assert_eq!(self.verified(1, Verdict::Alive), [queued(client)]);
    }

    pub(super) fn tick(&mut self, now: Instant) -> Vec<Action<u32>> {
        let mut out = Vec::new();
        self.registry.handle_timeout(now, &mut out);
        out
    }
}

#[test]
fn a_wait_for_a_free_uid_is_served_like_a_book() {
    let mut h = Harness::new(ROOMY);
    let now = Instant::now();
    assert_eq!(h.request(7, wait(1, 7, now, 5)), [verify(1, 7)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(7, Answer::Granted)]);
    assert_eq!(
        h.registry.waiting.next_timeout(),
        None,
        "nothing to wait for"
    );
}

#[test]
fn waiters_are_granted_in_arrival_order_as_the_uid_frees() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    h.queue(4, now, 60);
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::CheckedOut), verify(1, 2)]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
    assert_eq!(
        h.request(2, check_out(1, 2)),
        [answer(2, Answer::CheckedOut), verify(1, 3)]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
    assert_eq!(h.registry.waiters(), 1);
}

#[test]
fn a_wait_ends_with_no_at_its_deadline() {
    let (mut h, now) = held();
    h.queue(2, now, 3);
    h.queue(3, now, 5);
    assert_eq!(h.registry.poll_timeout(), Some(now + TICK), "the probe");
    assert_eq!(
        h.tick(now + TICK * 3 - Duration::from_millis(1)),
        [verify(1, 1)]
    );
    h.verified(1, Verdict::Alive);
    assert_eq!(h.tick(now + TICK * 3), [answer(2, Answer::Denied)]);
    assert_eq!(h.registry.waiters(), 1);
    // After its deadline, a waiter is not granted even if the uid frees
    // while it is verified.
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::CheckedOut), verify(1, 3)]
    );
    assert_eq!(h.tick(now + TICK * 5), []);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Denied)]);
    assert!(h.registry.is_empty());
}

#[test]
fn a_waiter_that_leaves_never_costs_the_others_a_turn() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    h.ended(2, 1);
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::CheckedOut), verify(1, 3)]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
}

#[test]
fn a_waiter_that_leaves_while_verified_is_not_granted() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    h.request(1, check_out(1, 1));
    h.ended(2, 1);
    // It is not answered: its connection is gone.
    assert_eq!(h.verified(1, Verdict::Alive), [verify(1, 3)]);
}

#[test]
fn a_waiter_that_fails_its_verification_is_skipped() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    h.request(1, check_out(1, 1));
    assert_eq!(
        h.verified(1, Verdict::Silent),
        [answer(2, Answer::Denied), verify(1, 3)]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
}

#[test]
fn a_holder_that_dies_is_probed_and_its_waiters_served() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    // One probe for the uid, however many wait.
    assert_eq!(h.tick(now + TICK), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Silent), []);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)), "silence is life");
    assert_eq!(h.tick(now + TICK * 2), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1), verify(1, 2)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
}

#[test]
fn no_probe_while_a_verification_is_in_flight() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    assert_eq!(h.request(4, book(1, 4)), [verify(1, 1)]);
    assert_eq!(h.tick(now + TICK), []);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(4, Answer::Denied)]);
    assert_eq!(h.tick(now + TICK * 2), [verify(1, 1)]);
}

#[test]
fn waiters_go_before_the_contender_that_found_the_holder_dead() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    assert_eq!(h.request(4, book(1, 4)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1), verify(1, 2)]);
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(2, Answer::Granted), answer(4, Answer::Denied)]
    );
}

#[test]
fn an_undelivered_grant_goes_to_the_next_waiter() {
    let (mut h, now) = held();
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    h.request(1, check_out(1, 1));
    h.verified(1, Verdict::Alive);
    let mut out = Vec::new();
    assert!(h.registry.grant_undelivered(uid(1), handshake(2), &mut out));
    assert_eq!(out, [verify(1, 3)]);
}

#[test]
fn a_wait_of_no_time_is_a_single_try() {
    let (mut h, now) = held();
    assert_eq!(h.request(2, wait(1, 2, now, 0)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Denied)]);
    assert_eq!(h.registry.waiters(), 0);
}

#[test]
fn full_queues_refuse_without_an_answer() {
    let mut limits = limits(100, 100);
    limits.max_waiters_per_id = 2;
    limits.max_waiters = 3;
    let mut h = Harness::new(limits);
    let now = Instant::now();
    h.grant(1, 1);
    h.grant(2, 9);
    h.queue(2, now, 60);
    h.queue(3, now, 60);
    assert_eq!(h.request(4, wait(1, 4, now, 60)), [verify(1, 1)]);
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [refused(4, total(Limit::WaitersForId))]
    );
    assert_eq!(h.request(5, wait(2, 5, now, 60)), [verify(2, 9)]);
    assert_eq!(h.verified(2, Verdict::Alive), [queued(5)]);
    assert_eq!(h.request(6, wait(2, 6, now, 60)), [verify(2, 9)]);
    assert_eq!(
        h.verified(2, Verdict::Alive),
        [refused(6, total(Limit::Waiters))]
    );
}

/// Waiters that come and go leave stale deadlines in the heap; it is
/// rebuilt before they outnumber the live ones.
#[test]
fn timers_stay_proportional_to_the_waiters() {
    let (mut h, now) = held();
    for client in 2..10_000 {
        h.queue(client, now, 3600);
        h.ended(client, 1);
    }
    assert_eq!(h.registry.waiters(), 0);
    assert!(
        h.registry.waiting.timers() < 100,
        "{}",
        h.registry.waiting.timers()
    );
}

#[test]
fn a_booking_says_when_it_was_granted_and_how_many_wait_for_it() {
    let (mut h, now) = held();
    assert_eq!(h.registry.holder(&uid(1)).map(|b| b.since), Some(0));
    assert_eq!(h.registry.waiters_for(&uid(1)), 0);
    h.queue(2, now, 10);
    h.queue(3, now, 10);
    assert_eq!(h.registry.waiters_for(&uid(1)), 2);
    assert_eq!(h.registry.waiters_for(&uid(2)), 0);
    // Handed over later: stamped with the time it changed hands.
    h.registry.set_wall_clock(1_800_000_000);
    h.request(1, check_out(1, 1));
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
    assert_eq!(
        h.registry.holder(&uid(1)).map(|b| (b.since, b.handshake)),
        Some((1_800_000_000, handshake(2)))
    );
    assert_eq!(h.registry.waiters_for(&uid(1)), 1);
}
