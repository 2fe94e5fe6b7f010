//! Hostile peers and exhaustion: none of them may crash the server, stall
//! it, exhaust it for good, or get anything granted without proof.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{Responder, Running, TestServer, random, read_reply, secret, send_bytes};
use namaste::client::{Client, Error};
use namaste::reactor::Config;
use namaste::wire::{Limit, MAX_MESSAGE_LEN, Request};

const GRANTED: Option<u8> = Some(1);
const DENIED: Option<u8> = Some(0);
const CLOSED: Option<u8> = None;

/// The server still books and checks out normally.
fn assert_healthy(port: u16) {
    let client = Client::new().with_port(port);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    assert!(booking.check_out().unwrap());
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).unwrap()
}

/// Out of file descriptors, the server neither spins nor floods its log,
/// and serves again once connections close.
#[test]
fn running_out_of_file_descriptors_is_one_quiet_episode() {
    let mut server = Running::with_fd_limit(24, &["--rw-timeout", "2"]);
    let silent: Vec<TcpStream> = (0..60).map(|_| connect(server.port)).collect();
    let lines = server.log_lines_until("cannot accept connections");
    assert!(
        lines.last().unwrap().contains("Too many open files"),
        "{lines:?}"
    );
    let (ticks, started) = (server.cpu_ticks(), Instant::now());
    thread::sleep(Duration::from_secs(1));
    let spent = server.cpu_ticks() - ticks;
    // A busy loop would burn the whole second: 100 ticks.
    assert!(
        spent <= 10,
        "{spent} ticks of CPU in {:?}",
        started.elapsed()
    );
    drop(silent);
    let lines = server.log_lines_until("accepting connections again");
    let repeated = lines.iter().filter(|l| l.contains("cannot accept")).count();
    assert_eq!(repeated, 0, "warned again within the episode: {lines:?}");
    assert_healthy(server.port);
}

/// Slots full of connections that say nothing: a new client is served at
/// once, the oldest of them closed to make room, and the log says so once.
#[test]
fn full_connection_slots_make_room_quietly() {
    let mut server = Running::start(&["--max-connections", "3"]);
    let silent: Vec<TcpStream> = (0..10).map(|_| connect(server.port)).collect();
    let line = server.log_line_with("connection slots in use");
    assert!(line.contains("all 3 connection slots"), "{line}");
    assert!(line.contains("closing the oldest"), "{line}");
    assert_healthy(server.port);
    assert_healthy(server.port);
    drop(silent);
    assert_healthy(server.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Client::new()
        .with_port(server.port)
        .status()
        .unwrap()
        .connections
        > 1
    {
        assert!(Instant::now() < deadline, "the silent ones stayed");
        thread::sleep(Duration::from_millis(20));
    }
    // Seven of the ten were closed to make room; the line read above is
    // the only one that says so.
    common::sigterm(&server.child);
    let lines = server.log_lines_until("stopped on SIGTERM");
    let told = lines
        .iter()
        .filter(|l| l.contains("closing the oldest"))
        .count();
    assert_eq!(told, 0, "said again: {lines:?}");
}

/// One local user fills every slot it can with requests stuck behind
/// responders that never answer, and with connections that never finish a
/// request, over and over: `status` and a normal book and check out still
/// get through, at once.
#[test]
fn requests_stuck_behind_silent_responders_cannot_take_every_slot() {
    let server = Running::start(&["--max-connections", "64", "--rw-timeout", "0.5"]);
    let port = server.port;
    // Sixteen ids whose holders never answer: each booked, then its port
    // taken over by a listener that never accepts.
    let (held, _listeners): (Vec<_>, Vec<_>) = (0..16)
        .map(|_| {
            let (uid, hs) = (random(), secret());
            let honest = Responder::honest(uid, hs);
            let request = Request::Book {
                uid,
                handshake: hs,
                port: honest.port,
            };
            assert_eq!(send_bytes(server.addr(), &request.encode()), GRANTED);
            let port = honest.port;
            drop(honest);
            let silent = std::net::TcpListener::bind(("127.0.0.1", port)).expect("retake the port");
            (uid, silent)
        })
        .unzip();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..4)
        .map(|n| {
            let (stop, held) = (stop.clone(), held.clone());
            thread::spawn(move || {
                let mut open = std::collections::VecDeque::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                        continue;
                    };
                    if n == 0 {
                        // Never a whole request.
                        let _ = stream.write_all(&[0x00]);
                    } else {
                        let request = Request::Notify {
                            uid: held[i % held.len()],
                            message: vec![0x5a; MAX_MESSAGE_LEN],
                        };
                        let _ = stream.write_all(&request.encode());
                    }
                    open.push_back(stream);
                    if open.len() > 200 {
                        open.pop_front();
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    // At once: each within two rw timeouts, less than the four a request
    // pending may take before it is closed and its slot freed.
    let at_once = Duration::from_secs(1);
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(["status", "--port", &port.to_string()])
        .output()
        .unwrap();
    let status_took = started.elapsed();
    assert!(status.status.success(), "{}", common::stderr(&status));
    let started = Instant::now();
    assert_healthy(port);
    let book_took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    assert!(status_took < at_once, "status took {status_took:?}");
    assert!(book_took < at_once, "book and check out took {book_took:?}");
}

#[test]
fn the_booking_limit_is_logged_and_recovers() {
    let mut server = Running::start(&["--max-bookings", "1"]);
    let client = Client::new().with_port(server.port);
    let held = client.book(random()).expect("granted");
    let refused = client.book(random());
    assert!(
        matches!(
            refused,
            Err(Error::Full {
                limit: Limit::Bookings,
                ..
            })
        ),
        "{refused:?}"
    );
    let line = server.log_line_with("refused a line from user");
    assert!(line.contains("bookings (--max-bookings"), "{line}");
    drop(held);
    assert_healthy(server.port);
}

/// A responder that answers the handshake with bytes without end: the
/// server reads no more than an answer's worth, denies at once, and serves
/// on. The flood stops when the server closes, or after ten seconds.
#[test]
fn a_responder_that_floods_proves_nothing() {
    let server = TestServer::start();
    let (uid, hs) = (random(), secret());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let flood = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut handshake = [0; 64];
        stream.read_exact(&mut handshake).unwrap();
        let chunk = [0x5a; 64 * 1024];
        let until = Instant::now() + Duration::from_secs(10);
        let mut sent = 0;
        while Instant::now() < until && stream.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        (sent, Instant::now() < until)
    });
    let started = Instant::now();
    assert_eq!(server.book(uid, hs, port), DENIED);
    assert!(started.elapsed() < Duration::from_secs(2));
    let (sent, cut_off) = flood.join().unwrap();
    assert!(cut_off, "the server read on for ten seconds ({sent} bytes)");
    assert_healthy(server.port());
}

#[test]
fn a_megabyte_of_garbage_is_closed_without_a_reply() {
    let server = TestServer::start();
    for first in [0xff, 0x7f] {
        let mut garbage = vec![first; 1 << 20];
        garbage[1..].fill(0xab);
        let mut stream = connect(server.port());
        // The server closes early, so the rest of the write may fail.
        let _ = stream.write_all(&garbage);
        assert_eq!(read_reply(&mut stream), CLOSED);
    }
    // A NOTIFY announcing more than the protocol allows is closed before
    // any of it is buffered.
    let mut header = vec![0x03];
    header.extend_from_slice(random().as_bytes());
    header.extend_from_slice(&((MAX_MESSAGE_LEN as u32) * 256).to_be_bytes());
    assert_eq!(send_bytes(server.addr, &header), CLOSED);
    assert_healthy(server.port());
}

#[test]
fn half_closed_and_reset_connections_leave_it_healthy() {
    let server = TestServer::start();
    let book = Request::Book {
        uid: random(),
        handshake: secret(),
        port: 1,
    }
    .encode();
    let mut half = connect(server.port());
    half.write_all(&book[..50]).unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_reply(&mut half), CLOSED);
    for _ in 0..50 {
        let socket = socket2::Socket::from(connect(server.port()));
        let _ = socket.send(&book[..70]);
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        drop(socket); // a reset, not a close
    }
    assert_healthy(server.port());
}

/// A peer that trickles its request gets the rw timeout from its first
/// byte, not from its last one.
#[test]
fn a_trickle_is_cut_off_at_the_rw_timeout() {
    let server = TestServer::with(Config {
        rw_timeout: Duration::from_secs(1),
        ..Config::default()
    });
    let book = Request::Book {
        uid: random(),
        handshake: secret(),
        port: 1,
    }
    .encode();
    let mut stream = connect(server.port());
    let started = Instant::now();
    let mut cut_off = None;
    for byte in &book {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        stream.set_nonblocking(true).unwrap();
        let closed = match stream.read(&mut [0]) {
            Ok(0) => true,
            Ok(_) => panic!("a reply to an incomplete request"),
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        stream.set_nonblocking(false).unwrap();
        if closed {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("the trickle was never cut off");
    assert!(cut_off >= Duration::from_millis(900), "{cut_off:?}");
    assert!(cut_off < Duration::from_secs(3), "{cut_off:?}");
    assert_healthy(server.port());
}

/// Thousands of connections opened and closed at once: no descriptor is
/// left behind, and the server serves on.
#[test]
fn a_flood_of_connections_leaves_nothing_behind() {
    let server = Running::start(&[]);
    let before = server.open_files();
    let port = server.port;
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..500 {
                    drop(TcpStream::connect(("127.0.0.1", port)));
                }
            })
        })
        .collect();
    for flooder in flooders {
        flooder.join().unwrap();
    }
    assert_healthy(port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.open_files() != before {
        assert!(
            Instant::now() < deadline,
            "{} files open, {before} before",
            server.open_files()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A book naming the server's own port makes it talk to itself; it must
/// see through that and grant nothing.
#[test]
fn a_book_naming_the_servers_own_port_is_denied() {
    let server = TestServer::with(Config {
        rw_timeout: Duration::from_millis(500),
        ..Config::default()
    });
    for _ in 0..5 {
        assert_eq!(server.book(random(), secret(), server.port()), DENIED);
    }
    let (uid, hs) = (random(), secret());
    let honest = Responder::honest(uid, hs);
    assert_eq!(server.book(uid, hs, honest.port), GRANTED);
}
