//! How the client learns what a server gives, against a listener that
//! plays an older server of ours: one that keeps lines but gives no
//! fencing tokens.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::client::Client;
use crate::uid::Uid;
use crate::wire::{
    BOOK_LEN, CHECK_OUT_LEN, CMD_BOOK, CMD_CHECK_OUT, CMD_LINE, CMD_LINE_TOKEN, CMD_STATUS,
    LINE_LEN,
};

/// The next connection to `server`, and the first `len` bytes sent on it.
fn next_request(server: &TcpListener, len: usize) -> (TcpStream, Vec<u8>) {
    let mut stream = server.accept().unwrap().0;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = vec![0; len];
    stream.read_exact(&mut request).unwrap();
    (stream, request)
}

#[test]
fn a_server_that_gives_no_tokens_is_asked_for_none_again() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Client::new()
        .with_port(server.local_addr().unwrap().port())
        .with_rw_timeout(Duration::from_secs(2));
    let booker = thread::spawn(move || {
        let first = client.book(Uid::from_name("first"));
        let second = client.book(Uid::from_name("second"));
        (first, second)
    });
    // It does not know the LINE that asks for a token: closed unanswered.
    let (_, request) = next_request(&server, LINE_LEN);
    assert_eq!(request[0], CMD_LINE_TOKEN);
    // Its STATUS names lines, but no tokens.
    let (mut status, request) = next_request(&server, 1);
    assert_eq!(request, [CMD_STATUS]);
    let line = "namaste 0.1.0 bookings=0 connections=1 requests=1 verifications_failed=0 uptime=1s lines=0\n";
    status.write_all(line.as_bytes()).unwrap();
    drop(status);
    // This book goes on as a plain BOOK; the next asks for a line alone.
    let (mut book, request) = next_request(&server, BOOK_LEN);
    assert_eq!(request[0], CMD_BOOK);
    book.write_all(&[0x01]).unwrap();
    drop(book);
    let (mut line, request) = next_request(&server, LINE_LEN);
    assert_eq!(request[0], CMD_LINE);
    line.write_all(&[0x01]).unwrap();
    let (first, second) = booker.join().unwrap();
    let (first, second) = (first.expect("granted"), second.expect("granted"));
    assert_eq!((first.token(), second.token()), (None, None));
    // Each checks out: the second on its line, the first on a connection
    // of its own.
    let dropper = thread::spawn(move || drop(second));
    let mut request = [0; CHECK_OUT_LEN];
    line.read_exact(&mut request).unwrap();
    assert_eq!(request[0], CMD_CHECK_OUT);
    line.write_all(&[0x01]).unwrap();
    dropper.join().unwrap();
    let dropper = thread::spawn(move || drop(first));
    let (mut check_out, request) = next_request(&server, CHECK_OUT_LEN);
    assert_eq!(request[0], CMD_CHECK_OUT);
    check_out.write_all(&[0x01]).unwrap();
    dropper.join().unwrap();
}
