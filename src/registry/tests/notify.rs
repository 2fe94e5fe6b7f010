//! NOTIFY: handed to the holder on its own verification, never answered
//! from an earlier one.

use super::*;

#[test]
fn a_notify_for_a_free_uid_has_no_holder() {
    let mut h = Harness::new(ROOMY);
    assert_eq!(h.request(9, notify(1)), [answer(9, Answer::NoHolder)]);
}

#[test]
fn a_notify_is_handed_over_on_the_holders_verification() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    assert_eq!(h.request(9, notify(1)), [verify_with_message(1, 1, 9)]);
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(9, Answer::Delivered)]
    );
    assert_eq!(h.request(9, notify(1)), [verify_with_message(1, 1, 9)]);
    assert_eq!(
        h.verified(1, Verdict::Declined),
        [answer(9, Answer::Declined)]
    );
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn a_notify_to_a_dead_holder_frees_the_uid() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(9, notify(1));
    assert_eq!(
        h.verified(1, Verdict::Dead),
        [dropped(1), answer(9, Answer::NoHolder)]
    );
    assert!(h.registry.is_empty());
    assert!(h.registry.is_idle());
}

#[test]
fn a_notify_is_never_answered_from_an_earlier_verification() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(2, book(1, 2));
    h.request(9, notify(1));
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(2, Answer::Denied), verify_with_message(1, 1, 9)]
    );
    assert_eq!(
        h.verified(1, Verdict::Alive),
        [answer(9, Answer::Delivered)]
    );
}

#[test]
fn an_inconclusive_notify_is_refused() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    h.request(9, notify(1));
    assert_eq!(
        h.verified(1, Verdict::Inconclusive),
        [refused(9, Refusal::Inconclusive)]
    );
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
}

#[test]
fn a_message_withheld_from_a_live_holder_says_why_and_keeps_the_booking() {
    let mut h = Harness::new(ROOMY);
    h.grant(1, 1);
    for (why, answer_byte) in [
        (Withheld::OtherUser, Answer::OtherUser),
        (Withheld::UserUnknown, Answer::UserUnknown),
    ] {
        assert_eq!(h.request(9, notify(1)), [verify_with_message(1, 1, 9)]);
        assert_eq!(
            h.verified(1, Verdict::Withheld(why)),
            [answer(9, answer_byte)]
        );
        assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    }
    // The holder proved alive on that call: a book behind it is denied.
    h.request(9, notify(1));
    h.request(2, book(1, 2));
    assert_eq!(
        h.verified(1, Verdict::Withheld(Withheld::OtherUser)),
        [answer(9, Answer::OtherUser), answer(2, Answer::Denied)]
    );
}
