//! What systemd hands a service and expects back: a listening socket
//! (socket activation) and word that the service is ready. Both are plain
//! environment variables and file descriptors; no library needed.

use std::env;
use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The first file descriptor systemd passes (SD_LISTEN_FDS_START).
const FIRST_PASSED_FD: i32 = 3;

/// The listening socket systemd passed to this process, if it passed one.
pub fn activated_listener() -> io::Result<Option<TcpListener>> {
    let for_us = env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    let count: u32 = env::var("LISTEN_FDS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    match (for_us, count) {
        (false, _) | (true, 0) => Ok(None),
        (true, 1) => {
            // SAFETY: by systemd's protocol, descriptor 3 was passed to
            // this process (LISTEN_PID says so) and nothing else in it owns
            // the descriptor; it is taken here, once.
            let fd = unsafe { OwnedFd::from_raw_fd(FIRST_PASSED_FD) };
            let listener = TcpListener::from(fd);
            // Fails unless the descriptor is a socket.
            listener.local_addr()?;
            Ok(Some(listener))
        }
        (true, n) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("systemd passed {n} sockets; namaste listens on one"),
        )),
    }
}

/// Tells systemd the server is ready to serve, if it asked to be told.
pub fn notify_ready() -> io::Result<()> {
    let Some(path) = env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let socket = UnixDatagram::unbound()?;
    // A leading '@' names a socket in Linux's abstract namespace.
    let addr = match path.as_encoded_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(&path)?,
    };
    socket.send_to_addr(b"READY=1", &addr)?;
    Ok(())
}
