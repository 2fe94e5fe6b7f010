//! Fencing tokens through real processes: `hold` hands its command a
//! token that grows with every grant, across restarts of the server and
//! rewrites of its state file; `status NAME` shows the holder's; `namaste
//! check` tells the current holder's token from any other.

mod common;

use std::fs;
use std::process::{Command, Output, Stdio};

use common::{Running, Scratch, namaste, random, stderr};
use namaste::Uid;
use namaste::client::Client;

/// Runs `hold ARGS -- sh -c SCRIPT` against the server on `port`
/// (`NAMASTE_PORT`, which the script's commands inherit), with the namaste
/// binary as the script's `$0`; answers its output.
fn hold_running(port: u16, args: &[&str], script: &str) -> Output {
    let binary = env!("CARGO_BIN_EXE_namaste");
    let output = Command::new(binary)
        .arg("hold")
        .args(args)
        .env("NAMASTE_PORT", port.to_string())
        .args(["--", "sh", "-c", script, binary])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// The lines `hold`'s command printed.
fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The token a `hold NAME` gets from the server on `port`.
fn token_of_a_hold(port: u16, name: &str) -> u64 {
    let output = hold_running(port, &[name], "echo \"$NAMASTE_TOKEN\"");
    lines(&output)[0]
        .parse()
        .unwrap_or_else(|_| panic!("no token: {:?}", lines(&output)))
}

#[test]
fn every_hold_gets_a_greater_token_and_status_shows_the_holders() {
    let server = Running::start(&["--no-state"]);
    let first = token_of_a_hold(server.port, "fenced");
    let other = token_of_a_hold(server.port, "another");
    let output = hold_running(
        server.port,
        &["fenced"],
        "echo \"$NAMASTE_NAME $NAMASTE_TOKEN\"; \"$0\" status fenced",
    );
    let [named, status] = &lines(&output)[..] else {
        panic!("{:?}", lines(&output));
    };
    let third: u64 = named.strip_prefix("fenced ").unwrap().parse().unwrap();
    assert!(first < other && other < third, "{first} {other} {third}");
    assert!(
        status.contains(&format!(" token={third} ")),
        "status shows another token: {status}"
    );
    // Named by its id alone, the lock's name is the id.
    let uid = Uid::from_name("by-id").to_string();
    let output = hold_running(server.port, &["--uid", &uid], "echo \"$NAMASTE_NAME\"");
    assert_eq!(lines(&output), [uid]);
}

#[test]
fn check_is_true_for_the_current_holders_token_alone() {
    let server = Running::start(&["--no-state"]);
    let output = hold_running(
        server.port,
        &["checked"],
        "\"$0\" check checked \"$NAMASTE_TOKEN\"; echo $?; \
         \"$0\" check checked $((NAMASTE_TOKEN - 1)); echo $?; \
         echo \"$NAMASTE_TOKEN\"",
    );
    let [current, older, token] = &lines(&output)[..] else {
        panic!("{:?}", lines(&output));
    };
    assert_eq!((current.as_str(), older.as_str()), ("0", "1"));
    assert!(
        stderr(&output).contains("is held with token"),
        "{}",
        stderr(&output)
    );
    let port = server.port.to_string();
    let free = namaste(&["check", "checked", token, "--port", &port]);
    assert_eq!(free.status.code(), Some(1));
    assert!(stderr(&free).contains("nobody holds"), "{}", stderr(&free));
    let quiet = namaste(&["check", "checked", token, "--port", &port, "-q"]);
    assert_eq!(
        (quiet.status.code(), stderr(&quiet)),
        (Some(1), String::new())
    );
    let usage = namaste(&["check", "checked", "abc", "--port", &port]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("a whole number"),
        "{}",
        stderr(&usage)
    );
    let none = namaste(&[
        "check",
        "checked",
        "1",
        "--port",
        &common::dead_port().to_string(),
    ]);
    assert_eq!(none.status.code(), Some(68));
}

/// The state file keeps the last token given: a restarted server gives
/// greater ones than every grant before, even once the records of the
/// released ones were rewritten away (as they grew, and at each start).
#[test]
fn tokens_grow_across_a_restart_and_a_rewritten_state_file() {
    let scratch = Scratch::new("tokens-restart");
    let state = scratch.path("bookings");
    let args = ["--state", state.to_str().unwrap()];
    let server = Running::start(&args);
    let first = token_of_a_hold(server.port, "fenced");
    // 220 bytes a cycle: the log passes 64 KiB, where it is rewritten
    // with only what is held, after some 300 cycles.
    let client = Client::new().with_port(server.port);
    let mut last = first;
    let mut largest = 0;
    for _ in 0..400 {
        let booking = client.book(random()).unwrap();
        let token = booking.token().expect("a token");
        assert!(token > last, "{token} after {last}");
        last = token;
        assert!(booking.check_out().unwrap());
        largest = largest.max(fs::metadata(&state).unwrap().len());
    }
    let size = fs::metadata(&state).unwrap().len();
    assert!(size < largest, "never rewritten: {size} bytes");
    drop(server);
    // A start rewrites the file with what is held (nothing here): the
    // second start finds only the last token given.
    drop(Running::start(&args));
    let restarted = Running::start(&args);
    let after = token_of_a_hold(restarted.port, "fenced");
    assert!(after > last, "{after} after {last}, before the restarts");
}

/// Tokens also start above the clock, so the test above cannot tell the
/// file's part: a last token the file names far above the clock (a count
/// that outran it) is where a restarted server goes on from.
#[test]
fn a_last_token_in_the_state_file_above_the_clock_is_kept_across_a_restart() {
    let scratch = Scratch::new("tokens-above-the-clock");
    let state = scratch.path("bookings");
    let args = ["--state", state.to_str().unwrap()];
    drop(Running::start(&args));
    // The file's 8-byte header, then a last-token record: `T` and the
    // token, big-endian, as a rewritten log starts.
    let mut file = fs::read(&state).unwrap();
    file.truncate(8);
    let far = 1u64 << 62;
    file.push(b'T');
    file.extend_from_slice(&far.to_be_bytes());
    fs::write(&state, file).unwrap();
    let restarted = Running::start(&args);
    let token = token_of_a_hold(restarted.port, "fenced");
    assert!(token > far, "{token} after {far}");
}

/// Tokens start above the clock (in microseconds) too: without a state
/// file, or with one lost, a restarted server still gives greater ones.
#[test]
fn tokens_grow_across_a_restart_without_a_state_file() {
    let before = token_of_a_hold(Running::start(&["--no-state"]).port, "fenced");
    let after = token_of_a_hold(Running::start(&["--no-state"]).port, "fenced");
    assert!(after > before, "{after} after {before}");
}
