//! `hold --etcd`: the lock taken in etcd, then the command run while the
//! keeper keeps the lease alive. The same choices and exit statuses as the
//! local `hold`; the token is the lock key's create revision.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::api;
use super::http::{self, Endpoints};
use super::keeper::{self, Keeper};
use super::queue::Contender;
use super::{Etcd, HoldRequest};
use crate::cli::args::{Usage, quoted};
use crate::cli::supervise::run_passing_signals;
use crate::cli::{EX_NOHOST, fail, say, users};

/// The variable that gives the command the lock's fencing token.
const TOKEN_VARIABLE: &str = "NAMASTE_TOKEN";

/// The longest one request to etcd may take: a third of the TTL, so that a
/// keep-alive left unanswered is tried again before the lease runs out.
fn request_timeout(ttl: Duration) -> Duration {
    (ttl / 3).min(Duration::from_secs(5))
}

pub fn main(options: Etcd, request: HoldRequest) -> Result<ExitCode, Usage> {
    let shown = quoted(request.name);
    let endpoints = Endpoints::new(&options.endpoints).map_err(|e| Usage(format!("--etcd {e}")))?;
    let asked = Duration::from_secs(options.ttl.unsigned_abs());
    let etcd = api::Etcd::new(endpoints, request_timeout(asked));
    let (lease, granted) = match etcd.grant(options.ttl) {
        Ok(lease) => lease,
        Err(e) => return Ok(failed(e)),
    };
    // The keeper renews by the shorter of the two: a lease never ends at
    // etcd before the keeper gives it up.
    let ttl = asked.min(Duration::from_secs(granted.unsigned_abs()));
    let mut lock = options.prefix;
    lock.extend_from_slice(request.name.as_encoded_bytes());
    lock.push(b'/');
    let mut key = lock.clone();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    // Before any thread starts: the keeper is forked.
    let keeper = match Keeper::start(&keeper::Lock {
        etcd: &etcd,
        lease,
        ttl,
        lost_signal: options.lost_signal,
        shown: &shown,
        key: &key,
    }) {
        Ok(keeper) => keeper,
        Err(e) => {
            let _ = etcd.revoke(lease);
            return Ok(fail(format_args!("cannot start the lease's keeper: {e}")));
        }
    };
    let value = holder_record();
    let contender = Contender {
        etcd: &etcd,
        lock: &lock,
        key: &key,
        value: &value,
        lease,
    };
    let taken = match request.wait.filter(|wait| !wait.is_zero()) {
        Some(wait) => contender.wait_for(wait),
        None => contender.try_take(),
    };
    let token = match taken {
        Ok(Some(token)) => token,
        Ok(None) => {
            keeper.finish();
            if !request.quiet {
                let waited = request
                    .wait
                    .filter(|t| !t.is_zero())
                    .map_or(String::new(), |t| format!(" (waited {t:?})"));
                say(format_args!(
                    "{shown} is held in etcd by another holder{waited}"
                ));
            }
            return Ok(ExitCode::from(request.conflict));
        }
        Err(e) => {
            keeper.finish();
            return Ok(failed(e));
        }
    };
    let (code, succeeded) = run(&keeper, request, token);
    Ok(if keeper.finish() && succeeded {
        ExitCode::FAILURE
    } else {
        code
    })
}

/// Runs the command holding the lock: in a process group of its own, so
/// that a lost lock stops its whole tree, unless this process runs in a
/// terminal's foreground, where the command stays in the terminal's job
/// (Ctrl-C must reach it) and a lost lock is signalled to it alone.
fn run(keeper: &Keeper, request: HoldRequest, token: i64) -> (ExitCode, bool) {
    let command = request.command;
    let mut to_run = Command::new(&command[0]);
    to_run
        .args(&command[1..])
        .env(TOKEN_VARIABLE, token.to_string());
    let foreground = in_terminal_foreground();
    if !foreground {
        to_run.process_group(0);
    }
    if request.inherit {
        let tree = keeper.tree.as_raw_fd();
        // SAFETY: the hook runs between fork and exec, where only
        // async-signal-safe calls are allowed: two fcntl calls.
        unsafe {
            to_run.pre_exec(move || {
                let flags = libc::fcntl(tree, libc::F_GETFD);
                if flags < 0 || libc::fcntl(tree, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    run_passing_signals(to_run, &command[0], Some(keeper.pid()), |pid| {
        let pid = libc::pid_t::try_from(pid).unwrap_or(0);
        keeper.command_started(if foreground { pid } else { -pid });
    })
}

/// Whether this process is in the foreground of its controlling terminal.
fn in_terminal_foreground() -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    // SAFETY: plain calls on a descriptor we own and on this process.
    unsafe { libc::tcgetpgrp(tty.as_raw_fd()) == libc::getpgrp() }
}

/// What the lock's key holds, for `status`: who holds it, since when.
fn holder_record() -> Vec<u8> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // SAFETY: getuid cannot fail.
    let user = unsafe { libc::getuid() };
    json!({
        "host": host_name(),
        "pid": std::process::id(),
        "user": users::described(user),
        "since": since,
    })
    .to_string()
    .into_bytes()
}

/// This machine's name.
fn host_name() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most the length given into `name`.
    let written = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len() - 1) };
    if written != 0 {
        return "?".into();
    }
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// Reports a request to etcd that failed: no etcd at the addresses with
/// the status of no server, anything else with 1.
pub(super) fn failed(e: http::Error) -> ExitCode {
    match e {
        http::Error::Unreachable(_) => {
            say(e);
            ExitCode::from(EX_NOHOST)
        }
        e => fail(e),
    }
}
