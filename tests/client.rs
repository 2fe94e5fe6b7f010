//! Our client against our server, through real sockets on loopback.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::users::{NOBODY_ID, root_or_skip, run_as_nobody, with_nobodys_sockets};
use common::{Flood, Responder, TestServer, random, secret};
use namaste::client::{Client, Error, MAX_UNREAD_MESSAGES, Notified};
use namaste::wire::MAX_MESSAGE_LEN;

fn client_of(server: &TestServer) -> Client {
    Client::new().with_port(server.port())
}

#[test]
fn book_deny_check_out_book_again() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    assert_eq!(booking.uid(), uid);
    assert!(matches!(client.book(uid), Err(Error::Held)));
    assert!(booking.check_out().unwrap());
    let again = client.book(uid).expect("granted again");
    assert!(again.check_out().unwrap());
}

#[test]
fn dropping_a_booking_checks_out() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    drop(client.book(uid).expect("granted"));
    assert_eq!(client.status().unwrap().bookings, 0);
    assert!(client.book(uid).is_ok());
}

#[test]
fn nothing_outlives_a_booking() {
    let server = TestServer::start();
    let client = client_of(&server);
    let booking = client.book(random()).expect("granted");
    let port = booking.responder_port();
    let thread_name = format!("responder:{port}");
    assert!(thread_names().contains(&thread_name));
    drop(booking);
    assert!(
        !thread_names().contains(&thread_name),
        "its thread lives on"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "its port still accepts"
    );
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn book_wait_gets_the_id_once_it_is_released() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let holder = client.book(uid).expect("granted");
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        holder.check_out().unwrap()
    });
    let started = Instant::now();
    let booking = client.book_wait(uid, Duration::from_secs(20));
    assert!(releaser.join().unwrap());
    assert!(
        booking.is_ok(),
        "not granted after the release: {booking:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn book_wait_gives_up_when_its_time_is_up() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let _holder = client.book(uid).expect("granted");
    let started = Instant::now();
    assert!(matches!(
        client.book_wait(uid, Duration::from_millis(400)),
        Err(Error::Held)
    ));
    common::assert_ended_when_time_was_up(started, Duration::from_millis(400));
}

#[test]
fn notify_reaches_the_holder_with_the_senders_user_and_is_acknowledged() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    let longest = vec![0x5a; MAX_MESSAGE_LEN];
    for message in [&b"open notes.txt"[..], b"", &longest] {
        assert_eq!(client.notify(uid, message).unwrap(), Notified::Delivered);
        let received = booking
            .messages()
            .recv_timeout(Duration::from_secs(5))
            .unwrap();
        assert_eq!(received.bytes, message);
        // SAFETY: geteuid has no preconditions and touches no memory.
        assert_eq!(received.sender, unsafe { libc::geteuid() });
    }
    // Delivering kept the holder's booking.
    assert!(matches!(client.book(uid), Err(Error::Held)));

    // As root, the sender's user is 0, which an unfilled field holds too:
    // a holder whose sockets are nobody's, and a sender run as nobody.
    if !root_or_skip() {
        return;
    }
    let uid = random();
    let booking = with_nobodys_sockets(|| client.book(uid).expect("granted"));
    let port = server.port().to_string();
    let uid_hex = uid.to_string();
    let sent = run_as_nobody(Command::new(env!("CARGO_BIN_EXE_namaste")))
        .args([
            "notify",
            "x",
            "from nobody",
            "--uid",
            &uid_hex,
            "--port",
            &port,
        ])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", common::stderr(&sent));
    let received = booking
        .messages()
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(received.bytes, b"from nobody");
    assert_eq!(received.sender, NOBODY_ID);
}

/// A holder that does not read its messages keeps a bounded number; the
/// rest are declined, and it keeps its booking.
#[test]
fn unread_messages_are_bounded() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    let message = vec![0x5a; MAX_MESSAGE_LEN];
    let outcomes: Vec<Notified> = (0..MAX_UNREAD_MESSAGES + 8)
        .map(|_| client.notify(uid, &message).unwrap())
        .collect();
    let delivered = outcomes
        .iter()
        .filter(|&&n| n == Notified::Delivered)
        .count();
    assert_eq!(delivered, MAX_UNREAD_MESSAGES, "{outcomes:?}");
    assert!(
        outcomes[MAX_UNREAD_MESSAGES..]
            .iter()
            .all(|&n| n == Notified::Declined)
    );
    assert!(matches!(client.book(uid), Err(Error::Held)), "still held");
    // Reading makes room again.
    booking.messages().recv().unwrap();
    assert_eq!(client.notify(uid, b"more").unwrap(), Notified::Delivered);
}

#[test]
fn notify_without_a_holder_says_so() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    assert_eq!(client.notify(uid, b"hello").unwrap(), Notified::NoHolder);
    // A holder without a line (a BOOK) that is gone without checking out,
    // too: its booking stands until the message finds its port closed.
    let handshake = secret();
    let responder = Responder::honest(uid, handshake);
    assert_eq!(server.book(uid, handshake, responder.port), Some(1));
    let port = responder.port;
    drop(responder);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(client.status().unwrap().bookings, 1, "it checked out");
    assert_eq!(client.notify(uid, b"hello").unwrap(), Notified::NoHolder);
    assert_eq!(client.status().unwrap().bookings, 0);
}

#[test]
fn a_published_client_holder_declines_messages() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let holder = namaste06::client::Client::book(
        *uid.as_bytes(),
        *random().as_bytes(),
        Some(server.port()),
        namaste::DEFAULT_RW_TIMEOUT,
    )
    .unwrap()
    .expect("granted");
    assert_eq!(client.notify(uid, b"hello").unwrap(), Notified::Declined);
    assert!(matches!(client.book(uid), Err(Error::Held)), "still held");
    assert!(holder.check_out().unwrap());
}

#[test]
fn an_overlong_message_is_refused_before_sending() {
    let server = TestServer::start();
    let client = client_of(&server);
    let too_long = vec![0; MAX_MESSAGE_LEN + 1];
    match client.notify(random(), &too_long) {
        Err(Error::MessageTooLong(len)) => assert_eq!(len, MAX_MESSAGE_LEN + 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.status().unwrap().requests,
        1,
        "nothing was sent but the status request"
    );
}

#[test]
fn status_counts() {
    let server = TestServer::start();
    let client = client_of(&server);
    let first = client.status().unwrap();
    assert_eq!(first.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (first.bookings, first.requests, first.verifications_failed),
        (0, 1, 0)
    );
    assert_eq!(first.connections, 1, "the status request's own");
    let booking = client.book(random()).expect("granted");
    // A booker whose responder is gone fails its verification.
    assert_eq!(
        server.book(random(), secret(), common::dead_port()),
        Some(0)
    );
    let second = client.status().unwrap();
    assert_eq!(
        (
            second.bookings,
            second.requests,
            second.verifications_failed
        ),
        (1, 4, 1)
    );
    drop(booking);
}

/// Any process can connect to a holder's responder and say nothing; the
/// holder must still answer the server at once. A silent holder keeps its
/// booking too, so a denial alone proves nothing: each contender must be
/// denied well inside the rw timeout (the server heard the uid, not
/// silence), and each message delivered.
#[test]
fn silent_connections_to_a_responder_do_not_lose_the_booking() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    let silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", booking.responder_port())).unwrap())
        .collect();
    for round in 0..5 {
        let started = Instant::now();
        assert!(
            matches!(client.book(uid), Err(Error::Held)),
            "the holder looked dead"
        );
        let took = started.elapsed();
        assert!(
            took < namaste::DEFAULT_RW_TIMEOUT / 3,
            "round {round}: denied after {took:?}, as for a silent holder"
        );
        assert_eq!(client.notify(uid, b"there?").unwrap(), Notified::Delivered);
        booking.messages().recv().unwrap();
    }
    assert!(booking.check_out().unwrap());
    drop(silent);
}

#[test]
fn no_server_says_how_to_start_one() {
    let client = Client::new().with_port(common::dead_port());
    let error = client.book(random()).unwrap_err();
    assert!(matches!(error, Error::NoServer { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("namaste run"), "{message}");
    assert!(matches!(client.status(), Err(Error::NoServer { .. })));
}

/// Threads that connect to a responder in this process as fast as they
/// can and keep their connections open, while a contender books and a
/// sender notifies: nearly every message is still delivered, every
/// contender denied (a flood fast enough to fill the kernel's backlog can
/// delay a verification past the rw timeout: silence, which costs the
/// holder a message, never its lock). The flood that did cost a `hold`
/// process its lock before is in tests/liveness.rs.
#[test]
fn messages_and_verifications_get_through_a_flood_on_the_responder() {
    let server = TestServer::start();
    let client = client_of(&server);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    let port = booking.responder_port();
    let flood = Flood::start(port, 3, 100);
    thread::sleep(Duration::from_millis(100));
    let mut outcomes = Vec::new();
    for round in 0..100 {
        outcomes.push(client.notify(uid, b"still there?").unwrap());
        while booking.messages().try_recv().is_ok() {}
        assert!(
            matches!(client.book(uid), Err(Error::Held)),
            "granted in round {round}"
        );
    }
    let made = flood.stop();
    let delivered = outcomes
        .iter()
        .filter(|&&n| n == Notified::Delivered)
        .count();
    assert!(
        delivered * 10 >= outcomes.len() * 9,
        "{delivered} of {} delivered, after {made} flooding connections",
        outcomes.len()
    );
    assert!(booking.check_out().unwrap(), "still the holder");
}

/// A dead holder's port, taken over by the responder of another booking
/// (ports are reused): the server calls it back with the dead holder's
/// handshake, and our responder's answer to a handshake that is not its
/// own must prove the dead holder gone, so the next taker is granted. The
/// holder's port stays the test's own listener, which first answers the
/// booking's verification, then relays every call to the other booking's
/// responder, byte for byte, as if that responder had taken the port.
#[test]
fn a_dead_holders_port_reused_by_another_responder_frees_the_lock() {
    let server = TestServer::start();
    let client = client_of(&server);
    let (uid, dead_holder) = (random(), secret());
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let booked = common::answer_with(listener.clone(), *uid.as_bytes(), 1);
    assert_eq!(server.book(uid, dead_holder, port), Some(1));
    booked.join().unwrap();
    let other = client.book(random()).expect("granted");
    let relay = relay_calls(listener, other.responder_port());
    let taker = client.book(uid);
    assert!(taker.is_ok(), "the dead holder's booking stands: {taker:?}");
    // The relay ends on its next connection, if the server made none.
    drop(TcpStream::connect(("127.0.0.1", port)));
    relay.join().unwrap();
    assert!(other.check_out().unwrap());
}

/// Relays one connection to `listener` to the responder on `to`: the
/// handshake there, and whatever that responder answers back, until it
/// closes.
fn relay_calls(listener: Arc<TcpListener>, to: u16) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Ok((mut call, _)) = listener.accept() else {
            return;
        };
        let mut handshake = [0; 64];
        if call.read_exact(&mut handshake).is_err() {
            return;
        }
        let mut responder = TcpStream::connect(("127.0.0.1", to)).unwrap();
        responder
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        responder.write_all(&handshake).unwrap();
        let mut answer = Vec::new();
        let _ = responder.read_to_end(&mut answer);
        let _ = call.write_all(&answer);
    })
}
