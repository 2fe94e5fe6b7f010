//! The published namaste 0.6.0 as a real peer: its client against our
//! server, and our client against its server.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::{TestServer, random};
use namaste::DEFAULT_RW_TIMEOUT;
use namaste::client::Error;
use namaste06::client::Client;

/// The sequence of the published crate's own server test.
#[test]
fn the_published_clients_own_sequence() -> std::io::Result<()> {
    let server = TestServer::start();
    let port = Some(server.port());
    let (uid, hs) = (*random().as_bytes(), *random().as_bytes());
    for (uid, hs) in [(uid, hs), (hs, uid)] {
        let client = Client::book(uid, hs, port, DEFAULT_RW_TIMEOUT)?.expect("granted");
        assert!(Client::book(uid, hs, port, DEFAULT_RW_TIMEOUT)?.is_none());
        assert!(client.check_out()?);
        assert!(
            Client::book(uid, hs, port, DEFAULT_RW_TIMEOUT)?
                .expect("granted again")
                .check_out()?
        );
        assert!(!client.check_out()?);
    }
    Ok(())
}

/// Published clients contending for one id: one grant per round, where the
/// published server grants two or more in most rounds.
#[test]
fn published_clients_contending_get_one_grant() {
    const CONTENDERS: usize = 8;
    let server = Arc::new(TestServer::start());
    for round in 0..20 {
        let uid = *random().as_bytes();
        let barrier = Arc::new(Barrier::new(CONTENDERS));
        let grants: usize = (0..CONTENDERS)
            .map(|_| {
                let (server, barrier) = (server.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let booking = Client::book(
                        uid,
                        *random().as_bytes(),
                        Some(server.port()),
                        DEFAULT_RW_TIMEOUT,
                    )
                    .expect("server answers");
                    barrier.wait();
                    usize::from(booking.is_some())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum();
        assert_eq!(grants, 1, "round {round}");
    }
}

/// The published 0.6.0 server, installed once under target/tmp and started
/// on a free port; killed when dropped.
struct PublishedServer {
    child: Child,
    port: u16,
}

impl PublishedServer {
    fn start() -> PublishedServer {
        let binary = published_server_binary();
        let port = common::dead_port();
        let child = Command::new(binary)
            .args(["run", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the published server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "it never listened");
            thread::sleep(Duration::from_millis(20));
        }
        PublishedServer { child, port }
    }
}

impl Drop for PublishedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `.ci/run` installs the published server; installed here if absent,
/// so that `cargo test` alone also runs these tests.
fn published_server_binary() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let root = tmp.join("namaste-0.6.0");
            let binary = root.join("bin/namaste");
            if !binary.exists() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                // A build directory of its own: cargo install otherwise
                // builds in CARGO_TARGET_DIR when it is set, beside (and
                // over) our own release build.
                let status = Command::new(cargo)
                    .args([
                        "install",
                        "namaste",
                        "--version=0.6.0",
                        "--features=bin",
                        "--root",
                    ])
                    .arg(&root)
                    .arg("--target-dir")
                    .arg(tmp.join("namaste-0.6.0-build"))
                    .status()
                    .expect("run cargo install");
                assert!(status.success(), "installing the published server failed");
            }
            binary
        })
        .clone()
}

#[test]
fn our_client_with_the_published_server() {
    let server = PublishedServer::start();
    let client = namaste::client::Client::new().with_port(server.port);
    let uid = random();
    let booking = client.book(uid).expect("granted");
    assert_eq!(
        booking.token(),
        None,
        "a token from a server that gives none"
    );
    assert!(matches!(client.book(uid), Err(Error::Held)));
    assert!(booking.check_out().unwrap());
    let again = client.book(uid).expect("granted again");
    drop(again);
    let last = client.book(uid).expect("the guard checked out");
    assert!(last.check_out().unwrap());
    // Our extensions are unknown there: closed without a reply.
    assert!(matches!(client.status(), Err(Error::Refused)));
    assert!(matches!(client.notify(uid, b"hi"), Err(Error::Refused)));
}

/// `hold` against the published server: granted, refused while held, and
/// handing its lock down to the command changes nothing there.
#[test]
fn hold_with_the_published_server() {
    let server = PublishedServer::start();
    let port = server.port.to_string();
    let hold = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(["hold", name, "--port", &port, "--", "true"])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(hold("published"), Some(0));
    // No token there: the command's NAMASTE_TOKEN is unset, even one it
    // would have inherited.
    let token = Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(["hold", "published", "--port", &port, "--"])
        .args(["sh", "-c", "echo \"${NAMASTE_TOKEN-unset}\""])
        .env("NAMASTE_TOKEN", "7")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&token.stdout), "unset\n");
    let holder = namaste::client::Client::new()
        .with_port(server.port)
        .book(namaste::Uid::from_name("published"))
        .expect("granted");
    assert_eq!(hold("published"), Some(75));
    assert!(holder.check_out().unwrap());
    assert_eq!(hold("published"), Some(0));
}

/// The published server closes a WAIT unanswered; our client then polls as
/// before, and still gets the id once its holder leaves. The waiter talks
/// through a relay that counts BOOKs, so the holder leaves only once the
/// waiter is seen polling.
#[test]
fn waiting_against_the_published_server_falls_back_to_polling() {
    let server = PublishedServer::start();
    let holder = namaste::client::Client::new().with_port(server.port);
    let relay = CountingRelay::start(server.port);
    let client = namaste::client::Client::new().with_port(relay.port);
    let uid = random();
    let holder = holder.book(uid).expect("granted");
    // It closed the LINE too: the booking lives under the call-back rules.
    assert_eq!(holder.line_state(), namaste::client::LineState::CallBack);
    let waiter = thread::spawn(move || client.book_wait(uid, Duration::from_secs(30)));
    let started = Instant::now();
    // Two BOOKs: the first was answered (no) before the second was sent.
    while relay.books() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the waiter never polled with BOOK"
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert!(!waiter.is_finished(), "granted while the holder held");
    assert!(holder.check_out().unwrap());
    let booking = waiter.join().unwrap();
    assert!(
        booking
            .expect("granted after the fallback")
            .check_out()
            .unwrap()
    );
    let client = namaste::client::Client::new().with_port(server.port);
    let once = client.book_wait(uid, Duration::ZERO);
    assert!(once.is_ok(), "free: one try is enough: {once:?}");
}

/// A relay on a port of its own to the server on `to`: counts the BOOKs
/// (command byte 0x00) that pass, and copies bytes both ways.
struct CountingRelay {
    port: u16,
    books: Arc<AtomicUsize>,
}

impl CountingRelay {
    fn start(to: u16) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let books = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&books);
        // Detached: it ends with the test process; each call is short.
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let mut command = [0; 1];
                if client.read_exact(&mut command).is_err() || server.write_all(&command).is_err() {
                    continue;
                }
                if command[0] == 0x00 {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let (mut from_client, mut to_client) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || {
                    let _ = io::copy(&mut from_client, &mut server);
                    let _ = server.shutdown(Shutdown::Write);
                });
                thread::spawn(move || {
                    let _ = io::copy(&mut to_client, &mut client);
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
        });
        CountingRelay { port, books }
    }

    /// The BOOKs relayed so far.
    fn books(&self) -> usize {
        self.books.load(Ordering::SeqCst)
    }
}
