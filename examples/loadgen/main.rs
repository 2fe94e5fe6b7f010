//! The load generator behind `scripts/load-test`: drives a Namaste server
//! (ours or the published 0.6.0) on loopback in one mode for a bounded
//! time, and prints one line of `key=value` results.
//!
//! ```text
//! cargo run --release --example loadgen -- --port P --server-pid PID \
//!     --mode unique|lines|contended|hostile|race|memory|status|query|shared|slots \
//!     [--workers N] [--seconds S]
//! ```
//!
//! Exits with 1 when it saw an exclusion violation, a wrong reply or an
//! unexpected error, so a script can fail on it.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use namaste::Uid;
use namaste::handshake::Handshake;
use namaste::wire::{Mode, Request};

mod lines;
mod peers;
mod report;
mod shared;

use peers::{Responder, Server};
use report::{Report, Tally, on_workers, show};

/// How long a generator socket waits for the server before counting an
/// error; longer than any verification the server may be waiting on.
const PATIENCE: Duration = Duration::from_secs(15);
/// Idle connections held open in hostile mode.
const IDLE_CONNECTIONS: usize = 200;
/// Bookers pointing the server at a listener that never answers.
const SILENT_BOOKERS: usize = 4;
/// Bookings made in memory mode.
const MEMORY_BOOKINGS: usize = 100_000;
/// How long after a run to read the server's memory again: past the
/// server's default rw timeout, so every deadline it queued has passed.
const SETTLE: Duration = Duration::from_millis(3500);

struct Options {
    port: u16,
    server_pid: Option<u32>,
    mode: String,
    workers: usize,
    seconds: f64,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("loadgen: {message}");
            return ExitCode::from(2);
        }
    };
    let server = Server {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)),
        pid: options.server_pid,
    };
    let duration = Duration::from_secs_f64(options.seconds);
    let report = match options.mode.as_str() {
        "unique" => unique(&server, options.workers, duration),
        "lines" => lines::lines(&server, options.workers, duration),
        "contended" => contended(&server, options.workers, duration),
        "hostile" => hostile(&server, options.workers, duration),
        "race" => race(&server, options.workers, duration),
        "memory" => memory(&server, options.workers),
        "status" => asking(&server, options.workers, duration, false),
        "query" => asking(&server, options.workers, duration, true),
        "shared" => shared::shared(&server, options.workers, duration, Mode::Shared),
        "slots" => {
            let slots = (options.workers / 2).max(1) as u32;
            shared::shared(&server, options.workers, duration, Mode::Slots(slots))
        }
        other => {
            eprintln!("loadgen: unknown mode {other:?}");
            return ExitCode::from(2);
        }
    };
    println!("mode={} {}", options.mode, report.line());
    if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        port: namaste::DEFAULT_PORT,
        server_pid: None,
        mode: "unique".into(),
        workers: 4,
        seconds: 5.0,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => options.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--server-pid" => {
                options.server_pid =
                    Some(value()?.parse().map_err(|e| format!("--server-pid: {e}"))?)
            }
            "--mode" => options.mode = value()?,
            "--workers" => {
                options.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?
            }
            "--seconds" => {
                options.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if options.workers == 0 || options.seconds.is_nan() || options.seconds <= 0.0 {
        return Err("--workers and --seconds must be positive".into());
    }
    Ok(options)
}

/// Each worker books its own id and checks it out, over and over.
fn unique(server: &Server, workers: usize, duration: Duration) -> Report {
    let mut report = Report::measure(server, || unique_load(server, workers, duration));
    thread::sleep(SETTLE);
    report.extra = format!(" rss_settled_kib={}", show(server.rss_kib()));
    report
}

fn unique_load(server: &Server, workers: usize, duration: Duration) -> Tally {
    let deadline = Instant::now() + duration;
    on_workers(workers, || {
        let responder = Responder::start();
        let uid = Uid::random().expect("random id");
        let mut tally = Tally::default();
        while Instant::now() < deadline {
            match tally.timed_ask(server, &responder.book(uid)) {
                Some(0) => tally.wrong += 1, // nobody else holds this id
                Some(_) => {}
                None => continue,
            }
            match server.ask(&responder.check_out(uid)) {
                Some(0) => tally.wrong += 1,
                Some(_) => tally.cycles += 1,
                None => tally.errors += 1,
            }
        }
        tally
    })
}

/// Every worker books one shared id; a grant while another worker holds it
/// is an exclusion violation.
fn contended(server: &Server, workers: usize, duration: Duration) -> Report {
    let deadline = Instant::now() + duration;
    let uid = Uid::random().expect("random id");
    let holders = AtomicUsize::new(0);
    let mut report = Report::measure(server, || {
        on_workers(workers, || {
            let responder = Responder::start();
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                match tally.timed_ask(server, &responder.book(uid)) {
                    Some(0) | None => continue,
                    Some(_) => {}
                }
                if holders.fetch_add(1, Ordering::SeqCst) > 0 {
                    tally.violations += 1;
                }
                thread::yield_now();
                holders.fetch_sub(1, Ordering::SeqCst);
                match server.ask(&responder.check_out(uid)) {
                    Some(0) => tally.wrong += 1, // a holder's own check out
                    Some(_) => tally.cycles += 1,
                    None => tally.errors += 1,
                }
            }
            tally
        })
    });
    report.extra = format!(" books={}", report.tally.latencies_us.len());
    report
}

/// `unique`, while idle connections sit open and bookers point the server
/// at a listener that never answers; each of theirs must be answered no.
fn hostile(server: &Server, workers: usize, duration: Duration) -> Report {
    let stop = AtomicBool::new(false);
    let (silent, silent_port) = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind silent");
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    };
    let hostile_books = AtomicUsize::new(0);
    // What the silent bookers were answered: anything but "no" is wrong,
    // since they never proved alive; no reply at all is an error.
    let silent_granted = AtomicUsize::new(0);
    let silent_unanswered = AtomicUsize::new(0);
    let mut report = None;
    thread::scope(|scope| {
        scope.spawn(|| hold_idle_connections(server, &stop));
        for _ in 0..SILENT_BOOKERS {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let request = Request::Book {
                        uid: Uid::random().expect("random id"),
                        handshake: Handshake::random().expect("random handshake"),
                        port: silent_port,
                    };
                    match server.ask(&request) {
                        Some(0) => {}
                        Some(_) => {
                            silent_granted.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            silent_unanswered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    hostile_books.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Let the idle connections and silent verifications take hold.
        thread::sleep(Duration::from_millis(500));
        report = Some(Report::measure(server, || {
            unique_load(server, workers, duration)
        }));
        stop.store(true, Ordering::Relaxed);
    });
    drop(silent);
    let mut report = report.expect("measured");
    report.tally.wrong += silent_granted.into_inner() as u64;
    report.tally.errors += silent_unanswered.into_inner() as u64;
    report.extra = format!(
        " idle_connections={IDLE_CONNECTIONS} silent_bookers={SILENT_BOOKERS} silent_books={}",
        hostile_books.load(Ordering::Relaxed)
    );
    report
}

/// Keeps `IDLE_CONNECTIONS` connections open that never send a byte,
/// reopening those the server closes, until `stop`.
fn hold_idle_connections(server: &Server, stop: &AtomicBool) {
    let mut idle: Vec<Option<TcpStream>> = (0..IDLE_CONNECTIONS).map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        for slot in idle.iter_mut() {
            let closed = slot.as_mut().is_none_or(|stream| {
                let _ = stream.set_nonblocking(true);
                matches!(stream.read(&mut [0; 1]), Ok(0))
            });
            if closed {
                *slot = TcpStream::connect(server.addr).ok();
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Rounds of `workers` contenders booking one fresh id at the same
/// instant: exactly one grant per round.
fn race(server: &Server, workers: usize, duration: Duration) -> Report {
    let deadline = Instant::now() + duration;
    let round_uid = Mutex::new(Uid::random().expect("random id"));
    let grants = AtomicUsize::new(0);
    let barrier = Barrier::new(workers);
    let going = AtomicBool::new(true);
    let rounds = AtomicUsize::new(0);
    let mut report = Report::measure(server, || {
        let mut tally = on_workers(workers, || {
            let responder = Responder::start();
            let mut tally = Tally::default();
            loop {
                if barrier.wait().is_leader() {
                    *round_uid.lock().unwrap() = Uid::random().expect("random id");
                    grants.store(0, Ordering::SeqCst);
                    going.store(Instant::now() < deadline, Ordering::SeqCst);
                }
                barrier.wait();
                if !going.load(Ordering::SeqCst) {
                    return tally;
                }
                let uid = *round_uid.lock().unwrap();
                if tally
                    .timed_ask(server, &responder.book(uid))
                    .is_some_and(|r| r != 0)
                {
                    grants.fetch_add(1, Ordering::SeqCst);
                }
                // Everyone answered, every responder still alive: judge.
                if barrier.wait().is_leader() {
                    rounds.fetch_add(1, Ordering::SeqCst);
                    match grants.load(Ordering::SeqCst) {
                        1 => {}
                        0 => tally.wrong += 1,
                        _ => tally.violations += 1,
                    }
                }
            }
        });
        tally.cycles = rounds.load(Ordering::SeqCst) as u64;
        tally
    });
    report.extra = format!(" contenders={workers}");
    report
}

/// Books `MEMORY_BOOKINGS` ids held by one live responder and reports the
/// server's resident bytes per booking; then checks them all out.
fn memory(server: &Server, workers: usize) -> Report {
    let responder = Responder::start();
    let uids: Vec<Uid> = (0..MEMORY_BOOKINGS)
        .map(|_| Uid::random().expect("random id"))
        .collect();
    let per_worker = MEMORY_BOOKINGS.div_ceil(workers);
    let each = |request: &(dyn Fn(Uid) -> Request + Sync), tally: &mut Tally| {
        let mut total = Tally::default();
        thread::scope(|scope| {
            let handles: Vec<_> = uids
                .chunks(per_worker)
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut tally = Tally::default();
                        for &uid in chunk {
                            match tally.timed_ask(server, &request(uid)) {
                                Some(0) => tally.wrong += 1,
                                Some(_) => tally.cycles += 1,
                                None => {}
                            }
                        }
                        tally
                    })
                })
                .collect();
            for handle in handles {
                total.merge(handle.join().expect("worker panicked"));
            }
        });
        tally.merge(total);
    };
    let before = server.rss_kib();
    let mut report = Report::measure(server, || {
        let mut tally = Tally::default();
        each(&|uid| responder.book(uid), &mut tally);
        tally
    });
    let held = server.rss_kib();
    let mut released = Tally::default();
    each(&|uid| responder.check_out(uid), &mut released);
    report.tally.errors += released.errors;
    report.tally.wrong += released.wrong;
    thread::sleep(SETTLE);
    let after = server.rss_kib();
    let per_booking = before
        .zip(held)
        .map(|(before, held)| (held.saturating_sub(before) * 1024) / MEMORY_BOOKINGS as u64);
    report.extra = format!(
        " bookings={MEMORY_BOOKINGS} bytes_per_booking={} rss_settled_kib={}",
        show(per_booking),
        show(after)
    );
    report
}

/// Each worker asks for one line over and over: STATUS, or QUERY for an id
/// the worker holds, which costs the server a look-up of the holder's OS
/// user in the kernel. Beside each other, the two rows' CPU per request
/// tell what that look-up costs.
fn asking(server: &Server, workers: usize, duration: Duration, query: bool) -> Report {
    let deadline = Instant::now() + duration;
    Report::measure(server, || {
        on_workers(workers, || {
            let responder = Responder::start();
            let uid = Uid::random().expect("random id");
            let mut tally = Tally::default();
            let request = if query {
                if server.ask(&responder.book(uid)) != Some(1) {
                    tally.wrong += 1;
                    return tally;
                }
                Request::Query { uid }
            } else {
                Request::Status
            };
            while Instant::now() < deadline {
                match tally.timed(|| server.ask_line(&request)) {
                    // Held, by a user the kernel named.
                    Some(line)
                        if query && line.starts_with("held ") && !line.contains("user=?") =>
                    {
                        tally.cycles += 1;
                    }
                    Some(line) if !query && line.starts_with("namaste ") => tally.cycles += 1,
                    Some(_) => tally.wrong += 1,
                    None => {}
                }
            }
            if query && server.ask(&responder.check_out(uid)) != Some(1) {
                tally.wrong += 1;
            }
            tally
        })
    })
}
