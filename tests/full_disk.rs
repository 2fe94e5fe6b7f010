//! The state file on a disk that is full, of bytes or of inodes: a small
//! tmpfs mounted for the test (so these tests need root, and skip saying so
//! without it).

mod common;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Running, Scratch, random};
use namaste::client::{Client, Error};

/// A tmpfs mounted in a scratch directory, unmounted when dropped (even
/// when the test fails), then the directory removed.
struct Tmpfs {
    mount: PathBuf,
    _scratch: Scratch,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options`; `None`, saying why, when not root.
    fn mount(test: &str, options: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            common::skip("mounting a tmpfs needs root");
            return None;
        }
        let scratch = Scratch::new(test);
        let mount = scratch.path("disk");
        fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "namaste-test"])
            .arg(&mount)
            .status()
            .unwrap();
        assert!(mounted.success(), "mount -t tmpfs -o {options}");
        Some(Tmpfs {
            mount,
            _scratch: scratch,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.mount).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            // Still busy (a server the test leaked): detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

fn state_args(state: &Path) -> [&str; 2] {
    ["--state", state.to_str().unwrap()]
}

/// Whether `e` is the error a full disk gives.
fn is_full(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

/// Creates empty files until the disk has no inode left; answers them.
fn use_up_inodes(disk: &Tmpfs) -> Vec<PathBuf> {
    let mut fillers = Vec::new();
    loop {
        let filler = disk.path(&format!("filler-{}", fillers.len()));
        match File::create(&filler) {
            Ok(_) => fillers.push(filler),
            Err(e) if is_full(&e) => return fillers,
            Err(e) => panic!("{}: {e}", filler.display()),
        }
        assert!(fillers.len() < 1000, "the disk has inodes without end");
    }
}

/// A full disk: the write of a booking fails, the book is refused and
/// leaves nothing in the state file; a restart while the disk is still
/// full loads and serves what was recorded (and says that it appends to
/// the file as it is), refuses what it cannot record, and once there is
/// room again records as before.
#[test]
fn a_full_disk_refuses_the_book_and_leaves_the_state_file_whole() {
    let Some(disk) = Tmpfs::mount("full-disk", "size=64k") else {
        return;
    };
    let state = disk.path("bookings");
    let server = Running::start(&state_args(&state));
    let client = Client::new().with_port(server.port);
    // Fill the disk, leaving less than a page.
    let filler = disk.path("filler");
    let _ = fs::write(&filler, vec![0u8; 60 * 1024]);
    let mut held = Vec::new();
    let refused = loop {
        match client.book(random()) {
            Ok(booking) => held.push(booking),
            Err(Error::Held) => panic!("denied a free id"),
            Err(e) => break e,
        }
        assert!(held.len() < 1000, "the disk never filled");
    };
    assert!(matches!(refused, Error::Refused), "{refused:?}");
    let recorded = held.len() as u64;
    assert_eq!(server.bookings(), recorded);
    let size = fs::metadata(&state).unwrap().len();
    drop(server);

    let mut restarted = Running::start(&state_args(&state));
    let said = restarted.log_line_with("appending to it as it is");
    assert!(said.contains("No space left on device"), "{said}");
    assert_eq!(restarted.bookings(), recorded, "not what was recorded");
    let client = Client::new().with_port(restarted.port);
    let refused = client.book(random()).unwrap_err();
    assert!(matches!(refused, Error::Refused), "{refused:?}");
    assert_eq!(
        fs::metadata(&state).unwrap().len(),
        size,
        "a refused book left bytes"
    );
    fs::remove_file(&filler).unwrap();
    let more = client.book(random()).expect("room again");
    drop(restarted);

    let restarted = Running::start(&state_args(&state));
    assert_eq!(restarted.bookings(), recorded + 1, "the file was torn");
    drop((more, held));
}

/// A first start on a full disk, with no state file yet: the server
/// starts and says it has none; a book is refused while none can be
/// written, and once there is room the next book writes it whole, so a
/// restart keeps that booking.
#[test]
fn a_first_start_on_a_full_disk_serves_and_writes_the_state_file_once_there_is_room() {
    let Some(disk) = Tmpfs::mount("first-start-full", "size=64k") else {
        return;
    };
    let filler = disk.path("filler");
    let filled = fs::write(&filler, vec![0u8; 80 * 1024]).unwrap_err();
    assert!(is_full(&filled), "{filled}");
    let state = disk.path("bookings");
    let mut server = Running::start(&state_args(&state));
    let said = server.log_line_with("and no state file");
    assert!(said.contains("No space left on device"), "{said}");
    let client = Client::new().with_port(server.port);
    let refused = client.book(random()).unwrap_err();
    assert!(matches!(refused, Error::Refused), "{refused:?}");
    assert_eq!(server.bookings(), 0);
    assert!(!state.exists(), "a state file on a full disk");
    fs::remove_file(&filler).unwrap();
    let held = client.book(random()).expect("room again");
    drop(server);

    let restarted = Running::start(&state_args(&state));
    assert_eq!(restarted.bookings(), 1, "the booking was not recorded");
    drop(held);
}

/// A disk with room for bytes but no inode left: the log can grow but
/// never be rewritten (the rewrite needs a new file). Books and check outs
/// go on being granted long past the size where the rewrite is due; a
/// restart brings back only what is still held, and once an inode is free
/// the log is rewritten small again.
#[test]
fn a_compaction_that_fails_for_want_of_inodes_fails_no_request_and_is_retried() {
    let Some(disk) = Tmpfs::mount("no-inodes", "size=4m,nr_inodes=16") else {
        return;
    };
    let state = disk.path("bookings");
    let mut server = Running::start(&state_args(&state));
    let mut fillers = use_up_inodes(&disk);
    let client = Client::new().with_port(server.port);
    let kept = client.book(random()).expect("granted");
    // 220 bytes a cycle: the log passes 64 KiB, where it is rewritten,
    // after some 300 cycles.
    let cycle = |client: &Client, round: usize| {
        let booking = match client.book(random()) {
            Ok(booking) => booking,
            Err(Error::Held) => panic!("a free id denied in round {round}"),
            Err(e) => panic!("book {round} failed: {e:?}"),
        };
        assert!(booking.check_out().unwrap(), "check out {round} failed");
    };
    for round in 0..400 {
        cycle(&client, round);
    }
    let warned = server.log_line_with("cannot compact the state file");
    assert!(warned.contains("No space left on device"), "{warned}");
    assert!(fs::metadata(&state).unwrap().len() > 64 * 1024);
    drop(server);

    let mut restarted = Running::start(&state_args(&state));
    restarted.log_line_with("appending to it as it is");
    assert_eq!(restarted.bookings(), 1, "checked out bookings came back");
    fs::remove_file(fillers.pop().unwrap()).unwrap();
    let client = Client::new().with_port(restarted.port);
    for round in 0..400 {
        cycle(&client, round);
    }
    let size = fs::metadata(&state).unwrap().len();
    assert!(size < 64 * 1024, "never rewritten: {size} bytes");
    drop(restarted);
    let restarted = Running::start(&state_args(&state));
    assert_eq!(restarted.bookings(), 1);
    drop(kept);
}
