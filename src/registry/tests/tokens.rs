//! Fencing tokens: every grant takes the next number of one count, which
//! a restart resumes, and a restored booking keeps its own.

use std::time::Instant;

use super::*;
use crate::registry::model::line;

fn token(h: &Harness, u: u8) -> Option<u64> {
    h.registry.holder(&uid(u)).map(|booking| booking.token)
}

#[test]
fn every_grant_takes_a_greater_token_whatever_the_uid_or_the_way() {
    let mut h = Harness::new(Limits {
        max_lines: 10,
        ..ROOMY
    });
    let now = Instant::now();
    h.grant(1, 1);
    assert_eq!(token(&h, 1), Some(1));
    assert_eq!(h.request(2, line(2, 2, now, 0)), [answer(2, Answer::Lined)]);
    assert_eq!(token(&h, 2), Some(2));
    assert_eq!(h.request(1, check_out(1, 1)), [answer(1, Answer::CheckedOut)]);
    h.grant(1, 3);
    assert_eq!(token(&h, 1), Some(3));
    assert_eq!(h.registry.last_token(), 3);
}

#[test]
fn a_restart_resumes_the_count_and_keeps_restored_tokens() {
    let mut h = Harness::new(ROOMY);
    let restored = Booking {
        uid: uid(1),
        handshake: handshake(1),
        ip: LOCAL,
        port: port(1),
        since: 0,
        user: user(1),
        checked: 0,
        token: 7,
    };
    // Tokens up to 9 went to bookings released before the restart.
    h.registry.resume_tokens_after(9);
    assert!(h.registry.restore(restored));
    assert_eq!(token(&h, 1), Some(7));
    h.grant(2, 2);
    assert_eq!(token(&h, 2), Some(10));
    // A restored token above the count raises it.
    assert!(h.registry.restore(Booking {
        uid: uid(3),
        token: 20,
        ..restored
    }));
    h.grant(4, 4);
    assert_eq!(token(&h, 4), Some(21));
}
