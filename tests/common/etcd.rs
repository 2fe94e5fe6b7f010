//! A real etcd (Debian's `etcd-server`) for the tests of `hold --etcd`: on
//! free loopback ports, with a data directory of its own, killed when
//! dropped. Without `etcd` on PATH, the tests say so and skip.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
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
