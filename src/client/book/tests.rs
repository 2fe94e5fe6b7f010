//! How the client learns what a server gives, against a listener that
//! plays an older server of ours: one that keeps lines but gives no
//! fencing tokens.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::client::Client;
use crate::uid::Uid;
use crate::wire::{CHECK_OUT_LEN, CMD_CHECK_OUT, CMD_LINE, CMD_LINE_TOKEN, CMD_STATUS, LINE_LEN};

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
    // The same book goes again as a LINE that asks for no token; so does
    // the next.
    let (mut first_line, request) = next_request(&server, LINE_LEN);
    assert_eq!(request[0], CMD_LINE);
    first_line.write_all(&[0x01]).unwrap();
    let (mut line, request) = next_request(&server, LINE_LEN);
    assert_eq!(request[0], CMD_LINE);
    line.write_all(&[0x01]).unwrap();
    let (first, second) = booker.join().unwrap();
    let (first, second) = (first.expect("granted"), second.expect("granted"));
    assert_eq!((first.token(), second.token()), (None, None));
    // Each checks out on its own line.
    for (booking, line) in [(second, &mut line), (first, &mut first_line)] {
        let dropper = thread::spawn(move || drop(booking));
        let mut request = [0; CHECK_OUT_LEN];
        line.read_exact(&mut request).unwrap();
        assert_eq!(request[0], CMD_CHECK_OUT);
        line.write_all(&[0x01]).unwrap();
        dropper.join().unwrap();
    }
}
