//! The dead leave a full table (#20): a hold at the bookings bound gets a
//! booking whose holder died, however many live holders are older, and
//! whatever another user keeps asking for; the sweep frees the dead
//! without anyone asking. Real processes on loopback; the tests between
//! users run as root with `nobody` and `daemon` (skipped with the reason
//! when not root).

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::hogs::{
    DAEMON, DAEMON_ID, book_then_fall_silent, roots_hold, send_and_keep, user_exists_or_skip,
    users_hold,
};
use common::users::{root_or_skip, with_nobodys_sockets, with_sockets_of};
use common::{Responder, Running, random, secret, send_bytes};
use namaste::client::Client;
use namaste::wire::Request;

/// Books a fresh id with a raw BOOK whose responder answers honestly for
/// as long as it is kept: drop it, and its holder is dead.
fn book_with_responder(server: &Running) -> Responder {
    let (uid, handshake) = (random(), secret());
    let responder = Responder::honest(uid, handshake);
    let request = Request::Book {
        uid,
        handshake,
        port: responder.port,
    };
    assert_eq!(send_bytes(server.addr(), &request.encode()), Some(1));
    responder
}

#[test]
fn a_table_full_of_dead_bookings_takes_a_new_one() {
    let server = Running::start(&["--max-bookings", "8", "--shares", "1"]);
    for _ in 0..8 {
        // Its holder is gone: nothing listens on its port any more.
        drop(book_with_responder(&server));
    }
    server.wait_for_bookings(8);
    assert_eq!(roots_hold(&server, "fresh"), Some(0));
}

#[test]
fn old_live_holders_do_not_hide_the_dead_from_a_hold_at_the_bound() {
    let server = Running::start(&["--max-bookings", "8", "--shares", "1"]);
    // As many live holders as one round verifies, the oldest of all.
    let live: Vec<Responder> = (0..4).map(|_| book_with_responder(&server)).collect();
    for _ in 0..4 {
        drop(book_with_responder(&server));
    }
    server.wait_for_bookings(8);
    let started = Instant::now();
    assert_eq!(roots_hold(&server, "fresh"), Some(0));
    // Two rounds of prompt answers, not the sweep a minute later.
    assert!(started.elapsed() < Duration::from_secs(5));
    // The dead are gone, the live kept theirs, the fresh one checked out.
    server.wait_for_bookings(4);
    drop(live);
}

#[test]
fn nobodys_rounds_of_silent_holders_do_not_hold_up_daemons_own_reclaim() {
    if !root_or_skip() || !user_exists_or_skip(DAEMON) {
        return;
    }
    // Each user's share is 2 bookings.
    let server = Running::start(&["--max-bookings", "8", "--shares", "4"]);
    // Nobody's share is held by silent holders, daemon's by the dead.
    let _silent: Vec<_> = with_nobodys_sockets(|| {
        (0..2)
            .map(|_| book_then_fall_silent(server.addr(), random()))
            .collect()
    });
    with_sockets_of(DAEMON_ID, || {
        for _ in 0..2 {
            drop(book_with_responder(&server));
        }
    });
    server.wait_for_bookings(4);
    // Nobody asks past its share every 20 ms, so a round of 3-second
    // verifications of its silent holders is nearly always in flight.
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            with_nobodys_sockets(|| {
                let mut kept = VecDeque::new();
                let until = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    let book = Request::Book {
                        uid: random(),
                        handshake: secret(),
                        port: 1,
                    };
                    kept.push_back(send_and_keep(server.addr(), &book));
                    if kept.len() > 8 {
                        kept.pop_front();
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
        });
        thread::sleep(Duration::from_millis(200));
        for name in ["a", "b", "c"] {
            let (code, said) = users_hold(DAEMON, &server, name);
            assert_eq!(code, Some(0), "daemon's hold {name}: {said}");
        }
        stop.store(true, Ordering::SeqCst);
    });
}
#[test]
fn the_sweep_frees_a_dead_call_back_booking_within_its_period_and_keeps_a_silent_one() {
    let server = Running::start(&["--sweep-interval", "0.1", "--sweep-age", "0"]);
    let (dead, silent) = (random(), random());
    let handshake = secret();
    let responder = Responder::honest(dead, handshake);
    let request = Request::Book {
        uid: dead,
        handshake,
        port: responder.port,
    };
    assert_eq!(send_bytes(server.addr(), &request.encode()), Some(1));
    let _silent = book_then_fall_silent(server.addr(), silent);
    server.wait_for_bookings(2);
    drop(responder);
    let gone = Instant::now();
    server.wait_for_bookings(1);
    // Two bookings, one verified every 0.1 s; a silent one costs the rw
    // timeout (3 s) when it comes first.
    assert!(
        gone.elapsed() < Duration::from_secs(4),
        "{:?}",
        gone.elapsed()
    );
    let client = Client::new().with_port(server.port);
    assert!(client.query(dead).unwrap().holder.is_none());
    assert!(client.query(silent).unwrap().holder.is_some());
}
