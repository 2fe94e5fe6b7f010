//! The slot rule under a hog: one local user keeps as many requests as it
//! can pending behind holders that never answer, and opens a
//! new connection for each one the server turns away. Everyone else's
//! request answered at once must still get through at once.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{Responder, Running, random, secret, send_bytes};
use namaste::Uid;
use namaste::client::{Client, Error};
use namaste::wire::{MAX_MESSAGE_LEN, Request};

/// Holders that never answer, as many requests for each as may be
/// pending behind it: the hog the slot rule was measured under.
const HELD: usize = 16;
const PER_ID: usize = 64;
const HOG_THREADS: usize = 16;

/// Books of a free id tried under the hog, each of which must get through.
const BOOKS: usize = 20;

/// "At once": well within the rw timeout a client waits to connect.
const AT_ONCE: Duration = Duration::from_secs(1);

/// Books `HELD` ids, then takes each holder's responder port over with a
/// listener that never accepts: a verification of any of them is silent.
fn silent_holders(port: u16) -> (Vec<Uid>, Vec<TcpListener>) {
    (0..HELD)
        .map(|_| {
            let (uid, handshake) = (random(), secret());
            let honest = Responder::honest(uid, handshake);
            let request = Request::Book {
                uid,
                handshake,
                port: honest.port,
            };
            let addr = ([127, 0, 0, 1], port).into();
            assert_eq!(send_bytes(addr, &request.encode()), Some(1));
            let responder = honest.port;
            drop(honest);
            let silent = TcpListener::bind(("127.0.0.1", responder)).expect("retake the port");
            (uid, silent)
        })
        .unzip()
}

/// Threads that keep `HELD` × `PER_ID` NOTIFYs of 64 KiB open for the
/// silent holders, each replaced by a new one as soon as the server closes
/// it; they stop when dropped.
struct Hog {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Hog {
    fn start(port: u16, held: &[Uid]) -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let per_thread = HELD * PER_ID / HOG_THREADS;
        let threads = (0..HOG_THREADS)
            .map(|n| {
                let (stop, sent, held) = (stop.clone(), sent.clone(), held.to_vec());
                thread::spawn(move || {
                    let mut open: Vec<Option<TcpStream>> = (0..per_thread).map(|_| None).collect();
                    while !stop.load(Ordering::Relaxed) {
                        let mut replaced = 0;
                        for (i, slot) in open.iter_mut().enumerate() {
                            if slot.as_mut().is_some_and(still_open) {
                                continue;
                            }
                            replaced += 1;
                            let uid = held[(n * per_thread + i) % held.len()];
                            *slot = notify(port, uid);
                            if slot.is_some() {
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // A hog of pending requests, not of the CPU: no spinning
                        // while all its requests wait.
                        if replaced == 0 {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        Hog {
            stop,
            sent,
            threads,
        }
    }

    /// Waits, for a while, until the threads have sent `n` NOTIFYs.
    fn wait_until_sent(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sent.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the hog could not send {n}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A new connection with a NOTIFY of 64 KiB for `uid` written to it, left
/// non-blocking so that the hog can tell when the server closes it.
fn notify(port: u16, uid: Uid) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let request = Request::Notify {
        uid,
        message: vec![0x5a; MAX_MESSAGE_LEN],
    };
    stream.write_all(&request.encode()).ok()?;
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

/// Whether the server still keeps `stream` open (no reply, no close).
fn still_open(stream: &mut TcpStream) -> bool {
    let mut byte = [0];
    matches!(stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// Under one user's hog of pending NOTIFYs (the 16 × 64 of 64 KiB that the
/// slot rule was found wanting under), each of twenty books of a free id is
/// granted within a second, and none fails.
#[test]
fn a_book_of_a_free_id_gets_through_a_hog_of_pending_notifies_at_once() {
    let server = Running::start(&[]);
    let (held, _silent) = silent_holders(server.port);
    let hog = Hog::start(server.port, &held);
    hog.wait_until_sent(4 * HELD * PER_ID);
    let client = Client::new().with_port(server.port);
    for _ in 0..BOOKS {
        let started = Instant::now();
        let booked = client.book(random());
        let took = started.elapsed();
        let booking = match booked {
            Ok(booking) => booking,
            Err(Error::Held) => panic!("a free id was denied"),
            Err(e) => panic!("a book of a free id failed after {took:?}: {e}"),
        };
        assert!(took < AT_ONCE, "a book of a free id took {took:?}");
        booking.check_out().unwrap();
    }
}

/// A listener whose backlog is full, as a server's is when its slots are
/// all busy and clients keep coming: the kernel ignores a new client's
/// connection, which then times out. That is a busy server, not an absent
/// one, and the error says so in one line naming the limit.
#[test]
fn a_connection_a_full_backlog_ignores_is_not_read_as_no_server() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // The smallest backlog: one connection waits, the next is ignored.
    let listening = socket2::SockRef::from(&listener);
    listening.listen(0).unwrap();
    let mut queued = Vec::new();
    let quick = Duration::from_millis(300);
    let full = Instant::now() + Duration::from_secs(10);
    // Fills the backlog until a connection is ignored.
    while TcpStream::connect_timeout(&listener.local_addr().unwrap(), quick)
        .map(|stream| queued.push(stream))
        .is_ok()
    {
        assert!(
            Instant::now() < full,
            "{} connections and not full",
            queued.len()
        );
    }
    let client = Client::new().with_port(port).with_rw_timeout(quick);
    let error = client.status().unwrap_err();
    assert!(
        matches!(error, Error::NotAccepted { port: p, .. } if p == port),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(!text.contains("no Namaste server"), "{text}");
    assert!(text.contains("connection slots"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

/// The server asks the kernel for a backlog of 4096 connections not yet
/// accepted (or `net.core.somaxconn`, if lower), not the 128 that one
/// user's burst of connections fills at once; `ss` shows a listener's
/// backlog as its send queue.
#[test]
fn the_server_listens_with_a_backlog_of_4096() {
    let server = Running::start(&[]);
    let Ok(listed) = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", server.port)])
        .output()
    else {
        common::skip("`ss` (iproute2) is not installed");
        return;
    };
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let line = String::from_utf8(listed.stdout).unwrap();
    let backlog: usize = line
        .split_whitespace()
        .nth(2)
        .and_then(|field| field.parse().ok())
        .unwrap_or_else(|| panic!("no send queue in {line:?}"));
    assert_eq!(backlog, somaxconn.min(4096), "{line}");
}
