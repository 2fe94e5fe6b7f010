//! Fair between OS users (#20): one user's hog of bookings, waiters or
//! pending requests leaves the others their turn; a refusal at a limit is
//! an answer `hold` understands; per-user ids are the server's to guard;
//! STATUS tells root the use per user; the dead leave the table. Real
//! processes on loopback, as root with `nobody` and `daemon` (skipped with
//! the reason when not root).

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::hogs::{
    DAEMON, book_then_fall_silent, roots_hold, send_and_keep, status_within_a_second,
    user_exists_or_skip, users_hold,
};
use common::users::{NOBODY, NOBODY_ID, as_nobody, root_or_skip, with_nobodys_sockets};
use common::{Responder, Running, Scratch, quiet_hold, random, secret, send_bytes, stderr};
use namaste::Uid;
use namaste::client::{Booking, Client, Error};
use namaste::handshake::Handshake;
use namaste::wire::{Limit, Mode, REPLY_OTHER_USER, Request};

/// The limits the hogs run into: a user's share is 16 bookings, 8
/// waiters, 8 pending requests (of 32: half the connections).
const SMALL: [&str; 8] = [
    "--max-bookings",
    "64",
    "--max-waiters",
    "32",
    "--max-connections",
    "64",
    "--shares",
    "4",
];

/// As many live bookings as `nobody` gets, up to `most`, on lines, from
/// this process; and the error that stopped it, if any.
fn nobodys_bookings(server: &Running, most: usize) -> (Vec<Booking>, Option<Error>) {
    with_nobodys_sockets(|| {
        let client = Client::new().with_port(server.port);
        let mut held = Vec::new();
        for _ in 0..most {
            match client.book(random()) {
                Ok(booking) => held.push(booking),
                Err(Error::Held) => panic!("a fresh id was held elsewhere"),
                Err(e) => return (held, Some(e)),
            }
        }
        (held, None)
    })
}

#[test]
fn a_hold_past_the_servers_bookings_exits_73_and_names_the_limit() {
    let mut server = Running::start(&["--max-bookings", "1", "--shares", "1"]);
    let client = Client::new().with_port(server.port);
    let _held = client.book(Uid::from_name("first")).unwrap();
    let output = common::namaste(&[
        "hold",
        "second",
        "--port",
        &server.port.to_string(),
        "--",
        "true",
    ]);
    assert_eq!(output.status.code(), Some(73), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("limit of bookings is reached (in all, --max-bookings)"),
        "{said}"
    );
    let logged = server.log_line_with("refused a line from");
    assert!(
        logged.contains("the server's 1 bookings (--max-bookings) are all taken"),
        "{logged}"
    );
}

#[test]
fn status_tells_root_every_users_use_and_others_their_own() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let mut nobodys = as_nobody(&["hold", "n", "--port", &port, "--", "sleep", "30"])
        .spawn()
        .unwrap();
    let _roots = Client::new()
        .with_port(server.port)
        .book(Uid::from_name("r"))
        .unwrap();
    server.wait_for_bookings(2);
    let roots_view = common::namaste(&["status", "--port", &port]);
    let roots_view = String::from_utf8_lossy(&roots_view.stdout).into_owned();
    assert!(
        roots_view.contains("\nuser=root user_id=0 bookings=1 lines=1 "),
        "{roots_view}"
    );
    let nobodys_line = format!("\nuser={NOBODY} user_id={NOBODY_ID} bookings=1 lines=1 ");
    assert!(roots_view.contains(&nobodys_line), "{roots_view}");
    let nobodys_view = as_nobody(&["status", "--port", &port]).output().unwrap();
    let nobodys_view = String::from_utf8_lossy(&nobodys_view.stdout).into_owned();
    assert!(nobodys_view.contains(&nobodys_line), "{nobodys_view}");
    assert!(!nobodys_view.contains("user=root"), "{nobodys_view}");
    let _ = nobodys.kill();
    let _ = nobodys.wait();
}

#[test]
fn a_restored_booking_keeps_its_user() {
    if !root_or_skip() {
        return;
    }
    let scratch = Scratch::new("fairness-restored-user");
    let state = scratch.path("bookings");
    let state = state.to_str().unwrap();
    let server = Running::start(&["--state", state]);
    let _nobodys = with_nobodys_sockets(|| {
        Client::new()
            .with_port(server.port)
            .with_reattach(false)
            .book(Uid::from_name("n"))
            .unwrap()
    });
    server.wait_for_bookings(1);
    drop(server);
    let restarted = Running::start(&["--state", state]);
    let status = status_within_a_second(restarted.port);
    assert_eq!(status.bookings, 1);
    assert_eq!(status.usage.len(), 1, "{status}");
    assert_eq!(
        (status.usage[0].user, status.usage[0].bookings),
        (NOBODY_ID, 1)
    );
}

#[test]
fn nobodys_hog_of_bookings_stops_at_its_share_and_others_still_hold() {
    if !root_or_skip() || !user_exists_or_skip(DAEMON) {
        return;
    }
    let server = Running::start(&SMALL);
    let (held, stopped) = nobodys_bookings(&server, 64);
    assert_eq!(held.len(), 16, "nobody's share of 64 bookings by 4");
    assert!(
        matches!(
            stopped,
            Some(Error::Full {
                limit: Limit::Bookings,
                share: true
            })
        ),
        "{stopped:?}"
    );
    assert_eq!(roots_hold(&server, "x"), Some(0));
    let (code, said) = users_hold(DAEMON, &server, "y");
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(status_within_a_second(server.port).bookings, 16);
}

#[test]
fn nobody_past_its_share_gets_exit_73_naming_its_share() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&SMALL);
    let (_held, _) = nobodys_bookings(&server, 16);
    let (code, said) = users_hold(NOBODY, &server, "one-more");
    assert_eq!(code, Some(73), "{said}");
    assert!(
        said.contains(
            "the server's limit of bookings for your OS user is reached (its share, --max-bookings / --shares)"
        ),
        "{said}"
    );
}

#[test]
fn nobodys_hog_of_the_wait_queue_leaves_roots_waiter_in_line() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&SMALL);
    let hogged = Uid::from_name("hogged");
    let _nobodys_holder = with_nobodys_sockets(|| {
        let client = Client::new().with_port(server.port);
        client.book(hogged).unwrap()
    });
    let port = server.port;
    let (ended, waits) = mpsc::channel();
    for _ in 0..12 {
        let ended = ended.clone();
        thread::spawn(move || {
            let waited = with_nobodys_sockets(|| {
                Client::new()
                    .with_port(port)
                    .book_wait(hogged, Duration::from_secs(20))
                    .map(drop)
            });
            let _ = ended.send(waited);
        });
    }
    server.wait_for_waiters(hogged, 8);
    for _ in 0..4 {
        let refused = waits.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            matches!(
                refused,
                Err(Error::Full {
                    limit: Limit::Waiters,
                    share: true
                })
            ),
            "{refused:?}"
        );
    }
    let roots = Client::new().with_port(server.port);
    let released = Uid::from_name("r");
    let holder = roots.book(released).unwrap();
    let waiter = thread::spawn(move || {
        let booking = roots.book_wait(released, Duration::from_secs(10));
        (Instant::now(), booking.map(drop))
    });
    // In the server's line, not polling.
    server.wait_for_waiters(released, 1);
    let release = Instant::now();
    drop(holder);
    let (served, granted) = waiter.join().unwrap();
    assert!(granted.is_ok(), "{granted:?}");
    let late = served.duration_since(release);
    assert!(
        late < Duration::from_millis(100),
        "served {late:?} after the release"
    );
    status_within_a_second(server.port);
}

#[test]
fn nobodys_hog_of_pending_requests_leaves_room_for_others() {
    if !root_or_skip() || !user_exists_or_skip(DAEMON) {
        return;
    }
    let mut args = SMALL.to_vec();
    args.extend(["--rw-timeout", "3"]);
    let server = Running::start(&args);
    let ids: Vec<Uid> = (0..4).map(|_| random()).collect();
    let (_silent, _pending) = with_nobodys_sockets(|| {
        let silent: Vec<_> = ids
            .iter()
            .map(|uid| book_then_fall_silent(server.addr(), *uid))
            .collect();
        // Each id's first contender waits for its silent holder; the rest
        // are pending behind it, past nobody's share of 8.
        let pending: Vec<_> = ids
            .iter()
            .flat_map(|uid| (0..10).map(move |_| *uid))
            .map(|uid| {
                let handshake = secret();
                send_and_keep(
                    server.addr(),
                    &Request::Book {
                        uid,
                        handshake,
                        port: 9,
                    },
                )
            })
            .collect();
        (silent, pending)
    });
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(roots_hold(&server, "x"), Some(0));
    assert!(started.elapsed() < Duration::from_secs(1));
    let (code, said) = users_hold(DAEMON, &server, "y");
    assert_eq!(code, Some(0), "{said}");
    status_within_a_second(server.port);
    // Root's contender for a silent holder's id is pending, not refused:
    // it is denied once the holder's verification ends in silence.
    let responder = Responder::honest(
        ids[0],
        Handshake::from_bytes(*Uid::from_name("root's").as_bytes()),
    );
    let reply = send_bytes(
        server.addr(),
        &Request::Book {
            uid: ids[0],
            handshake: Handshake::from_bytes(*Uid::from_name("root's").as_bytes()),
            port: responder.port,
        }
        .encode(),
    );
    assert_eq!(reply, Some(0));
}

#[test]
fn another_users_per_user_id_is_refused_to_nobody_notify_too() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let roots = Uid::per_user(b"x", 0);
    let handshake = Handshake::from_bytes(*Uid::from_name("nobody's").as_bytes());
    let wait = |line| Request::Wait {
        uid: roots,
        handshake,
        port: 9,
        wait: Duration::from_secs(5),
        line,
        token: false,
        mode: Mode::Exclusive,
    };
    let requests = [
        (
            Request::Book {
                uid: roots,
                handshake,
                port: 9,
            },
            None,
        ),
        (wait(false), Some(REPLY_OTHER_USER)),
        (wait(true), Some(REPLY_OTHER_USER)),
        (
            Request::Attach {
                uid: roots,
                handshake,
            },
            Some(REPLY_OTHER_USER),
        ),
        (
            Request::Notify {
                uid: roots,
                message: b"hi".to_vec(),
            },
            Some(REPLY_OTHER_USER),
        ),
    ];
    let port = server.port.to_string();
    let mut roots_hold = quiet_hold(server.port, "x", &["--per-user"], &["sleep", "2"])
        .spawn()
        .unwrap();
    for (request, expected) in requests {
        let reply = with_nobodys_sockets(|| send_bytes(server.addr(), &request.encode()));
        assert_eq!(reply, expected, "{request}");
    }
    assert!(roots_hold.wait().unwrap().success());
    let output = as_nobody(&[
        "notify",
        "x",
        "hi",
        "--uid",
        &roots.to_string(),
        "--port",
        &port,
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(77), "{}", stderr(&output));
}
