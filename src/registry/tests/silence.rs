//! A verification that gets no answer proves nothing: a silent holder keeps
//! its booking, and a silent booker is not granted.

use super::*;

#[test]
fn a_silent_holder_keeps_its_booking() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Silent), [answer(2, Answer::Denied)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    // It can still check out once it speaks again.
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::CheckedOut)]
    );
}

#[test]
fn a_silent_booker_is_not_granted() {
    let mut h = Harness::new(ROOMY);
    assert_eq!(h.request(7, book(1, 7)), [verify(1, 7)]);
    assert_eq!(h.verified(1, Verdict::Silent), [answer(7, Answer::Denied)]);
    assert!(h.registry.is_empty());
    assert!(h.registry.is_idle());
}

#[test]
fn a_notify_to_a_silent_holder_is_declined() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(9, notify(1)), [verify_with_message(1, 1, 9)]);
    assert_eq!(
        h.verified(1, Verdict::Silent),
        [answer(9, Answer::Declined)]
    );
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

/// Books queued behind a silent holder's verification are denied at once,
/// not each made to wait for another rw timeout.
#[test]
fn books_waiting_on_a_silent_holder_are_denied_without_asking_again() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.request(3, book(1, 3)), []);
    assert_eq!(
        h.verified(1, Verdict::Silent),
        [answer(2, Answer::Denied), answer(3, Answer::Denied)]
    );
    assert!(h.registry.is_idle());
}

/// Silence once, then proof of death: only the proof frees the id.
#[test]
fn a_silent_holder_is_replaced_only_once_it_proves_dead() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    assert_eq!(h.verified(1, Verdict::Silent), [answer(2, Answer::Denied)]);
    assert_eq!(h.request(2, book(1, 2)), [verify(1, 1)]);
    assert_eq!(h.verified(1, Verdict::Dead), [dropped(1), verify(1, 2)]);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(2)));
}
