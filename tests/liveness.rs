//! What proves a holder dead, through real processes: only a refused
//! connection or a wrong answer. A holder that is stopped, flooded or has
//! handed its lock down to a command that runs on keeps its booking.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::{Running, Scratch, exited, quiet_hold, random, secret, signal, wait_until_exited};
use namaste::client::{Client, Error};

/// The server's rw timeout in these tests: how long a silent holder costs
/// each contender.
const RW_TIMEOUT: &str = "0.3";

fn server() -> Running {
    Running::start(&["--rw-timeout", RW_TIMEOUT])
}

/// The exit status of one `hold NAME -- true`: 0 granted, 75 held.
fn try_hold(server: &Running, name: &str) -> Option<i32> {
    quiet_hold(server.port, name, &[], &["true"])
        .status()
        .unwrap()
        .code()
}

/// `hold` killed with SIGKILL: its command, then the grandchild the command
/// left behind, keep the lock; the moment the last of them exits, the next
/// `hold` gets it.
#[test]
fn hold_killed_with_sigkill_leaves_the_lock_to_its_command_and_grandchild() {
    let server = server();
    let scratch = Scratch::new("sigkill");
    let grandchild = format!(
        "sh -c 'echo $$ > {}; {}' &",
        scratch.path("grandchild").display(),
        scratch.wait_for_file("stop-grandchild")
    );
    let script = format!(
        "echo $$ > {}; {grandchild} {}",
        scratch.path("command").display(),
        scratch.wait_for_file("stop-command")
    );
    let mut holder = quiet_hold(server.port, "nightly", &[], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    let (command, grandchild) = (scratch.pid("command"), scratch.pid("grandchild"));
    server.wait_for_bookings(1);

    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!exited(command), "the command died with hold");
    assert_eq!(try_hold(&server, "nightly"), Some(75), "hold killed");

    scratch.touch("stop-command");
    wait_until_exited(command);
    assert_eq!(try_hold(&server, "nightly"), Some(75), "command exited");

    scratch.touch("stop-grandchild");
    wait_until_exited(grandchild);
    assert_eq!(try_hold(&server, "nightly"), Some(0), "all of them exited");
}

/// `--no-inherit` is today's `flock -o`: the command does not keep the
/// lock, so `hold` killed frees it while the command runs on.
#[test]
fn with_no_inherit_hold_killed_frees_the_lock_at_once() {
    let server = server();
    let scratch = Scratch::new("no-inherit");
    let script = format!(
        "echo $$ > {}; {}",
        scratch.path("command").display(),
        scratch.wait_for_file("stop")
    );
    let mut holder = quiet_hold(
        server.port,
        "daemon",
        &["--no-inherit"],
        &["sh", "-c", &script],
    )
    .spawn()
    .unwrap();
    let command = scratch.pid("command");
    server.wait_for_bookings(1);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(try_hold(&server, "daemon"), Some(0));
    assert!(!exited(command), "the command still runs");
    scratch.touch("stop");
    wait_until_exited(command);
}

/// A holder stopped (Ctrl-Z, a debugger) cannot answer, but is alive: it
/// keeps its lock, and checks out normally once continued.
#[test]
fn a_holder_stopped_with_sigstop_keeps_its_booking() {
    let server = server();
    let scratch = Scratch::new("sigstop");
    // Without inheritance the stopped `hold` is the only listener.
    let script = scratch.wait_for_file("stop");
    let mut holder = quiet_hold(
        server.port,
        "job",
        &["--no-inherit"],
        &["sh", "-c", &script],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    server.wait_for_bookings(1);
    signal(holder.id(), "-STOP");
    for attempt in 0..3 {
        assert_eq!(try_hold(&server, "job"), Some(75), "attempt {attempt}");
    }
    signal(holder.id(), "-CONT");
    scratch.touch("stop");
    let output = wait_output(&mut holder);
    assert_eq!(output.0, Some(0));
    assert!(output.1.is_empty(), "hold said: {}", output.1);
    assert_eq!(try_hold(&server, "job"), Some(0));
}

fn wait_output(child: &mut Child) -> (Option<i32>, String) {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    (child.wait().unwrap().code(), text)
}

/// The library's way to the same: a booking shared with a child stands
/// after the parent gives it up, until the child exits.
#[test]
fn a_booking_left_to_a_child_stands_until_the_child_exits() {
    let server = server();
    let client = Client::new().with_port(server.port);
    let scratch = Scratch::new("library");
    let uid = random();
    let booking = client.book(uid).expect("granted");
    let mut command = Command::new("sh");
    command.args(["-c", &scratch.wait_for_file("stop")]);
    booking.share_with(&mut command).unwrap();
    let mut child = command.spawn().unwrap();
    drop(command);
    booking.leave_to_children();
    assert!(
        matches!(client.book(uid), Err(Error::Held)),
        "left to the child"
    );
    scratch.touch("stop");
    child.wait().unwrap();
    assert!(client.book(uid).is_ok(), "the child exited");

    // Not shared, a booking left to children is free at once.
    let uid = random();
    let booking = client.book(uid).expect("granted");
    booking.leave_to_children();
    assert!(client.book(uid).is_ok());
}

/// What a holder's port says decides: silence (nobody accepts) proves
/// nothing, and the booking stays; a whole answer that is not the uid (the
/// port belongs to some other program now) proves the holder gone. The
/// port is one listener of the test's own throughout, so no other process
/// can take it in between.
#[test]
fn a_port_that_answers_wrongly_is_dead_and_one_that_is_silent_is_not() {
    let server = common::TestServer::with(namaste::reactor::Config {
        rw_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    let (uid, holder) = (random(), secret());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = std::sync::Arc::new(listener);
    let booked = common::answer_with(listener.clone(), *uid.as_bytes(), 1);
    assert_eq!(server.book(uid, holder, port), Some(1));
    booked.join().unwrap();
    let contender = secret();
    let contender_responder = common::Responder::honest(uid, contender);
    // Nobody accepts: the call waits in the backlog until it times out.
    assert_eq!(
        server.book(uid, contender, contender_responder.port),
        Some(0),
        "silence cost the holder its booking"
    );
    // Now the port answers, wrongly: the waiting call first, then the next.
    let wrong = common::answer_with(listener.clone(), [0x5a; 64], 2);
    assert_eq!(
        server.book(uid, contender, contender_responder.port),
        Some(1),
        "a wrong answer proves the holder gone"
    );
    // In case the waiting call left the backlog unanswered: one more
    // connection ends the answering thread.
    drop(TcpStream::connect(("127.0.0.1", port)));
    wrong.join().unwrap();
}

/// The published client's responder serves one connection at a time, so a
/// few silent connections park it past the server's rw timeout: alive, and
/// its booking stays. The contender's denial must come after that rw
/// timeout, which shows the server's call-back was indeed left unanswered.
#[test]
fn a_published_client_holder_parked_by_silent_connections_keeps_its_booking() {
    let server = common::TestServer::with(namaste::reactor::Config {
        rw_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    let (uid, handshake) = (random(), secret());
    let proxy = BookingProxy::start(server.port());
    let _holder = namaste06::client::Client::book(
        *uid.as_bytes(),
        *handshake.as_bytes(),
        Some(proxy.port),
        Duration::from_secs(2),
    )
    .unwrap()
    .expect("granted");
    let responder_port = proxy.booked_port();
    let _parked: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", responder_port)).unwrap())
        .collect();
    let client = Client::new().with_port(server.port());
    let started = std::time::Instant::now();
    assert!(
        matches!(client.book(uid), Err(Error::Held)),
        "the parked holder lost"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "denied after {took:?}: the holder was not parked, or not called back"
    );
    // Its own check out would go to the proxy, which is gone.
    assert_eq!(
        server.check_out(uid, handshake),
        Some(1),
        "still the holder"
    );
}

/// Passes one BOOK through to the server and remembers the responder port
/// it names: the published client does not tell its own.
struct BookingProxy {
    port: u16,
    thread: thread::JoinHandle<u16>,
}

impl BookingProxy {
    fn start(server: u16) -> BookingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            let mut book = [0; 131];
            client.read_exact(&mut book).unwrap();
            let mut upstream = TcpStream::connect(("127.0.0.1", server)).unwrap();
            upstream.write_all(&book).unwrap();
            let mut reply = [0];
            upstream.read_exact(&mut reply).unwrap();
            client.write_all(&reply).unwrap();
            u16::from_be_bytes([book[129], book[130]])
        });
        BookingProxy { port, thread }
    }

    fn booked_port(self) -> u16 {
        self.thread.join().unwrap()
    }
}

/// The port of the listening socket process `pid` holds (its liveness
/// responder), found as `lslocks`-like tools do: its socket inodes in
/// /proc/PID/fd, matched against /proc/net/tcp.
fn listening_port_of(pid: u32) -> u16 {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .trim_end_matches(']')
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(3) == Some(&"0A");
            let ours = fields
                .get(9)
                .is_some_and(|inode| inodes.iter().any(|i| i == inode));
            let port = fields.get(1)?.split(':').nth(1)?;
            (listening && ours).then(|| u16::from_str_radix(port, 16).ok())?
        })
        .expect("the holder's responder port")
}

/// Threads that connect to a `hold` process's responder as fast as they
/// can and keep their connections open, *while* a contender books the id
/// over and over for 8 s: every book is answered, and answered no. (Before
/// the responder read what had arrived before dropping anyone, and before
/// silence stopped counting as death, the contender was granted in most
/// runs: thousands of times in 10 s.)
#[test]
fn a_flood_on_a_holders_responder_during_contention_never_grants_the_id() {
    let server = server();
    let scratch = Scratch::new("flood");
    let script = scratch.wait_for_file("stop");
    let mut holder = quiet_hold(
        server.port,
        "flooded",
        &["--no-inherit"],
        &["sh", "-c", &script],
    )
    .spawn()
    .unwrap();
    server.wait_for_bookings(1);
    let port = listening_port_of(holder.id());
    let flood = common::Flood::start(port, 3, 500);
    // The flood is on before the first book, not still starting.
    flood.wait_until_made(100);
    let before = flood.made();
    let client = Client::new().with_port(server.port);
    let uid = namaste::Uid::from_name("flooded");
    let mut rounds = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        rounds += 1;
        match client.book(uid) {
            Err(Error::Held) => {}
            Ok(_) => panic!("granted in round {rounds} while the holder ran"),
            Err(e) => panic!("round {rounds} was not answered: {e}"),
        }
    }
    let connections = flood.stop();
    // Far more than the responder keeps open (16), so it had to give
    // connections up while verifications arrived.
    assert!(
        connections - before >= 1000,
        "the flood made only {} connections during {rounds} books",
        connections - before
    );
    assert_eq!(try_hold(&server, "flooded"), Some(75), "the holder lost it");
    scratch.touch("stop");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
}
