//! The state file against a hostile directory, planted and odd files and
//! a long history (a full disk: `tests/full_disk.rs`).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{Running, Scratch, random, secret, stderr};
use namaste::client::Client;

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

const NOBODY: u32 = 65534;

/// `sh -c LINE` run as `nobody`.
fn as_nobody(line: &str) -> Command {
    let mut command = Command::new("su");
    command.args(["nobody", "-s", "/bin/sh", "-c", line]);
    command
}

fn run_as_nobody(line: &str) {
    let status = as_nobody(line).status().unwrap();
    assert!(status.success(), "as nobody: {line}");
}

/// Starts `namaste run` on the state file `state`, which must refuse to
/// start (within 10 s: a hang fails too); answers its one line.
fn refused_start(state: &Path) -> String {
    let output = Command::new("timeout")
        .args(["10", env!("CARGO_BIN_EXE_namaste"), "run", "--port", "0"])
        .arg("--state")
        .arg(state)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{}: {text}", state.display());
    assert_eq!(text.lines().count(), 1, "{text}");
    text
}

/// A state file recording one booking, as a server writes it.
fn a_state_file_with_a_booking() -> Vec<u8> {
    let mut bytes = b"NAMASTE\x01H".to_vec();
    bytes.extend_from_slice(&[0x11; 64]);
    bytes.extend_from_slice(&[0x22; 64]);
    bytes.extend_from_slice(&[127, 0, 0, 1, 0x10, 0x00]);
    bytes.extend_from_slice(&1_800_000_000u64.to_be_bytes());
    bytes
}

/// Another user who can write to the state file's directory (sticky, as
/// /tmp is) plants, before the server starts, the names it opens: the state
/// file (its own, recording a booking no process made, or a link to a file
/// of root's) or its lock (its own, locked so that no server starts, or a
/// link). The server uses none of them: it refuses to start, in one line
/// naming the file and why, and the link's target is untouched. With
/// nothing planted it starts, and the files are its own, mode 0600. A
/// directory others can write to that is not sticky, a directory of another
/// user, and a state file of root's that others can write are refused too.
/// Needs root, to act as `nobody`.
#[test]
fn a_planted_link_or_file_is_never_used_for_the_state() {
    if !running_as_root() {
        common::skip("planting files as nobody needs root");
        return;
    }
    let dir = Scratch::new("planted");
    let shared = dir.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.path("victim");
    fs::write(&victim, b"precious").unwrap();
    let recorded = dir.path("recorded");
    fs::write(&recorded, a_state_file_with_a_booking()).unwrap();
    fs::set_permissions(&recorded, fs::Permissions::from_mode(0o644)).unwrap();
    let state = shared.join("bookings");
    let lock = shared.join("bookings.lock");
    let (state_name, lock_name) = (state.display().to_string(), lock.display().to_string());
    let victim_name = victim.display().to_string();

    run_as_nobody(&format!(
        "cp {} {state_name} && chmod 644 {state_name}",
        recorded.display()
    ));
    let text = refused_start(&state);
    assert!(
        text.contains(&format!("{state_name}: belongs to user id {NOBODY}")),
        "{text}"
    );
    // The refused start leaves its own lock: start afresh each time.
    let clear = || {
        for file in [&state, &lock] {
            let _ = fs::remove_file(file);
        }
    };
    clear();

    for planted in [&state_name, &lock_name] {
        run_as_nobody(&format!("ln -s {victim_name} {planted}"));
        let text = refused_start(Path::new(&state_name));
        assert!(
            text.contains(&format!("{planted}: is a symbolic link")),
            "{text}"
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        clear();
    }

    // nobody's lock, held by nobody: bounded by a loop of 30 s at most.
    let ready = shared.join("ready");
    let mut holder = as_nobody(&format!(
        "exec flock {lock_name} sh -c 'touch {0}; i=0; while [ -e {0} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done'",
        ready.display()
    ))
    .spawn()
    .unwrap();
    while !ready.exists() {
        assert!(
            holder.try_wait().unwrap().is_none(),
            "flock as nobody failed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = refused_start(&state);
    assert!(
        text.contains(&format!("{lock_name}: belongs to user id {NOBODY}")),
        "{text}"
    );
    fs::remove_file(&ready).unwrap();
    holder.wait().unwrap();
    clear();

    let server = Running::start(&["--state", &state_name]);
    let client = Client::new().with_port(server.port);
    let _held = client.book(random()).expect("granted");
    for file in [&state, &lock] {
        let meta = fs::symlink_metadata(file).unwrap();
        assert!(meta.file_type().is_file(), "{}", file.display());
        assert_eq!(meta.uid(), 0, "{}", file.display());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    drop(server);
    // No temporary file is left behind.
    let left: Vec<_> = fs::read_dir(&shared)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let shared_name = shared.display().to_string();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let text = refused_start(&state);
    assert!(
        text.contains(&format!(
            "{shared_name} is a directory that is writable by others"
        )),
        "{text}"
    );
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&shared, Some(NOBODY), None).unwrap();
    let text = refused_start(&state);
    assert!(
        text.contains(&format!(
            "{shared_name} is a directory that belongs to user id {NOBODY}"
        )),
        "{text}"
    );
    std::os::unix::fs::chown(&shared, Some(0), None).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o646)).unwrap();
    let text = refused_start(&state);
    assert!(
        text.contains(&format!("{state_name}: is writable by others")),
        "{text}"
    );
    fs::remove_file(&state).unwrap();

    // Higher up: a directory of nobody's above one of root's, where nobody
    // could swap root's directory for another between two starts; and a
    // link of nobody's on the way, which nobody could point elsewhere.
    let theirs = dir.path("theirs");
    fs::create_dir_all(theirs.join("ours")).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), None).unwrap();
    let below_theirs = theirs.join("ours").join("bookings");
    let text = refused_start(&below_theirs);
    assert!(
        text.contains(&format!(
            "{} is a directory that belongs to user id {NOBODY}",
            theirs.display()
        )),
        "{text}"
    );
    let link = shared.join("link");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    run_as_nobody(&format!(
        "ln -s {} {}",
        dir.path("").display(),
        link.display()
    ));
    let text = refused_start(&link.join("bookings"));
    assert!(
        text.contains(&format!(
            "{} is a symbolic link that belongs to user id {NOBODY}",
            link.display()
        )),
        "{text}"
    );
}

/// A FIFO or a directory given as the state file, or found at its lock
/// `FILE.lock`, is refused at once, in one line, instead of hanging the
/// start or failing obscurely.
#[test]
fn a_state_file_or_lock_that_is_not_a_regular_file_is_refused() {
    let dir = Scratch::new("odd-files");
    let fifo = dir.path("fifo");
    let locked_by_a_fifo = dir.path("locked");
    for fifo in [&fifo, &dir.path("locked.lock")] {
        assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
    }
    let locked_by_a_dir = dir.path("dir-locked");
    fs::create_dir(dir.path("dir-locked.lock")).unwrap();
    for (path, kind) in [
        (fifo, "a FIFO"),
        (dir.path(""), "a directory"),
        (locked_by_a_fifo, "a FIFO"),
        (locked_by_a_dir, "a directory"),
    ] {
        let text = refused_start(&path);
        assert!(
            text.contains(&format!("not a regular file but {kind}")),
            "{text}"
        );
    }
}

/// A history far longer than what is held: loading keeps only the live
/// bookings in memory.
#[test]
fn loading_a_long_history_needs_memory_for_the_live_bookings_only() {
    let dir = Scratch::new("history");
    let state = dir.path("bookings");
    let mut bytes = b"NAMASTE\x01".to_vec();
    for n in 0..150_000u32 {
        let mut uid = [0u8; 64];
        uid[..4].copy_from_slice(&n.to_be_bytes());
        bytes.push(b'B');
        bytes.extend_from_slice(&uid);
        bytes.extend_from_slice(&[0xee; 64]);
        bytes.extend_from_slice(&[127, 0, 0, 1, 0x10, 0x00]);
        bytes.push(b'R');
        bytes.extend_from_slice(&uid);
    }
    fs::write(&state, &bytes).unwrap();
    let server = Running::start(&["--state", state.to_str().unwrap()]);
    let status = fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let peak: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert_eq!(server.bookings(), 0);
    assert!(
        peak < (bytes.len() / 1024) as u64 / 2,
        "{peak} KiB at peak to load {} KiB of history",
        bytes.len() / 1024
    );
}

/// A holder found dead (its port answers something else now) is recorded
/// as released: after a restart its booking does not come back.
#[test]
fn a_holder_proven_dead_stays_released_after_a_restart() {
    let dir = Scratch::new("proven-dead");
    let state = dir.path("bookings");
    let args = ["--state", state.to_str().unwrap()];
    let mut server = Running::start(&args);
    let (uid, handshake) = (random(), secret());
    let listener = std::sync::Arc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let booked = common::answer_with(listener.clone(), *uid.as_bytes(), 1);
    let request = namaste::wire::Request::Book {
        uid,
        handshake,
        port,
    };
    assert_eq!(
        common::send_bytes(server.addr(), &request.encode()),
        Some(1)
    );
    booked.join().unwrap();
    let gone = common::answer_with(listener, [0x5a; 64], 1);
    let client = Client::new().with_port(server.port);
    assert_eq!(
        client.notify(uid, b"anyone?").unwrap(),
        namaste::client::Notified::NoHolder
    );
    gone.join().unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Running::start(&args);
    assert_eq!(server.bookings(), 0, "the dead holder's booking came back");
}

/// A state file in a directory that does not exist: one line naming the
/// path as given, not a name the user never gave, nor the address.
#[test]
fn a_state_file_in_a_missing_directory_is_named_as_given() {
    let path = "/nonexistent-namaste-dir/sub/bookings";
    let output = common::namaste(&["run", "--port", "0", "--state", path]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains(&format!("the state file {path}:")), "{text}");
    for never in [".new", ".lock", ".tmp", "127.0.0.1"] {
        assert!(!text.contains(never), "{text}");
    }
    assert_eq!(text.lines().count(), 1, "{text}");
}
