//! The server end to end, through real sockets on loopback.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Behaviour, Responder, TestServer, dead_port, random, read_reply, secret, send_bytes,
    silent_port,
};
use namaste::DEFAULT_RW_TIMEOUT;
use namaste::handshake::Handshake;
use namaste::reactor::Config;
use namaste::wire::{CMD_LIST, Request};

const GRANTED: Option<u8> = Some(1);
const DENIED: Option<u8> = Some(0);
const CLOSED: Option<u8> = None;

fn quick(rw_timeout: Duration) -> Config {
    Config {
        rw_timeout,
        ..Config::default()
    }
}

#[test]
fn book_check_out_and_book_again() {
    let server = TestServer::start();
    let (uid, holder, other) = (random(), secret(), secret());
    let responder = Responder::honest(uid, holder);
    assert_eq!(server.book(uid, holder, responder.port), GRANTED);
    let other_responder = Responder::honest(uid, other);
    assert_eq!(server.book(uid, other, other_responder.port), DENIED);
    assert_eq!(server.check_out(uid, holder), Some(1));
    assert_eq!(server.book(uid, other, other_responder.port), GRANTED);
    // A stale check out, with the first holder's handshake.
    assert_eq!(server.check_out(uid, holder), Some(0));
    assert_eq!(server.check_out(uid, other), Some(1));
}

#[test]
fn a_forged_check_out_never_releases_a_booking() {
    let server = TestServer::start();
    let (uid, holder) = (random(), secret());
    let responder = Responder::honest(uid, holder);
    assert_eq!(server.book(uid, holder, responder.port), GRANTED);
    for _ in 0..10 {
        assert_eq!(server.check_out(uid, secret()), Some(0));
    }
    // Knowing the uid is not enough either.
    let mut forged = *holder.as_bytes();
    forged[63] ^= 1;
    let forged = Handshake::from_bytes(forged);
    assert_eq!(server.check_out(uid, forged), Some(0));
    let contender = secret();
    let contender_responder = Responder::honest(uid, contender);
    assert_eq!(
        server.book(uid, contender, contender_responder.port),
        DENIED
    );
    assert_eq!(server.check_out(uid, holder), Some(1));
}

#[test]
fn a_booker_that_cannot_prove_alive_is_denied() {
    let server = TestServer::with(quick(Duration::from_millis(300)));
    let uid = random();
    assert_eq!(server.book(uid, secret(), dead_port()), DENIED);
    let (_silent, port) = silent_port();
    assert_eq!(server.book(uid, secret(), port), DENIED);
    static WRONG: [u8; 64] = [7; 64];
    let hs = secret();
    let wrong = Responder::new(uid, hs, Behaviour::Answers(&WRONG));
    assert_eq!(server.book(uid, hs, wrong.port), DENIED);
    let short = Responder::new(uid, hs, Behaviour::Answers(&WRONG[..32]));
    assert_eq!(server.book(uid, hs, short.port), DENIED);
    assert_eq!(server.book(uid, hs, 0), DENIED);
    // The server's own port: it hears the handshake as a broken request.
    assert_eq!(server.book(uid, hs, server.port()), DENIED);
    // Nothing was granted along the way.
    let honest_hs = secret();
    let honest = Responder::honest(uid, honest_hs);
    assert_eq!(server.book(uid, honest_hs, honest.port), GRANTED);
}

/// A holder whose port now answers something else is gone. (The port
/// stays the test's own: closed, another test could take it meanwhile.)
#[test]
fn a_dead_holder_loses_its_booking() {
    let server = TestServer::start();
    let (uid, first, second) = (random(), secret(), secret());
    let listener = Arc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let alive = common::answer_with(listener.clone(), *uid.as_bytes(), 1);
    assert_eq!(server.book(uid, first, port), GRANTED);
    alive.join().unwrap();
    let _gone = common::answer_with(listener, [0x5a; 64], 1);
    let second_responder = Responder::honest(uid, second);
    assert_eq!(server.book(uid, second, second_responder.port), GRANTED);
    assert_eq!(server.check_out(uid, first), Some(0));
    assert_eq!(server.check_out(uid, second), Some(1));
}

/// Every malformed input of the protocol is closed without a reply, and
/// the server serves normally afterwards.
#[test]
fn malformed_input_is_closed_without_a_reply() {
    let server = TestServer::with(quick(Duration::from_millis(300)));
    let uid = random();
    let same = Handshake::from_bytes(*uid.as_bytes());
    // A LIST is whole in its command byte: what follows is ignored.
    for command in (0x06..=0xff_u8).filter(|&command| command != CMD_LIST) {
        let mut bytes = vec![command];
        bytes.extend_from_slice(&[0xaa; 130]);
        assert_eq!(
            send_bytes(server.addr, &bytes),
            CLOSED,
            "command {command:#x}"
        );
    }
    let book_same = Request::Book {
        uid,
        handshake: same,
        port: 1,
    };
    let check_out_same = Request::CheckOut {
        uid,
        handshake: same,
    };
    assert_eq!(server.send(&book_same), CLOSED);
    assert_eq!(server.send(&check_out_same), CLOSED);

    // Cut short, then the writer half closes.
    let book = Request::Book {
        uid,
        handshake: secret(),
        port: 1,
    }
    .encode();
    for cut in [0, 1, 64, 130] {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(&book[..cut]).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_reply(&mut stream), CLOSED, "cut at {cut}");
    }

    // Cut short and then silent: closed once the rw timeout passes.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.write_all(&book[..100]).unwrap();
    let started = Instant::now();
    assert_eq!(read_reply(&mut stream), CLOSED);
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Nothing sent at all.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    assert_eq!(read_reply(&mut stream), CLOSED);

    let hs = secret();
    let responder = Responder::honest(uid, hs);
    assert_eq!(server.book(uid, hs, responder.port), GRANTED);
    assert_eq!(server.check_out(uid, hs), Some(1));
}

#[test]
fn a_request_sent_one_byte_at_a_time_works() {
    let server = TestServer::start();
    let (uid, hs) = (random(), secret());
    let responder = Responder::honest(uid, hs);
    let bytes = Request::Book {
        uid,
        handshake: hs,
        port: responder.port,
    }
    .encode();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    for byte in &bytes {
        stream.write_all(&[*byte]).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(read_reply(&mut stream), GRANTED);
}

#[test]
fn bytes_after_a_request_are_ignored() {
    let server = TestServer::start();
    let (uid, hs) = (random(), secret());
    let responder = Responder::honest(uid, hs);
    let mut bytes = Request::Book {
        uid,
        handshake: hs,
        port: responder.port,
    }
    .encode();
    bytes.extend_from_slice(&[0xee; 40]);
    assert_eq!(send_bytes(server.addr, &bytes), GRANTED);
    let mut bytes = Request::CheckOut { uid, handshake: hs }.encode();
    bytes.extend_from_slice(&[0xee; 40]);
    assert_eq!(send_bytes(server.addr, &bytes), Some(1));
}

/// Eight contenders, each with its own live responder, book one fresh id
/// at the same instant: exactly one is granted, every round.
#[test]
fn simultaneous_contenders_get_exactly_one_grant() {
    const CONTENDERS: usize = 8;
    const ROUNDS: usize = 40;
    let server = Arc::new(TestServer::start());
    for round in 0..ROUNDS {
        let uid = random();
        let barrier = Arc::new(Barrier::new(CONTENDERS));
        let contenders: Vec<_> = (0..CONTENDERS)
            .map(|_| {
                let (server, barrier) = (server.clone(), barrier.clone());
                thread::spawn(move || {
                    let hs = secret();
                    let responder = Responder::honest(uid, hs);
                    let request = Request::Book {
                        uid,
                        handshake: hs,
                        port: responder.port,
                    }
                    .encode();
                    let mut stream = TcpStream::connect(server.addr).unwrap();
                    barrier.wait();
                    stream.write_all(&request).unwrap();
                    let reply = read_reply(&mut stream);
                    // Stay alive until everyone is answered.
                    barrier.wait();
                    reply
                })
            })
            .collect();
        let replies: Vec<_> = contenders.into_iter().map(|c| c.join().unwrap()).collect();
        let grants = replies.iter().filter(|&&r| r == GRANTED).count();
        assert_eq!(grants, 1, "round {round}: {replies:?}");
        assert!(
            replies.iter().all(|&r| r == GRANTED || r == DENIED),
            "{replies:?}"
        );
    }
}

/// 200 idle connections and 4 bookers whose responders never answer do not
/// hold up anyone else: other clients' cycles all finish while the silent
/// bookers are still waiting for their verification to time out.
#[test]
fn silent_peers_do_not_delay_other_clients() {
    let rw_timeout = Duration::from_secs(5);
    let server = Arc::new(TestServer::with(quick(rw_timeout)));
    let calm = cycles(&server, 200);
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let silent: Vec<_> = (0..4).map(|_| silent_port()).collect();
    let started = Instant::now();
    let silent_bookers: Vec<_> = silent
        .iter()
        .map(|&(_, port)| {
            let server = server.clone();
            thread::spawn(move || {
                let reply = server.book(random(), secret(), port);
                (reply, Instant::now())
            })
        })
        .collect();
    // Let the silent bookers' verifications start first.
    thread::sleep(Duration::from_millis(100));

    let hostile = cycles(&server, 200);
    let others_done = Instant::now();
    assert!(
        others_done - started < rw_timeout,
        "200 cycles took {:?}, as long as a verification timeout",
        others_done - started
    );
    for booker in silent_bookers {
        let (reply, answered) = booker.join().unwrap();
        assert_eq!(reply, DENIED, "a silent responder is not alive");
        assert!(answered > others_done, "silent bookers were answered first");
        assert!(answered - started >= rw_timeout - Duration::from_millis(200));
    }
    // For the record, not asserted: timing on a shared machine is noise.
    eprintln!("200 book + check out cycles: {calm}; beside silent peers: {hostile}");
    drop(idle);
}

/// Runs `n` book + check out cycles, each with its own responder, and
/// describes their rate and slowest cycle.
fn cycles(server: &TestServer, n: u32) -> String {
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..n {
        let (uid, hs) = (random(), secret());
        let responder = Responder::honest(uid, hs);
        let cycle = Instant::now();
        assert_eq!(server.book(uid, hs, responder.port), GRANTED);
        assert_eq!(server.check_out(uid, hs), Some(1));
        slowest = slowest.max(cycle.elapsed());
    }
    let rate = f64::from(n) / started.elapsed().as_secs_f64();
    format!("{rate:.0}/s, slowest {slowest:?}")
}

/// All slots taken by connections that have not sent a whole request: a
/// newcomer does not wait, the oldest of them is closed to make room.
#[test]
fn past_max_connections_the_oldest_silent_connection_makes_room() {
    let server = TestServer::with(Config {
        max_connections: 2,
        ..Config::default()
    });
    let mut first = TcpStream::connect(server.addr).unwrap();
    let mut second = TcpStream::connect(server.addr).unwrap();
    thread::sleep(Duration::from_millis(100));
    let (uid, hs) = (random(), secret());
    let responder = Responder::honest(uid, hs);
    let started = Instant::now();
    assert_eq!(server.book(uid, hs, responder.port), GRANTED);
    assert!(
        started.elapsed() < DEFAULT_RW_TIMEOUT,
        "it waited for a slot"
    );
    let mut byte = [0];
    assert!(
        matches!(first.read(&mut byte), Ok(0) | Err(_)),
        "the oldest silent connection is closed"
    );
    second.set_nonblocking(true).unwrap();
    let still_open = second.read(&mut byte);
    assert!(
        matches!(&still_open, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "only the oldest is closed: {still_open:?}"
    );
}

/// All slots taken by whole requests waiting on slow responders: those
/// cannot be cut short, so a newcomer waits in the backlog until one is
/// answered.
#[test]
fn past_max_connections_whole_requests_are_waited_for() {
    let server = Arc::new(TestServer::with(Config {
        max_connections: 2,
        ..quick(Duration::from_millis(300))
    }));
    let (_silent, silent_port) = silent_port();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            thread::spawn(move || server.book(random(), secret(), silent_port))
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    let (uid, hs) = (random(), secret());
    let responder = Responder::honest(uid, hs);
    let started = Instant::now();
    assert_eq!(server.book(uid, hs, responder.port), GRANTED);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "served before a slot freed"
    );
    for booker in slow {
        assert_eq!(booker.join().unwrap(), DENIED);
    }
}

#[test]
fn past_max_bookings_a_book_is_closed_without_a_reply() {
    let server = TestServer::with(Config {
        max_bookings: 1,
        ..Config::default()
    });
    let (a, b, hs) = (random(), random(), secret());
    let ra = Responder::honest(a, hs);
    let rb = Responder::honest(b, hs);
    assert_eq!(server.book(a, hs, ra.port), GRANTED);
    assert_eq!(server.book(b, hs, rb.port), CLOSED);
    assert_eq!(server.check_out(a, hs), Some(1));
    assert_eq!(server.book(b, hs, rb.port), GRANTED);
}

#[test]
fn past_max_waiting_a_request_is_closed_without_a_reply() {
    let server = Arc::new(TestServer::with(Config {
        max_waiting: 1,
        rw_timeout: Duration::from_secs(2),
        ..Config::default()
    }));
    let uid = random();
    let (_silent, port) = silent_port();
    let booker = |port| {
        let server = server.clone();
        thread::spawn(move || server.book(uid, secret(), port))
    };
    let verifying = booker(port);
    thread::sleep(Duration::from_millis(100));
    let waiting = booker(port);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(server.book(uid, secret(), port), CLOSED);
    assert_eq!(verifying.join().unwrap(), DENIED);
    assert_eq!(waiting.join().unwrap(), DENIED);
}

/// A client on ::1 is called back on ::1, its own address.
#[test]
fn verification_calls_back_the_requesters_address() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        common::skip("this machine has no ::1");
        return;
    };
    drop(listener);
    let server = TestServer::with(Config {
        addr: "[::1]:0".parse().unwrap(),
        ..Config::default()
    });
    let (uid, hs) = (random(), secret());
    let responder = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port = responder.local_addr().unwrap().port();
    let answering = thread::spawn(move || {
        let (mut stream, _) = responder.accept().unwrap();
        let mut heard = [0; 64];
        stream.read_exact(&mut heard).unwrap();
        assert_eq!(&heard, hs.as_bytes());
        stream.write_all(uid.as_bytes()).unwrap();
    });
    assert_eq!(server.book(uid, hs, port), GRANTED);
    answering.join().unwrap();
}
