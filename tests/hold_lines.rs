//! A lock lives on its holder's line, as flock(1)'s lives on a descriptor,
//! through real processes: background children keep it, `--no-inherit`
//! does not, a stopped holder costs contenders nothing, and the end of the
//! holding tree frees it at once; after a restart of the server, the
//! call-back rules keep it for as long as any process of the tree lives.
//! Each case beside flock(1) where flock has an answer.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, Scratch, dead_port, exited, quiet_hold, signal, wait_until_exited};
use namaste::Uid;
use namaste::client::{Client, Error};

/// The exit status of one `hold NAME --wait 0 -- true`: 0 granted, 75 held.
fn try_hold(port: u16, name: &str) -> Option<i32> {
    quiet_hold(port, name, &["--wait", "0"], &["true"])
        .status()
        .unwrap()
        .code()
}

/// The exit status of `flock ARGS... FILE COMMAND...`.
fn flock(args: &[&str], file: &str, command: &[&str]) -> Option<i32> {
    Command::new("flock")
        .args(args)
        .arg(file)
        .args(command)
        .stdin(Stdio::null())
        .status()
        .unwrap()
        .code()
}

/// A shell command that starts a background child, which writes its pid
/// to `NAME.pid` and runs until the file `NAME.stop` exists, and returns.
fn background_child(scratch: &Scratch, name: &str) -> String {
    format!(
        "sh -c 'echo $$ > {}; {}' &",
        scratch.path(&format!("{name}.pid")).display(),
        scratch.wait_for_file(&format!("{name}.stop"))
    )
}

/// Whether the lock `name` is held, as QUERY tells, and whether on a line.
fn held(port: u16, name: &str) -> (bool, Option<bool>) {
    let lock = Client::new()
        .with_port(port)
        .query(Uid::from_name(name))
        .unwrap();
    match lock.holder {
        Some(holder) => (true, holder.line),
        None => (false, None),
    }
}

/// `hold bg -- sh -c 'CHILD &'` returns at once; the background child
/// keeps the lock (a contender exits 75) until it exits, and the very next
/// try after that runs. As `flock FILE sh -c 'CHILD &'`.
#[test]
fn a_background_child_keeps_the_lock_until_it_exits_as_with_flock() {
    let scratch = Scratch::new("lines-background");
    let file = scratch.path("flock").display().to_string();
    let child = background_child(&scratch, "flock-child");
    assert_eq!(flock(&[], &file, &["sh", "-c", &child]), Some(0));
    let pid = scratch.pid("flock-child.pid");
    assert_eq!(
        flock(&["-n"], &file, &["true"]),
        Some(1),
        "flock: child runs"
    );
    scratch.touch("flock-child.stop");
    wait_until_exited(pid);
    assert_eq!(flock(&["-n"], &file, &["true"]), Some(0), "flock: exited");

    let server = Running::start(&[]);
    let child = background_child(&scratch, "ours");
    let hold = quiet_hold(server.port, "bg", &[], &["sh", "-c", &child])
        .status()
        .unwrap();
    assert_eq!(hold.code(), Some(0));
    let pid = scratch.pid("ours.pid");
    assert!(!exited(pid), "the background child runs");
    assert_eq!(try_hold(server.port, "bg"), Some(75), "hold has returned");
    assert_eq!(held(server.port, "bg"), (true, Some(true)));
    scratch.touch("ours.stop");
    wait_until_exited(pid);
    assert_eq!(try_hold(server.port, "bg"), Some(0), "the child has exited");
}

/// With `--no-inherit` the lock ends with `hold`, while the background
/// child runs on, as with `flock -o`.
#[test]
fn with_no_inherit_the_lock_ends_with_hold_as_with_flock_o() {
    let scratch = Scratch::new("lines-no-inherit");
    let file = scratch.path("flock").display().to_string();
    let child = background_child(&scratch, "flock-child");
    assert_eq!(flock(&["-o"], &file, &["sh", "-c", &child]), Some(0));
    let pid = scratch.pid("flock-child.pid");
    assert_eq!(flock(&["-n"], &file, &["true"]), Some(0), "flock -o");
    scratch.touch("flock-child.stop");
    wait_until_exited(pid);

    let server = Running::start(&[]);
    let child = background_child(&scratch, "ours");
    let hold = quiet_hold(server.port, "bg", &["--no-inherit"], &["sh", "-c", &child])
        .status()
        .unwrap();
    assert_eq!(hold.code(), Some(0));
    let pid = scratch.pid("ours.pid");
    assert_eq!(try_hold(server.port, "bg"), Some(0), "hold has returned");
    assert!(!exited(pid), "the background child still runs");
    scratch.touch("ours.stop");
    wait_until_exited(pid);
}

/// `hold` started in a process group of its own, with a command that
/// writes its pid to `NAME.pid`, leaves a background child writing
/// `NAME-bg.pid`, and runs until `NAME.stop` exists.
fn holding_tree(port: u16, lock: &str, scratch: &Scratch, name: &str) -> Child {
    let script = format!(
        "echo $$ > {}; {} {}",
        scratch.path(&format!("{name}.pid")).display(),
        background_child(scratch, &format!("{name}-bg")),
        scratch.wait_for_file(&format!("{name}.stop"))
    );
    let holder = quiet_hold(port, lock, &[], &["sh", "-c", &script])
        .process_group(0)
        .spawn()
        .unwrap();
    // Both have started.
    scratch.pid(&format!("{name}.pid"));
    scratch.pid(&format!("{name}-bg.pid"));
    holder
}

/// Sends `signal` (`-KILL`, `-STOP`) to the process group `leader` leads
/// (`hold`, or what is left of the tree once hold is gone; or `flock`).
fn signal_group(leader: &Child, signal: &str) {
    let group = format!("-{}", leader.id());
    let sent = Command::new("kill").args([signal, "--", &group]).status();
    assert!(sent.unwrap().success(), "kill {signal} -- {group}");
}

/// Kills the process group `hold` leads with SIGKILL.
fn kill_tree(holder: &Child) {
    signal_group(holder, "-KILL");
}

/// Waits until no process of the group `holder` led is left but zombies
/// (whose files the kernel has closed): the whole tree, down to the
/// `sleep`s of its wait loops, is gone.
fn wait_until_tree_gone(holder: &mut Child) {
    holder.wait().unwrap();
    let group = holder.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // After the command name: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
            fields.len() > 2 && fields[2] == group && fields[0] != "Z"
        });
        if !alive {
            return;
        }
        assert!(Instant::now() < deadline, "the tree of {group} never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A stopped holder (SIGSTOP on `hold` and its command) costs a contender
/// nothing: it is answered "held" at once, as `flock -n` is, with no
/// call-back waiting out the server's 3 s rw timeout.
#[test]
fn a_stopped_holder_is_answered_held_within_150_ms() {
    let scratch = Scratch::new("lines-sigstop");
    let server = Running::start(&[]);
    let mut holder = holding_tree(server.port, "st", &scratch, "stopped");
    signal_group(&holder, "-STOP");
    let started = Instant::now();
    assert_eq!(try_hold(server.port, "st"), Some(75));
    let took = started.elapsed();
    let file = scratch.path("flock").display().to_string();
    let flock_started = Instant::now();
    let mut flock_holder = Command::new("flock")
        .args([&file, "sleep", "30"])
        .process_group(0)
        .spawn()
        .unwrap();
    while flock(&["-n"], &file, &["true"]) != Some(1) {
        assert!(
            flock_started.elapsed() < Duration::from_secs(5),
            "flock never held"
        );
    }
    signal_group(&flock_holder, "-STOP");
    let flock_started = Instant::now();
    assert_eq!(flock(&["-n"], &file, &["true"]), Some(1));
    let flock_took = flock_started.elapsed();
    eprintln!("a stopped holder: ours answered in {took:?}, flock -n in {flock_took:?}");
    assert!(took < Duration::from_millis(150), "answered after {took:?}");

    kill_tree(&flock_holder);
    flock_holder.wait().unwrap();
    kill_tree(&holder);
    wait_until_tree_gone(&mut holder);
}

/// Milliseconds from `since_ns` (ns since the epoch) to the time a
/// command wrote to the file `name` with `date +%s%N`.
fn ms_until_stamp(scratch: &Scratch, name: &str, since_ns: u128) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(scratch.path(name))
            && let Ok(stamp) = text.trim().parse::<u128>()
        {
            return stamp.saturating_sub(since_ns) as f64 / 1e6;
        }
        assert!(Instant::now() < deadline, "nobody wrote {name}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn median_and_max(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[values.len() - 1])
}

/// kill -9 of the holding tree (hold, its command, a background child):
/// a waiting `hold --wait` starts within a few ms, beside `flock -w`; and
/// `status NAME` right after a tree is gone (no waiter) says free.
#[test]
fn kill_9_of_the_holding_tree_frees_the_lock_within_a_few_ms() {
    const ROUNDS: usize = 20;
    let scratch = Scratch::new("lines-kill");
    let server = Running::start(&[]);
    let file = scratch.path("flock").display().to_string();
    let (mut ours, mut flocks) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut holder = holding_tree(server.port, "crash", &scratch, &format!("h{round}"));
        let stamp = scratch.path(&format!("ours{round}")).display().to_string();
        let mut waiter = quiet_hold(
            server.port,
            "crash",
            &["--wait", "30"],
            &["sh", "-c", &format!("date +%s%N > {stamp}")],
        )
        .spawn()
        .unwrap();
        server.wait_for_waiters(Uid::from_name("crash"), 1);
        let killed = now_ns();
        kill_tree(&holder);
        ours.push(ms_until_stamp(&scratch, &format!("ours{round}"), killed));
        assert_eq!(waiter.wait().unwrap().code(), Some(0));
        wait_until_tree_gone(&mut holder);

        let mut flock_holder = Command::new("flock")
            .args([&file, "sleep", "30"])
            .process_group(0)
            .spawn()
            .unwrap();
        while flock(&["-n"], &file, &["true"]) != Some(1) {}
        let stamp = scratch.path(&format!("flock{round}")).display().to_string();
        let mut flock_waiter = Command::new("flock")
            .args([
                "-w",
                "30",
                &file,
                "sh",
                "-c",
                &format!("date +%s%N > {stamp}"),
            ])
            .spawn()
            .unwrap();
        // flock has no queue to ask: give its waiter time to block.
        std::thread::sleep(Duration::from_millis(50));
        let killed = now_ns();
        kill_tree(&flock_holder);
        flocks.push(ms_until_stamp(&scratch, &format!("flock{round}"), killed));
        flock_holder.wait().unwrap();
        assert_eq!(flock_waiter.wait().unwrap().code(), Some(0));
    }
    let (median, max) = median_and_max(ours);
    let (flock_median, flock_max) = median_and_max(flocks);
    eprintln!(
        "kill -9 of the holding tree to the waiter's command, {ROUNDS} rounds: \
         ours median {median:.1} ms max {max:.1} ms; flock -w median {flock_median:.1} ms max {flock_max:.1} ms"
    );
    assert!(
        median < 100.0 && max < 500.0,
        "median {median:.1} ms, max {max:.1} ms"
    );

    let mut holder = holding_tree(server.port, "crash", &scratch, "last");
    assert_eq!(held(server.port, "crash"), (true, Some(true)));
    kill_tree(&holder);
    wait_until_tree_gone(&mut holder);
    let status = common::namaste(&["status", "crash", "--port", &server.port.to_string()]);
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.starts_with("state=free"), "{said}");
}

/// kill -9 of a holding tree 200 times in a row: while the tree lives the
/// lock is never granted, and once every process of it is gone the lock
/// is free, without anyone waiting for a call-back.
#[test]
fn kill_9_of_a_holding_tree_200_times_never_leaves_a_lock_nor_grants_early() {
    let rounds: usize = std::env::var("NAMASTE_KILL_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(200);
    let scratch = Scratch::new("lines-kill-200");
    let server = Running::start(&[]);
    let client = Client::new().with_port(server.port);
    let uid = Uid::from_name("kill");
    for round in 0..rounds {
        let mut holder = holding_tree(server.port, "kill", &scratch, &format!("k{round}"));
        assert!(
            matches!(client.book(uid), Err(Error::Held)),
            "round {round}: granted while the tree lives"
        );
        kill_tree(&holder);
        wait_until_tree_gone(&mut holder);
        let (is_held, _) = held(server.port, "kill");
        assert!(!is_held, "round {round}: held after the tree is gone");
        let booking = client.book(uid).expect("free once the tree is gone");
        assert!(booking.check_out().unwrap());
    }
}

/// After a restart of the server (bookings kept in the state file, lines
/// closed), a running `hold` does not re-attach: a new line would be its
/// alone, and the lock would end with `hold` while its command runs on.
/// Its booking stays under the call-back rules, which the command's tree
/// answers by keeping the responder's socket: kill -9 of `hold` alone
/// leaves the lock held while its command lives; a command that has
/// exited leaves it to its background child; once a whole tree is gone,
/// the next contender finds its port refusing and gets the lock.
#[test]
fn after_a_restart_the_lock_lasts_while_any_process_of_the_tree_lives() {
    let scratch = Scratch::new("lines-restart");
    let state = scratch.path("bookings").display().to_string();
    let port = dead_port().to_string();
    let args = ["--port", &port, "--state", &state, "--rw-timeout", "0.3"];
    let mut server = Running::start(&args);
    let mut killed = holding_tree(server.port, "killed", &scratch, "k");
    let mut exits = holding_tree(server.port, "exits", &scratch, "e");
    server.wait_for_bookings(2);

    common::sigterm(&server.child);
    server.child.wait().unwrap();
    let server = Running::start(&args);
    // A re-attach is tried at once when it is tried at all.
    std::thread::sleep(Duration::from_millis(500));
    for name in ["killed", "exits"] {
        assert_eq!(held(server.port, name), (true, Some(false)), "{name}");
    }
    signal(killed.id(), "-KILL");
    killed.wait().unwrap();
    assert_eq!(
        try_hold(server.port, "killed"),
        Some(75),
        "its command lives"
    );
    scratch.touch("e.stop");
    exits.wait().unwrap();
    assert_eq!(
        try_hold(server.port, "exits"),
        Some(75),
        "its background child lives"
    );

    scratch.touch("e-bg.stop");
    wait_until_tree_gone(&mut exits);
    assert_eq!(try_hold(server.port, "exits"), Some(0), "its port refuses");
    kill_tree(&killed);
    wait_until_tree_gone(&mut killed);
    assert_eq!(try_hold(server.port, "killed"), Some(0), "its port refuses");
}

/// Nor does a `hold --no-inherit` re-attach after a restart: an ATTACH
/// carries the handshake to whatever listens on the port, which `hold`
/// does not vouch for at that moment (while the server restarts, another
/// user may listen in its place). Its booking stays under the call-back
/// rules, answered by `hold` itself.
#[test]
fn after_a_restart_hold_no_inherit_sends_no_attach() {
    let scratch = Scratch::new("lines-no-attach");
    let state = scratch.path("bookings").display().to_string();
    let port = dead_port().to_string();
    let args = ["--port", &port, "--state", &state];
    let mut server = Running::start(&args);
    let stop = scratch.started_then_wait("alone");
    let mut holder = quiet_hold(
        server.port,
        "alone",
        &["--no-inherit"],
        &["sh", "-c", &stop],
    )
    .spawn()
    .unwrap();
    scratch.pid("alone.pid");
    server.wait_for_bookings(1);
    assert_eq!(held(server.port, "alone"), (true, Some(true)));
    common::sigterm(&server.child);
    server.child.wait().unwrap();
    let server = Running::start(&args);
    // A re-attach is tried at once when it is tried at all.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(held(server.port, "alone"), (true, Some(false)));
    assert_eq!(try_hold(server.port, "alone"), Some(75));
    scratch.touch("alone.stop");
    assert!(holder.wait().unwrap().success());
    assert_eq!(try_hold(server.port, "alone"), Some(0));
}
