//! Reclaiming at the bookings bound: rounds that walk the table past old
//! live holders, one round per scope so that nobody waits for another
//! user's, and the rest of a scope whose round freed nothing.

use std::time::Instant;

use super::*;
use crate::registry::model::TICK;

/// The refusal for `user`'s share of the bookings.
const SHARE_FULL: Refusal = Refusal::Full {
    limit: Limit::Bookings,
    share: true,
};

/// Room for 6 bookings, shared by 3 users (2 each): client `c` is user
/// `c % 3` (see `model::user`).
fn three_shares() -> Limits {
    let mut limits = limits(6, 100);
    limits.shares = 3;
    limits
}

impl Harness {
    /// Every verification of `uids` ends with `verdict`, in order: the
    /// actions of the last.
    fn all_verified(&mut self, uids: &[u8], verdict: Verdict) -> Vec<Action<u32>> {
        let (last, first) = uids.split_last().expect("some uids");
        for &u in first {
            let out = self.verified(u, verdict);
            assert!(out.iter().all(|a| matches!(a, Action::Dropped { .. })));
        }
        self.verified(*last, verdict)
    }
}

#[test]
fn old_live_holders_do_not_hide_the_dead_from_further_rounds() {
    let mut h = Harness::new(limits(8, 100));
    let live = [10, 11, 12, 13];
    let dead = [14, 15, 16, 17];
    for (client, u) in live.into_iter().chain(dead).enumerate() {
        h.grant(u, client as u32);
    }
    let verify_all = |uids: [u8; 4]| uids.map(|u| verify(u, u32::from(u) - 10));
    assert_eq!(h.request(20, book(20, 20)), verify_all(live));
    // The live are checked now: the next round looks past them.
    assert_eq!(h.all_verified(&live, Verdict::Alive), verify_all(dead));
    let freed = h.all_verified(&dead, Verdict::Dead);
    assert_eq!(freed, [dropped(17), verify(20, 20)]);
    assert_eq!(
        h.verified(20, Verdict::Alive),
        [answer(20, Answer::Granted)]
    );
    for u in dead {
        assert_eq!(h.holder_handshake(u), None);
    }
    for u in live {
        assert!(h.holder_handshake(u).is_some(), "{u} kept");
    }
}

#[test]
fn a_request_for_its_own_share_gets_its_own_round_while_another_users_runs() {
    let mut h = Harness::new(three_shares());
    // User 1 holds its share, alive; user 2 its share, dead.
    h.grant(10, 1);
    h.grant(11, 4);
    h.grant(12, 2);
    h.grant(13, 5);
    // User 1's round is in flight, its holders silent for now.
    assert_eq!(h.request(7, book(20, 7)), [verify(10, 1), verify(11, 4)]);
    assert_eq!(h.request(1, book(21, 1)), [], "parked in its own round");
    // User 2 gets a round of its own bookings, not a place in user 1's.
    assert_eq!(h.request(8, book(22, 8)), [verify(12, 2), verify(13, 5)]);
    assert_eq!(h.verified(12, Verdict::Dead), [dropped(12)]);
    assert_eq!(h.verified(13, Verdict::Dead), [dropped(13), verify(22, 8)]);
    assert_eq!(h.verified(22, Verdict::Alive), [answer(8, Answer::Granted)]);
    // User 1's round goes on, its requests still parked in it.
    assert_eq!(h.verified(10, Verdict::Silent), []);
    assert_eq!(h.registry.pending_requests, 2);
}

#[test]
fn a_scope_whose_round_freed_nothing_rests_and_refuses_new_requests_at_once() {
    let mut limits = three_shares();
    limits.max_bookings = 3;
    let mut h = Harness::new(limits);
    let now = Instant::now();
    h.tick(now);
    // User 0's share is one booking, alive.
    h.grant(10, 0);
    assert_eq!(h.request(3, book(11, 3)), [verify(10, 0)]);
    for _ in 1..RECLAIM_ROUNDS {
        assert_eq!(h.verified(10, Verdict::Alive), [verify(10, 0)]);
    }
    assert_eq!(h.verified(10, Verdict::Alive), [refused(3, SHARE_FULL)]);
    // Resting: refused without a call-back, until the rest is over.
    assert_eq!(h.registry.poll_timeout(), Some(now + TICK));
    assert_eq!(h.request(6, book(12, 6)), [refused(6, SHARE_FULL)]);
    assert_eq!(h.tick(now + TICK / 2), []);
    assert_eq!(h.request(6, book(12, 6)), [refused(6, SHARE_FULL)]);
    // Another user's scope does not rest: user 1 reclaims its dead.
    h.grant(13, 1);
    assert_eq!(h.request(4, book(14, 4)), [verify(13, 1)]);
    assert_eq!(h.verified(13, Verdict::Dead), [dropped(13), verify(14, 4)]);
    assert_eq!(h.tick(now + TICK), []);
    assert!(h.registry.reclaims.is_empty(), "a rest over is forgotten");
    assert_eq!(h.request(6, book(12, 6)), [verify(10, 0)]);
}
