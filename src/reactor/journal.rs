//! The state file: every booking and check out, appended before the client
//! hears of it, so a restarted server still knows who holds what.
//!
//! Only the server's own crash or restart has to be survived, not the
//! machine's: after a reboot every holder is gone anyway. So a plain write
//! per change is enough, with no fsync. The file is a log of records after
//! an 8-byte magic; when it grows past twice what the live bookings need it
//! is rewritten whole and renamed over itself. It holds handshakes, which
//! are secrets, so it is created readable by its owner only.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::{error, warn};

use crate::registry::{Booking, ResponderIp};
use crate::uid::{UID_LEN, Uid};

const MAGIC: &[u8; 8] = b"NAMASTE\x01";
/// A booking without the time it was granted, as earlier versions wrote
/// it; still read.
const BOOKED: u8 = b'B';
/// A booking and, last, when it was granted (u64, big-endian).
const HELD: u8 = b'H';
const RELEASED: u8 = b'R';
const BOOKED_LEN: usize = 1 + 2 * UID_LEN + 4 + 2;
const HELD_LEN: usize = BOOKED_LEN + 8;
const RELEASED_LEN: usize = 1 + UID_LEN;
/// Below this size the log is never rewritten: not worth the I/O.
const MIN_COMPACT: u64 = 64 * 1024;

pub(super) struct Journal {
    path: PathBuf,
    file: File,
    size: u64,
    /// `FILE.lock`, locked for as long as the journal is open, so that two
    /// servers never share a state file.
    _lock: File,
}

impl Journal {
    /// Opens the state file at `path`, creating it if missing; answers the
    /// bookings it records. A path that is not a regular file (a FIFO, a
    /// directory, a device) or a file without the header is refused. A
    /// record cut short at the end (a crash while writing) is skipped with
    /// a warning; an unreadable record further in ends the replay there:
    /// the file is kept aside, renamed, and the server starts with what was
    /// recorded before it, saying so loudly. A daemon that cannot start
    /// would be worse.
    pub fn open(path: &Path) -> io::Result<(Journal, Vec<Booking>)> {
        let lock = lock(path)?;
        let bookings = match fs::metadata(path) {
            Ok(meta) if meta.is_file() => {
                let file = File::open(path).map_err(|e| context(path, e))?;
                replay(path, BufReader::new(file))?
            }
            Ok(meta) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: not a regular file but {}; --state takes the path of a file",
                        path.display(),
                        kind_of(&meta)
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(context(path, e)),
        };
        let (file, size) = write_log(path, bookings.iter())?;
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            size,
            _lock: lock,
        };
        Ok((journal, bookings))
    }

    /// Records that `booking` is held.
    pub fn booked(&mut self, booking: &Booking) -> io::Result<()> {
        self.append(&encode_held(booking))
    }

    /// Records that `uid` is free.
    pub fn released(&mut self, uid: &Uid) -> io::Result<()> {
        let mut record = [0; RELEASED_LEN];
        record[0] = RELEASED;
        record[1..].copy_from_slice(uid.as_bytes());
        self.append(&record)
    }

    /// Rewrites the log with just `live` when it has grown past twice
    /// their size.
    pub fn compact_if_grown<'a>(
        &mut self,
        live: usize,
        bookings: impl Iterator<Item = &'a Booking>,
    ) -> io::Result<()> {
        let needed = (MAGIC.len() + live * HELD_LEN) as u64;
        if self.size > MIN_COMPACT && self.size > 2 * needed {
            (self.file, self.size) = write_log(&self.path, bookings)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` whole, or not at all: a write that fails half way
    /// (a full disk) is cut back off, so that the records after it are
    /// not appended to a torn one.
    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        if let Err(e) = self.file.write_all(record) {
            if let Err(cut) = self.file.set_len(self.size) {
                warn!(
                    "{}: cannot cut a torn record back off ({cut}); it will be dropped at the next start",
                    self.path.display()
                );
            }
            return Err(e);
        }
        self.size += record.len() as u64;
        Ok(())
    }
}

/// Writes a log of just `bookings` to a new file and renames it over the
/// one at `path`, so a crash leaves either the old log or the new one, never
/// half of one. The new file has a name nobody can guess, is created only
/// if nothing (not even a symbolic link) has that name, and is readable by
/// its owner only: another user who can write to the directory can
/// neither redirect the write nor read the handshakes. Answers the log
/// opened for appending, and its size.
fn write_log<'a>(
    path: &Path,
    bookings: impl Iterator<Item = &'a Booking>,
) -> io::Result<(File, u64)> {
    let mut bytes = MAGIC.to_vec();
    for booking in bookings {
        bytes.extend_from_slice(&encode_held(booking));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let cannot = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot write the state file {}: {e}", path.display()),
        )
    };
    let (next, mut file) = create_temporary(dir, path).map_err(cannot)?;
    let written = file
        .write_all(&bytes)
        .and_then(|()| fs::rename(&next, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&next);
        return Err(cannot(e));
    }
    Ok((file, bytes.len() as u64))
}

/// A new file in `dir` with a random name that starts with `path`'s,
/// created exclusively, never through a symbolic link, mode 0600.
fn create_temporary(dir: &Path, path: &Path) -> io::Result<(PathBuf, File)> {
    let stem = path.file_name().unwrap_or_default().to_string_lossy();
    loop {
        let mut random = [0; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let next = dir.join(format!(".{stem}.{suffix}.tmp"));
        // Appending: after a torn write is cut back off, the next record
        // must go to the new end, not after the cut.
        let created = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&next);
        match created {
            Ok(file) => return Ok((next, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes the lock beside the state file at `path`, or fails when another
/// server holds it.
fn lock(path: &Path) -> io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot use the state file {}: {e}", path.display()),
            )
        })?;
    // SAFETY: flock on a descriptor we own; it touches no memory.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::other(format!(
                "{}: another server uses this state file (it holds {}); give each server its own --state",
                path.display(),
                lock_path.display()
            )),
            _ => context(&lock_path, e),
        });
    }
    Ok(file)
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "something else"
    }
}

fn encode_held(booking: &Booking) -> [u8; HELD_LEN] {
    let mut record = [0; HELD_LEN];
    record[0] = HELD;
    record[1..65].copy_from_slice(booking.uid.as_bytes());
    record[65..129].copy_from_slice(booking.handshake.as_bytes());
    record[129..133].copy_from_slice(&booking.ip.octets());
    record[133..BOOKED_LEN].copy_from_slice(&booking.port.to_be_bytes());
    record[BOOKED_LEN..].copy_from_slice(&booking.since.to_be_bytes());
    record
}

/// The bookings a log leaves held, read a record at a time, so that memory
/// follows the live bookings, not the length of the history.
fn replay(path: &Path, mut log: impl Read) -> io::Result<Vec<Booking>> {
    let mut magic = [0; MAGIC.len()];
    if read_up_to(&mut log, &mut magic).map_err(|e| context(path, e))? < MAGIC.len()
        || &magic != MAGIC
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a Namaste state file (no header at offset 0); give --state another path, or move this file away",
                path.display()
            ),
        ));
    }
    let mut held: HashMap<Uid, Booking> = HashMap::new();
    let mut offset = MAGIC.len();
    let mut record = [0; HELD_LEN];
    loop {
        let got = read_up_to(&mut log, &mut record[..1]).map_err(|e| context(path, e))?;
        if got == 0 {
            break;
        }
        let need = match record[0] {
            BOOKED => BOOKED_LEN,
            HELD => HELD_LEN,
            RELEASED => RELEASED_LEN,
            other => {
                set_aside(
                    path,
                    offset,
                    &format!("unknown record type {other:#04x}"),
                    held.len(),
                );
                break;
            }
        };
        let got = read_up_to(&mut log, &mut record[1..need]).map_err(|e| context(path, e))?;
        if got < need - 1 {
            warn!(
                "{}: the last record, at offset {offset}, is cut short (the server stopped while writing it); ignoring it",
                path.display()
            );
            break;
        }
        let uid = uid_at(&record, 1);
        if record[0] != RELEASED {
            let octets = [record[129], record[130], record[131], record[132]];
            let mut since = [0; 8];
            if record[0] == HELD {
                since.copy_from_slice(&record[BOOKED_LEN..HELD_LEN]);
            }
            let booking = Booking {
                uid,
                handshake: uid_at(&record, 65),
                ip: ResponderIp::from_octets(octets),
                port: u16::from_be_bytes([record[133], record[134]]),
                since: u64::from_be_bytes(since),
            };
            held.insert(uid, booking);
        } else {
            held.remove(&uid);
        }
        offset += need;
    }
    Ok(held.into_values().collect())
}

/// Keeps a state file whose record at `offset` is unreadable, under a name
/// of its own beside it, and says so.
fn set_aside(path: &Path, offset: usize, what: &str, kept: usize) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{seconds}"));
    let aside = PathBuf::from(aside);
    let kept_as = match fs::rename(path, &aside) {
        Ok(()) => format!("the file is kept as {}", aside.display()),
        Err(e) => format!("it could not be kept aside ({e}) and is replaced"),
    };
    error!(
        "{}: {what} at offset {offset}; {kept_as}; starting with the {kept} bookings recorded before it, the rest are lost",
        path.display()
    );
}

/// Reads until `buf` is full or the input ends; answers how much it read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn uid_at(record: &[u8], offset: usize) -> Uid {
    let mut bytes = [0; UID_LEN];
    bytes.copy_from_slice(&record[offset..offset + UID_LEN]);
    Uid(bytes)
}

fn context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booking(n: u8) -> Booking {
        Booking {
            uid: Uid([n; UID_LEN]),
            handshake: Uid([!n; UID_LEN]),
            ip: ResponderIp::LOCALHOST,
            port: 4000 + u16::from(n),
            since: 1_800_000_000 + u64::from(n),
        }
    }

    #[test]
    fn replays_books_and_releases_and_compacts_when_grown() {
        let dir = std::env::temp_dir().join(format!("namaste-journal-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bookings");
        let (mut journal, recorded) = Journal::open(&path).unwrap();
        assert!(recorded.is_empty());
        // Churn: book and release a thousand times, keeping two held.
        for round in 0..1000u32 {
            let b = booking((round % 200) as u8 + 2);
            journal.booked(&b).unwrap();
            journal.released(&b.uid).unwrap();
        }
        let live = [booking(0), booking(1)];
        for b in &live {
            journal.booked(b).unwrap();
        }
        assert!(journal.size > MIN_COMPACT);
        journal.compact_if_grown(live.len(), live.iter()).unwrap();
        let compact = (MAGIC.len() + live.len() * HELD_LEN) as u64;
        assert_eq!(fs::metadata(&path).unwrap().len(), compact);
        journal.released(&live[0].uid).unwrap();
        drop(journal);
        let (_, mut recorded) = Journal::open(&path).unwrap();
        recorded.sort_by_key(|b| b.port);
        assert_eq!(recorded, [live[1]]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_the_bookings_of_earlier_versions_without_their_time() {
        let dir = std::env::temp_dir().join(format!("namaste-journal-old-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bookings");
        let old = booking(7);
        let mut record = encode_held(&old);
        record[0] = BOOKED;
        fs::write(&path, [&MAGIC[..], &record[..BOOKED_LEN]].concat()).unwrap();
        let (_, recorded) = Journal::open(&path).unwrap();
        assert_eq!(recorded, [Booking { since: 0, ..old }]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
