//! The state file: every booking and check out, appended before the client
//! hears of it, so a restarted server still knows who holds what.
//!
//! Only the server's own crash or restart has to be survived, not the
//! machine's: after a reboot every holder is gone anyway. So a plain write
//! per change is enough, with no fsync. The file is a log of records after
//! an 8-byte magic; when it grows past twice what the live bookings need it
//! is rewritten whole and renamed over itself. It holds handshakes, which
//! are secrets, so it is created readable by its owner only.
//!
//! Every booking's record carries its fencing token, and a rewritten log
//! starts with the last token given out, so that a restarted server gives
//! tokens above every one it ever gave, released bookings' too, at no cost
//! beyond the records it writes anyway.
//!
//! A full disk stops neither a start nor the requests that can still be
//! recorded: a change is refused only when its own record cannot be
//! written, and then leaves nothing in the file. The rewrites, which need
//! room for a second copy and an inode, wait until there is room again.

mod files;
mod records;

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use log::{info, warn};

use crate::registry::Booking;
use crate::uid::Uid;
pub(crate) use records::{Group, Held};
use records::{BOOKING_LEN, LAST_TOKEN_LEN, MAGIC, encode_booking, encode_released, replay};

/// A booking held, as the state file is told of it: with its group if it
/// is held shared or with slots.
pub(crate) type Recorded<'a> = (&'a Booking, Option<Group>);

/// Below this size the log is never rewritten: not worth the I/O. After a
/// failed rewrite, the log grows by this much before the next try.
const MIN_COMPACT: u64 = 64 * 1024;

/// The state file of a running server.
pub(super) struct Journal {
    path: PathBuf,
    /// The log records are appended to. `None` while there is none on
    /// disk (the disk was full at the start): the next change then writes
    /// the live bookings whole.
    log: Option<Log>,
    /// No rewrite is tried while the log is smaller than this: set past
    /// its size when a rewrite fails, so that a full disk is not tried
    /// again at every change.
    retry_at: u64,
    /// The greatest fencing token recorded: a rewrite keeps it.
    last_token: u64,
    /// `FILE.lock`, locked for as long as the journal is open, so that two
    /// servers never share a state file.
    _lock: File,
}

/// The open state file and its size.
struct Log {
    file: File,
    size: u64,
}

impl Journal {
    /// Opens the state file at `path`, creating it if missing; answers the
    /// bookings it records. The file, its lock and its directory must be
    /// the server's user's alone (see `files`); a path that is not a
    /// regular file (a FIFO, a directory, a device) or a file without the
    /// header is refused. A record cut short at the end (a crash while
    /// writing) is skipped with a warning; an unreadable record further in
    /// ends the replay there: the file is kept aside, renamed, and the
    /// server starts with what was recorded before it, saying so loudly.
    /// A daemon that cannot start would be worse; so a full disk, which
    /// keeps the file from being rewritten, does not stop the start either.
    pub fn open(path: &Path) -> io::Result<(Journal, Vec<Held>)> {
        files::check_directory(path)?;
        let lock = files::lock(path)?;
        let (bookings, last_token, kept) = match files::open_existing(path)? {
            Some(file) => {
                let replayed = replay(path, BufReader::new(&file))?;
                let kept = (!replayed.set_aside).then_some((file, replayed.whole));
                (replayed.bookings, replayed.last_token, kept)
            }
            None => (Vec::new(), 0, None),
        };
        let mut journal = Journal {
            path: path.to_path_buf(),
            log: None,
            retry_at: 0,
            last_token,
            _lock: lock,
        };
        let recorded = bookings.iter().map(|(booking, group)| (booking, *group));
        match files::write_log(path, recorded, last_token) {
            Ok((file, size)) => journal.log = Some(Log { file, size }),
            Err(e) if is_full(&e) => journal.start_full(e, kept, bookings.len())?,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot write the state file {}: {e}", path.display()),
                ));
            }
        }
        Ok((journal, bookings))
    }

    /// Starts on a disk too full to rewrite the state file: appends to the
    /// file `kept` as it is (its torn last record cut off), or, when there
    /// is none, writes one at the first change.
    fn start_full(
        &mut self,
        e: io::Error,
        kept: Option<(File, u64)>,
        loaded: usize,
    ) -> io::Result<()> {
        let Some((file, whole)) = kept else {
            warn!(
                "cannot write the state file {}: {e}; starting with the {loaded} bookings loaded and no state file: each change tries to write it whole, and is refused until that succeeds",
                self.path.display()
            );
            return Ok(());
        };
        // Shrinking needs no room.
        file.set_len(whole)
            .map_err(|e| files::context(&self.path, e))?;
        warn!(
            "cannot rewrite the state file {}: {e}; appending to it as it is, with its {loaded} bookings; a change that cannot be recorded is refused until there is room",
            self.path.display()
        );
        self.log = Some(Log { file, size: whole });
        self.retry_at = whole + MIN_COMPACT;
        Ok(())
    }

    /// Records that `booking` is held, in `group` if shared or with
    /// slots; `live` bookings are held in all, `bookings`, with `booking`
    /// among them.
    pub fn booked<'a>(
        &mut self,
        booking: &Booking,
        group: Option<Group>,
        live: usize,
        bookings: impl Iterator<Item = Recorded<'a>>,
    ) -> io::Result<()> {
        self.last_token = self.last_token.max(booking.token);
        self.record(&encode_booking(booking, group), live, bookings)
    }

    /// The greatest fencing token the state file records, released
    /// bookings' included: a restarted server gives greater ones.
    pub fn last_token(&self) -> u64 {
        self.last_token
    }

    /// Records that `uid` is free; `live` bookings are held in all,
    /// `bookings`, without it.
    pub fn released<'a>(
        &mut self,
        uid: &Uid,
        live: usize,
        bookings: impl Iterator<Item = Recorded<'a>>,
    ) -> io::Result<()> {
        self.record(&encode_released(uid), live, bookings)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record`, then rewrites the log if it has grown past twice
    /// what the live bookings need. Only the append decides whether the
    /// change is recorded: a rewrite that fails is tried again later.
    fn record<'a>(
        &mut self,
        record: &[u8],
        live: usize,
        bookings: impl Iterator<Item = Recorded<'a>>,
    ) -> io::Result<()> {
        let Some(log) = &mut self.log else {
            // No log yet: `bookings` already include this change.
            let (file, size) = files::write_log(&self.path, bookings, self.last_token)?;
            info!(
                "{}: the state file is written; changes are recorded again",
                self.path.display()
            );
            self.log = Some(Log { file, size });
            return Ok(());
        };
        append(log, &self.path, record)?;
        let needed = (MAGIC.len() + LAST_TOKEN_LEN + live * BOOKING_LEN) as u64;
        if log.size > MIN_COMPACT && log.size > 2 * needed && log.size >= self.retry_at {
            self.compact(bookings);
        }
        Ok(())
    }

    /// Rewrites the log with just `bookings`; on failure, says so and
    /// leaves the next try until the log has grown some more.
    fn compact<'a>(&mut self, bookings: impl Iterator<Item = Recorded<'a>>) {
        match files::write_log(&self.path, bookings, self.last_token) {
            Ok((file, size)) => {
                if self.retry_at > 0 {
                    info!("{}: compacted at last", self.path.display());
                }
                self.log = Some(Log { file, size });
                self.retry_at = 0;
            }
            Err(e) => {
                let size = self.log.as_ref().map_or(0, |log| log.size);
                self.retry_at = size + MIN_COMPACT;
                warn!(
                    "cannot compact the state file {}: {e}; it grows on ({size} bytes, every change still recorded) and is tried again at {} KiB",
                    self.path.display(),
                    self.retry_at / 1024
                );
            }
        }
    }
}

/// Appends `record` whole, or not at all: a write that fails half way (a
/// full disk) is cut back off, so that a refused change leaves nothing in
/// the file and the records after it are not appended to a torn one.
fn append(log: &mut Log, path: &Path, record: &[u8]) -> io::Result<()> {
    if let Err(e) = log.file.write_all(record) {
        if let Err(cut) = log.file.set_len(log.size) {
            warn!(
                "{}: cannot cut a torn record back off ({cut}); it will be dropped at the next start",
                path.display()
            );
        }
        return Err(e);
    }
    log.size += record.len() as u64;
    Ok(())
}

/// Whether `e` says the disk (or the user's quota) is full, of bytes or of
/// inodes.
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Handshake;
    use crate::registry::ResponderIp;
    use crate::uid::UID_LEN;
    use std::fs;

    fn booking(n: u8) -> Booking {
        Booking {
            uid: Uid::from_bytes([n; UID_LEN]),
            handshake: Handshake::from_bytes([!n; UID_LEN]),
            ip: ResponderIp::LOCALHOST,
            port: 4000 + u16::from(n),
            since: 1_800_000_000 + u64::from(n),
            user: 1000 + u32::from(n),
            checked: 0,
            token: u64::from(n) + 1,
        }
    }

    #[test]
    fn replays_books_and_releases_and_compacts_when_grown_keeping_the_last_token() {
        let dir = std::env::temp_dir().join(format!("namaste-journal-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bookings");
        let (mut journal, recorded) = Journal::open(&path).unwrap();
        assert!(recorded.is_empty());
        let live = [booking(0), booking(1)];
        for (n, b) in live.iter().enumerate() {
            journal.booked(b, None, n + 1, live[..=n].iter().map(|b| (b, None))).unwrap();
        }
        // Churn: book and release a thousand times, keeping two held;
        // 220 bytes a round, so the log passes 64 KiB some three times.
        let mut largest = 0;
        for round in 0..1000u32 {
            let b = Booking {
                token: u64::from(round) + 10,
                ..booking((round % 200) as u8 + 2)
            };
            let with = live.iter().chain([&b]).map(|b| (b, None));
            journal.booked(&b, None, 3, with).unwrap();
            journal.released(&b.uid, 2, live.iter().map(|b| (b, None))).unwrap();
            largest = largest.max(fs::metadata(&path).unwrap().len());
        }
        assert!(
            largest <= MIN_COMPACT + 2 * BOOKING_LEN as u64,
            "never compacted: {largest}"
        );
        journal.released(&live[0].uid, 1, live[1..].iter().map(|b| (b, None))).unwrap();
        drop(journal);
        let (journal, recorded) = Journal::open(&path).unwrap();
        assert_eq!(recorded, [(live[1], None)]);
        assert_eq!(journal.last_token(), 1009, "the released bookings' tokens");
        let compact = (MAGIC.len() + LAST_TOKEN_LEN + BOOKING_LEN) as u64;
        assert_eq!(fs::metadata(&path).unwrap().len(), compact);
        fs::remove_dir_all(&dir).unwrap();
    }
}
