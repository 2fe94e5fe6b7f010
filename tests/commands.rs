//! The client commands of the `namaste` binary: hold, notify, status.

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Running, namaste, random, stderr};
use namaste::Uid;
use namaste::client::{Client, Error};

fn hold(server: &Running, name: &str, options: &[&str], command: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_namaste"));
    cmd.args(["hold", name, "--port", &server.port.to_string()])
        .args(options)
        .arg("--")
        .args(command);
    cmd
}

fn client(server: &Running) -> Client {
    Client::new().with_port(server.port)
}

#[test]
fn hold_exits_with_the_commands_status() {
    let server = Running::start(&[]);
    let status = |command: &[&str]| hold(&server, "job", &[], command).status().unwrap().code();
    assert_eq!(status(&["true"]), Some(0));
    assert_eq!(status(&["sh", "-c", "exit 3"]), Some(3));
    assert_eq!(status(&["sh", "-c", "kill -TERM $$"]), Some(128 + 15));
    assert_eq!(status(&["/nonexistent/command"]), Some(127));
    // After --, --help and -h are the command's.
    let output = hold(&server, "job", &[], &["echo", "-h", "--help"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "-h --help\n");
    // Each run checked out after itself.
    assert_eq!(client(&server).status().unwrap().bookings, 0);
}

#[test]
fn hold_refuses_with_75_while_another_process_holds() {
    let server = Running::start(&[]);
    let holder = client(&server)
        .book(Uid::from_name("nightly-backup"))
        .unwrap();
    let output = hold(&server, "nightly-backup", &[], &["echo", "ran"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75));
    assert!(output.stdout.is_empty(), "the command ran");
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("\"nightly-backup\" is held by another live process"),
        "{text}"
    );

    let started = Instant::now();
    let output = hold(&server, "nightly-backup", &["--wait", "0.5"], &["true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75));
    common::assert_ended_when_time_was_up(started, Duration::from_millis(500));
    drop(holder);
}

#[test]
fn hold_wait_runs_once_the_holder_leaves() {
    let server = Running::start(&[]);
    let holder = client(&server).book(Uid::from_name("deploy")).unwrap();
    let waiter = hold(&server, "deploy", &["--wait", "30"], &["echo", "ran"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for_waiters(Uid::from_name("deploy"), 1);
    assert!(holder.check_out().unwrap());
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ran\n");
}

#[test]
fn hold_with_uid_uses_that_id() {
    let server = Running::start(&[]);
    let uid = random();
    let _holder = client(&server).book(uid).unwrap();
    let output = hold(&server, "anything", &["--uid", &uid.to_string()], &["true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75));
}

/// Two `hold`s of one name, each looping, never run their commands at the
/// same time: every "start" in the shared log is followed by its own "end".
#[test]
fn concurrent_holds_never_overlap() {
    let server = Running::start(&[]);
    let dir = std::env::temp_dir().join(format!("namaste-overlap-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log");
    let script = format!(
        "echo start $$ >> {0}; sleep 0.05; echo end $$ >> {0}",
        log.display()
    );
    let workers: Vec<Child> = (0..3)
        .map(|_| {
            let mut cmd = Command::new("sh");
            let hold = format!(
                "for i in 1 2 3 4; do {} hold shared --port {} --wait 60 -- sh -c '{script}' || exit 1; done",
                env!("CARGO_BIN_EXE_namaste"),
                server.port
            );
            cmd.args(["-c", &hold]);
            cmd.spawn().unwrap()
        })
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success());
    }
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * 3 * 4, "{text}");
    for pair in lines.chunks(2) {
        let start = pair[0].strip_prefix("start ");
        let end = pair[1].strip_prefix("end ");
        assert!(start.is_some() && start == end, "overlap:\n{text}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// `hold` and its command both killed with SIGKILL: nothing listens on
/// the lock's port any more, so the next taker is granted at once.
#[test]
fn hold_and_its_command_killed_with_sigkill_leave_no_stale_lock() {
    let server = Running::start(&[]);
    let mut holder = hold(&server, "daemon", &[], &["sleep", "30"])
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    let uid = Uid::from_name("daemon");
    assert!(
        matches!(client(&server).book(uid), Err(Error::Held)),
        "not held"
    );
    let children = Command::new("pgrep")
        .args(["-P", &holder.id().to_string()])
        .output()
        .unwrap();
    let command: u32 = String::from_utf8_lossy(&children.stdout)
        .trim()
        .parse()
        .expect("one command");
    holder.kill().unwrap();
    holder.wait().unwrap();
    common::signal(command, "-KILL");
    // Killed is not yet gone: its socket closes as it exits.
    common::wait_until_exited(command);
    let booking = client(&server).book(uid);
    assert!(
        booking.is_ok(),
        "the dead holder's lock was stale: {booking:?}"
    );
}

#[test]
fn notify_reports_each_outcome_with_its_status() {
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let output = namaste(&["notify", "editor", "open a.txt", "--port", &port]);
    assert_eq!(output.status.code(), Some(75));
    assert!(stderr(&output).contains("no live process holds \"editor\""));

    let mut holder = hold(&server, "editor", &[], &["sleep", "30"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    let output = namaste(&["notify", "editor", "open a.txt", "--port", &port]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "diagnostics go to standard error");
    assert!(stderr(&output).contains("the holder of \"editor\" took the message"));
    let mut received = String::new();
    let mut holder_stderr = std::io::BufReader::new(holder.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut holder_stderr, &mut received).unwrap();
    let me = common::user_name();
    assert_eq!(
        received,
        format!("namaste: message for \"editor\" from {me}: open a.txt\n")
    );
    // Control characters cannot recolour or break the holder's terminal.
    let hostile = "\x1b[31mred\nrm -rf ~";
    let output = namaste(&["notify", "editor", hostile, "--port", &port]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    received.clear();
    std::io::BufRead::read_line(&mut holder_stderr, &mut received).unwrap();
    assert_eq!(
        received,
        format!("namaste: message for \"editor\" from {me}: \\u{{1b}}[31mred\\nrm -rf ~\n")
    );
    let long = "x".repeat(5000);
    namaste(&["notify", "editor", &long, "--port", &port]);
    received.clear();
    std::io::BufRead::read_line(&mut holder_stderr, &mut received).unwrap();
    assert!(received.ends_with("… (5000 bytes in all)\n"), "{received}");
    let pid = holder.id().to_string();
    let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
    let _ = holder.wait();

    // A published client holds it: alive, but it does not take messages.
    let other = Uid::from_name("old-editor");
    let published = namaste06::client::Client::book(
        *other.as_bytes(),
        *random().as_bytes(),
        Some(server.port),
        namaste::DEFAULT_RW_TIMEOUT,
    )
    .unwrap()
    .unwrap();
    let output = namaste(&["notify", "old-editor", "hi", "--port", &port]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("alive but did not take"));
    assert!(published.check_out().unwrap());
}

#[test]
fn status_prints_the_counters() {
    let server = Running::start(&[]);
    let output = namaste(&["status", "--port", &server.port.to_string()]);
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    assert!(line.starts_with("namaste "), "{line}");
    assert!(line.contains(" bookings=0 "), "{line}");
}

/// No server on the port: a status of its own, 68, which a script tells
/// from a lock held elsewhere (75) and from the command's failure (hold
/// runs nothing), and a hint that starts a server on the port asked.
#[test]
fn client_commands_without_a_server_exit_68_and_say_how_to_start_one_there() {
    let port = common::dead_port().to_string();
    for args in [
        &["status", "--port", &port][..],
        &["status", "x", "--port", &port],
        &["notify", "x", "y", "--port", &port],
        &[
            "hold",
            "x",
            "--port",
            &port,
            "--",
            "touch",
            "/nonexistent/ran",
        ],
    ] {
        let output = namaste(args);
        assert_eq!(output.status.code(), Some(68), "{args:?}");
        let text = stderr(&output);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(&format!("start one with `namaste run --port {port}`")),
            "{text}"
        );
    }
}

/// A `hold` of `name` whose command runs until `scratch` has the file
/// `stop`, with its standard error a pipe the test keeps.
fn hold_with_piped_stderr(server: &Running, name: &str, scratch: &common::Scratch) -> Child {
    hold(
        server,
        name,
        &[],
        &["sh", "-c", &scratch.wait_for_file("stop")],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// `hold`'s standard error is a pipe nobody reads any more: a message for
/// the lock cannot be printed, and `hold` goes on holding it until its
/// command is done.
#[test]
fn hold_with_a_closed_standard_error_survives_a_message() {
    let server = Running::start(&[]);
    let scratch = common::Scratch::new("closed-stderr");
    let mut holder = hold_with_piped_stderr(&server, "quiet", &scratch);
    drop(holder.stderr.take());
    server.wait_for_bookings(1);
    let uid = Uid::from_name("quiet");
    assert_eq!(
        client(&server).notify(uid, b"hello").unwrap(),
        namaste::client::Notified::Delivered
    );
    assert!(
        matches!(client(&server).book(uid), Err(Error::Held)),
        "still held"
    );
    scratch.touch("stop");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
}

/// `hold`'s standard error is a pipe nobody reads, and messages keep
/// coming: past a few dozen (what the pipe and the unprinted bound hold),
/// they are declined, so `hold` keeps no more; and once its command exits,
/// the lock is free and `hold` exits, though its standard error still
/// takes nothing.
#[test]
fn hold_with_a_blocked_standard_error_bounds_messages_and_frees_the_lock() {
    let server = Running::start(&[]);
    let scratch = common::Scratch::new("blocked-stderr");
    let mut holder = hold_with_piped_stderr(&server, "flooded", &scratch);
    // Kept open and never read: every write past the pipe's 64 KiB blocks.
    let _unread = holder.stderr.take();
    server.wait_for_bookings(1);
    let uid = Uid::from_name("flooded");
    let message = vec![b'm'; namaste::wire::MAX_MESSAGE_LEN];
    let outcomes: Vec<_> = (0..300)
        .map(|_| client(&server).notify(uid, &message).unwrap())
        .collect();
    let delivered = outcomes
        .iter()
        .filter(|&&n| n == namaste::client::Notified::Delivered)
        .count();
    // About 60 printed lines fill the pipe, and 16 more wait unprinted.
    assert!(
        delivered < 150,
        "{delivered} of 300 messages taken while none could be printed"
    );
    assert_eq!(outcomes.last(), Some(&namaste::client::Notified::Declined));
    scratch.touch("stop");
    server.wait_for_bookings(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = holder.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hold is stuck on its standard error"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// A wait longer than the clock can count is a wait without end: not a
/// crash, and not "try once". Each such `hold` is still waiting a second
/// after it queued, and runs once the lock is released.
#[test]
fn hold_takes_any_wait() {
    let server = Running::start(&[]);
    let scratch = common::Scratch::new("any-wait");
    let uid = Uid::from_name("endless");
    for wait in ["1e19", "1e30", "inf"] {
        let holder = client(&server).book(uid).expect("free");
        let ran = scratch.path(wait);
        let mut waiter = hold(
            &server,
            "endless",
            &["--wait", wait],
            &["touch", ran.to_str().unwrap()],
        )
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client(&server).query(uid).unwrap().waiters != 1 {
            let gone = waiter.try_wait().unwrap();
            assert!(gone.is_none(), "--wait {wait}: gave up at once: {gone:?}");
            assert!(Instant::now() < deadline, "--wait {wait}: never queued");
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(Duration::from_secs(1));
        let gone = waiter.try_wait().unwrap();
        assert!(gone.is_none(), "--wait {wait}: gave up: {gone:?}");
        assert!(holder.check_out().unwrap());
        assert_eq!(waiter.wait().unwrap().code(), Some(0), "--wait {wait}");
        assert!(ran.exists(), "--wait {wait}: the command never ran");
    }
}
