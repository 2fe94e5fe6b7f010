//! Eight processes book one free id at the same instant, round after
//! round: exactly one is granted each time.
//!
//! This file is its own test harness: run with `contend PORT UID`, the
//! binary is one contender instead. With `NAMASTE_RACE_PORT` set, the
//! contenders race on the server at that port rather than on one of ours,
//! which is how the published server was measured.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Responder, TestServer, random, read_reply, secret};
use namaste::Uid;
use namaste::wire::Request;

const TEST: &str = "eight_processes_get_one_grant";
const CONTENDERS: usize = 8;
/// How long after the go the contenders book: ample for a process that is
/// already connected and only waits for one line.
const LEAD: Duration = Duration::from_millis(50);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("contend") {
        contend(&args[1..]);
        return;
    }
    let selection = Selection::parse(&args);
    if selection.list {
        if selection.selects(TEST) {
            println!("{TEST}: test");
        }
        return;
    }
    if !selection.selects(TEST) {
        println!("running 0 tests");
        return;
    }
    let rounds = std::env::var("NAMASTE_RACE_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(30);
    let port = std::env::var("NAMASTE_RACE_PORT")
        .ok()
        .map(|port| port.parse().expect("NAMASTE_RACE_PORT is a port"));
    eight_processes_get_one_grant(rounds, port);
    println!("test {TEST} ({rounds} rounds) ... ok");
}

/// The part of libtest's command line that says which tests to run, so
/// that `cargo test -- --list` or `cargo test some_other_test` does not
/// run this one.
struct Selection {
    list: bool,
    ignored_only: bool,
    exact: bool,
    filters: Vec<String>,
    skips: Vec<String>,
}

impl Selection {
    fn parse(args: &[String]) -> Selection {
        let mut selection = Selection {
            list: false,
            ignored_only: false,
            exact: false,
            filters: Vec::new(),
            skips: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => selection.list = true,
                "--ignored" => selection.ignored_only = true,
                "--exact" => selection.exact = true,
                "--skip" => selection.skips.extend(args.next().cloned()),
                // Options of libtest's that take a value in the next word.
                "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                    args.next();
                }
                option if option.starts_with('-') => {}
                filter => selection.filters.push(filter.to_string()),
            }
        }
        selection
    }

    fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

fn eight_processes_get_one_grant(rounds: usize, port: Option<u16>) {
    let ours = port.is_none().then(TestServer::start);
    let port = port.unwrap_or_else(|| ours.as_ref().unwrap().port());
    let mut failed_rounds = Vec::new();
    let (mut round, mut late_rounds) = (0, 0);
    while round < rounds {
        let replies = race(port);
        if replies.iter().any(|reply| reply == "late") {
            // Not a race: someone booked after the others. Run it again.
            late_rounds += 1;
            assert!(
                late_rounds <= rounds,
                "{late_rounds} rounds had a contender that missed the instant: \
                 the machine is too busy for this test"
            );
            continue;
        }
        let grants = replies.iter().filter(|reply| *reply == "granted").count();
        let all_answered = replies.iter().all(|r| r == "granted" || r == "denied");
        if grants != 1 || !all_answered {
            failed_rounds.push(format!("round {round}: {replies:?}"));
        }
        round += 1;
    }
    assert!(
        failed_rounds.is_empty(),
        "{} of {rounds} rounds did not grant exactly once:\n{}",
        failed_rounds.len(),
        failed_rounds.join("\n")
    );
}

/// One round: starts the contenders, waits until each is connected, tells
/// them all the instant to book, and answers what each got.
fn race(port: u16) -> Vec<String> {
    let me = std::env::current_exe().unwrap();
    let uid = random();
    let mut children: Vec<Child> = (0..CONTENDERS)
        .map(|_| {
            Command::new(&me)
                .args(["contend", &port.to_string(), &uid.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a contender")
        })
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|child| BufReader::new(child.stdout.take().unwrap()))
        .collect();
    for output in &mut outputs {
        assert_eq!(read_line(output), "ready");
    }
    let start = unix_nanos() + LEAD.as_nanos();
    for child in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "{start}").unwrap();
    }
    let replies = outputs.iter_mut().map(read_line).collect();
    // Everyone is answered: let the contenders and their responders go.
    for mut child in children {
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    }
    replies
}

fn read_line(output: &mut impl BufRead) -> String {
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// One contender: connects, says "ready", reads the instant to book at,
/// books then, prints the outcome ("late" instead of booking when the
/// instant has passed), and stays alive (its responder answering) until
/// its stdin closes.
fn contend(args: &[String]) {
    let port: u16 = args[0].parse().unwrap();
    let uid: Uid = args[1].parse().unwrap();
    let handshake = secret();
    let responder = Responder::honest(uid, handshake);
    let request = Request::Book {
        uid,
        handshake,
        port: responder.port,
    }
    .encode();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    say("ready");
    let mut stdin = std::io::stdin().lock();
    let start: u128 = read_line(&mut stdin).parse().unwrap();
    let Some(wait) = start.checked_sub(unix_nanos()) else {
        say("late");
        return;
    };
    std::thread::sleep(Duration::from_nanos(wait as u64));
    stream.write_all(&request).unwrap();
    let outcome = match read_reply(&mut stream) {
        Some(0) => "denied",
        Some(_) => "granted",
        None => "closed",
    };
    say(outcome);
    let _ = std::io::copy(&mut stdin, &mut std::io::sink());
}

fn say(line: &str) {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
