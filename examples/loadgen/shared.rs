//! The `shared` and `slots` modes: every worker books one id beside the
//! others on a line (LINE shared, 0x0C) and checks out on that
//! connection, over and over. `shared`: any number at once, each grant at
//! once. `slots`: at most half the workers at once; the rest wait in the
//! queue, and a grant's latency is the hand-over from the holder that
//! checked out. More holders at once than the count is a violation.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use namaste::Uid;
use namaste::wire::{Mode, REPLY_YES, Request, TOKEN_LEN};

use super::{PATIENCE, Report, Responder, Server, Tally, on_workers};

pub fn shared(server: &Server, workers: usize, duration: Duration, mode: Mode) -> Report {
    let deadline = Instant::now() + duration;
    let uid = Uid::random().expect("random id");
    let holders = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let mut report = Report::measure(server, || {
        on_workers(workers, || {
            let responder = Responder::start();
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let Some(mut line) = tally.timed(|| book_shared(server, &responder, uid, mode))
                else {
                    continue;
                };
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if matches!(mode, Mode::Slots(n) if now > n as usize) {
                    tally.violations += 1;
                }
                std::thread::yield_now();
                // Before the check out is sent: the next grant may follow
                // its arrival at once.
                holders.fetch_sub(1, Ordering::SeqCst);
                line.write_all(&responder.check_out(uid).encode()).ok();
                let mut reply = [0];
                match line.read(&mut reply) {
                    Ok(1) if reply[0] == REPLY_YES => tally.cycles += 1,
                    Ok(1) => tally.wrong += 1,
                    _ => tally.errors += 1,
                }
            }
            tally
        })
    });
    let slots = match mode {
        Mode::Slots(n) => n.to_string(),
        _ => "-".to_string(),
    };
    report.extra = format!(
        " slots={slots} most_at_once={}",
        most.load(Ordering::SeqCst)
    );
    report
}

/// Sends LINE shared for `uid` in `mode`, waiting in the queue, and
/// answers the connection once it is granted on a line (0x01 and the
/// token); `None` on anything else.
fn book_shared(server: &Server, responder: &Responder, uid: Uid, mode: Mode) -> Option<TcpStream> {
    let request = Request::Wait {
        uid,
        handshake: responder.handshake(&uid),
        port: responder.port,
        wait: PATIENCE,
        line: true,
        token: true,
        mode,
    };
    let mut stream = TcpStream::connect_timeout(&server.addr, PATIENCE).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.write_all(&request.encode()).ok()?;
    let mut reply = [0; 1 + TOKEN_LEN];
    stream.read_exact(&mut reply).ok()?;
    (reply[0] == REPLY_YES).then_some(stream)
}
