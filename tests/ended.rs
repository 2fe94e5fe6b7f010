//! Requests whose connection ends before their answer, closed by their
//! client or by the server's patience: they leave the server at once, are
//! never queued, and are never granted what nobody can receive.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{Responder, TestServer, answer_with, random, read_reply, secret};
use namaste::Uid;
use namaste::client::Client;
use namaste::reactor::Config;
use namaste::wire::{Mode, Request};

const GRANTED: Option<u8> = Some(1);
const DENIED: Option<u8> = Some(0);

/// A server whose rw timeout is half a second: pending requests are
/// closed after two seconds.
fn quick_server() -> TestServer {
    TestServer::with(Config {
        rw_timeout: Duration::from_millis(500),
        ..Config::default()
    })
}

/// A uid booked by a holder that answers its first verification and
/// never another: each later one takes the rw timeout, which keeps the
/// uid's pending requests long. Dropping the listener kills the holder.
fn silent_holder(server: &TestServer) -> (Uid, Arc<TcpListener>) {
    let (uid, handshake) = (random(), secret());
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let answered = answer_with(listener.clone(), *uid.as_bytes(), 1);
    assert_eq!(server.book(uid, handshake, port), GRANTED);
    answered.join().unwrap();
    (uid, listener)
}

/// Opens a connection and sends `request` on it, without reading a reply.
fn send(server: &TestServer, request: &Request) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.write_all(&request.encode()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// `n` NOTIFYs for `uid`: each needs a verification of its silent holder.
fn notifies(server: &TestServer, uid: Uid, n: usize) -> Vec<TcpStream> {
    let notify = Request::Notify {
        uid,
        message: b"hello".to_vec(),
    };
    (0..n).map(|_| send(server, &notify)).collect()
}

/// A BOOK from a live process whose request is pending, and its
/// responder.
fn pending_book(server: &TestServer, uid: Uid) -> (TcpStream, Responder) {
    let handshake = secret();
    let responder = Responder::honest(uid, handshake);
    let request = Request::Book {
        uid,
        handshake,
        port: responder.port,
    };
    (send(server, &request), responder)
}

/// Three WAITs pending behind NOTIFYs that keep a silent holder busy for
/// longer than the server's patience: closed without a reply, they never
/// join the queue of waiters (on main they were queued once their
/// turn came, and counted for their whole minute).
#[test]
fn waits_closed_by_patience_never_join_the_queue() {
    let server = quick_server();
    let (uid, _holder) = silent_holder(&server);
    let _notifies = notifies(&server, uid, 5);
    let mut waits: Vec<TcpStream> = (0..3)
        .map(|_| {
            let wait = Request::Wait {
                uid,
                handshake: secret(),
                port: 1,
                wait: Duration::from_secs(60),
                line: false,
                token: false,
                mode: Mode::Exclusive,
            };
            send(&server, &wait)
        })
        .collect();
    for wait in &mut waits {
        assert_eq!(read_reply(wait), None, "a wait answered while pending");
    }
    // A BOOK behind them is answered once those before it are served.
    let (mut book, _responder) = pending_book(&server, uid);
    assert_eq!(read_reply(&mut book), DENIED);
    let client = Client::new().with_port(server.port());
    assert_eq!(client.query(uid).unwrap().waiters, 0);
}

/// A BOOK pending behind a silent holder's NOTIFYs is closed by patience;
/// the holder then dies. The booker is never granted, since it cannot
/// know: it must not be named as the holder.
#[test]
fn a_book_closed_by_patience_is_never_granted() {
    let server = quick_server();
    let (uid, holder) = silent_holder(&server);
    let _notifies = notifies(&server, uid, 10);
    let (mut book, responder) = pending_book(&server, uid);
    assert_eq!(read_reply(&mut book), None, "answered while pending");
    drop(holder);
    // Another booker, pending behind whatever is left, is answered once
    // those are through.
    let (mut later, _later_responder) = pending_book(&server, uid);
    read_reply(&mut later);
    let client = Client::new().with_port(server.port());
    let holder = client.query(uid).unwrap().holder;
    assert!(
        holder.is_none_or(|holder| holder.port != responder.port),
        "granted to a booker whose connection was closed: {holder:?}"
    );
}

/// A BOOK whose client closes its connection while it is pending
/// leaves at once: when the holder dies, the next live booker
/// gets the id (on main the gone one did, its grant written to a
/// closed socket).
#[test]
fn a_pending_book_whose_client_closes_is_never_granted() {
    let server = quick_server();
    let (uid, holder) = silent_holder(&server);
    let _notifies = notifies(&server, uid, 6);
    let (book, _responder) = pending_book(&server, uid);
    drop(book);
    drop(holder);
    let (mut later, _later_responder) = pending_book(&server, uid);
    assert_eq!(read_reply(&mut later), GRANTED);
}
