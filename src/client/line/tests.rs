//! The line watcher against a loopback listener that plays the server:
//! the line kept, its close noticed, the re-attach retried and its answer
//! kept as the booking's fate, the check out written on the line.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::LineState;
use crate::client::{Booking, Client, Error};
use crate::uid::{UID_LEN, Uid};
use crate::wire::{ATTACH_LEN, CHECK_OUT_LEN, CMD_ATTACH, CMD_CHECK_OUT, CMD_LINE_TOKEN, LINE_LEN};

/// A listener playing the server, and a booking granted on a line by it:
/// the test holds the server's end of that line.
struct Granted {
    server: TcpListener,
    line: TcpStream,
    handshake: [u8; UID_LEN],
    booking: Booking,
}

fn granted(uid: Uid) -> Granted {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Client::new()
        .with_port(server.local_addr().unwrap().port())
        .with_rw_timeout(Duration::from_secs(2));
    let booker: JoinHandle<Result<Booking, Error>> = thread::spawn(move || client.book(uid));
    let mut line = server.accept().unwrap().0;
    let request = read(&mut line, LINE_LEN);
    assert_eq!(request[0], CMD_LINE_TOKEN);
    assert_eq!(&request[1..1 + UID_LEN], uid.as_bytes());
    let mut handshake = [0; UID_LEN];
    handshake.copy_from_slice(&request[1 + UID_LEN..1 + 2 * UID_LEN]);
    // The grant, and its fencing token after it.
    line.write_all(&[0x01, 0, 0, 0, 0, 0, 0, 1, 2]).unwrap();
    let booking = booker.join().unwrap().expect("granted");
    assert_eq!(booking.line_state(), LineState::Open);
    assert_eq!(booking.token(), Some(0x0102));
    Granted {
        server,
        line,
        handshake,
        booking,
    }
}

fn read(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).unwrap();
    bytes
}

/// The next ATTACH: its connection, once its bytes are checked.
fn next_attach(granted: &Granted, uid: Uid) -> TcpStream {
    let mut attach = granted.server.accept().unwrap().0;
    let request = read(&mut attach, ATTACH_LEN);
    assert_eq!(request[0], CMD_ATTACH);
    assert_eq!(&request[1..1 + UID_LEN], uid.as_bytes());
    assert_eq!(&request[1 + UID_LEN..], granted.handshake);
    attach
}

fn wait_for_state(booking: &Booking, state: LineState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while booking.line_state() != state {
        assert!(
            Instant::now() < deadline,
            "never {state:?}: {:?}",
            booking.line_state()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_line_the_server_closes_is_reattached_and_the_check_out_goes_on_the_new_one() {
    let uid = Uid::from_name("reattached");
    let granted = granted(uid);
    // The server closes the line, as at a restart.
    granted.line.shutdown(Shutdown::Both).unwrap();
    // The first try finds the server still starting: closed unanswered.
    drop(next_attach(&granted, uid));
    let refused = Instant::now();
    let mut second = next_attach(&granted, uid);
    assert!(
        refused.elapsed() >= Duration::from_millis(40),
        "tried again after {:?}",
        refused.elapsed()
    );
    assert_eq!(granted.booking.line_state(), LineState::Reattaching);
    second.write_all(&[0x01]).unwrap();
    wait_for_state(&granted.booking, LineState::Open);
    let Granted {
        server, booking, ..
    } = granted;
    let checking_out = thread::spawn(move || booking.check_out());
    let request = read(&mut second, CHECK_OUT_LEN);
    assert_eq!(request[0], CMD_CHECK_OUT);
    second.write_all(&[0x01]).unwrap();
    assert!(checking_out.join().unwrap().unwrap(), "checked out");
    server.set_nonblocking(true).unwrap();
    assert!(
        server.accept().is_err(),
        "the check out took a connection of its own"
    );
}

#[test]
fn held_without_a_line_or_lost_is_kept_and_nothing_more_is_tried() {
    for (reply, fate) in [(0x02, LineState::CallBack), (0x00, LineState::Lost)] {
        let uid = Uid::from_name("fate");
        let granted = granted(uid);
        granted.line.shutdown(Shutdown::Both).unwrap();
        let mut attach = next_attach(&granted, uid);
        attach.write_all(&[reply]).unwrap();
        wait_for_state(&granted.booking, fate);
        granted.server.set_nonblocking(true).unwrap();
        // Past the first pauses between tries (100 ms, 200 ms).
        thread::sleep(Duration::from_millis(400));
        assert!(
            granted.server.accept().is_err(),
            "tried again after {fate:?}"
        );
        granted.booking.leave_to_children();
    }
}
