//! The `lines` mode: each worker books its own id on a line (LINE, a wait
//! of 0) and checks out on that same connection, over and over: one
//! connection per cycle and no call-back, where `unique` needs three (BOOK,
//! the server's verification, CHECK OUT).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use namaste::Uid;
use namaste::wire::{Mode, REPLY_YES, Request};

use super::{PATIENCE, Report, Responder, SETTLE, Server, Tally, on_workers, show};

pub fn lines(server: &Server, workers: usize, duration: Duration) -> Report {
    let deadline = Instant::now() + duration;
    let mut report = Report::measure(server, || {
        on_workers(workers, || {
            // Its port is sent, as the protocol asks, but never called:
            // a booker on a line needs no call-back.
            let responder = Responder::start();
            let uid = Uid::random().expect("random id");
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let Some(mut line) = tally.timed(|| book_on_line(server, &responder, uid)) else {
                    continue;
                };
                match check_out_on(&mut line, &responder, uid) {
                    Some(REPLY_YES) => tally.cycles += 1,
                    // The server answers a check out on a line with 0x01
                    // or closes; anything else is wrong.
                    Some(_) => tally.wrong += 1,
                    None => tally.errors += 1,
                }
            }
            tally
        })
    });
    std::thread::sleep(SETTLE);
    report.extra = format!(" rss_settled_kib={}", show(server.rss_kib()));
    report
}

/// Sends LINE for `uid`, free and ours alone, and answers the connection
/// once it is granted on a line (0x01); `None` on anything else.
fn book_on_line(server: &Server, responder: &Responder, uid: Uid) -> Option<TcpStream> {
    let request = Request::Wait {
        uid,
        handshake: responder.handshake(&uid),
        port: responder.port,
        wait: Duration::ZERO,
        line: true,
        token: false,
        mode: Mode::Exclusive,
    };
    let mut stream = TcpStream::connect_timeout(&server.addr, PATIENCE).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.write_all(&request.encode()).ok()?;
    let mut reply = [0];
    match stream.read(&mut reply) {
        Ok(1) if reply[0] == REPLY_YES => Some(stream),
        _ => None,
    }
}

/// Sends CHECK OUT on `line` and reads its reply byte.
fn check_out_on(line: &mut TcpStream, responder: &Responder, uid: Uid) -> Option<u8> {
    line.write_all(&responder.check_out(uid).encode()).ok()?;
    let mut reply = [0];
    match line.read(&mut reply) {
        Ok(1) => Some(reply[0]),
        _ => None,
    }
}
