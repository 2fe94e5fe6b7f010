//! Signals and `hold`: one sent to `hold` reaches the command while the
//! lock is still held; a Ctrl-C from the terminal reaches it once.

mod common;

use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Running, Scratch};

/// SIGTERM to `hold`: the command gets it, and while it handles it the
/// lock is still held (another `hold` of the name exits 75); `hold` exits
/// with the command's status, and only then is the lock free.
#[test]
fn a_signal_to_hold_reaches_the_command_while_the_lock_is_still_held() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("sigterm-order");
    let seen = scratch.path("seen");
    let handler = format!(
        "{} hold job --port {} -- true 2>/dev/null; echo $? > {}; exit 143",
        env!("CARGO_BIN_EXE_namaste"),
        server.port,
        seen.display()
    );
    let script = format!(
        "trap '{handler}' TERM; echo $$ > {}; {}",
        scratch.path("ready").display(),
        scratch.wait_for_file("never")
    );
    let mut holder = common::quiet_hold(server.port, "job", &[], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    // The trap is set, so the command's own handler sees the signal.
    scratch.pid("ready");
    common::sigterm(&holder);
    assert_eq!(holder.wait().unwrap().code(), Some(128 + 15));
    let while_handling = fs::read_to_string(&seen).expect("the command handled SIGTERM");
    assert_eq!(while_handling.trim(), "75", "the lock was free too early");
    assert_eq!(server.bookings(), 0);
}

/// A terminal's Ctrl-C goes to its whole foreground process group: `hold`
/// and its command. The command must see it once, not once more from
/// `hold`.
#[test]
fn ctrl_c_in_a_terminal_reaches_the_command_once() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("ctrl-c");
    let seen = scratch.path("seen");
    // Builtins only, so that the trap runs right after each signal: with
    // a child in the foreground the shell would merge two into one.
    // It says when its trap is set: a Ctrl-C before that would end it.
    let script = format!(
        "trap 'echo INT >> {}' INT; echo $$ > {}; i=0; while [ ! -e {} ] && [ $i -lt 3000000 ]; do i=$((i+1)); done",
        seen.display(),
        scratch.path("ready").display(),
        scratch.path("stop").display()
    );
    let (master, terminal) = pty();
    let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
    command
        .args(["hold", "ctrl-c", "--port", &server.port.to_string()])
        .args(["--", "sh", "-c", &script])
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stdout(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal));
    // SAFETY: setsid and ioctl are async-signal-safe; they make the child
    // a session of its own whose controlling terminal is the pty, with its
    // process group in the foreground.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut holder = command.spawn().unwrap();
    scratch.pid("ready");
    let mut master = fs::File::from(master);
    master.write_all(b"\x03").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.exists() {
        assert!(Instant::now() < deadline, "the command never saw Ctrl-C");
        thread::sleep(Duration::from_millis(20));
    }
    // Room for a second one to arrive, if it were coming.
    thread::sleep(Duration::from_millis(300));
    scratch.touch("stop");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    let times = fs::read_to_string(&seen).unwrap().lines().count();
    assert_eq!(times, 1, "the command saw Ctrl-C {times} times");
}

/// A new pseudo-terminal: its master, and its terminal end.
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the integers given; the
    // name and settings pointers may be null.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened, and are ours alone.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(terminal)) }
}

/// Ctrl-Z then `fg` on a `hold --wait` that waits for the lock: stopped
/// and continued while it waits for the server's reply, it must wait on,
/// and run its command once the lock frees.
#[test]
fn a_waiting_hold_stopped_and_continued_runs_once_the_lock_frees() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("stop-cont-wait");
    let client = namaste::client::Client::new().with_port(server.port);
    let uid = namaste::Uid::from_name("stopped-waiter");
    let holder = client.book(uid).expect("granted");
    let ran = scratch.path("ran");
    let mut waiter = common::quiet_hold(
        server.port,
        "stopped-waiter",
        &["--wait", "60"],
        &["touch", ran.to_str().unwrap()],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Its WAIT is queued, so it is blocked reading the reply.
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.query(uid).unwrap().waiters != 1 {
        assert!(Instant::now() < deadline, "the hold never queued");
        thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        common::signal(waiter.id(), "-STOP");
        wait_for_state(waiter.id(), 'T');
        common::signal(waiter.id(), "-CONT");
        wait_for_state(waiter.id(), 'S');
    }
    assert!(waiter.try_wait().unwrap().is_none(), "the hold gave up");
    assert!(holder.check_out().unwrap());
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ran.exists(), "the command never ran");
    assert_eq!(server.bookings(), 0);
}

/// Waits until process `pid` is in `state` (as /proc/PID/stat spells it:
/// `T` stopped, `S` sleeping) or has exited.
fn wait_for_state(pid: u32, state: char) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        let now = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if now == Some(state) || now == Some('Z') {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} never reached {state}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}
