//! Running a lock's command to its end: the signals sent to `hold` are
//! passed on to it (the lock is held until it has stopped), and its exit
//! status is answered as a shell would give it.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::mpsc;
use std::thread;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use super::args::quoted;
use super::{fail, say};

/// What `hold` waits for while its command runs, all on one channel, so
/// that it notices each the moment it happens. Messages for the lock go
/// to the printer instead: this thread never writes to standard error
/// while the command runs.
enum Event {
    /// A signal to pass on to the command.
    Signal(i32),
    /// The command has exited (and is not yet reaped).
    Exited,
}

/// Runs `to_run` (whose program is `program`) to its end, passing on the
/// signals sent to this process, but those from `ignored_sender`;
/// `started` is told the command's pid once it runs. Answers its exit
/// status, and whether it exited with 0.
pub fn run_passing_signals(
    mut to_run: Command,
    program: &OsStr,
    ignored_sender: Option<libc::pid_t>,
    started: impl FnOnce(u32),
) -> (ExitCode, bool) {
    let (events, inbox) = mpsc::channel();
    // Registered before the command starts, so no signal meant for it is
    // missed.
    let mut signals = match SignalsInfo::<WithOrigin>::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => return (fail(format_args!("cannot handle signals: {e}")), false),
    };
    let signal_handle = signals.handle();
    let spawned = to_run.spawn();
    // The command's copies of what it inherits are all it needs; ours
    // would outlive it (the lock's socket would keep the port listening
    // after this process's responder stops).
    drop(to_run);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            say(format_args!("cannot run {}: {e}", quoted(program)));
            // As shells do: 127 not found, 126 found but not runnable.
            let code = if e.kind() == ErrorKind::NotFound {
                127
            } else {
                126
            };
            return (ExitCode::from(code), false);
        }
    };
    let pid = child.id();
    started(pid);
    let forward_signals = events.clone();
    thread::spawn(move || {
        for origin in signals.forever() {
            // The terminal sends Ctrl-C (and a hang-up) to its whole
            // foreground process group, the command included: passed on,
            // it would reach the command twice. So would a signal to the
            // command's process group from `ignored_sender`.
            let sender = origin.process.map(|process| process.pid);
            if origin.cause == Cause::Kernel || (sender.is_some() && sender == ignored_sender) {
                continue;
            }
            if forward_signals.send(Event::Signal(origin.signal)).is_err() {
                return;
            }
        }
    });
    thread::spawn(move || {
        wait_for_exit(pid);
        let _ = events.send(Event::Exited);
    });
    // The command is not reaped until the loop ends, so its pid cannot be
    // reused while signals are passed on to it.
    while let Ok(event) = inbox.recv() {
        match event {
            Event::Signal(signal) => pass_on(signal, pid),
            Event::Exited => break,
        }
    }
    signal_handle.close();
    match child.wait() {
        Ok(status) => (exit_code(status), status.success()),
        Err(e) => {
            let failed = fail(format_args!("lost track of {}: {e}", quoted(program)));
            (failed, false)
        }
    }
}

/// Blocks until process `pid`, a child of ours, has exited, leaving it
/// unreaped.
fn wait_for_exit(pid: u32) {
    loop {
        // SAFETY: waitid writes only into `info`, a siginfo_t of our own.
        let waited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if waited == 0 || std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return;
        }
    }
}

/// Sends `signal` to the command: it decides how to stop, and the lock is
/// held until it has.
fn pass_on(signal: i32, pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(signal)) => ExitCode::from(128u8.wrapping_add(signal as u8)),
        (None, None) => ExitCode::FAILURE,
    }
}
