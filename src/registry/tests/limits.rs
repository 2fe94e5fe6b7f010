//! The bounds on pending requests, per uid and in all, and bookings: past each, a request
//! is refused without an answer, and room comes back.

use super::*;

/// A request that waits behind a verification is announced, so that the
/// reactor can bound its wait; one served at once is not.
#[test]
fn a_pending_request_is_announced() {
    let mut h = Harness::new(ROOMY);
    let mut out = Vec::new();
    h.registry.request(0, LOCAL, 0, book(1, 0), &mut out);
    assert_eq!(out, [verify(1, 0)]);
    out.clear();
    h.registry.request(1, LOCAL, 1, book(1, 1), &mut out);
    assert_eq!(out, [Action::Pending { to: 1 }]);
}

/// Past `max_pending` requests pending in all, one more that would
/// be pending is refused, but a check out, or a request for a uid with no
/// verification in flight, still gets in.
#[test]
fn past_the_pending_bound_only_check_outs_may_be_pending() {
    let mut limits = limits(100, 100);
    limits.max_pending = 2;
    let mut h = Harness::new(limits);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.request(3, book(1, 3)), []);
    assert_eq!(h.request(4, notify(1)), []);
    assert_eq!(
        h.request(5, book(1, 5)),
        [refused(5, total(Limit::Pending))]
    );
    assert_eq!(h.request(6, book(2, 6)), [verify(2, 6)], "another uid");
    assert_eq!(h.request(1, check_out(1, 1)), []);
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [
            answer(2, Answer::Denied),
            answer(3, Answer::Denied),
            verify_with_message(1, 1, 4)
        ]
    );
}

#[test]
fn too_many_pending_for_one_id_are_refused_without_an_answer() {
    let mut h = Harness::new(limits(100, 2));
    h.request(0, book(1, 0));
    assert_eq!(h.request(1, book(1, 1)), []);
    assert_eq!(h.request(2, check_out(1, 2)), []);
    assert_eq!(
        h.request(3, book(1, 3)),
        [refused(3, total(Limit::PendingForId))]
    );
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [
            answer(0, Answer::Granted),
            answer(1, Answer::Denied),
            answer(2, Answer::NotCheckedOut)
        ]
    );
    // Once the pending requests are served, there is room again.
    assert_eq!(h.request(3, book(1, 3)), [verify(1, 0)]);
}

#[test]
fn the_booking_limit_refuses_without_an_answer_once_the_holders_prove_alive() {
    let mut h = Harness::new(limits(2, 100));
    h.grant(1, 1);
    // A candidate in flight counts against the limit; the held booking is
    // verified before the book is refused.
    assert_eq!(h.request(2, book(2, 2)), [verify(2, 2)]);
    assert_eq!(h.request(3, book(3, 3)), [verify(1, 1)]);
    assert_eq!(h.verified(2, Verdict::Alive), [answer(2, Answer::Granted)]);
    // Further rounds, the least recently checked first, and no more than
    // its rounds: silence keeps a booking.
    let round = [verify(2, 2), verify(1, 1)];
    assert_eq!(h.verified(1, Verdict::Alive), round);
    assert_eq!(h.verified(2, Verdict::Alive), []);
    assert_eq!(h.verified(1, Verdict::Silent), round);
    assert_eq!(h.verified(2, Verdict::Silent), []);
    assert_eq!(
        h.verified(1, Verdict::Silent),
        [refused(3, total(Limit::Bookings))],
    );
    // Contending for a held uid is still answered: it needs no new booking.
    assert_eq!(h.request(4, book(1, 4)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(4, Answer::Denied)]);
    // A check out makes room.
    h.request(1, check_out(1, 1));
    assert_eq!(h.request(3, book(3, 3)), [verify(3, 3)]);
}

#[test]
fn a_failed_candidate_gives_back_its_reservation() {
    let mut h = Harness::new(limits(1, 100));
    h.request(1, book(1, 1));
    h.verified(1, Verdict::Dead);
    h.grant(2, 2);
}

#[test]
fn restored_bookings_are_held_within_the_limit() {
    let mut h = Harness::new(limits(1, 1));
    let restored = |client: u32, u: u8| Booking {
        uid: uid(u),
        handshake: handshake(client),
        ip: LOCAL,
        port: port(client),
        since: 0,
        user: user(client),
        checked: 0,
        token: 0,
    };
    assert!(h.registry.restore(restored(1, 1)));
    assert!(!h.registry.restore(restored(2, 2)), "past the limit");
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    // Like any holder, it is verified at the next contention.
    assert_eq!(h.request(3, book(1, 3)), [verify(1, 1)]);
    let held: Vec<Uid> = h.registry.bookings().map(|b| b.uid).collect();
    assert_eq!(held, [uid(1)]);
}
