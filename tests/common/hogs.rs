//! One OS user hogging what all share, and the others who must still get
//! their turn: a third user (`daemon`, uid 1) besides root and `nobody`,
//! the hog's raw requests, and a STATUS that must answer in time.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use namaste::Uid;
use namaste::client::Client;
use namaste::handshake::Handshake;
use namaste::status::Status;
use namaste::wire::Request;

use super::{Running, answer_with, quiet_hold, stderr};

/// The third user, besides root and `nobody`.
pub const DAEMON: &str = "daemon";
/// Its user id.
pub const DAEMON_ID: u32 = 1;

/// `namaste ARGS` run as `user` through `su`, its output collected.
pub fn as_user(user: &str, args: &[&str]) -> Command {
    let mut line = format!("exec {}", env!("CARGO_BIN_EXE_namaste"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new("su");
    command
        .args([user, "-s", "/bin/sh", "-c", &line])
        .stdin(Stdio::null());
    command
}

/// Whether `user` exists on this machine; says why the test is skipped if
/// not.
pub fn user_exists_or_skip(user: &str) -> bool {
    let exists = Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !exists {
        super::skip(&format!("no OS user {user} here"));
    }
    exists
}

/// The server's STATUS, which must come within a second whatever the hogs
/// do.
pub fn status_within_a_second(port: u16) -> Status {
    let started = Instant::now();
    let status = Client::new().with_port(port).status().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "STATUS took {took:?}");
    status
}

/// Books `uid` with a raw BOOK whose responder answers its one
/// verification and is silent from then on (its listener stays open and
/// is never accepted from again): a holder that cannot be proved dead.
/// Answers the listener, to keep open for as long as the holder should
/// stay silent.
pub fn book_then_fall_silent(server: SocketAddr, uid: Uid) -> Arc<TcpListener> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let answered = answer_with(listener.clone(), *uid.as_bytes(), 1);
    let handshake = Handshake::random().unwrap();
    let reply = super::send_bytes(
        server,
        &Request::Book {
            uid,
            handshake,
            port,
        }
        .encode(),
    );
    assert_eq!(reply, Some(1), "the silent holder's BOOK was not granted");
    answered.join().unwrap();
    listener
}

/// Sends `request` on a new connection and leaves it open, unread, so it
/// stays with the server for as long as the connection is kept.
pub fn send_and_keep(server: SocketAddr, request: &Request) -> TcpStream {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.write_all(&request.encode()).unwrap();
    stream
}

/// `namaste hold NAME -- true` as root: its exit code.
pub fn roots_hold(server: &Running, name: &str) -> Option<i32> {
    quiet_hold(server.port, name, &[], &["true"])
        .status()
        .unwrap()
        .code()
}

/// `namaste hold NAME -- true` as `user`: its exit code and standard error.
pub fn users_hold(user: &str, server: &Running, name: &str) -> (Option<i32>, String) {
    let port = server.port.to_string();
    let output = as_user(user, &["hold", name, "--port", &port, "--", "true"])
        .output()
        .unwrap();
    (output.status.code(), stderr(&output))
}
