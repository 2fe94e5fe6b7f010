//! Eight processes book one free id at the same instant, round after
//! round: exactly one is granted each time.
//!
//! This file is its own test harness: run with `contend PORT UID START`,
//! the binary is one contender instead. With `NAMASTE_RACE_PORT` set, the
//! contenders race on the server at that port rather than on one of ours,
//! which is how the published server was measured.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Responder, TestServer, random, read_reply};
use namaste::Uid;
use namaste::wire::Request;

const CONTENDERS: usize = 8;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("contend") {
        contend(&args[1..]);
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
    println!("test eight_processes_get_one_grant ({rounds} rounds) ... ok");
}

fn eight_processes_get_one_grant(rounds: usize, port: Option<u16>) {
    let ours = port.is_none().then(TestServer::start);
    let port = port.unwrap_or_else(|| ours.as_ref().unwrap().port());
    let me = std::env::current_exe().unwrap();
    let mut failed_rounds = Vec::new();
    for round in 0..rounds {
        let uid = random();
        // Far enough ahead for every process to start, connect and wait.
        let start = unix_nanos() + Duration::from_millis(200).as_nanos();
        let mut children: Vec<_> = (0..CONTENDERS)
            .map(|_| {
                Command::new(&me)
                    .args(["contend", &port.to_string(), &uid.to_string()])
                    .arg(start.to_string())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("start a contender")
            })
            .collect();
        let replies: Vec<String> = children
            .iter_mut()
            .map(|child| {
                let mut line = String::new();
                BufReader::new(child.stdout.as_mut().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                line.trim().to_string()
            })
            .collect();
        // Everyone is answered: let the contenders and their responders go.
        for mut child in children {
            drop(child.stdin.take());
            assert!(child.wait().unwrap().success());
        }
        let grants = replies.iter().filter(|reply| *reply == "granted").count();
        let all_answered = replies.iter().all(|r| r == "granted" || r == "denied");
        if grants != 1 || !all_answered {
            failed_rounds.push(format!("round {round}: {replies:?}"));
        }
    }
    assert!(
        failed_rounds.is_empty(),
        "{} of {rounds} rounds did not grant exactly once:\n{}",
        failed_rounds.len(),
        failed_rounds.join("\n")
    );
}

/// One contender: books at the agreed instant, prints the outcome, and
/// stays alive (its responder answering) until its stdin closes.
fn contend(args: &[String]) {
    let port: u16 = args[0].parse().unwrap();
    let uid: Uid = args[1].parse().unwrap();
    let start: u128 = args[2].parse().unwrap();
    let handshake = random();
    let responder = Responder::honest(uid, handshake);
    let request = Request::Book {
        uid,
        handshake,
        port: responder.port,
    }
    .encode();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_nanos(
        start.saturating_sub(unix_nanos()) as u64
    ));
    stream.write_all(&request).unwrap();
    let outcome = match read_reply(&mut stream) {
        Some(0) => "denied",
        Some(_) => "granted",
        None => "closed",
    };
    println!("{outcome}");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
