//! Users and shares, per-user ids, reclaiming at the bookings bound, and
//! the sweep.

use std::time::{Duration, Instant};

use super::*;
use crate::registry::model::line;

/// Room for 4 bookings, shared by 2 users (2 each): clients 0 and 3 are
/// user 0, client 1 user 1 (see `model::user`).
fn shared() -> Limits {
    let mut limits = limits(4, 100);
    limits.shares = 2;
    limits
}

#[test]
fn a_user_at_its_share_is_refused_while_others_still_book() {
    let mut h = Harness::new(shared());
    h.grant(1, 0);
    h.grant(2, 3);
    // User 0 is at its share: its own bookings are verified, in rounds.
    let round = [verify(1, 0), verify(2, 3)];
    assert_eq!(h.request(6, book(3, 6)), round);
    for _ in 1..RECLAIM_ROUNDS {
        assert_eq!(h.verified(1, Verdict::Alive), []);
        assert_eq!(h.verified(2, Verdict::Silent), round);
    }
    assert_eq!(h.verified(1, Verdict::Alive), []);
    assert_eq!(
        h.verified(2, Verdict::Silent),
        [refused(
            6,
            Refusal::Full {
                limit: Limit::Bookings,
                share: true
            }
        )]
    );
    h.grant(3, 1);
    let usage = h.registry.usage();
    assert_eq!(
        usage
            .iter()
            .map(|&(u, used)| (u, used.bookings))
            .collect::<Vec<_>>(),
        [(0, 2), (1, 1)]
    );
}

#[test]
fn reclaiming_frees_a_dead_booking_and_grants_the_parked_book() {
    let mut h = Harness::new(limits(1, 100));
    h.grant(1, 1);
    let mut out = Vec::new();
    h.registry.request(2, LOCAL, user(2), book(2, 2), &mut out);
    assert_eq!(out, [verify(1, 1), Action::Pending { to: 2 }]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1), verify(2, 2)]);
    assert_eq!(h.verified(2, Verdict::Alive), [answer(2, Answer::Granted)]);
    assert_eq!(h.holder_handshake(1), None);
}

#[test]
fn a_parked_book_whose_connection_ends_leaves_the_park() {
    let mut h = Harness::new(limits(1, 100));
    h.grant(1, 1);
    assert_eq!(h.request(2, book(2, 2)), [verify(1, 1)]);
    assert_eq!(h.ended(2, 2), []);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1)]);
    assert!(h.registry.usage().is_empty());
}

#[test]
fn a_per_user_id_is_refused_to_other_users_and_messaged_by_root() {
    let mut h = Harness::new(ROOMY);
    let id = Uid::per_user(b"editor", 5);
    let book_id = Ask::Book {
        uid: id,
        handshake: handshake(1),
        port: port(1),
    };
    let mut out = Vec::new();
    h.registry.request(1, LOCAL, 6, book_id, &mut out);
    assert_eq!(out, [refused(1, Refusal::OtherUsersId)]);
    out.clear();
    h.registry
        .request(2, LOCAL, 6, Ask::Notify { uid: id }, &mut out);
    assert_eq!(out, [refused(2, Refusal::OtherUsersId)]);
    out.clear();
    h.registry
        .request(3, LOCAL, 0, Ask::Notify { uid: id }, &mut out);
    assert_eq!(out, [answer(3, Answer::NoHolder)], "root may message it");
    out.clear();
    h.registry.request(4, LOCAL, 5, book_id, &mut out);
    assert_eq!(out, [verify_id(id, 1)], "its own user books it");
}

fn verify_id(id: Uid, client: u32) -> Action<u32> {
    Action::Verify {
        uid: id,
        handshake: handshake(client),
        at: SocketAddr::new(LOCAL.into(), port(client)),
        message_from: None,
    }
}

/// A registry whose sweep verifies bookings 10 s old, one a second, told
/// the wall clock `wall` and the time `now`.
fn swept(wall: u64) -> (Harness, Instant) {
    let mut limits = ROOMY;
    limits.sweep_interval = Duration::from_secs(1);
    limits.sweep_age = Duration::from_secs(10);
    let mut h = Harness::new(limits);
    h.registry.set_wall_clock(wall);
    let now = Instant::now();
    h.registry.handle_timeout(now, &mut Vec::new());
    (h, now)
}

impl Harness {
    fn sweep_at(&mut self, now: Instant, wall: u64) -> Vec<Action<u32>> {
        self.registry.set_wall_clock(wall);
        let mut out = Vec::new();
        self.registry.handle_timeout(now, &mut out);
        out
    }
}

#[test]
fn the_sweep_verifies_old_call_back_bookings_one_per_interval() {
    let (mut h, now) = swept(1_000);
    h.grant(1, 1);
    h.grant(2, 2);
    assert_eq!(
        h.registry.poll_timeout(),
        Some(now + Duration::from_secs(10))
    );
    assert_eq!(
        h.sweep_at(now + Duration::from_secs(5), 1_005),
        [],
        "too young"
    );
    let later = now + Duration::from_secs(10);
    assert_eq!(h.sweep_at(later, 1_010), [verify(1, 1)]);
    assert_eq!(h.sweep_at(later, 1_010), [], "one per interval");
    assert_eq!(h.verified(1, Verdict::Silent), [], "silence keeps it");
    let second = later + Duration::from_secs(1);
    assert_eq!(h.sweep_at(second, 1_011), [verify(2, 2)]);
    assert_eq!(h.verified(2, Verdict::Dead), [dropped(2)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    // The pass is over: the silent holder is called again an age later,
    // not at every step.
    let third = second + Duration::from_secs(1);
    assert_eq!(h.sweep_at(third, 1_012), [], "the pass ends");
    assert_eq!(
        h.registry.poll_timeout(),
        Some(third + Duration::from_secs(10))
    );
    assert_eq!(h.sweep_at(third + Duration::from_secs(9), 1_021), []);
    let next_pass = third + Duration::from_secs(10);
    assert_eq!(h.sweep_at(next_pass, 1_022), [verify(1, 1)]);
}

#[test]
fn the_sweep_skips_lined_bookings_and_sleeps_without_call_backs() {
    let mut limits = Limits {
        max_lines: 10,
        ..ROOMY
    };
    limits.sweep_age = Duration::from_secs(10);
    let mut h = Harness::new(limits);
    h.registry.set_wall_clock(1_000);
    let now = Instant::now();
    h.registry.handle_timeout(now, &mut Vec::new());
    assert_eq!(h.request(1, line(1, 1, now, 5)), [answer(1, Answer::Lined)]);
    assert_eq!(h.registry.poll_timeout(), None, "only a lined booking");
    assert_eq!(h.sweep_at(now + Duration::from_secs(60), 1_060), []);
}
