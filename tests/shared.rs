//! Shared locks and slots through real processes: `hold --shared` beside
//! other readers, never beside a writer, and a writer not overtaken by
//! later readers; `hold --slots N` never more than N at once, in arrival
//! order, a slot freed at once by its holder's death; another count
//! refused with its own status; tokens and shared holders across a
//! restart.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Running, Scratch, hold_until, namaste, quiet_hold, stderr};
use namaste::Uid;
use namaste::client::Client;
use namaste::uid::LockId;
use namaste::wire::{Mode, Request};

/// `hold NAME --port PORT OPTIONS -- sh -c SCRIPT`, output thrown away.
fn hold_script(port: u16, name: &str, options: &[&str], script: &str) -> Child {
    quiet_hold(port, name, options, &["sh", "-c", script])
        .spawn()
        .unwrap()
}

/// Waits for `child` for up to 30 s; answers its exit status.
fn exit_of(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "a hold never ended");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The QUERY line of `name` on the server on `port`.
fn query(port: u16, name: &str) -> String {
    let client = Client::new().with_port(port);
    client.query(Uid::from_name(name)).unwrap().to_string()
}

/// Nanoseconds since the Unix epoch, as `date +%s%N` writes them.
fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The numbers in the file `name` of `scratch`, one a line.
fn numbers(scratch: &Scratch, name: &str) -> Vec<u128> {
    fs::read_to_string(scratch.path(name))
        .unwrap_or_default()
        .lines()
        .map(|line| line.trim().parse().unwrap())
        .collect()
}

#[test]
fn three_shared_holders_at_once_an_exclusive_try_meanwhile_exits_75_and_tokens_grow() {
    let server = Running::start(&["--no-state"]);
    let scratch = Scratch::new("shared-three");
    let tokens = scratch.path("tokens");
    let readers: Vec<Child> = (0..3)
        .map(|_| {
            let script = format!(
                "echo \"$NAMASTE_TOKEN\" >> {}; {}",
                tokens.display(),
                scratch.wait_for_file("end")
            );
            // One after the other, so that their tokens come in order.
            let held = readers_held(&server, "readers");
            let reader = hold_script(server.port, "readers", &["--shared"], &script);
            while readers_held(&server, "readers") == held {
                thread::sleep(Duration::from_millis(10));
            }
            reader
        })
        .collect();
    let line = query(server.port, "readers");
    assert!(line.starts_with("shared holders=3 waiters=0; "), "{line}");
    let port = server.port.to_string();
    let writer = namaste(&["hold", "readers", "--port", &port, "--", "true"]);
    assert_eq!(writer.status.code(), Some(75), "{}", stderr(&writer));
    let status = namaste(&["status", "readers", "--port", &port]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.starts_with("state=shared holders=3 waiters=0 tokens="),
        "{shown}"
    );
    // LIST names each holder under the lock's name.
    let listed = namaste(&["list", "--port", &port]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.matches(" shared readers").count(), 3, "{listed}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while numbers(&scratch, "tokens").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the readers never wrote their tokens"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let given = numbers(&scratch, "tokens");
    assert!(given.windows(2).all(|pair| pair[0] < pair[1]), "{given:?}");
    scratch.touch("end");
    for mut reader in readers {
        assert_eq!(exit_of(&mut reader), Some(0));
    }
}

/// How many hold `name` shared, as QUERY tells.
fn readers_held(server: &Running, name: &str) -> u64 {
    let client = Client::new().with_port(server.port);
    let lock = client.query(Uid::from_name(name)).unwrap();
    lock.shared.map_or(0, |shared| shared.count)
}

/// The pattern: readers of 0.4 s each arrive every 0.15 s, so
/// that the lock is never free of readers while they come; a writer that
/// arrives after the first waits for those already in, and no later one.
#[test]
fn a_writer_queued_behind_a_stream_of_readers_gets_in_within_one_readers_time() {
    let server = Running::start(&["--no-state"]);
    let port = server.port;
    let stream = thread::spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..12 {
            readers.push(
                quiet_hold(
                    port,
                    "stream",
                    &["--shared", "--wait", "30"],
                    &["sleep", "0.4"],
                )
                .spawn()
                .unwrap(),
            );
            thread::sleep(Duration::from_millis(150));
        }
        readers
    });
    while readers_held(&server, "stream") == 0 {
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut writer = quiet_hold(port, "stream", &["--wait", "30"], &["true"])
        .spawn()
        .unwrap();
    assert_eq!(exit_of(&mut writer), Some(0));
    let waited = started.elapsed();
    eprintln!("the writer got in and out after {waited:?} (readers hold 0.4 s each)");
    // One reader's time, with room for starting two processes.
    assert!(waited < Duration::from_millis(1000), "{waited:?}");
    for mut reader in stream.join().unwrap() {
        assert_eq!(exit_of(&mut reader), Some(0));
    }
}

#[test]
fn six_takers_of_three_slots_never_more_than_three_at_once_all_served_in_arrival_order() {
    let server = Running::start(&["--no-state"]);
    let scratch = Scratch::new("slots-six");
    let log = scratch.path("log");
    let uid = Uid::from_name("jobs");
    let mut takers = Vec::new();
    for taker in 0..6 {
        let script = format!(
            "echo \"start {taker} $(date +%s%N) $NAMASTE_TOKEN\" >> {log}; sleep 0.3; echo \"end {taker} $(date +%s%N)\" >> {log}",
            log = log.display()
        );
        takers.push(hold_script(
            server.port,
            "jobs",
            &["--slots", "3", "--wait", "30"],
            &script,
        ));
        // In arrival order: each is in, or queued, before the next comes.
        match taker {
            0..3 => server.wait_for_bookings(taker + 1),
            _ => server.wait_for_waiters(uid, taker - 2),
        }
    }
    for taker in &mut takers {
        assert_eq!(exit_of(taker), Some(0));
    }
    let text = fs::read_to_string(&log).unwrap();
    let mut events: Vec<(u128, bool, u32)> = text
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            (
                words[2].parse().unwrap(),
                words[0] == "start",
                words[1].parse().unwrap(),
            )
        })
        .collect();
    events.sort();
    let (mut running, mut most) = (0, 0);
    for &(_, start, _) in &events {
        running += if start { 1 } else { -1 };
        most = most.max(running);
    }
    assert_eq!(most, 3, "{text}");
    // Two slots freed at once start two commands in either order; the
    // tokens tell the order of the grants.
    let mut granted: Vec<(u64, u32)> = text
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            (words[0] == "start").then(|| (words[3].parse().unwrap(), words[1].parse().unwrap()))
        })
        .collect();
    granted.sort();
    let order: Vec<u32> = granted.iter().map(|&(_, taker)| taker).collect();
    assert_eq!(order, [0, 1, 2, 3, 4, 5], "{text}");
}

#[test]
fn another_count_is_refused_with_its_status_naming_the_count_in_force() {
    let server = Running::start(&["--no-state"]);
    let scratch = Scratch::new("slots-conflict");
    let mut holder = hold_until(server.port, b"counted", &["--slots", "3"], &scratch, "end");
    server.wait_for_bookings(1);
    let port = server.port.to_string();
    let two = namaste(&[
        "hold", "counted", "--slots", "2", "--port", &port, "--", "true",
    ]);
    assert_eq!(two.status.code(), Some(78), "{}", stderr(&two));
    assert!(stderr(&two).contains("with 3 slots"), "{}", stderr(&two));
    assert_eq!(stderr(&two).lines().count(), 1, "{}", stderr(&two));
    let shared = namaste(&["hold", "counted", "-s", "--port", &port, "--", "true"]);
    assert_eq!(shared.status.code(), Some(78), "{}", stderr(&shared));
    let same = namaste(&[
        "hold", "counted", "--slots", "3", "--port", &port, "--", "true",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    let none = namaste(&[
        "hold", "counted", "--slots", "0", "--port", &port, "--", "true",
    ]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    scratch.touch("end");
    assert_eq!(exit_of(&mut holder), Some(0));
}

#[test]
fn a_killed_slot_holders_tree_lets_the_next_taker_in_at_once() {
    let server = Running::start(&["--no-state"]);
    let scratch = Scratch::new("slots-kill");
    let script = |name: &str| format!("echo $$ > {}; exec sleep 30", scratch.path(name).display());
    let mut first = hold_script(server.port, "pool", &["--slots", "2"], &script("first"));
    let mut second = hold_script(server.port, "pool", &["--slots", "2"], &script("second"));
    server.wait_for_bookings(2);
    let started = scratch.path("started");
    let mut next = hold_script(
        server.port,
        "pool",
        &["--slots", "2", "--wait", "30"],
        &format!("date +%s%N > {}", started.display()),
    );
    server.wait_for_waiters(Uid::from_name("pool"), 1);
    let command = scratch.pid("first");
    let killed_at = now_nanos();
    Command::new("kill")
        .args(["-9", &command.to_string(), &first.id().to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(exit_of(&mut next), Some(0));
    let took = numbers(&scratch, "started")[0].saturating_sub(killed_at);
    eprintln!(
        "the next taker started {} ms after the kill",
        took as f64 / 1e6
    );
    assert!(took < 1_000_000_000, "{took} ns");
    let _ = first.wait();
    Command::new("kill")
        .args(["-9", &scratch.pid("second").to_string()])
        .status()
        .unwrap();
    let _ = exit_of(&mut second);
}

#[test]
fn a_restart_keeps_shared_holders_and_their_tokens() {
    let scratch = Scratch::new("shared-restart");
    let state = scratch.path("bookings");
    let state = state.to_str().unwrap();
    let mut server = Running::start(&["--state", state]);
    let port = server.port.to_string();
    let mut readers: Vec<Child> = (0..2)
        .map(|_| hold_until(server.port, b"kept", &["--shared"], &scratch, "end"))
        .collect();
    server.wait_for_bookings(2);
    let before = query(server.port, "kept");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let restarted = Running::start(&["--state", state, "--port", &port]);
    let after = query(restarted.port, "kept");
    assert!(after.starts_with("shared holders=2 waiters=0; "), "{after}");
    let tokens = |line: &str| -> Vec<String> {
        line.split(' ')
            .filter(|word| word.starts_with("token="))
            .map(|word| word.trim_end_matches(';').to_string())
            .collect()
    };
    assert_eq!(tokens(&after), tokens(&before));
    // Still held shared: a writer is refused while the readers live.
    let writer = namaste(&["hold", "kept", "--port", &port, "--", "true"]);
    assert_eq!(writer.status.code(), Some(75), "{}", stderr(&writer));
    scratch.touch("end");
    for reader in &mut readers {
        assert_eq!(exit_of(reader), Some(0));
    }
    let writer = namaste(&[
        "hold", "kept", "--wait", "10", "--port", &port, "--", "true",
    ]);
    assert_eq!(writer.status.code(), Some(0), "{}", stderr(&writer));
}

#[test]
fn a_published_clients_book_beside_shared_holders_is_held_and_check_takes_each_holders_token() {
    let server = Running::start(&["--no-state"]);
    let client = Client::new().with_port(server.port);
    let readers = [
        client.book_shared(LockId::named(b"both")).unwrap(),
        client.book_shared(LockId::named(b"both")).unwrap(),
    ];
    let uid = *Uid::from_name("both").as_bytes();
    let published = namaste06::client::Client::book(
        uid,
        *common::random().as_bytes(),
        Some(server.port),
        namaste::DEFAULT_RW_TIMEOUT,
    )
    .unwrap();
    assert!(
        published.is_none(),
        "a 0.6.0 BOOK was granted beside readers"
    );
    let port = server.port.to_string();
    for reader in &readers {
        let token = reader.token().expect("a token").to_string();
        let checked = namaste(&["check", "both", &token, "--port", &port]);
        assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    }
    let stale = namaste(&["check", "both", "1000", "--port", &port]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("held shared"), "{}", stderr(&stale));
}

/// QUERY lists the first 32 holders of a lock held shared: `check` finds
/// the tokens of those past them with LIST.
#[test]
fn check_takes_the_token_of_a_holder_past_the_ones_query_lists() {
    let server = Running::start(&["--no-state"]);
    let client = Client::new().with_port(server.port);
    let readers: Vec<_> = (0..40)
        .map(|_| client.book_shared(LockId::named(b"many")).unwrap())
        .collect();
    let port = server.port.to_string();
    for reader in [&readers[0], &readers[39]] {
        let token = reader.token().expect("a token").to_string();
        let checked = namaste(&["check", "many", &token, "--port", &port]);
        assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    }
    let stale = namaste(&["check", "many", "1000", "--port", &port]);
    assert_eq!(stale.status.code(), Some(1), "{}", stderr(&stale));
}

/// Holders that share one responder (nothing stops a client from it) are
/// each listed once, and each one's token is current for `check`.
#[test]
fn shared_holders_behind_one_responder_are_each_listed_and_checked() {
    let server = Running::start(&["--no-state"]);
    let (_responder, port) = common::silent_port();
    let uid = Uid::from_name("one-port");
    let mut lines = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..40 {
        let request = Request::Wait {
            uid,
            handshake: common::secret(),
            port,
            wait: Duration::ZERO,
            line: true,
            token: true,
            mode: Mode::Shared,
        };
        let mut line = TcpStream::connect(server.addr()).unwrap();
        line.write_all(&request.encode()).unwrap();
        let mut reply = [0; 9];
        line.read_exact(&mut reply).unwrap();
        assert_eq!(reply[0], 1, "granted on its line");
        tokens.push(u64::from_be_bytes(reply[1..].try_into().unwrap()));
        lines.push(line);
    }
    let listed = Client::new().with_port(server.port).list().unwrap();
    assert_eq!(listed.len(), 40, "each holder once");
    let server_port = server.port.to_string();
    let last = tokens[39].to_string();
    let checked = namaste(&["check", "one-port", &last, "--port", &server_port]);
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
}
