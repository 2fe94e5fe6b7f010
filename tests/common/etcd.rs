//! A real etcd (Debian's `etcd-server`) for the tests of `hold --etcd`: on
//! free loopback ports, with a data directory of its own, killed when
//! dropped. Without `etcd` on PATH, the tests say so and skip.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Scratch, skip};

/// A running etcd.
pub struct Etcd {
    child: Child,
    client_port: u16,
    peer_port: u16,
    data: Scratch,
}

impl Etcd {
    /// Starts one, or answers None (and says why) when etcd is missing.
    pub fn start(test: &str) -> Option<Etcd> {
        if Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            skip("no etcd on PATH (Debian: apt-get install etcd-server)");
            return None;
        }
        let mut etcd = Etcd {
            child: Command::new("true").spawn().unwrap(),
            client_port: free_port(),
            peer_port: free_port(),
            data: Scratch::new(test),
        };
        etcd.restart();
        Some(etcd)
    }

    /// `etcdctl` on this etcd, or None (and why) when it is missing.
    pub fn etcdctl(&self) -> Option<Command> {
        let mut etcdctl = Command::new("etcdctl");
        etcdctl.env("ETCDCTL_API", "3");
        if etcdctl
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            skip("no etcdctl on PATH (Debian: apt-get install etcd-client)");
            return None;
        }
        let mut etcdctl = Command::new("etcdctl");
        etcdctl
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url()]);
        Some(etcdctl)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills etcd at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts etcd again on the same ports and data, and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.kill();
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        self.child = Command::new("etcd")
            .arg("--data-dir")
            .arg(self.data.path("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.status("probe").status.success() {
            assert!(Instant::now() < deadline, "etcd never answered");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `namaste status NAME --etcd` of this etcd.
    pub fn status(&self, name: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(["status", name, "--etcd", &self.url()])
            .output()
            .expect("run namaste status")
    }

    /// What `status NAME` prints.
    pub fn status_line(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.status(name).stdout).into_owned()
    }

    /// `namaste hold NAME --etcd URL ARGS`.
    pub fn hold(&self, name: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
        command
            .args(["hold", name, "--etcd", &self.url()])
            .args(args);
        command
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A command that says it started (file `started`), then runs until the
/// file `release` exists.
pub fn until_released(scratch: &Scratch) -> Vec<String> {
    let script = format!(
        "touch {}; {}",
        scratch.path("started").display(),
        scratch.wait_for_file("release")
    );
    vec!["--".into(), "sh".into(), "-c".into(), script]
}

/// Starts `command` and waits until its command has started.
pub fn started(mut command: Command, scratch: &Scratch) -> Child {
    let child = command.stderr(Stdio::piped()).spawn().expect("start hold");
    wait_for(Duration::from_secs(20), "the command to start", || {
        scratch.path("started").exists()
    });
    child
}

/// Waits up to `limit` for `done`; fails naming `what` if it never is.
pub fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// The words as `&str`, as `Command::args` takes them.
pub fn args(words: &[String]) -> Vec<&str> {
    words.iter().map(String::as_str).collect()
}

/// The direct children of process `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// Whether `status NAME` says the lock is held.
pub fn held(etcd: &Etcd, name: &str) -> bool {
    etcd.status_line(name).starts_with("state=held")
}

/// `hold --ttl 3 fragile` of a command that notes a SIGTERM (file
/// `terminated`) and exits 0.
pub fn fragile(etcd: &Etcd, scratch: &Scratch) -> Child {
    let script = format!(
        "trap 'touch {}; exit 0' TERM; touch {}; {}",
        scratch.path("terminated").display(),
        scratch.path("started").display(),
        scratch.wait_for_file("release")
    );
    started(
        etcd.hold("fragile", &["--ttl", "3", "--", "sh", "-c", &script]),
        scratch,
    )
}

/// The command of `fragile` got SIGTERM, and `hold` said why and exited 1.
pub fn assert_lost(hold: Child, scratch: &Scratch, why: &str) {
    let output = hold.wait_with_output().unwrap();
    assert!(
        scratch.path("terminated").exists(),
        "the command was not signalled"
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lost \"fragile\"") && stderr.contains(why),
        "{stderr}"
    );
}

/// The keeper of the running `hold` with pid `hold`: its child that is a
/// fork of it (the same command line).
pub fn keeper_of(hold: u32) -> u32 {
    let own_line = fs::read(format!("/proc/{hold}/cmdline")).unwrap();
    children(hold)
        .into_iter()
        .find(|child| fs::read(format!("/proc/{child}/cmdline")).ok() == Some(own_line.clone()))
        .expect("the keeper, a fork of hold")
}

/// A member in front of etcd, on a loopback port of its own, that can be
/// frozen as a member stopped with SIGSTOP is: while frozen, the kernel
/// still takes each connection, and nothing ever answers.
pub struct Member {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl Member {
    /// A member passing each connection on to the client port of `etcd`,
    /// for as long as the test runs.
    pub fn before(etcd: &Etcd) -> Member {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a member");
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let target = etcd.client_port;
        let freeze = Arc::clone(&frozen);
        thread::spawn(move || {
            let mut unanswered = Vec::new();
            for client in listener.incoming().flatten() {
                if freeze.load(Ordering::SeqCst) {
                    unanswered.push(client);
                    continue;
                }
                if let Ok(server) = TcpStream::connect(("127.0.0.1", target)) {
                    pass_both_ways(client, server, &freeze);
                }
            }
        });
        Member { port, frozen }
    }

    /// The member's client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on, connections are taken and never answered.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// Copies each way between `a` and `b` until each side has ended, or
/// until `frozen`: then nothing more is passed on, and the connections
/// stay open, as a stopped member's do.
fn pass_both_ways(a: TcpStream, b: TcpStream, frozen: &Arc<AtomicBool>) {
    for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
        let frozen = Arc::clone(frozen);
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(read @ 1..) = from.read(&mut buffer) {
                while frozen.load(Ordering::SeqCst) {
                    thread::park();
                }
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }
}

/// An endpoint that answers each request with a status line and then one
/// header line every 100 ms, without end, for `lasting`: each read comes
/// within any timeout, and the reply never does. Answers its URL.
pub fn dripping_endpoint(lasting: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a dripping endpoint");
    let port = listener.local_addr().unwrap().port();
    let end = Instant::now() + lasting;
    thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = client.write_all(b"HTTP/1.0 200 OK\r\n");
                while Instant::now() < end && client.write_all(b"X-Drip: 1\r\n").is_ok() {
                    thread::sleep(Duration::from_millis(100));
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}
