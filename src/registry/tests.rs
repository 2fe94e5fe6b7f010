use crate::handshake::Handshake;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::*;

use super::model::{LOCAL, book, check_out, handshake, limits, notify, port, uid, user};
use crate::wire::Limit;
use crate::wire::Request;
use harness::*;

#[test]
fn answers_are_0_6_0_bytes() {
    assert_eq!(Answer::Granted.byte(), 1);
    assert_eq!(Answer::CheckedOut.byte(), 1);
    assert_eq!(Answer::Denied.byte(), 0);
    assert_eq!(Answer::NotCheckedOut.byte(), 0);
}

#[test]
fn notify_answers_have_their_own_bytes() {
    assert_eq!(Answer::Delivered.byte(), 1);
    assert_eq!(Answer::NoHolder.byte(), 0);
    assert_eq!(Answer::Declined.byte(), 2);
}

#[test]
fn status_asks_nothing_of_the_registry() {
    assert_eq!(Ask::of(&Request::Status, Instant::now()), None);
    let message = Request::Notify {
        uid: uid(1),
        message: vec![1, 2, 3],
    };
    assert_eq!(Ask::of(&message, Instant::now()), Some(notify(1)));
}

#[test]
fn a_free_uid_is_granted_once_the_booker_proves_alive() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 7);
    assert_eq!(h.holder_handshake(1), Some(handshake(7)));
    assert_eq!(h.registry.len(), 1);
    assert!(h.registry.is_idle());
}

#[test]
fn a_booker_that_does_not_prove_alive_is_denied() {
    let mut h = Harness::new(ROOMY);
    assert_eq!(h.request(7, book(1, 7)), [verify(1, 7)]);
    assert_eq!(h.verified(1, Verdict::Dead), [answer(7, Answer::Denied)]);
    assert!(h.registry.is_empty());
    assert!(h.registry.is_idle());
}

#[test]
fn verification_calls_back_the_requesters_own_address() {
    let mut h = Harness::new(ROOMY);
    let mut out = Vec::new();
    let ip: IpAddr = "127.1.2.3".parse().unwrap();
    h.registry
        .request(7, ResponderIp::new(ip).unwrap(), 7, book(1, 7), &mut out);
    assert_eq!(
        out,
        [Action::Verify {
            uid: uid(1),
            handshake: handshake(7),
            at: SocketAddr::new(ip, port(7)),
            message_from: None,
        }]
    );
}

#[test]
fn a_live_holder_keeps_its_booking() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Denied)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn a_dead_holder_loses_its_booking_to_a_live_booker() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1), verify(1, 2)]);
    assert_eq!(h.holder_handshake(1), None);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(2)));
}

#[test]
fn a_dead_holder_and_a_dead_booker_leave_the_uid_free() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    h.verified(1, Verdict::Dead);
    assert_eq!(h.verified(1, Verdict::Dead), [answer(2, Answer::Denied)]);
    assert!(h.registry.is_empty());
    assert!(h.registry.is_idle());
}

#[test]
fn the_holder_dying_between_two_books() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Denied)]);
    // Client 1 dies now; the next book finds out.
    assert_eq!(h.request(3, book(1, 3)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1), verify(1, 3)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(3)));
}

#[test]
fn contenders_on_a_free_uid_get_exactly_one_grant() {
    let mut h = Harness::new(ROOMY);
    assert_eq!(h.request(0, book(1, 0)), [verify(1, 0)]);
    for client in 1..8 {
        assert_eq!(h.request(client, book(1, client)), []);
    }
    let mut expected = vec![answer(0, Answer::Granted)];
    expected.extend((1..8).map(|client| answer(client, Answer::Denied)));
    assert_eq!(h.verified(1, Verdict::Alive), expected);
    assert!(h.registry.is_idle());
}

/// Every pattern of live and dead contenders: the first live one in arrival
/// order wins, everyone else is denied, and candidates are verified one at
/// a time.
#[test]
fn contenders_are_verified_in_arrival_order_until_one_is_alive() {
    const N: u32 = 5;
    for alive_mask in 0u32..1 << N {
        let alive = |client: u32| alive_mask & 1 << client != 0;
        let mut h = Harness::new(ROOMY);
        let mut replies = Vec::new();
        let mut in_flight = Vec::new();
        for client in 0..N {
            in_flight.extend(h.request(client, book(1, client)));
        }
        while let Some(action) = in_flight.pop() {
            let Action::Verify { handshake: hs, .. } = action else {
                panic!("unexpected {action:?}");
            };
            let client = (0..N).find(|&c| handshake(c) == hs).unwrap();
            let verdict = if alive(client) {
                Verdict::Alive
            } else {
                Verdict::Dead
            };
            for action in h.verified(1, verdict) {
                match action {
                    Action::Verify { .. } => in_flight.push(action),
                    other => replies.push(other),
                }
            }
            assert!(in_flight.len() <= 1, "one verification at a time");
        }
        let winner = (0..N).find(|&c| alive(c));
        let grants: Vec<_> = replies
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Reply {
                        answer: Answer::Granted,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            grants.len(),
            usize::from(winner.is_some()),
            "mask {alive_mask:b}"
        );
        if let Some(winner) = winner {
            assert_eq!(grants[0], &answer(winner, Answer::Granted));
            assert_eq!(h.holder_handshake(1), Some(handshake(winner)));
        }
        assert_eq!(replies.len(), N as usize, "everyone is answered");
        assert!(h.registry.is_idle());
    }
}

#[test]
fn check_out_needs_the_holders_handshake() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(
        h.request(2, check_out(1, 2)),
        [answer(2, Answer::NotCheckedOut)]
    );
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::CheckedOut)]
    );
    assert_eq!(h.holder_handshake(1), None);
    // A stale check out, after the booking is gone.
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::NotCheckedOut)]
    );
}

#[test]
fn check_out_names_the_uid_as_well() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.grant(2, 2);
    // Client 1's handshake with client 2's uid.
    assert_eq!(
        h.request(1, check_out(2, 1)),
        [answer(1, Answer::NotCheckedOut)]
    );
    assert_eq!(h.registry.len(), 2);
}

#[test]
fn a_check_out_during_a_verification_waits_its_turn() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.request(1, check_out(1, 1)), []);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(2, Answer::Denied), answer(1, Answer::CheckedOut)]
    );
    assert_eq!(h.holder_handshake(1), None);
}

#[test]
fn a_book_after_a_check_out_in_the_same_line_is_verified_afresh() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    h.request(1, check_out(1, 1));
    h.request(3, book(1, 3));
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [
            answer(2, Answer::Denied),
            answer(1, Answer::CheckedOut),
            verify(1, 3)
        ]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Granted)]);
}

#[test]
fn a_forged_check_out_during_a_verification_releases_nothing() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    h.request(2, check_out(1, 2));
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(2, Answer::Denied), answer(2, Answer::NotCheckedOut)]
    );
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn other_uids_do_not_wait_for_a_verification() {
    let mut h = Harness::new(ROOMY);
    h.request(1, book(1, 1));
    assert_eq!(h.request(2, book(2, 2)), [verify(2, 2)]);
    assert_eq!(h.verified(2, Verdict::Alive), [answer(2, Answer::Granted)]);
}

#[test]
fn an_undelivered_grant_is_dropped() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert!(h.grant_undelivered(uid(1), handshake(1)));
    assert!(h.registry.is_empty());
}

#[test]
fn an_undelivered_grant_never_drops_someone_elses_booking() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert!(!h.grant_undelivered(uid(1), handshake(2)));
    assert!(!h.grant_undelivered(uid(2), handshake(1)));
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn a_booking_that_changes_hands_during_its_verification_is_served_afresh() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert!(h.grant_undelivered(uid(1), handshake(1)));
    // The verdict on client 1 no longer says anything about the uid.
    assert_eq!(h.verified(1, Verdict::Alive), [verify(1, 2)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
}

#[test]
fn an_inconclusive_holder_check_refuses_and_keeps_the_booking() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    h.request(3, book(1, 3));
    assert_eq!(
        h.verified(1, Verdict::Inconclusive),
        [refused(2, Refusal::Inconclusive), verify(1, 1)]
    );
    assert_eq!(h.verified(1, Verdict::Alive), [answer(3, Answer::Denied)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn an_inconclusive_candidate_check_refuses_and_grants_nothing() {
    let mut h = Harness::new(ROOMY);
    h.request(1, book(1, 1));
    assert_eq!(
        h.verified(1, Verdict::Inconclusive),
        [refused(1, Refusal::Inconclusive)]
    );
    assert!(h.registry.is_empty());
    assert!(h.registry.is_idle());
}

#[test]
fn the_holder_booking_again_is_denied() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(1, book(1, 1)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(1, Answer::Denied)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn a_stray_verdict_is_ignored() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.verified(1, Verdict::Dead), []);
    assert_eq!(h.verified(2, Verdict::Alive), []);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

mod ended;
mod harness;
mod exhaustive;
mod exhaustive_lines;
mod exhaustive_shared;
mod limits;
mod lines;
mod notify;
mod properties;
mod reclaim;
mod shared;
mod silence;
mod tokens;
mod users;
mod waiting;
