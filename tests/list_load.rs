//! A LIST of thousands of bookings, a few MiB of lines, on loopback: it
//! comes whole to a reader that takes its time, the server answers others
//! meanwhile, and a reader that stops reading is cut off at the rw timeout.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::Running;
use common::hogs::status_within_a_second;
use namaste::Uid;
use namaste::client::Client;
use namaste::handshake::Handshake;
use namaste::wire::{CMD_LIST, Request, name_prefix};
use socket2::{Domain, Socket, Type};

/// Bookings listed: with their names, some 6 MiB of lines, more than
/// loopback's socket buffers take at once (the kernel lets a send buffer
/// grow to 4 MiB).
const BOOKINGS: usize = 10_000;

/// A name of 200 bytes, the `n`th.
fn name(n: usize) -> Vec<u8> {
    format!("{n:0>200}").into_bytes()
}

/// The handshake of a booking of `uid`: its bytes flipped, so that one
/// responder can answer any of them with the uid.
fn handshake_of(uid: Uid) -> Handshake {
    Handshake::from_bytes(uid.as_bytes().map(|byte| !byte))
}

/// A responder that answers every handshake with its bytes flipped back,
/// on a thread, for as long as the test runs.
fn responder_for_all() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut handshake = [0; 64];
            if stream.read_exact(&mut handshake).is_ok() {
                let _ = stream.write_all(&handshake.map(|byte| !byte));
            }
        }
    });
    port
}

/// Books `BOOKINGS` named ids on the server at `addr`.
fn book_all(addr: SocketAddr) {
    let port = responder_for_all();
    for n in 0..BOOKINGS {
        let uid = Uid::from_name_bytes(&name(n));
        let book = Request::Book {
            uid,
            handshake: handshake_of(uid),
            port,
        };
        let bytes = [name_prefix(&name(n)).unwrap(), book.encode()].concat();
        assert_eq!(common::send_bytes(addr, &bytes), Some(1), "booking {n}");
    }
}

/// Sends a LIST and answers its connection, unread, on a socket whose
/// receive buffer is small, so that the server's writes soon block.
fn ask_list(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream = TcpStream::from(socket);
    stream.write_all(&[CMD_LIST]).unwrap();
    stream
}

/// Reads all that comes on `stream` until its close.
fn read_all(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut text = Vec::new();
    match stream.read_to_end(&mut text) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{e}"),
    }
    String::from_utf8(text).unwrap()
}

#[test]
fn a_long_list_comes_whole_to_a_slow_reader_and_is_cut_off_at_the_rw_timeout() {
    let server = Running::start(&["--rw-timeout", "2", "--shares", "1"]);
    book_all(server.addr());
    let started = Instant::now();
    let mut slow = ask_list(server.addr());
    let mut stalled = ask_list(server.addr());
    // Both lists wait on full socket buffers; the server goes on serving.
    let status = status_within_a_second(server.port);
    assert_eq!(status.names, Some(BOOKINGS as u64));
    thread::sleep(Duration::from_millis(500));
    let text = read_all(&mut slow);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "read within the rw timeout"
    );
    assert!(text.ends_with("\nend\n"), "whole");
    assert!(text.len() > 6_000_000, "{} bytes", text.len());
    assert_eq!(text.lines().count(), BOOKINGS + 1);
    let listed = Client::new().with_port(server.port).list().unwrap();
    assert_eq!(listed.len(), BOOKINGS);
    assert!(
        listed
            .iter()
            .all(|lock| lock.name.as_ref().is_some_and(|n| n.len() == 200))
    );

    thread::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed()));
    let cut = read_all(&mut stalled);
    assert!(!cut.ends_with("end\n"), "cut off: {} bytes came", cut.len());
    assert!(cut.len() < text.len());
}

#[test]
fn a_users_fifth_list_at_once_is_closed_unanswered_and_one_after_a_list_ends_is_answered() {
    let mut server = Running::start(&["--rw-timeout", "10", "--shares", "1"]);
    book_all(server.addr());
    let mut unread: Vec<TcpStream> = (0..4).map(|_| ask_list(server.addr())).collect();
    // The four wait on full socket buffers; the fifth of the same user
    // is closed at once, and the server still answers everyone else.
    let started = Instant::now();
    let mut fifth = ask_list(server.addr());
    let fifth = read_all(&mut fifth);
    assert!(
        fifth.is_empty(),
        "closed without a reply: {} bytes came",
        fifth.len()
    );
    assert!(started.elapsed() < Duration::from_secs(5), "at once");
    let said = server.log_line_with("closed a LIST of user");
    assert!(said.contains("4 of its lists"), "{said}");
    status_within_a_second(server.port);
    let whole = read_all(&mut unread[0]);
    assert!(whole.ends_with("\nend\n"), "the first four are answered");
    let listed = Client::new().with_port(server.port).list().unwrap();
    assert_eq!(listed.len(), BOOKINGS, "one more once one ended");
}
