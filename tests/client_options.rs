//! What the client commands share: the port from `NAMASTE_PORT`, `-q`,
//! how a lock is named (`--uid`, `--per-user`), `version` and `--help` on
//! every command, and the holder's command line in `status NAME`.

mod common;

use std::process::{Command, Output, Stdio};

use common::{Running, Scratch, namaste, stderr};
use namaste::Uid;
use namaste::client::Client;

/// `namaste ARGS` with `NAMASTE_PORT` set to `port`.
fn with_port_variable(port: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_namaste"))
        .env("NAMASTE_PORT", port)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn namaste_port_names_the_server_and_port_wins_over_it() {
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let dead = common::dead_port().to_string();
    let output = with_port_variable(&port, &["status"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = with_port_variable(&port, &["hold", "x", "--", "true"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = with_port_variable(&port, &["notify", "x", "hi"]);
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    // --port wins, for a server and for none.
    let output = with_port_variable(&dead, &["status", "--port", &port]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = with_port_variable(&port, &["status", "--port", &dead]);
    assert_eq!(output.status.code(), Some(68), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("namaste run --port {dead}")));
}

#[test]
fn an_invalid_namaste_port_is_a_usage_error_naming_it() {
    for value in ["x", "0", "70000", ""] {
        for args in [
            &["status"][..],
            &["notify", "x", "hi"],
            &["hold", "x", "--", "true"],
            &["run", "--no-state"],
        ] {
            if value == "0" && args[0] == "run" {
                // 0 is a free port for the server, which would serve.
                continue;
            }
            let output = with_port_variable(value, args);
            let text = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{value:?} {args:?}: {text}");
            assert!(text.contains("NAMASTE_PORT takes a port number"), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
    }
}

#[test]
fn quiet_hold_and_notify_say_nothing_of_a_conflict_or_no_holder() {
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let _holder = Client::new()
        .with_port(server.port)
        .book(Uid::from_name("busy"))
        .unwrap();
    for quiet in ["-q", "--quiet"] {
        let output = namaste(&["hold", "busy", quiet, "--port", &port, "--", "true"]);
        assert_eq!(output.status.code(), Some(75));
        assert_eq!(stderr(&output), "", "{quiet}");
        let output = namaste(&["notify", "nobody-holds", "hi", quiet, "--port", &port]);
        assert_eq!(output.status.code(), Some(75));
        assert_eq!(stderr(&output), "", "{quiet}");
    }
    // Without it, each says why; with it, errors are still said.
    let output = namaste(&["hold", "busy", "--port", &port, "--", "true"]);
    assert!(stderr(&output).contains("held by another live process"));
    let dead = common::dead_port().to_string();
    let output = namaste(&["hold", "busy", "-q", "--port", &dead, "--", "true"]);
    assert_eq!(output.status.code(), Some(68));
    assert!(stderr(&output).contains("no Namaste server answers"));
}

#[test]
fn uid_and_per_user_together_are_a_usage_error() {
    let uid = Uid::from_name("x").to_string();
    for args in [
        &["hold", "x", "--uid", &uid, "--per-user", "--", "true"][..],
        &["notify", "x", "hi", "--per-user", "--uid", &uid],
        &["status", "--uid", &uid, "--per-user"],
    ] {
        let output = namaste(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains("--uid and --per-user"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}

/// With --uid, NAME may be left out: the id alone names the lock.
#[test]
fn uid_alone_names_the_lock() {
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let uid = common::random();
    let hex = uid.to_string();
    let _holder = Client::new().with_port(server.port).book(uid).unwrap();
    let output = namaste(&["hold", "--uid", &hex, "--port", &port, "--", "true"]);
    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert!(stderr(&output).contains(&hex[..16]), "{}", stderr(&output));
    let output = namaste(&["notify", "--uid", &hex, "hi", "--port", &port]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("took the message"),
        "{}",
        stderr(&output)
    );
    let output = namaste(&["status", "--uid", &hex, "--port", &port]);
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("state=held"));
}

#[test]
fn version_lists_every_extension_of_the_protocol() {
    let output = namaste(&["version"]);
    let text = String::from_utf8(output.stdout).unwrap();
    for extension in [
        "STATUS",
        "NOTIFY",
        "WAIT",
        "QUERY",
        "LINE",
        "ATTACH",
        "limit",
        "fencing token",
    ] {
        assert!(text.contains(extension), "{extension}: {text}");
    }
    assert_eq!(namaste(&["version", "extra"]).status.code(), Some(2));
}

#[test]
fn help_on_version_and_help_prints_their_help() {
    for (args, starts) in [
        (&["version", "--help"][..], "namaste version: "),
        (&["--version", "-h"], "namaste version: "),
        (&["help", "version"], "namaste version: "),
        (&["help", "--help"], "namaste help: "),
        (&["help", "help"], "namaste help: "),
    ] {
        let output = namaste(args);
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.starts_with(starts), "{args:?}: {text}");
    }
}

/// `status NAME` shows the holder's arguments as a shell would take them
/// back: `sleep '10 20'` has one argument after sleep, not two.
#[test]
fn status_keeps_the_boundaries_of_the_holders_arguments() {
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let scratch = Scratch::new("status-quoting");
    let wait = scratch.wait_for_file("stop");
    let mut holder = common::quiet_hold(
        server.port,
        "quoted",
        &["--no-inherit"],
        &["sh", "-c", &wait, "two words", "it's"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    server.wait_for_bookings(1);
    let output = namaste(&["status", "quoted", "--port", &port]);
    let line = String::from_utf8(output.stdout).unwrap();
    let command = line.split_once(" command=").unwrap().1.trim_end();
    let hold = env!("CARGO_BIN_EXE_namaste");
    assert!(
        command.starts_with(&format!(
            "{hold} hold quoted --port {port} --no-inherit -- sh -c '"
        )),
        "{command}"
    );
    assert!(command.ends_with(r"' 'two words' 'it'\''s'"), "{command}");
    scratch.touch("stop");
    assert!(holder.wait().unwrap().success());
}
