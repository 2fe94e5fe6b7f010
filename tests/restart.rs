//! A plain restart keeps the locks in use; a lock lost anyway is reported;
//! two servers never share a state file; `hold`'s exit statuses and bytes.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use common::{Running, Scratch, dead_port, quiet_hold};

/// `namaste run` with no state options, in a home of the test's own.
fn plain_server(scratch: &Scratch, port: u16, extra: &[&str]) -> Running {
    let mut command = Running::command(&["--port", &port.to_string()]);
    command
        .args(extra)
        .env("XDG_STATE_HOME", scratch.path("state"))
        .env_remove("STATE_DIRECTORY");
    Running::spawn(command)
}

#[test]
fn a_plain_restart_keeps_the_locks_in_use() {
    let scratch = Scratch::new("plain-restart");
    let port = dead_port();
    let mut server = plain_server(&scratch, port, &[]);
    let script = scratch.started_then_wait("r1");
    let mut first = quiet_hold(port, "r1", &[], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    // The command runs: hold has its grant, and believed the server
    // that gave it (a stop before that check leaves hold without it).
    scratch.pid("r1.pid");
    server.wait_for_bookings(1);
    common::sigterm(&server.child);
    let line = server.log_line_with("stopped on SIGTERM");
    assert!(
        line.contains("1 booking held, kept in") && line.contains(&format!("bookings-{port}")),
        "{line}"
    );
    server.child.wait().unwrap();
    let server = plain_server(&scratch, port, &[]);
    assert_eq!(server.bookings(), 1);
    let second = quiet_hold(port, "r1", &[], &["true"]).status().unwrap();
    assert_eq!(second.code(), Some(75), "a second holder got in");
    scratch.touch("r1.stop");
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

/// With --no-state a restart loses the lock while the command runs: `hold`
/// says so, and exits 1 though its command succeeded.
#[test]
fn a_lock_lost_while_the_command_ran_is_reported() {
    let scratch = Scratch::new("lost-lock");
    let port = dead_port();
    let mut server = plain_server(&scratch, port, &["--no-state"]);
    let script = scratch.started_then_wait("lost");
    let holder = quiet_hold(port, "lost", &[], &["sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    scratch.pid("lost.pid");
    server.wait_for_bookings(1);
    common::sigterm(&server.child);
    let line = server.log_line_with("stopped on SIGTERM");
    assert!(line.contains("lost: no state file"), "{line}");
    server.child.wait().unwrap();
    let _server = plain_server(&scratch, port, &["--no-state"]);
    scratch.touch("lost.stop");
    let output = holder.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let said = common::stderr(&output);
    assert!(said.contains("ran unlocked"), "{said}");
}

#[test]
fn two_servers_never_share_a_state_file() {
    let scratch = Scratch::new("shared-state");
    let state = scratch.path("bookings");
    let _first = Running::start(&["--state", state.to_str().unwrap()]);
    let second = common::namaste(&["run", "--port", "0", "--state", state.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(1));
    let said = common::stderr(&second);
    assert!(
        said.contains("another server uses this state file"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
}

/// `-E N` makes "held elsewhere" tell itself apart from a command's own 75.
#[test]
fn the_conflict_exit_status_can_be_chosen() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("conflict-status");
    let script = scratch.wait_for_file("stop");
    let mut holder = quiet_hold(server.port, "busy", &[], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    for options in [
        &["-E", "9"][..],
        &["--conflict-exit-code", "9"],
        &["--conflict-exit-code=9"],
    ] {
        let status = quiet_hold(server.port, "busy", options, &["true"])
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(9), "{options:?}");
    }
    let own = quiet_hold(server.port, "free", &["-E", "9"], &["sh", "-c", "exit 75"])
        .status()
        .unwrap();
    assert_eq!(own.code(), Some(75), "the command's own status");
    scratch.touch("stop");
    holder.wait().unwrap();
}

/// Arguments after `--` are the command's, bytes and all.
#[test]
fn bytes_after_the_command_are_passed_on_as_they_are() {
    let server = Running::start(&[]);
    let bytes = OsStr::from_bytes(b"caf\xe9 \xff");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(["hold", "bytes", "--port", &server.port.to_string(), "--"])
        .args([OsStr::new("printf"), OsStr::new("%s"), bytes])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    assert_eq!(output.stdout, bytes.as_bytes());
}

/// `--per-user` names a lock of this OS user's alone: a different id from
/// the plain name's, reached by `notify --per-user`; another user's
/// `hold --per-user` of the same name is another lock (as root, run as
/// `nobody`; skipped with a reason otherwise).
#[test]
fn per_user_names_do_not_collide() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("per-user");
    let script = scratch.wait_for_file("stop");
    let mut holder = quiet_hold(
        server.port,
        "editor",
        &["--per-user"],
        &["sh", "-c", &script],
    )
    .spawn()
    .unwrap();
    server.wait_for_bookings(1);
    let client = namaste::client::Client::new().with_port(server.port);
    // SAFETY: geteuid has no preconditions and touches no memory.
    let me = unsafe { libc::geteuid() };
    assert!(
        matches!(
            client.book(namaste::Uid::per_user(b"editor", me)),
            Err(namaste::client::Error::Held)
        ),
        "the per-user id is the one held"
    );
    let plain = client.book(namaste::Uid::from_name("editor"));
    assert!(plain.is_ok(), "the plain name is another lock: {plain:?}");
    drop(plain);
    let port = server.port.to_string();
    let notified = common::namaste(&["notify", "editor", "hi", "--per-user", "--port", &port]);
    assert_eq!(
        notified.status.code(),
        Some(0),
        "{}",
        common::stderr(&notified)
    );
    if me == 0 {
        let theirs = Command::new("su")
            .args(["nobody", "-s", "/bin/sh", "-c"])
            .arg(format!(
                "{} hold editor --per-user --port {port} -- true",
                env!("CARGO_BIN_EXE_namaste")
            ))
            .status()
            .unwrap();
        assert_eq!(
            theirs.code(),
            Some(0),
            "nobody's editor collided with root's"
        );
    } else {
        common::skip("the second user: running as another user needs root");
    }
    scratch.touch("stop");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
}
