//! `namaste list` with real processes: the names our clients send, who is
//! shown what, names leaving with their bookings, and `--json`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::users::{NOBODY, as_nobody, root_or_skip};
use common::{Responder, Running, Scratch, hold_until, secret, send_bytes, user_name};
use namaste::Uid;
use namaste::client::Client;
use namaste::listing::Listed;
use namaste::uid::LockId;
use namaste::wire::{Request, name_prefix};

/// A name with a quote, a newline and a byte that is no UTF-8.
const AWKWARD: &[u8] = b"q\"uote\nnew\xff";

/// `namaste list --port PORT ARGS`, which must succeed: its output.
fn list(port: u16, args: &[&str]) -> String {
    let output = common::namaste(&[&["list", "--port", &port.to_string()], args].concat());
    succeeded(output)
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The row of `list` whose last column, the name, is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|line| line.ends_with(&format!(" exclusive {name}")))
        .unwrap_or_else(|| panic!("no row for {name} in\n{table}"));
    line.splitn(6, ' ').collect()
}

/// What Python's json module makes of `document`, a `list --json`: one
/// line per lock, `name_hex|name matches name_hex lossily|user|pids|since|waiters`.
fn parsed_by_python(document: &str) -> Vec<String> {
    let script = "import json, sys\n\
        for lock in json.load(sys.stdin)['locks']:\n\
        \x20   name, raw = lock['name'], lock['name_hex']\n\
        \x20   same = raw is None and name is None or bytes.fromhex(raw).decode('utf-8', 'replace') == name\n\
        \x20   pids = 'null' if lock['pids'] is None else ','.join(map(str, lock['pids']))\n\
        \x20   print(f\"{raw}|{same}|{lock['user']}|{pids}|{lock['since']}|{lock['waiters']}|{lock['mode']}\")\n";
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    succeeded(python.wait_with_output().unwrap())
        .lines()
        .map(str::to_string)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `since` is a UTC time in ISO 8601, to the second.
fn is_utc(since: &str) -> bool {
    since.len() == 20 && since.ends_with('Z') && since.as_bytes()[10] == b'T'
}

#[test]
fn list_shows_every_held_lock_with_its_name_user_pids_since_and_waiters() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("list-shows");
    let raw = Uid::from_bytes([0xcd; 64]);
    let mut holders = vec![
        hold_until(server.port, b"alpha", &[], &scratch, "end"),
        hold_until(server.port, AWKWARD, &[], &scratch, "end"),
        hold_until(server.port, b"mine", &["--per-user"], &scratch, "end"),
        hold_until(
            server.port,
            b"",
            &["--uid", &raw.to_string()],
            &scratch,
            "end",
        ),
    ];
    server.wait_for_bookings(4);
    holders.push(hold_until(
        server.port,
        b"alpha",
        &["--wait", "60"],
        &scratch,
        "end",
    ));
    server.wait_for_waiters(Uid::from_name("alpha"), 1);
    let me = user_name();

    let table = list(server.port, &[]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "USER PIDS SINCE WAITERS MODE NAME", "{table}");
    assert_eq!(lines.len(), 5, "{table}");
    let alpha = row(&table, "alpha");
    assert_eq!(alpha[0], me);
    let pids: Vec<u32> = alpha[1]
        .split(',')
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert!(pids.contains(&holders[0].id()), "{table}");
    assert!(is_utc(alpha[2]), "{table}");
    assert_eq!((alpha[3], alpha[4]), ("1", "exclusive"));
    assert_eq!(row(&table, r#"q\"uote\nnew\xff"#)[3], "0");
    assert!(row(&table, "mine")[1].contains(&holders[2].id().to_string()));
    assert_eq!(row(&table, &format!("uid:{raw}"))[0], me);
    assert_eq!(
        list(server.port, &["--noheadings"]).lines().count(),
        4,
        "no header"
    );

    let locks = parsed_by_python(&list(server.port, &["--json"]));
    assert_eq!(locks.len(), 4, "{locks:?}");
    let awkward = locks
        .iter()
        .find(|lock| lock.starts_with(&hex(AWKWARD)))
        .unwrap_or_else(|| panic!("{locks:?}"));
    let fields: Vec<&str> = awkward.split('|').collect();
    assert_eq!(fields[1..3], ["True", &me]);
    let holder = holders[1].id().to_string();
    assert!(fields[3].split(',').any(|pid| pid == holder), "{awkward}");
    assert!(is_utc(fields[4]), "{awkward}");
    assert_eq!(fields[5..], ["0", "exclusive"]);
    assert!(
        locks.iter().any(|lock| lock.starts_with("None|True|")),
        "raw uid: {locks:?}"
    );

    scratch.touch("end");
    for mut holder in holders {
        assert!(holder.wait().unwrap().success());
    }
}

#[test]
fn a_name_leaves_with_its_booking_at_check_out_and_at_the_holders_death() {
    let server = Running::start(&[]);
    let client = Client::new().with_port(server.port);
    let scratch = Scratch::new("list-leaves");
    let mut holder = hold_until(server.port, b"checked out", &[], &scratch, "end");
    server.wait_for_bookings(1);
    assert_eq!(client.status().unwrap().names, Some(1));
    scratch.touch("end");
    assert!(holder.wait().unwrap().success());
    server.wait_for_bookings(0);
    assert_eq!(client.status().unwrap().names, Some(0));

    let mut holder = hold_until(server.port, b"killed", &[], &scratch, "never");
    server.wait_for_bookings(1);
    let table = list(server.port, &[]);
    let pids: Vec<u32> = row(&table, "killed")[1]
        .split(',')
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert!(pids.contains(&holder.id()), "{table}");
    // The holder's shell forks a `sleep` now and then, which inherits the
    // socket and may be gone by now: a pid that is gone needs no kill.
    for pid in pids {
        // SAFETY: kill takes plain integers and touches no memory.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    assert!(!holder.wait().unwrap().success());
    server.wait_for_bookings(0);
    assert_eq!(client.status().unwrap().names, Some(0));
    assert!(client.list().unwrap().is_empty());
}

/// Books `uid` by a raw BOOK after a NAME prefix of `name`, with an honest
/// responder: answers what LIST then says of the lock's name.
fn booked_with_name(server: &Running, uid: Uid, name: &[u8]) -> Option<Vec<u8>> {
    let handshake = secret();
    let responder = Responder::honest(uid, handshake);
    let request = Request::Book {
        uid,
        handshake,
        port: responder.port,
    };
    let bytes = [name_prefix(name).unwrap(), request.encode()].concat();
    assert_eq!(send_bytes(server.addr(), &bytes), Some(1), "granted");
    let listed: Vec<Listed> = Client::new().with_port(server.port).list().unwrap();
    let lock = listed.into_iter().find(|lock| lock.uid == uid).unwrap();
    lock.name
}

#[test]
fn a_name_that_is_not_the_uids_is_not_kept_and_the_log_says_so() {
    let mut server = Running::start(&[]);
    let truth = Uid::from_name("truth");
    assert_eq!(
        booked_with_name(&server, truth, b"truth"),
        Some(b"truth".to_vec())
    );
    let other = Uid::from_name("other");
    assert_eq!(booked_with_name(&server, other, b"truth"), None, "a lie");
    let said = server.log_line_with("not keeping the name");
    assert!(said.contains(&format!("{other:?}")), "{said}");
    // SAFETY: geteuid has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    let mine = Uid::per_user(b"mine", me);
    assert_eq!(
        booked_with_name(&server, mine, b"mine"),
        Some(b"mine".to_vec())
    );
}

#[test]
fn another_users_lock_shows_to_it_without_name_or_pids_and_to_root_whole() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let scratch = Scratch::new("list-users");
    let roots = hold_until(server.port, b"roots", &[], &scratch, "end");
    let wait = scratch.wait_for_file("end");
    let mut nobodys = as_nobody(&["hold", "nobodys", "--port", &port, "--", "sh", "-c", &wait])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    server.wait_for_bookings(2);

    let seen_by_nobody = succeeded(as_nobody(&["list", "--port", &port]).output().unwrap());
    let theirs = row(&seen_by_nobody, "nobodys");
    assert_eq!(theirs[0], NOBODY);
    assert_ne!(theirs[1], "?", "their own pids: {seen_by_nobody}");
    let hidden = row(&seen_by_nobody, &format!("uid:{}", Uid::from_name("roots")));
    assert_eq!((hidden[0], hidden[1]), ("root", "?"), "{seen_by_nobody}");
    assert!(!seen_by_nobody.contains("roots"), "{seen_by_nobody}");
    let json = succeeded(
        as_nobody(&["list", "--port", &port, "--json"])
            .output()
            .unwrap(),
    );
    let locks = parsed_by_python(&json);
    let roots_lock = locks.iter().find(|lock| lock.starts_with("None|")).unwrap();
    let fields: Vec<&str> = roots_lock.split('|').collect();
    assert_eq!(fields[1..4], ["True", "root", "null"], "{locks:?}");

    let seen_by_root = list(server.port, &[]);
    let nobodys_row = row(&seen_by_root, "nobodys");
    assert_eq!(nobodys_row[0], NOBODY);
    let pids: Vec<u32> = nobodys_row[1]
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!pids.is_empty(), "{seen_by_root}");
    assert!(row(&seen_by_root, "roots")[1].contains(&roots.id().to_string()));

    scratch.touch("end");
    assert!(nobodys.wait().unwrap().success());
    wait_for_exit(roots);
}

fn wait_for_exit(mut child: Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A server of ours from before names, on a thread: it closes a NAME
/// prefix as an unknown command, answers STATUS without `names=`, grants
/// a LINE without a line (`0x02`) and takes a CHECK OUT. Answers its port
/// and what it saw, one word per request.
fn server_without_names(requests: usize) -> (u16, thread::JoinHandle<Vec<&'static str>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let (mut stream, _) = listener.accept().unwrap();
            let mut command = [0];
            stream.read_exact(&mut command).unwrap();
            let (word, rest, answer): (_, usize, &[u8]) = match command[0] {
                0x08 => ("named", 0, b""),
                0x02 => (
                    "status",
                    0,
                    b"namaste 0.1.0 bookings=0 connections=1 requests=1 verifications_failed=0 uptime=1s lines=0\n",
                ),
                0x06 => ("line", 134, &[0x02]),
                0x01 => ("check out", 128, &[0x01]),
                other => panic!("unexpected command {other:#04x}"),
            };
            stream.read_exact(&mut vec![0; rest]).unwrap();
            stream.write_all(answer).unwrap();
            seen.push(word);
        }
        seen
    });
    (port, thread)
}

#[test]
fn our_client_books_with_a_server_that_knows_no_names_on_a_line_without_the_name() {
    let (port, server) = server_without_names(6);
    let client = Client::new().with_port(port);
    for _ in 0..2 {
        let booking = client.book(LockId::named(b"older")).unwrap();
        assert!(booking.check_out().unwrap());
    }
    assert_eq!(
        server.join().unwrap(),
        ["named", "status", "line", "check out", "line", "check out"],
        "learnt once, then no more names"
    );
}

#[test]
fn list_exits_as_status_does_without_a_server_and_for_words_it_does_not_take() {
    let port = common::dead_port().to_string();
    let no_server = common::namaste(&["list", "--port", &port]);
    assert_eq!(no_server.status.code(), Some(68), "{no_server:?}");
    for args in [
        &["list", "extra"][..],
        &["list", "--nope"],
        &["list", "--", "x"],
    ] {
        let usage = common::namaste(args);
        assert_eq!(usage.status.code(), Some(2), "{args:?}: {usage:?}");
    }
    let help = common::namaste(&["list", "--help"]);
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(help.status.success() && text.contains("--json"), "{text}");
}
