//! Lines: a booking kept on its holder's own connection is proof of life
//! while it is open, and ends when it ends.

use std::time::Instant;

use super::*;
use crate::registry::model::{TICK, attach, line, wait};

/// Room for every booking, and for `max_lines` lines.
fn lines(max_lines: usize) -> Limits {
    Limits { max_lines, ..ROOMY }
}

/// A registry whose uid 1 client 1 holds on its line.
fn held_on_a_line() -> (Harness, Instant) {
    let mut h = Harness::new(lines(10));
    let now = Instant::now();
    assert_eq!(h.request(1, line(1, 1, now, 0)), [answer(1, Answer::Lined)]);
    (h, now)
}

fn close_line(to: u32) -> Action<u32> {
    Action::CloseLine { to }
}

#[test]
fn a_line_is_granted_without_a_call_back() {
    let (h, _) = held_on_a_line();
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    assert!(h.registry.has_line(&uid(1)));
    assert_eq!(h.registry.lines(), 1);
    assert!(h.registry.is_idle());
}

#[test]
fn contenders_against_a_lined_holder_are_answered_without_a_call_back() {
    let (mut h, now) = held_on_a_line();
    assert_eq!(h.request(2, book(1, 2)), [answer(2, Answer::Denied)]);
    assert_eq!(
        h.request(3, line(1, 3, now, 0)),
        [answer(3, Answer::Denied)]
    );
    assert_eq!(h.request(4, wait(1, 4, now, 5)), [Action::Queued { to: 4 }]);
    // Nobody probes a lined holder for its waiters: its line's end frees it.
    let mut out = Vec::new();
    for tick in 1..=3 {
        h.registry.handle_timeout(now + TICK * tick, &mut out);
    }
    assert_eq!(out, []);
}

#[test]
fn the_lines_end_releases_and_serves_the_queue_in_arrival_order() {
    let (mut h, now) = held_on_a_line();
    assert_eq!(h.request(2, wait(1, 2, now, 5)), [Action::Queued { to: 2 }]);
    assert_eq!(h.request(3, line(1, 3, now, 5)), [Action::Queued { to: 3 }]);
    // Another connection's end frees nothing.
    assert_eq!(h.ended(9, 1), []);
    assert_eq!(h.ended(1, 1), [dropped(1), verify(1, 2)]);
    assert_eq!(h.holder_handshake(1), None);
    assert_eq!(h.verified(1, Verdict::Alive), [answer(2, Answer::Granted)]);
    assert!(!h.registry.has_line(&uid(1)));
    // The first waiter holds it under the call-back rules; when it proves
    // dead, the next, on a line, is granted at once.
    let mut out = Vec::new();
    h.registry.handle_timeout(now + TICK * 2, &mut out);
    assert_eq!(out, [verify(1, 2)]);
    assert_eq!(
        h.verified(1, Verdict::Dead),
        [dropped(1), answer(3, Answer::Lined)]
    );
    assert!(h.registry.has_line(&uid(1)));
}

#[test]
fn a_waiter_on_a_line_is_granted_at_once_when_the_line_ends() {
    let (mut h, now) = held_on_a_line();
    assert_eq!(h.request(3, line(1, 3, now, 5)), [Action::Queued { to: 3 }]);
    assert_eq!(h.ended(1, 1), [dropped(1), answer(3, Answer::Lined)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(3)));
}

#[test]
fn a_check_out_on_the_line_releases() {
    let (mut h, _) = held_on_a_line();
    assert_eq!(
        h.request(1, check_out(1, 1)),
        [answer(1, Answer::CheckedOut)]
    );
    assert_eq!(h.holder_handshake(1), None);
    assert_eq!(h.registry.lines(), 0);
}

#[test]
fn a_check_out_elsewhere_closes_the_line() {
    let (mut h, _) = held_on_a_line();
    assert_eq!(
        h.request(5, check_out(1, 1)),
        [answer(5, Answer::CheckedOut), close_line(1)]
    );
    assert_eq!(h.registry.lines(), 0);
    // A forged one changes nothing.
    let (mut h, _) = held_on_a_line();
    assert_eq!(
        h.request(5, check_out(1, 5)),
        [answer(5, Answer::NotCheckedOut)]
    );
    assert!(h.registry.has_line(&uid(1)));
}

#[test]
fn a_wrong_check_out_on_the_line_ends_its_booking() {
    let (mut h, _) = held_on_a_line();
    assert_eq!(
        h.request(1, check_out(1, 5)),
        [dropped(1), refused(1, Refusal::LineMisused)]
    );
    assert_eq!(h.holder_handshake(1), None);
    assert_eq!(h.registry.lines(), 0);
}

#[test]
fn past_the_bound_a_line_is_verified_and_granted_without_one() {
    let mut h = Harness::new(lines(1));
    let now = Instant::now();
    assert_eq!(h.request(1, line(1, 1, now, 0)), [answer(1, Answer::Lined)]);
    assert_eq!(h.request(2, line(2, 2, now, 0)), [verify(2, 2)]);
    assert_eq!(h.verified(2, Verdict::Alive), [answer(2, Answer::NoLine)]);
    assert!(!h.registry.has_line(&uid(2)));
    // Without a line, the holder is called back as any.
    assert_eq!(h.request(3, book(2, 3)), [verify(2, 2)]);
    // No lines at all: a LINE is a WAIT.
    let mut h = Harness::new(lines(0));
    assert_eq!(h.request(1, line(1, 1, now, 0)), [verify(1, 1)]);
}

#[test]
fn a_restored_booking_is_attached_with_its_handshake_only() {
    let mut h = Harness::new(lines(10));
    let booking = Booking {
        uid: uid(1),
        handshake: handshake(1),
        ip: LOCAL,
        port: port(1),
        since: 0,
        user: user(1),
        checked: 0,
        token: 0,
    };
    assert!(h.registry.restore(booking));
    assert!(!h.registry.has_line(&uid(1)));
    assert_eq!(h.request(5, attach(1, 2)), [answer(5, Answer::Lost)]);
    assert_eq!(h.request(6, attach(2, 1)), [answer(6, Answer::Lost)]);
    assert_eq!(h.request(7, attach(1, 1)), [answer(7, Answer::Lined)]);
    // It has its line: no second one.
    assert_eq!(h.request(8, attach(1, 1)), [answer(8, Answer::NoLine)]);
    assert_eq!(h.request(2, book(1, 2)), [answer(2, Answer::Denied)]);
    assert_eq!(h.ended(7, 1), [dropped(1)]);
    assert_eq!(h.holder_handshake(1), None);
}

#[test]
fn at_the_bound_an_attach_gets_no_line() {
    let mut h = Harness::new(lines(0));
    h.grant(1, 1);
    assert_eq!(h.request(5, attach(1, 1)), [answer(5, Answer::NoLine)]);
    assert!(!h.registry.has_line(&uid(1)));
}

#[test]
fn an_undelivered_attach_leaves_the_booking_without_a_line() {
    let mut h = Harness::new(lines(10));
    h.grant(1, 1);
    assert_eq!(h.request(5, attach(1, 1)), [answer(5, Answer::Lined)]);
    h.registry.attach_undelivered(5, uid(1));
    assert!(!h.registry.has_line(&uid(1)));
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    assert_eq!(h.ended(5, 1), []);
}

#[test]
fn a_lined_holder_whose_responder_is_gone_keeps_its_booking() {
    let (mut h, _) = held_on_a_line();
    assert_eq!(h.request(9, notify(1)), [verify_with_message(1, 1, 9)]);
    assert_eq!(h.verified(1, Verdict::Dead), [answer(9, Answer::Declined)]);
    assert_eq!(h.holder_handshake(1), Some(handshake(1)));
    assert!(h.registry.has_line(&uid(1)));
}

#[test]
fn an_undelivered_grant_on_a_line_drops_the_booking_and_its_line() {
    let (mut h, _) = held_on_a_line();
    assert!(h.grant_undelivered(uid(1), handshake(1)));
    assert_eq!(h.registry.lines(), 0);
    assert_eq!(h.ended(1, 1), []);
}
