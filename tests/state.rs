//! The state file against a hostile directory, odd files, a full disk and
//! a long history.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::process::Command;

use common::{Running, Scratch, random, stderr};
use namaste::client::Client;

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Another user who can write to the state file's directory plants a
/// symbolic link, or a file of its own, where the old rewrite used to write
/// (`FILE.new`): neither is followed nor used, and the state file stays the
/// server's own, mode 0600.
#[test]
fn a_planted_link_or_file_is_never_used_for_the_state() {
    let dir = Scratch::new("planted");
    let state = dir.path("bookings");
    let victim = dir.path("victim");
    fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.path("bookings.new")).unwrap();
    let server = Running::start(&["--state", state.to_str().unwrap()]);
    let client = Client::new().with_port(server.port);
    let _held = client.book(random()).unwrap().expect("granted");
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    let meta = fs::symlink_metadata(&state).unwrap();
    assert!(meta.file_type().is_file(), "the state file is a link");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(server);

    fs::remove_file(dir.path("bookings.new")).unwrap();
    fs::write(dir.path("bookings.new"), b"theirs").unwrap();
    fs::set_permissions(dir.path("bookings.new"), fs::Permissions::from_mode(0o666)).unwrap();
    let before = fs::metadata(&state).unwrap().ino();
    let _server = Running::start(&["--state", state.to_str().unwrap()]);
    assert_ne!(fs::metadata(&state).unwrap().ino(), before, "rewritten");
    assert_eq!(fs::read(dir.path("bookings.new")).unwrap(), b"theirs");
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No temporary file is left behind.
    let left: Vec<_> = dir
        .entries()
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A FIFO or a directory given as the state file is refused at once, in
/// one line, instead of hanging the start or failing obscurely.
#[test]
fn a_state_path_that_is_not_a_regular_file_is_refused() {
    let dir = Scratch::new("odd-files");
    let fifo = dir.path("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, kind) in [(fifo, "a FIFO"), (dir.path(""), "a directory")] {
        let output = Command::new("timeout")
            .args(["10", env!("CARGO_BIN_EXE_namaste"), "run", "--port", "0"])
            .arg("--state")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{kind}");
        let text = stderr(&output);
        assert!(text.contains(kind), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
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
    let (uid, handshake) = (random(), random());
    let listener = std::sync::Arc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let booked = common::answer_with(listener.clone(), uid.0, 1);
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

/// A full disk: the write of a booking fails, the book is refused, and the
/// state file is left whole (not torn), so later bookings and a restart
/// work once there is room again. Needs root, to mount a small tmpfs.
#[test]
fn a_full_disk_refuses_the_book_and_leaves_the_state_file_whole() {
    if !running_as_root() {
        common::skip("mounting a tmpfs needs root");
        return;
    }
    let dir = Scratch::new("full-disk");
    let mount = dir.path("disk");
    fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "namaste-test"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    let _unmount = Unmount(mount.clone());
    let state = mount.join("bookings");
    let server = Running::start(&["--state", state.to_str().unwrap()]);
    let client = Client::new().with_port(server.port);
    // Fill the disk, leaving less than a page.
    let filler = mount.join("filler");
    let _ = fs::write(&filler, vec![0u8; 60 * 1024]);
    let mut held = Vec::new();
    let refused = loop {
        match client.book(random()) {
            Ok(Some(booking)) => held.push(booking),
            Ok(None) => panic!("denied a free id"),
            Err(e) => break e,
        }
        assert!(held.len() < 1000, "the disk never filled");
    };
    assert!(
        matches!(refused, namaste::client::Error::Refused),
        "{refused:?}"
    );
    let recorded = held.len() as u64;
    assert_eq!(server.bookings(), recorded);
    fs::remove_file(&filler).unwrap();
    let more = client.book(random()).unwrap().expect("room again");
    drop(server);
    let restarted = Running::start(&["--state", state.to_str().unwrap()]);
    assert_eq!(restarted.bookings(), recorded + 1, "the file was torn");
    drop((more, held));
}

/// Unmounts the tmpfs at the path when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
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
