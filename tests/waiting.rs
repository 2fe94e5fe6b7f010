//! WAIT through real sockets and processes: arrival order, deadlines,
//! waiters that leave, holders that die while others wait, full queues,
//! and restarts.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Running, Scratch, quiet_hold, random, read_reply, secret};
use namaste::Uid;
use namaste::client::{Client, Error};
use namaste::handshake::Handshake;
use namaste::wire::{Limit, Mode, Request};

/// Six waiters, each queued after the one before, are granted in the
/// order they arrived, each the moment the one before checks out: well
/// within the probe interval, so not found by a probe.
#[test]
fn waiters_are_granted_in_arrival_order() {
    let server = Running::start(&["--probe-interval", "5"]);
    let client = Client::new().with_port(server.port);
    let uid = random();
    let holder = client.book(uid).expect("granted");
    // Each waiter notes when it was granted; it checks out right after.
    let order = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..6)
        .map(|n| {
            let order = order.clone();
            let client = client.clone();
            let waiter = thread::spawn(move || {
                let booking = client
                    .book_wait(uid, Duration::from_secs(60))
                    .expect("granted in time");
                order.lock().unwrap().push((n, Instant::now()));
                booking.check_out().unwrap();
            });
            server.wait_for_waiters(uid, n + 1);
            waiter
        })
        .collect();
    let released = Instant::now();
    assert!(holder.check_out().unwrap());
    for waiter in waiters {
        waiter.join().unwrap();
    }
    let order = order.lock().unwrap();
    let arrival: Vec<u64> = order.iter().map(|&(n, _)| n).collect();
    assert_eq!(arrival, [0, 1, 2, 3, 4, 5]);
    let mut before = released;
    for &(n, granted) in order.iter() {
        let handed_over = granted.duration_since(before);
        assert!(
            handed_over < Duration::from_secs(2),
            "waiter {n} granted {handed_over:?} after the one before checked out"
        );
        before = granted;
    }
}

#[test]
fn a_wait_ends_held_when_its_time_is_up() {
    let server = Running::start(&[]);
    let client = Client::new().with_port(server.port);
    let uid = random();
    let _holder = client.book(uid).expect("granted");
    let started = Instant::now();
    let waited = client.book_wait(uid, Duration::from_millis(500));
    assert!(matches!(waited, Err(Error::Held)), "{waited:?}");
    common::assert_ended_when_time_was_up(started, Duration::from_millis(500));
    // No time at all: one try.
    assert!(matches!(
        client.book_wait(uid, Duration::ZERO),
        Err(Error::Held)
    ));
}

/// A waiter whose process is killed leaves the queue at once: the server
/// sees its connection close, and the next waiter is granted.
#[test]
fn a_waiter_killed_while_waiting_leaves_the_queue() {
    let mut server = Running::start(&["--log-level", "debug"]);
    let client = Client::new().with_port(server.port);
    let holder = client.book(Uid::from_name("queue")).unwrap();
    let mut first = quiet_hold(server.port, "queue", &["--wait", "60"], &["true"])
        .spawn()
        .unwrap();
    server.log_line_with(": queued");
    first.kill().unwrap();
    first.wait().unwrap();
    let left = server.log_line_with("the client left");
    assert!(left.contains("wait"), "{left}");
    let mut second = quiet_hold(server.port, "queue", &["--wait", "60"], &["true"])
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    assert!(holder.check_out().unwrap());
    assert_eq!(second.wait().unwrap().code(), Some(0));
}

/// A holder killed with its whole process tree never checks out; its
/// waiter is served once a probe finds it gone, with nobody else asking.
#[test]
fn a_holder_killed_while_others_wait_is_found_by_a_probe() {
    let server = Running::start(&["--probe-interval", "0.2"]);
    let mut holder = quiet_hold(server.port, "probed", &["--no-inherit"], &["sleep", "60"])
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    let mut waiter = quiet_hold(server.port, "probed", &["--wait", "60"], &["true"])
        .spawn()
        .unwrap();
    server.wait_for_waiters(Uid::from_name("probed"), 1);
    let children = Command::new("pkill")
        .args(["-KILL", "-P", &holder.id().to_string()])
        .status();
    assert!(children.unwrap().success(), "no command to kill");
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
}

/// Past the waiters allowed for one id, a WAIT is refused with a reply
/// that names the limit, and the waiters already queued wait on.
#[test]
fn a_full_queue_refuses_with_the_limit_in_the_reply() {
    let server = Running::start(&["--max-waiters-per-id", "1"]);
    let client = Client::new().with_port(server.port);
    let uid = random();
    let _holder = client.book(uid).unwrap();
    let wait = |handshake: Handshake| {
        let responder = common::Responder::honest(uid, handshake);
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        let request = Request::Wait {
            uid,
            handshake,
            port: responder.port,
            wait: Duration::from_secs(60),
            line: false,
            token: false,
            mode: Mode::Exclusive,
        };
        stream.write_all(&request.encode()).unwrap();
        (stream, responder)
    };
    let (mut queued, _first) = wait(secret());
    thread::sleep(Duration::from_millis(200));
    let (mut refused, _second) = wait(secret());
    let reply = read_reply(&mut refused).expect("a reply");
    assert!(
        matches!(
            Limit::of_reply(reply),
            Some((Limit::WaitersForId | Limit::Waiters, _))
        ),
        "{reply:#04x}"
    );
    queued
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0];
    let still_waiting = std::io::Read::read(&mut queued, &mut byte);
    assert!(still_waiting.is_err(), "the first waiter was answered");
}

/// Waiters are connections, not recorded in the state file: a restart
/// closes them, and their clients wait on against the restarted server.
#[test]
fn a_restart_closes_waits_and_their_clients_wait_again() {
    let scratch = Scratch::new("restart-wait");
    let state = scratch.path("bookings");
    let port = common::dead_port().to_string();
    let args = ["--port", &port, "--state", state.to_str().unwrap()];
    let start = || Running::start(&args);
    let mut server = start();
    let script = scratch.wait_for_file("stop");
    let mut holder = quiet_hold(server.port, "restart", &[], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    let mut waiter = quiet_hold(server.port, "restart", &["--wait", "60"], &["true"])
        .spawn()
        .unwrap();
    let uid = Uid::from_name("restart");
    server.wait_for_waiters(uid, 1);
    common::sigterm(&server.child);
    server.child.wait().unwrap();
    let server = start();
    server.wait_for_bookings(1);
    // Its client waits again, on the restarted server.
    server.wait_for_waiters(uid, 1);
    scratch.touch("stop");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
}
