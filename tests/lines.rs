//! Lines through real sockets, spoken byte by byte: a LINE granted on its
//! own connection, which is then its booking's proof of life (contenders
//! answered at once, no call-back) until it closes (the booking ends, the
//! next waiter is served in that turn); CHECK OUT on the line or elsewhere;
//! the bound of lines; restarts and ATTACH; lines and client slots.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{
    Responder, Running, Scratch, TestServer, dead_port, random, read_reply, secret, silent_port,
};
use namaste::Uid;
use namaste::handshake::Handshake;
use namaste::reactor::Config;
use namaste::wire::{Mode, REPLY_NO_LINE, Request};

const GRANTED: Option<u8> = Some(1);
const DENIED: Option<u8> = Some(0);
const NO_LINE: Option<u8> = Some(REPLY_NO_LINE);

/// Sends `request` on a new connection, without reading a reply; reads on
/// it give up after 5 s, so a test fails instead of hanging.
fn send(addr: SocketAddr, request: &Request) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(&request.encode()).unwrap();
    stream
}

/// A LINE for `uid`, waiting at most `wait`.
fn line_request(uid: Uid, handshake: Handshake, port: u16, wait: Duration) -> Request {
    Request::Wait {
        uid,
        handshake,
        port,
        wait,
        line: true,
        token: false,
        mode: Mode::Exclusive,
    }
}

/// Books `uid` on a line whose responder port nobody listens on: no
/// call-back could prove it alive. Answers the line, and its handshake.
fn lined(addr: SocketAddr, uid: Uid) -> (TcpStream, Handshake) {
    let handshake = secret();
    let request = line_request(uid, handshake, dead_port(), Duration::ZERO);
    let mut line = send(addr, &request);
    assert_eq!(read_reply(&mut line), GRANTED, "a line with no call-back");
    (line, handshake)
}

/// What QUERY says of `uid`.
fn query(addr: SocketAddr, uid: Uid) -> String {
    let mut stream = send(addr, &Request::Query { uid });
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// Whether the server closed `stream` (EOF or reset) within 5 s, having
/// written nothing more on it.
fn closed_without_a_byte(stream: &mut TcpStream) -> bool {
    let mut byte = [0];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// A server whose probes of holders are far apart: a waiter served sooner
/// was not served by a probe.
fn slow_probes() -> TestServer {
    TestServer::with(Config {
        probe_interval: Duration::from_secs(30),
        ..Config::default()
    })
}

#[test]
fn a_line_is_granted_with_no_call_back() {
    let server = TestServer::start();
    let uid = random();
    let (_line, _) = lined(server.addr, uid);
    let said = query(server.addr, uid);
    assert!(said.starts_with("held "), "{said}");
    assert!(said.contains(" line=yes "), "{said}");
}

/// The holder's responder is a listener that never accepts: a call-back
/// would wait the whole rw timeout (3 s) for nothing.
#[test]
fn a_contender_is_answered_at_once_while_the_lined_holders_responder_is_silent() {
    let server = TestServer::start();
    let uid = random();
    let (_silent, port) = silent_port();
    let mut line = send(
        server.addr,
        &line_request(uid, secret(), port, Duration::ZERO),
    );
    assert_eq!(read_reply(&mut line), GRANTED);
    let handshake = secret();
    let contender = Responder::honest(uid, handshake);
    let started = Instant::now();
    assert_eq!(server.book(uid, handshake, contender.port), DENIED);
    let took = started.elapsed();
    println!("a contender answered in {took:?}");
    assert!(took < Duration::from_millis(150), "{took:?}");
}

/// The line closes while a LINE waits, whose responder port nobody
/// listens on: the booking ends and the waiter is granted on its own line
/// in that turn (the next probe of the holder is 30 s away).
#[test]
fn the_lines_close_frees_the_lock_and_grants_the_queued_waiter_at_once() {
    let server = slow_probes();
    let uid = random();
    let (line, _) = lined(server.addr, uid);
    let handshake = secret();
    let mut waiter = send(
        server.addr,
        &line_request(uid, handshake, dead_port(), Duration::from_secs(20)),
    );
    wait_for_waiters(server.addr, uid, 1);
    let started = Instant::now();
    drop(line);
    assert_eq!(read_reply(&mut waiter), GRANTED);
    let took = started.elapsed();
    println!("the waiter was granted {took:?} after the line closed");
    assert!(took < Duration::from_millis(250), "{took:?}");
    assert!(query(server.addr, uid).contains(" line=yes "));
}

/// Books a fresh id on a line, then closes the line while the server is
/// still accepting a burst of 300 STATUS requests sent just before, so
/// that what comes next is accepted in the same turn as the close is seen.
/// Answers the id, and the burst, to keep open until then.
fn close_a_line_amid_a_burst(server: &TestServer) -> (Uid, Vec<TcpStream>) {
    let status = Request::Status.encode();
    let uid = random();
    let (line, _) = lined(server.addr, uid);
    let burst = (0..300)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream.write_all(&status).unwrap();
            stream
        })
        .collect();
    drop(line);
    (uid, burst)
}

/// Even when the QUERY is accepted in the same turn as the line's close is
/// seen.
#[test]
fn the_lock_is_free_right_after_its_line_closes() {
    let server = TestServer::start();
    for _ in 0..3 {
        let (uid, _burst) = close_a_line_amid_a_burst(&server);
        assert_eq!(query(server.addr, uid), "free waiters=0\n");
    }
}

/// The same for a contender: a LINE that arrives in the same turn as the
/// close of the holder's line is granted (on a line of its own, as the
/// library books, with no call-back), not denied for a line already closed.
#[test]
fn a_line_right_after_its_holders_line_closes_is_granted() {
    let server = TestServer::start();
    for _ in 0..3 {
        let (uid, _burst) = close_a_line_amid_a_burst(&server);
        let (_next, _) = lined(server.addr, uid);
    }
}

#[test]
fn a_check_out_on_the_line_is_answered_and_closes_it() {
    let server = TestServer::start();
    let uid = random();
    let (mut line, handshake) = lined(server.addr, uid);
    line.write_all(&Request::CheckOut { uid, handshake }.encode())
        .unwrap();
    assert_eq!(read_reply(&mut line), GRANTED);
    assert!(closed_without_a_byte(&mut line));
    assert_eq!(query(server.addr, uid), "free waiters=0\n");
}

#[test]
fn a_check_out_on_another_connection_closes_the_line() {
    let server = TestServer::start();
    let uid = random();
    let (mut line, handshake) = lined(server.addr, uid);
    // A forged one changes nothing.
    assert_eq!(server.check_out(uid, secret()), DENIED);
    assert!(query(server.addr, uid).contains(" line=yes "));
    assert_eq!(server.check_out(uid, handshake), GRANTED);
    assert!(closed_without_a_byte(&mut line));
    assert_eq!(query(server.addr, uid), "free waiters=0\n");
}

#[test]
fn anything_else_on_the_line_closes_it_and_ends_the_booking() {
    let server = TestServer::start();
    for case in ["garbage", "a wrong handshake", "another uid's check out"] {
        let uid = random();
        let (mut line, handshake) = lined(server.addr, uid);
        let sent = match case {
            "garbage" => vec![0x7f; 8],
            "a wrong handshake" => Request::CheckOut {
                uid,
                handshake: secret(),
            }
            .encode(),
            _ => Request::CheckOut {
                uid: random(),
                handshake,
            }
            .encode(),
        };
        line.write_all(&sent).unwrap();
        assert!(closed_without_a_byte(&mut line), "{case}");
        assert_eq!(query(server.addr, uid), "free waiters=0\n", "{case}");
    }
}

#[test]
fn past_max_lines_a_line_is_granted_by_call_back_without_one() {
    let server = TestServer::with(Config {
        max_lines: 1,
        ..Config::default()
    });
    let (_line, _) = lined(server.addr, random());
    // A second one is verified: alive, it is granted without a line ...
    let (uid, handshake) = (random(), secret());
    let responder = Responder::honest(uid, handshake);
    let mut second = send(
        server.addr,
        &line_request(uid, handshake, responder.port, Duration::ZERO),
    );
    assert_eq!(read_reply(&mut second), NO_LINE);
    assert!(closed_without_a_byte(&mut second));
    assert!(query(server.addr, uid).contains(" line=no "));
    // ... and with nobody at its port, not at all.
    let mut third = send(
        server.addr,
        &line_request(random(), secret(), dead_port(), Duration::ZERO),
    );
    assert_eq!(read_reply(&mut third), DENIED);
}

/// Lines are kept only as far as the limit on open files leaves room for
/// them besides what the other bounds may need: past that, a booking is
/// granted without a line, instead of descriptors running out. With the
/// defaults the others may need 2624 (1024 clients, 512 of their
/// verifications, 512 waiters and theirs, 64 of the server's own), so a
/// limit of 2627 leaves room for 3 lines.
#[test]
fn lines_past_what_the_open_files_limit_leaves_room_for_are_not_kept() {
    // One user takes every line here: no shares, or its share would be 1.
    let mut server = Running::with_fd_limit(2627, &["--no-state", "--shares", "1"]);
    let said = server.log_line_with("lines are kept");
    assert!(said.contains("at most 3 lines are kept"), "{said}");
    let lines: Vec<_> = (0..3).map(|_| lined(server.addr(), random())).collect();
    let (uid, handshake) = (random(), secret());
    let responder = Responder::honest(uid, handshake);
    let mut fourth = send(
        server.addr(),
        &line_request(uid, handshake, responder.port, Duration::ZERO),
    );
    assert_eq!(read_reply(&mut fourth), NO_LINE);
    drop(lines);
}

/// A stop closes every line but ends no booking: after the restart the
/// booking is there, without a line, under the call-back rules, until its
/// holder attaches with its handshake.
#[test]
fn after_a_restart_a_booking_is_kept_and_attached_with_its_handshake_only() {
    let scratch = Scratch::new("lines-restart");
    let config = Config {
        state: Some(scratch.path("bookings")),
        ..Config::default()
    };
    let server = TestServer::with(config.clone());
    let (attached, deserted) = (random(), random());
    let (mut line, handshake) = lined(server.addr, attached);
    let (_deserted_line, _) = lined(server.addr, deserted);
    drop(server);
    assert!(closed_without_a_byte(&mut line), "a stop closes the lines");
    let server = TestServer::with(config);
    let said = query(server.addr, attached);
    assert!(said.contains(" line=no "), "{said}");
    // Call-back rules: its port is dead, so a contender gets it.
    let contender = secret();
    let responder = Responder::honest(deserted, contender);
    assert_eq!(server.book(deserted, contender, responder.port), GRANTED);
    let attach = |handshake| {
        send(
            server.addr,
            &Request::Attach {
                uid: attached,
                handshake,
            },
        )
    };
    assert_eq!(read_reply(&mut attach(secret())), DENIED);
    let mut line = attach(handshake);
    assert_eq!(read_reply(&mut line), GRANTED);
    assert!(query(server.addr, attached).contains(" line=yes "));
    // It has its line: a second attach gets none.
    assert_eq!(read_reply(&mut attach(handshake)), NO_LINE);
    drop(line);
    // Its close ends it (how soon is the_lock_is_free_right_after_its_line_closes's
    // promise; here the close and the QUERY may reach the server in either order).
    let deadline = Instant::now() + Duration::from_secs(1);
    while query(server.addr, attached) != "free waiters=0\n" {
        assert!(
            Instant::now() < deadline,
            "the attached line's close kept it"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines are not client connections: with four slots, twenty lines are
/// kept, and a book of a free id is still answered.
#[test]
fn many_lines_take_no_client_slots() {
    let server = TestServer::with(Config {
        max_connections: 4,
        ..Config::default()
    });
    let lines: Vec<_> = (0..20).map(|_| lined(server.addr, random())).collect();
    let status = namaste::client::Client::new()
        .with_port(server.port())
        .status()
        .unwrap();
    assert_eq!(status.lines, Some(20));
    let (uid, handshake) = (random(), secret());
    let responder = Responder::honest(uid, handshake);
    assert_eq!(server.book(uid, handshake, responder.port), GRANTED);
    drop(lines);
}

/// Waits until `n` WAITs are queued for `uid`, as QUERY tells.
fn wait_for_waiters(addr: SocketAddr, uid: Uid, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = format!(" waiters={n}\n");
    while !query(addr, uid).ends_with(&expected) {
        assert!(Instant::now() < deadline, "{n} never queued");
        std::thread::sleep(Duration::from_millis(5));
    }
}
