//! `hold --pass-messages`: the command reads the messages sent to its lock
//! from the pipe in `NAMASTE_MESSAGE_FD`, and a command that never reads
//! them never stops `hold`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{fs, thread};

use common::{Running, Scratch, namaste, stderr};
use namaste::Uid;
use namaste::client::{Client, Notified};

fn hold(server: &Running, name: &str, script: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
    command
        .args(["hold", name, "--pass-messages", "--port"])
        .arg(server.port.to_string())
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn a_shell_script_reads_the_message_notify_sent() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("pass-messages");
    let got = scratch.path("got");
    let script = format!(
        "read -r message <&\"$NAMASTE_MESSAGE_FD\" && printf '%s\\n' \"$message\" > {}",
        got.display()
    );
    let holder = hold(&server, "reader", &script).spawn().unwrap();
    server.wait_for_bookings(1);
    let port = server.port.to_string();
    let sent = namaste(&["notify", "reader", "reload\nnow", "--port", &port]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let output = holder.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let me = common::user_name();
    assert_eq!(
        fs::read_to_string(&got).unwrap(),
        format!("{me}: reload\\nnow\n")
    );
    // Passed on, not printed too.
    assert_eq!(stderr(&output), "");
}

/// The command never reads, and messages keep coming: `hold` takes every
/// one (what the pipe has no room for is dropped), and once the command
/// exits, the lock is free and `hold` exits, saying how many were dropped.
#[test]
fn a_flood_of_unread_messages_never_blocks_hold() {
    let server = Running::start(&[]);
    let scratch = Scratch::new("pass-messages-flood");
    let mut holder = hold(&server, "deaf", &scratch.wait_for_file("stop"))
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    let uid = Uid::from_name("deaf");
    let client = Client::new().with_port(server.port);
    let message = vec![b'm'; namaste::wire::MAX_MESSAGE_LEN];
    // Taken (not declined) means hold's queue had room: it kept passing
    // them on, though nobody read the pipe.
    let delivered = (0..300)
        .filter(|_| client.notify(uid, &message).unwrap() == Notified::Delivered)
        .count();
    assert!(delivered >= 150, "{delivered} of 300 taken");
    scratch.touch("stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = holder.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "hold is stuck");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(client.book(uid).is_ok(), "the lock was left held");
    let mut said = String::new();
    std::io::Read::read_to_string(&mut holder.stderr.take().unwrap(), &mut said).unwrap();
    let dropped: usize = said
        .split_once(" messages for \"deaf\" were dropped")
        .and_then(|(count, _)| count.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    // A pipe of 64 KiB takes about 70 lines of 900 characters; the rest of
    // those taken were dropped.
    assert!(
        dropped <= delivered && dropped + 100 >= delivered,
        "{dropped} of {delivered} dropped: {said}"
    );
}
