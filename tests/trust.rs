//! A client believes only a server run by root, by its own OS user, or by
//! the user `NAMASTE_SERVER_USER` names: while the real server is down,
//! any user may serve its port. The other user is `nobody`, so these tests
//! need root; without it they say so and pass.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::users::{NOBODY, as_nobody, root_or_skip, run_as_nobody, with_nobodys_sockets};
use common::{Running, stderr};
use namaste::Uid;
use namaste::client::Client;

/// The exit status of a client that refuses an untrusted server.
const EX_UNAVAILABLE: i32 = 69;

/// `namaste run` on a free port, run by `nobody`.
fn server_of_nobody() -> Running {
    let mut command = run_as_nobody(Running::command(&["--no-state"]));
    command.env_remove("XDG_STATE_HOME");
    Running::spawn(command)
}

/// `namaste ARGS`, run by us (root), with `NAMASTE_SERVER_USER` set to
/// `server_user` if given.
fn namaste(args: &[&str], server_user: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
    command.args(args).env_remove("NAMASTE_SERVER_USER");
    if let Some(user) = server_user {
        command.env("NAMASTE_SERVER_USER", user);
    }
    command.output().unwrap()
}

/// Runs `namaste ARGS` as root, which must refuse the server on `port`
/// as `nobody`'s: exit 69, one line naming that user, nothing on stdout.
fn refused_as_nobodys(args: &[&str], port: &str) {
    let refused = namaste(args, None);
    let said = stderr(&refused);
    assert_eq!(
        refused.status.code(),
        Some(EX_UNAVAILABLE),
        "{args:?}: {said}"
    );
    assert!(
        said.starts_with(&format!(
            "namaste: the server on 127.0.0.1:{port} runs as {NOBODY}, "
        )) && said.lines().count() == 1,
        "{args:?}: {said}"
    );
    assert!(refused.stdout.is_empty(), "{args:?}");
}

#[test]
fn hold_notify_status_and_list_refuse_a_server_of_another_user() {
    if !root_or_skip() {
        return;
    }
    let impostor = server_of_nobody();
    let port = impostor.port.to_string();
    let marker = common::Scratch::new("refused-server");
    let ran = marker.path("ran");
    let touch = ["touch", ran.to_str().unwrap()];
    let hold = [&["hold", "job", "--port", &port, "--"][..], &touch[..]].concat();
    for args in [
        &hold[..],
        &["notify", "job", "hi", "--port", &port],
        &["status", "--port", &port],
        &["status", "job", "--port", &port],
        &["list", "--port", &port],
    ] {
        refused_as_nobodys(args, &port);
    }
    assert!(
        !ran.exists(),
        "hold ran its command under an untrusted server"
    );
    // The impostor never heard a request: nothing was booked.
    assert_eq!(impostor.bookings(), 0);
}

#[test]
fn a_server_of_the_named_user_or_of_ones_own_is_trusted() {
    if !root_or_skip() {
        return;
    }
    let server = server_of_nobody();
    let port = server.port.to_string();
    let held = namaste(
        &["hold", "job", "--port", &port, "--", "true"],
        Some(NOBODY),
    );
    assert_eq!(held.status.code(), Some(0), "{}", stderr(&held));
    let by_id = namaste(&["status", "--port", &port], Some("65534"));
    assert_eq!(by_id.status.code(), Some(0), "{}", stderr(&by_id));
    let own = as_nobody(&["hold", "job", "--port", &port, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    let unknown = namaste(&["status", "--port", &port], Some("no-such-user-here"));
    assert_eq!(
        unknown.status.code(),
        Some(EX_UNAVAILABLE),
        "{}",
        stderr(&unknown)
    );
    assert!(
        stderr(&unknown).contains("NAMASTE_SERVER_USER names no OS user"),
        "{}",
        stderr(&unknown)
    );
}

/// The server is checked again before its answer is believed: a `hold
/// --wait` that began with root's server, which then went away, is not
/// granted by another user's server that took over the port meanwhile.
#[test]
fn an_answer_from_a_server_that_took_over_the_port_is_not_believed() {
    if !root_or_skip() {
        return;
    }
    let port = common::dead_port().to_string();
    let run_on_port = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
        command.args(["run", "--port", &port, "--no-state"]);
        command
    };
    let mut real = Running::spawn(run_on_port());
    let client = Client::new().with_port(real.port);
    let uid = Uid::from_name("job");
    let held = client.book(uid).expect("granted");
    let marker = common::Scratch::new("taken-over");
    let ran = marker.path("ran");
    let mut hold = Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args([
            "hold", "job", "--port", &port, "--wait", "30", "--", "touch",
        ])
        .arg(&ran)
        .env_remove("NAMASTE_SERVER_USER")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.query(uid).unwrap().waiters != 1 {
        assert!(Instant::now() < deadline, "hold never queued");
        thread::sleep(Duration::from_millis(20));
    }
    let _ = real.child.kill();
    let _ = real.child.wait();
    // The lock is still held; only the impostor would grant it.
    let _impostor = Running::spawn(run_as_nobody(run_on_port()));
    let status = hold.wait().unwrap();
    let mut said = String::new();
    hold.stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert_eq!(status.code(), Some(EX_UNAVAILABLE), "{said}");
    assert!(said.contains(&format!("runs as {NOBODY}")), "{said}");
    assert!(
        !ran.exists(),
        "hold ran its command on the impostor's grant"
    );
    drop(held);
}

/// A server of another user listening on 0.0.0.0 takes the connections
/// to 127.0.0.1 as surely as one listening there: it is not believed
/// either. The impostor answers every request with "yes", a grant; it
/// hears nothing but loopback, and only for the test's few requests.
#[test]
fn a_server_of_another_user_on_the_unspecified_address_is_refused() {
    if !root_or_skip() {
        return;
    }
    let listener = with_nobodys_sockets(|| TcpListener::bind("0.0.0.0:0")).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let yes_to_all = with_nobodys_sockets(|| {
        thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let Ok(mut stream) = stream else { return };
                let mut request = [0; 1];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(&[1]);
            }
        })
    });
    let marker = common::Scratch::new("wildcard-server");
    let ran = marker.path("ran");
    let touch = ["touch", ran.to_str().unwrap()];
    let hold = [&["hold", "job", "--port", &port, "--"][..], &touch[..]].concat();
    for args in [&hold[..], &["notify", "job", "hi", "--port", &port]] {
        refused_as_nobodys(args, &port);
    }
    assert!(
        !ran.exists(),
        "hold ran its command on the impostor's grant"
    );
    // Ends the impostor, whatever it was sent.
    for _ in 0..4 {
        let _ = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap()));
    }
    yes_to_all.join().unwrap();
}
