//! The `namaste` binary: its command line, its messages and exit statuses,
//! and a server it starts.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, ChildStderr, Command, Output, Stdio};

use namaste06::client::Client;

fn namaste(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(args)
        .output()
        .expect("run namaste")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `namaste run` process, killed when dropped.
struct Running {
    child: Child,
    port: u16,
    log: BufReader<ChildStderr>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(["run", "--port", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start namaste run");
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        log.read_line(&mut line).unwrap();
        let port = line
            .split("listening on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no address in the first log line: {line:?}"));
        Running { child, port, log }
    }

    /// The next log line that contains `text`; fails at the end of the log.
    fn log_line_with(&mut self, text: &str) -> String {
        loop {
            let mut line = String::new();
            let read = self.log.read_line(&mut line).unwrap();
            assert!(read > 0, "the log ended without {text:?}");
            if line.contains(text) {
                return line;
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn help_names_every_option_and_command() {
    for args in [&["help"][..], &["--help"], &["-h"], &["run", "--help"]] {
        let output = namaste(args);
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        for word in [
            "namaste run",
            "namaste version",
            "--port",
            "--bind",
            "--rw-timeout",
            "--max-connections",
            "--max-bookings",
            "--max-waiting",
            "--log-level",
        ] {
            assert!(help.contains(word), "help lacks {word}");
        }
    }
}

#[test]
fn version_prints_one_line() {
    let output = namaste(&["version"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with(&format!("namaste {}", env!("CARGO_PKG_VERSION"))));
    assert_eq!(text.lines().count(), 1);
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    for (args, says) in [
        (&[][..], "no command"),
        (&["frobnicate"], "unknown command"),
        (&["run", "--frob"], "unknown option"),
        (&["run", "--port"], "--port needs a value"),
        (&["run", "--port", "70000"], "--port \"70000\" is not valid"),
        (&["run", "--rw-timeout=0"], "positive number of seconds"),
        (&["run", "--rw-timeout", "-1"], "positive number of seconds"),
        (&["run", "--max-connections", "0"], "at least 1"),
        (&["run", "--log-level", "loud"], "not one of"),
        (
            &["run", "--bind", "localhost"],
            "--bind \"localhost\" is not valid",
        ),
    ] {
        let output = namaste(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains(says), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
    }
}

#[test]
fn a_non_loopback_address_is_refused_in_one_line() {
    for ip in ["0.0.0.0", "192.168.1.1", "::"] {
        let output = namaste(&["run", "--bind", ip, "--port", "0"]);
        assert_eq!(output.status.code(), Some(1), "{ip}");
        let text = stderr(&output);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("is not a loopback address"), "{text}");
    }
}

#[test]
fn a_taken_port_is_one_clear_line_and_status_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = namaste(&["run", "--port", &port]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "another server is already listening on 127.0.0.1:{port}?"
        )),
        "{text}"
    );
}

#[test]
fn the_binary_serves_the_published_client() {
    let server = Running::start(&[]);
    let uid = [1; 64];
    let booking = Client::book(uid, [2; 64], Some(server.port), namaste::DEFAULT_RW_TIMEOUT)
        .unwrap()
        .expect("granted");
    assert!(
        Client::book(uid, [3; 64], Some(server.port), namaste::DEFAULT_RW_TIMEOUT)
            .unwrap()
            .is_none()
    );
    assert!(booking.check_out().unwrap());
}

#[test]
fn the_idle_server_runs_one_thread() {
    let server = Running::start(&[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let threads = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .map(str::trim);
    assert_eq!(threads, Some("1"));
}

#[test]
fn debug_logs_say_why_a_connection_was_closed() {
    let mut server = Running::start(&["--log-level", "debug"]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::io::Write::write_all(&mut stream, &[0x7f]).unwrap();
    let line = server.log_line_with("without a reply");
    assert!(line.contains("[DEBUG]"), "{line}");
    assert!(line.contains("unknown command byte 0x7f"), "{line}");
}
