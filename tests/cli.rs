//! The `namaste` binary: its command line, its messages and exit statuses,
//! and a server it starts.

mod common;

use std::net::TcpListener;

use common::{Running, namaste, stderr};
use namaste06::client::Client;

fn help_of(args: &[&str]) -> String {
    let output = namaste(args);
    assert!(output.status.success(), "{args:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_names_every_command_and_option() {
    for args in [&["help"][..], &["--help"], &["-h"]] {
        let help = help_of(args);
        for command in ["run", "hold", "notify", "status", "version", "help"] {
            assert!(
                help.contains(&format!("namaste {command}")),
                "help lacks {command}"
            );
        }
    }
    let commands: [(&str, &[&str]); 4] = [
        (
            "run",
            &[
                "--port",
                "--bind",
                "--rw-timeout",
                "--max-connections",
                "--max-bookings",
                "--max-waiting",
                "--max-waiters",
                "--max-waiters-per-id",
                "--probe-interval",
                "--log-level",
            ],
        ),
        ("hold", &["--uid", "--port", "--wait", "--no-inherit", "75"]),
        ("notify", &["--uid", "--port", "75"]),
        ("status", &["--port"]),
    ];
    for (command, options) in commands {
        let help = help_of(&[command, "--help"]);
        assert_eq!(help, help_of(&["help", command]));
        for option in options {
            assert!(help.contains(option), "{command} help lacks {option}");
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
        (&["run", "--frob"], "run has no option \"--frob\""),
        (&["hold", "name"], "hold needs a command after --"),
        (&["hold", "--", "true"], "hold needs a NAME"),
        (&["hold", "name", "true"], "put the command after --"),
        (
            &["hold", "name", "--uid", "abc", "--", "true"],
            "an id is 128 hex digits",
        ),
        (
            &["hold", "name", "--wait", "soon", "--", "true"],
            "--wait \"soon\" is not valid",
        ),
        (&["notify", "name"], "notify needs a NAME and a MESSAGE"),
        (&["status", "--port", "x"], "--port \"x\" is not valid"),
        (&["help", "frob"], "no such command"),
        (&["run", "--port"], "--port needs a value"),
        (
            &["run", "--port", "70000"],
            "--port \"70000\" is not valid: number too large",
        ),
        (&["run", "--rw-timeout=0"], "positive number of seconds"),
        (&["run", "--rw-timeout", "-1"], "positive number of seconds"),
        (&["run", "--rw-timeout", "1e19"], "at most 3600"),
        (&["run", "--rw-timeout", "5e18"], "at most 3600"),
        (&["run", "--probe-interval", "1e19"], "at most 3600"),
        (&["hold", "x", "--wait", "-1", "--", "true"], "0 or more"),
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
fn the_idle_server_runs_one_thread_in_under_2_mib() {
    let server = Running::start(&[]);
    let pid = server.child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    assert_eq!(field("Threads:"), "1");
    let resident_kib: u64 = field("VmRSS:").trim_end_matches(" kB").parse().unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        resident_kib < 2048,
        "{resident_kib} KiB resident; shared C library mapped: {} \
         (.cargo/static-daemon links it statically where libc.a is installed)",
        maps.contains("/libc.so")
    );
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
