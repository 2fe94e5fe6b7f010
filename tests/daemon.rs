//! The server as a system daemon: bookings that survive a restart, signals,
//! systemd's readiness and socket activation.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{Running, Scratch, random, read_reply, secret, silent_port, stderr};
use namaste::Uid;
use namaste::client::{Client, Error};
use namaste::wire::Request;

#[test]
fn bookings_survive_a_killed_server() {
    let dir = Scratch::new("restart");
    let state = dir.path("bookings");
    let state_arg = state.to_str().unwrap();
    let mut server = Running::start(&["--state", state_arg]);
    let port = server.port.to_string();
    let client = Client::new().with_port(server.port);
    let (live, dead) = (random(), random());
    let holder = client.book(live).expect("granted");
    // A holder that dies without checking out: its port, kept by the
    // test so that nobody else takes it, then answers something else.
    let dead_hs = secret();
    let dying = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let alive = common::answer_with(dying.clone(), *dead.as_bytes(), 1);
    let book = Request::Book {
        uid: dead,
        handshake: dead_hs,
        port: dying.local_addr().unwrap().port(),
    };
    assert_eq!(common::send_bytes(server.addr(), &book.encode()), Some(1));
    alive.join().unwrap();
    let _gone = common::answer_with(dying, [0x5a; 64], 1);
    // A booking checked out before the crash stays checked out.
    let gone = random();
    assert!(client.book(gone).unwrap().check_out().unwrap());
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );

    server.child.kill().unwrap(); // SIGKILL: no chance to save anything
    server.child.wait().unwrap();
    let mut restarted = Running::start(&["--state", state_arg, "--port", &port]);
    let line = restarted.log_line_with("bookings restored");
    assert!(line.contains(" 2 bookings restored"), "{line}");

    assert!(
        matches!(client.book(live), Err(Error::Held)),
        "the live holder lost it"
    );
    assert!(
        holder.check_out().unwrap(),
        "the holder could not check out"
    );
    assert!(client.book(dead).is_ok(), "the dead holder kept it");
    assert!(client.book(gone).is_ok());
}

#[test]
fn a_state_file_cut_short_loads_with_a_warning() {
    let dir = Scratch::new("torn");
    let state = dir.path("bookings");
    // A holder that never answers: the sweep, which verifies restored
    // bookings at once (their age is unknown), finds it silent and keeps
    // it, so nothing more is written.
    let (_silent, port) = silent_port();
    let port = port.to_be_bytes();
    let mut bytes = b"NAMASTE\x01".to_vec();
    for n in 0..2u8 {
        bytes.push(b'B');
        bytes.extend_from_slice(&[n; 64]);
        bytes.extend_from_slice(&[0xee; 64]);
        bytes.extend_from_slice(&[127, 0, 0, 1]);
        bytes.extend_from_slice(&port);
    }
    bytes.truncate(bytes.len() - 20); // the second record, torn
    fs::write(&state, &bytes).unwrap();
    let mut server = Running::start(&["--state", state.to_str().unwrap()]);
    let line = server.log_line_with("cut short");
    assert!(line.contains("offset 143"), "{line}");
    assert_eq!(server.bookings(), 1);
    // The torn tail is gone from the rewritten file.
    // Rewritten in the current layout: the last token given first, then
    // the booking with the time of the grant, its OS user and its token.
    assert_eq!(fs::metadata(&state).unwrap().len(), 8 + 9 + 143 + 4 + 8);
}

/// A file that is not a state file at all may be someone else's: the
/// start stops, naming it, and leaves it as it is.
#[test]
fn a_file_without_the_header_stops_the_start_with_its_name() {
    let dir = Scratch::new("foreign");
    let state = dir.path("bookings");
    let path = state.to_str().unwrap();
    fs::write(&state, b"hello, world").unwrap();
    let output = common::namaste(&["run", "--port", "0", "--state", path]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains(path) && text.contains("offset 0"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(fs::read(&state).unwrap(), b"hello, world");
}

/// A state file with an unreadable record in the middle (a full disk
/// once tore it, say): the server starts with the bookings recorded before
/// it, says so loudly, and keeps the whole file aside.
#[test]
fn a_corrupt_record_starts_with_what_came_before_and_keeps_the_file() {
    let dir = Scratch::new("corrupt");
    let state = dir.path("bookings");
    // A holder that never answers, kept by the sweep, which verifies
    // restored bookings at once (their age is unknown).
    let (_silent, port) = silent_port();
    let mut bytes = b"NAMASTE\x01B".to_vec();
    bytes.extend_from_slice(&[1; 64]);
    bytes.extend_from_slice(&[0xee; 64]);
    bytes.extend_from_slice(&[127, 0, 0, 1]);
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes.push(b'X');
    bytes.extend_from_slice(&[2; 200]);
    fs::write(&state, &bytes).unwrap();
    let mut server = Running::start(&["--state", state.to_str().unwrap()]);
    let line = server.log_line_with("unknown record type 0x58 at offset 143");
    assert!(line.contains("starting with the 1 bookings"), "{line}");
    assert_eq!(server.bookings(), 1);
    let aside: Vec<_> = dir
        .entries()
        .into_iter()
        .filter(|path| path.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), bytes, "kept whole");
}

/// SIGTERM while a verification is in flight: the booker still gets its
/// reply, a client that connects during the drain is refused, and the
/// server exits with 0.
#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let mut server = Running::start(&["--log-level", "debug"]);
    let (uid, hs) = (random(), secret());
    // A responder that answers only when the test says so.
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let (called, was_called) = std::sync::mpsc::channel();
    let (answer, may_answer) = std::sync::mpsc::channel::<()>();
    let answering = thread::spawn(move || {
        let (mut stream, _) = slow.accept().unwrap();
        let mut heard = [0; 64];
        stream.read_exact(&mut heard).unwrap();
        called.send(()).unwrap();
        may_answer.recv().unwrap();
        stream.write_all(uid.as_bytes()).unwrap();
    });
    let mut booker = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    booker
        .write_all(
            &Request::Book {
                uid,
                handshake: hs,
                port: slow_port,
            }
            .encode(),
        )
        .unwrap();
    was_called
        .recv_timeout(Duration::from_secs(20))
        .expect("the server never called the booker back");
    common::sigterm(&server.child);
    let draining = server.log_line_with("SIGTERM: finishing");
    assert!(draining.contains("1 requests in flight"), "{draining}");
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "a new client was let in during the drain"
    );
    answer.send(()).unwrap();
    assert_eq!(
        read_reply(&mut booker),
        Some(1),
        "the request in flight was cut"
    );
    answering.join().unwrap();
    let line = server.log_line_with("stopped on SIGTERM");
    assert!(line.contains("0 requests cut short"), "{line}");
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
}

/// SIGTERM under load: every client either gets its reply or finds the
/// server gone; none is left hanging, and the server exits with 0.
#[test]
fn sigterm_under_load_leaves_no_request_hanging() {
    let mut server = Running::start(&[]);
    let port = server.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let client = Client::new().with_port(port);
                let mut served = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match client.book(random()) {
                        Ok(booking) => {
                            served += 1;
                            drop(booking);
                        }
                        Err(Error::Held) => panic!("a fresh id was held"),
                        // The server is gone, or its last backlog entry
                        // was reset as it closed: a close, not a hang.
                        Err(Error::NoServer { .. } | Error::Refused) => break,
                        Err(e) => panic!("left hanging: {e}"),
                    }
                }
                served
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    common::sigterm(&server.child);
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(served > 0, "no load was served before the signal");
    let line = server.log_line_with("stopped on SIGTERM");
    assert!(line.contains("0 requests cut short"), "{line}");
}

#[test]
fn readiness_is_sent_to_notify_socket() {
    let dir = Scratch::new("notify");
    let socket_path = dir.path("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut command = Running::command(&[]);
    command.env("NOTIFY_SOCKET", &socket_path);
    let _server = Running::spawn(command);
    let mut message = [0; 64];
    let n = socket.recv(&mut message).unwrap();
    assert_eq!(&message[..n], b"READY=1");
}

/// Socket activation: the server takes the listening socket it is handed
/// as descriptor 3 instead of binding one.
#[test]
fn a_socket_passed_by_systemd_is_used() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = socket2::Socket::from(listener);
    socket.set_cloexec(false).unwrap();
    let fd = socket.as_raw_fd();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" run --port 1 3<&{fd}"
        ))
        .arg(env!("CARGO_BIN_EXE_namaste"));
    let server = Running::spawn(command);
    drop(socket);
    assert_eq!(server.port, port, "it bound a socket of its own");
    let client = Client::new().with_port(port);
    let booking = client.book(Uid::from_name("activated")).expect("granted");
    assert!(booking.check_out().unwrap());
}
