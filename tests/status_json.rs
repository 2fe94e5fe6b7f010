//! `status --json` and `status NAME --json` as processes, read by
//! Python's json module: the counters, a held lock whose name has a
//! quote, a newline and a byte that is no UTF-8, and a free one.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Running, Scratch, hold_until, user_name};

/// A name with a quote, a newline and a byte that is no UTF-8.
const AWKWARD: &[u8] = b"q\"uote\nnew\xff";

/// What Python makes of `document` with `expression` (of `d`, the
/// document), printed.
fn python(document: &[u8], expression: &str) -> String {
    let script = format!("import json, sys\nd = json.load(sys.stdin)\nprint(({expression}))");
    let mut python = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    python.stdin.take().unwrap().write_all(document).unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// `namaste status ARGS --json --port PORT`, which must succeed: its output.
fn status_json(port: u16, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_namaste"))
        .arg("status")
        .args(args)
        .args(["--json", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

#[test]
fn status_json_parses_for_the_counters_a_held_lock_and_a_free_one() {
    use std::os::unix::ffi::OsStrExt;
    let server = Running::start(&[]);
    let scratch = Scratch::new("status-json");
    let mut holder = hold_until(server.port, AWKWARD, &[], &scratch, "end");
    server.wait_for_bookings(1);

    let counters = status_json(server.port, &[]);
    assert_eq!(
        python(
            &counters,
            "d['bookings'], d['names'], d['users'][0]['user'], d['users'][0]['bookings']"
        ),
        format!("(1, 1, '{}', 1)", user_name())
    );

    let held = status_json(server.port, &[std::ffi::OsStr::from_bytes(AWKWARD)]);
    let me = holder.id().to_string();
    assert_eq!(
        python(
            &held,
            "d['state'], d['name'], bytes.fromhex(d['name_hex']), d['waiters']"
        ),
        r#"('held', 'q"uote\nnew�', b'q"uote\nnew\xff', 0)"#
    );
    assert_eq!(
        python(
            &held,
            "d['user'], str(d['pids'][0]), d['since'][-1], d['command'][1]"
        ),
        format!("('{}', '{me}', 'Z', 'hold')", user_name())
    );

    let free = status_json(server.port, &[std::ffi::OsStr::new("free")]);
    assert_eq!(
        python(&free, "d['state'], d['name'], d['waiters'], 'since' in d"),
        "('free', 'free', 0, False)"
    );

    scratch.touch("end");
    assert!(holder.wait().unwrap().success());
}
