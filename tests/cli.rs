//! The `namaste` binary: its command line, its messages and exit statuses,
//! and a server it starts.

mod common;

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use common::{Running, dead_port, namaste, stderr};
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
        for command in [
            "run", "hold", "notify", "status", "check", "version", "help",
        ] {
            assert!(
                help.contains(&format!("namaste {command}")),
                "help lacks {command}"
            );
        }
    }
    let commands: [(&str, &[&str]); 5] = [
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
                "--shares",
                "--probe-interval",
                "--sweep-interval",
                "--sweep-age",
                "--state",
                "--no-state",
                "--log-level",
            ],
        ),
        (
            "hold",
            &[
                "--uid",
                "--per-user",
                "--port",
                "--wait",
                "--no-inherit",
                "-E, --conflict-exit-code",
                "75",
                "126, 127",
                "Exit status",
            ],
        ),
        ("notify", &["--uid", "--per-user", "--port", "75"]),
        ("status", &["--port"]),
        ("check", &["--uid", "--per-user", "--port", "-q", "68"]),
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
        (&["frobnicate"], "unknown command \"frobnicate\""),
        (&["run", "--frob"], "run has no option \"--frob\""),
        (&["hold", "name"], "hold needs a command after --"),
        (&["hold", "--", "true"], "hold needs a NAME"),
        (&["hold", "", "--", "true"], "a NAME that is not empty"),
        (&["notify", "", "hi"], "a NAME that is not empty"),
        (&["hold", "name", "true"], "put the command after --"),
        (
            &["hold", "name", "--uid", "abc", "--", "true"],
            "an id is 128 hex digits",
        ),
        (
            &["hold", "name", "--wait", "soon", "--", "true"],
            "--wait takes a number of seconds, 0 or more, not \"soon\"",
        ),
        (&["hold", "x", "--wait", "-1", "--", "true"], "0 or more"),
        (&["hold", "x", "-E", "256", "--", "true"], "from 0 to 255"),
        (
            &["hold", "x", "--port", "0", "--", "true"],
            "0 names no server",
        ),
        (
            &["notify", "name"],
            "notify needs a NAME and a MESSAGE, not 1 word",
        ),
        (&["notify", "a", "b", "c"], "not 3 words"),
        (
            &["status", "--port", "x"],
            "--port takes a port number from 1 to 65535, not \"x\"",
        ),
        (&["status", "--port", "0"], "0 names no server"),
        (&["help", "frob"], "no such command"),
        (&["run", "--port"], "--port needs a value"),
        (&["run", "--port", "70000"], "not \"70000\""),
        (&["run", "--rw-timeout=0"], "more than 0"),
        (&["run", "--rw-timeout", "-1"], "more than 0"),
        (&["run", "--rw-timeout", "1e19"], "at most 3600"),
        (&["run", "--rw-timeout", "5e18"], "at most 3600"),
        (&["run", "--probe-interval", "1e19"], "at most 3600"),
        (&["run", "--max-connections", "0"], "at least 1"),
        (
            &["run", "--shares", "0"],
            "--shares takes a whole number, at least 1",
        ),
        (
            &["run", "--sweep-interval", "0"],
            "more than 0 and at most 3600",
        ),
        (&["run", "--sweep-interval", "3601"], "at most 3600"),
        (&["run", "--sweep-age", "-1"], "0 or more and at most 3600"),
        (
            &["run", "--sweep-age", "1e19"],
            "0 or more and at most 3600",
        ),
        (
            &["run", "--max-bookings", "many"],
            "a whole number, at least 1, not \"many\"",
        ),
        (
            &["run", "--log-level", "loud"],
            "one of error, warn, info, debug, trace",
        ),
        (
            &["run", "--bind", "localhost"],
            "--bind takes an IP address such as 127.0.0.1 or ::1, not \"localhost\"",
        ),
    ] {
        let output = namaste(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains(says), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
        for rust_says in ["invalid digit", "invalid float", "ParseIntError", "unwrap"] {
            assert!(!text.contains(rust_says), "{args:?}: {text}");
        }
    }
}

/// Bytes that are not UTF-8, in every place an argument can be: a usage
/// error with the bytes shown escaped where they make no sense, passed on
/// as they are after `--`, and hashed as they are in a NAME.
#[test]
fn arguments_that_are_not_utf8_never_crash_it() {
    let bad = OsStr::from_bytes(b"\xff\xfe").to_os_string();
    let with = |args: &[&OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_namaste"))
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        vec![bad.as_os_str()],
        vec![OsStr::new("help"), &bad],
        vec![OsStr::new("run"), &bad],
        vec![OsStr::new("run"), OsStr::new("--port"), &bad],
        vec![OsStr::new("run"), OsStr::new("--log-level"), &bad],
        vec![OsStr::new("status"), OsStr::new("--port"), &bad],
        vec![
            OsStr::new("hold"),
            OsStr::new("x"),
            OsStr::new("--wait"),
            &bad,
            OsStr::new("--"),
            OsStr::new("true"),
        ],
        vec![OsStr::new("hold"), OsStr::new("x"), &bad],
    ] {
        let output = with(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains("\\xff\\xfe"), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
    }
    // Without a server a NAME or MESSAGE of bytes gets as far as asking.
    let port = dead_port().to_string();
    for args in [
        vec![
            OsStr::new("hold"),
            &bad,
            OsStr::new("--port"),
            OsStr::new(&port),
            OsStr::new("--"),
            OsStr::new("true"),
        ],
        vec![
            OsStr::new("notify"),
            &bad,
            &bad,
            OsStr::new("--port"),
            OsStr::new(&port),
        ],
    ] {
        let output = with(&args);
        assert_eq!(output.status.code(), Some(68), "{args:?}");
        assert!(
            stderr(&output).contains("no Namaste server answers"),
            "{args:?}"
        );
    }
}

/// A 10,000-character NAME is not echoed whole: not in `notify`'s answer
/// from a live server, nor in a usage error.
#[test]
fn long_names_are_shortened_in_messages() {
    let name = "n".repeat(10_000);
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let output = namaste(&["notify", &name, "hi", "--port", &port]);
    assert_eq!(output.status.code(), Some(75), "nobody holds it");
    let text = stderr(&output);
    assert!(text.contains("no live process holds \"nnn"), "{text}");
    assert!(text.contains("(10000 bytes in all)"), "{text}");
    assert!(text.len() < 400, "{} bytes: {text}", text.len());
    let output = namaste(&["hold", "x", &name, "--", "true"]);
    let text = stderr(&output);
    assert!(text.contains("(10000 bytes in all)"), "{text}");
    assert!(text.len() < 400, "{} bytes", text.len());
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

/// What the idle server takes of its own: its heap, stacks and data
/// (anonymous memory), not the pages of its code, which a debug build
/// spreads over more of them; the load test reads the release build's whole
/// resident size.
#[test]
fn the_idle_server_runs_one_thread_and_takes_under_256_kib_of_its_own() {
    let server = Running::start(&[]);
    let pid = server.child.id();
    let read = |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    let field = |text: &str, name: &str| -> String {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}"))
    };
    assert_eq!(field(&read("status"), "Threads:"), "1");
    let anonymous_kib: u64 = field(&read("smaps_rollup"), "Anonymous:")
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    assert!(
        anonymous_kib < 256,
        "{anonymous_kib} KiB of its own; shared C library mapped: {} \
         (.cargo/static-daemon links it statically where libc.a is installed)",
        read("maps").contains("/libc.so")
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

/// scripts/load-test checks its options before it builds anything: one
/// line and status 2, never a traceback or a shell's complaint.
#[test]
fn load_test_options_are_checked() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/load-test");
    for (args, says) in [
        (&["--modes", "bogus"][..], "no mode is named \"bogus\""),
        (&["--seconds", "abc"], "--seconds takes a number of seconds"),
        (&["--seconds"], "--seconds needs a value"),
        (&["--workers", "0"], "--workers takes a whole number"),
        (&["--port", "70000"], "--port takes a port number"),
        (&["--frob"], "unknown option --frob"),
    ] {
        let output = Command::new(script).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains(says), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
    }
    let help = Command::new(script).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for word in [
        "unique",
        "lines",
        "contended",
        "hostile",
        "race",
        "memory",
        "handover",
        "Columns",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    assert!(!help.contains("set -euo"), "{help}");
}

/// scripts/load-report.py, which prints load-test's report: rows of load
/// make a table under its header; none (`--modes handover` alone) make no
/// table at all, not a header over nothing.
#[test]
fn load_test_prints_a_table_only_over_rows() {
    let report = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/load-report.py");
    let scratch = common::Scratch::new("load-report");
    let results = scratch.path("results");
    let handover = scratch.path("handover");
    let print = |results_text: &str, handover_text: &str| {
        std::fs::write(&results, results_text).unwrap();
        std::fs::write(&handover, handover_text).unwrap();
        let output = Command::new(report)
            .args([&results, &handover])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let only_handover = print("", "row=single tool=ours runs=4 p50=3\n");
    assert!(!only_handover.contains("cycles/s"), "{only_handover}");
    assert!(
        only_handover.contains("Waiting for a lock"),
        "{only_handover}"
    );
    let unique = "server=ours mode=idle rss_kib=300\n\
        server=ours mode=unique rate=100 p50_us=1 p90_us=2 p99_us=3 max_us=4 errors=0 \
        wrong=0 violations=0 cpu_us_per_cycle=5 rss_end_kib=6 rss_start_kib=1 rss_settled_kib=2\n";
    let table = print(unique, "");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("cycles/s"), "{table}");
    assert!(lines[1].trim_start().starts_with("unique"), "{table}");
    assert!(!table.contains("Waiting for a lock"), "{table}");
}
