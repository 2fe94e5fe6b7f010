//! Another OS user for the tests between users: `nobody` (65534), as a
//! client, a server, a sender that hangs up at once, or a decoy. Running
//! anything as `nobody` needs root; the tests say so and skip without it.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use namaste::Uid;
use namaste::wire::Request;

/// The name and user id of the other user.
pub const NOBODY: &str = "nobody";
pub const NOBODY_ID: u32 = 65534;

/// Whether the tests run as root; says why the test is skipped if not.
pub fn root_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        super::skip(&format!("running a process as {NOBODY} needs root"));
    }
    root
}

/// `namaste ARGS` run as `nobody` through `su`, which stays its parent.
pub fn as_nobody(args: &[&str]) -> Command {
    let mut line = format!("exec {}", env!("CARGO_BIN_EXE_namaste"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new("su");
    command.args([NOBODY, "-s", "/bin/sh", "-c", &line]);
    command
}

/// Runs `f` on this thread with `nobody`'s file-system user id, which the
/// kernel gives as owner to the sockets created or accepted meanwhile, and
/// to threads started meanwhile, for as long as they live.
pub fn with_nobodys_sockets<T>(f: impl FnOnce() -> T) -> T {
    with_sockets_of(NOBODY_ID, f)
}

/// Runs `f` on this thread with the file-system user id `user`, which the
/// kernel gives as owner to the sockets created or accepted meanwhile.
pub fn with_sockets_of<T>(user: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: setfsuid takes a plain integer and changes the credentials
    // of this thread alone.
    unsafe { libc::setfsuid(user) };
    let result = f();
    // SAFETY: as above; the tests run as root.
    unsafe { libc::setfsuid(0) };
    result
}

/// `command`, run directly as `nobody` (user and group).
pub fn run_as_nobody(mut command: Command) -> Command {
    command.uid(NOBODY_ID).gid(NOBODY_ID);
    command
}

/// Sends a NOTIFY of `message` for `uid` to the server on `port` from a
/// process of `nobody` that closes its connection as it writes the last
/// byte (held back with MSG_MORE, so the close goes out with the data),
/// and exits without waiting for the answer.
pub fn notify_and_hang_up_as_nobody(port: u16, uid: Uid, message: &[u8]) {
    let request = Request::Notify {
        uid,
        message: message.to_vec(),
    }
    .encode();
    let mut sender = run_as_nobody(Command::new("true"));
    // SAFETY: as in `decoy_listening`: system calls on data of its own.
    unsafe {
        sender.pre_exec(move || {
            let server = loopback(Ipv4Addr::LOCALHOST, port);
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let sent = fd >= 0
                && libc::connect(fd, (&raw const server).cast(), SOCKADDR_IN_LEN) == 0
                && libc::send(fd, request.as_ptr().cast(), request.len(), libc::MSG_MORE)
                    == request.len() as isize
                && libc::close(fd) == 0;
            if sent {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let status = sender.status().unwrap();
    assert!(status.success(), "the sender failed: {status}");
}

const SOCKADDR_IN_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as _;

/// `ip:port` for the socket calls.
fn loopback(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    // SAFETY: all zeroes is a valid sockaddr_in.
    let mut at: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    at.sin_family = libc::AF_INET as libc::sa_family_t;
    at.sin_port = port.to_be();
    at.sin_addr.s_addr = u32::from(ip).to_be();
    at
}

/// A process of `nobody` (`sleep 600`) that listens on `port` at each of
/// `addresses`, its sockets opened by itself before it runs `sleep`.
pub fn decoy_listening(port: u16, addresses: Vec<Ipv4Addr>) -> Child {
    let mut sleep = run_as_nobody(Command::new("sleep"));
    sleep.arg("600").stdin(Stdio::null());
    // SAFETY: the closure only makes system calls on its own stack data,
    // which is what may run between fork and exec; it runs after the
    // switch to `nobody`, so the sockets are nobody's.
    unsafe {
        sleep.pre_exec(move || {
            for ip in &addresses {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                let at = loopback(*ip, port);
                if fd < 0
                    || libc::bind(fd, (&raw const at).cast(), SOCKADDR_IN_LEN) != 0
                    || libc::listen(fd, 8) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    sleep.spawn().unwrap()
}
