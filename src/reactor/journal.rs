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
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use log::warn;

use crate::registry::{Booking, ResponderIp};
use crate::uid::{UID_LEN, Uid};

const MAGIC: &[u8; 8] = b"NAMASTE\x01";
const BOOKED: u8 = b'B';
const RELEASED: u8 = b'R';
const BOOKED_LEN: usize = 1 + 2 * UID_LEN + 4 + 2;
const RELEASED_LEN: usize = 1 + UID_LEN;
/// Below this size the log is never rewritten: not worth the I/O.
const MIN_COMPACT: u64 = 64 * 1024;

pub(super) struct Journal {
    path: PathBuf,
    file: File,
    size: u64,
}

impl Journal {
    /// Opens the state file at `path`, creating it if missing; answers the
    /// bookings it records. A record cut short at the end (a crash while
    /// writing) is skipped with a warning; anything else unreadable is an
    /// error naming the file and the offset.
    pub fn open(path: &Path) -> io::Result<(Journal, Vec<Booking>)> {
        let bookings = match fs::read(path) {
            Ok(bytes) => replay(path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(context(path, e)),
        };
        let (file, size) = write_log(path, bookings.iter())?;
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            size,
        };
        Ok((journal, bookings))
    }

    /// Records that `booking` is held.
    pub fn booked(&mut self, booking: &Booking) -> io::Result<()> {
        self.append(&encode_booked(booking))
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
        let needed = (MAGIC.len() + live * BOOKED_LEN) as u64;
        if self.size > MIN_COMPACT && self.size > 2 * needed {
            (self.file, self.size) = write_log(&self.path, bookings)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        self.file.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }
}

/// Writes a log of just `bookings` to a new file and renames it over the
/// one at `path`, so a crash leaves either the old log or the new one, never
/// half of one. Answers the log opened for appending, and its size.
fn write_log<'a>(
    path: &Path,
    bookings: impl Iterator<Item = &'a Booking>,
) -> io::Result<(File, u64)> {
    let mut next = path.to_path_buf().into_os_string();
    next.push(".new");
    let next = PathBuf::from(next);
    let mut bytes = MAGIC.to_vec();
    for booking in bookings {
        bytes.extend_from_slice(&encode_booked(booking));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&next)
        .map_err(|e| context(&next, e))?;
    file.write_all(&bytes).map_err(|e| context(&next, e))?;
    fs::rename(&next, path).map_err(|e| context(path, e))?;
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| context(path, e))?;
    Ok((file, bytes.len() as u64))
}

fn encode_booked(booking: &Booking) -> [u8; BOOKED_LEN] {
    let mut record = [0; BOOKED_LEN];
    record[0] = BOOKED;
    record[1..65].copy_from_slice(booking.uid.as_bytes());
    record[65..129].copy_from_slice(booking.handshake.as_bytes());
    record[129..133].copy_from_slice(&booking.ip.octets());
    record[133..].copy_from_slice(&booking.port.to_be_bytes());
    record
}

/// The bookings a log leaves held, in the order they were made.
fn replay(path: &Path, bytes: &[u8]) -> io::Result<Vec<Booking>> {
    let corrupt = |offset: usize, what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what} at offset {offset}", path.display()),
        )
    };
    if !bytes.starts_with(MAGIC) {
        return Err(corrupt(0, "not a Namaste state file (no header)"));
    }
    let mut held: HashMap<Uid, Booking> = HashMap::new();
    let mut offset = MAGIC.len();
    while offset < bytes.len() {
        let need = match bytes[offset] {
            BOOKED => BOOKED_LEN,
            RELEASED => RELEASED_LEN,
            other => {
                return Err(corrupt(
                    offset,
                    &format!("unknown record type {other:#04x}"),
                ));
            }
        };
        let Some(record) = bytes.get(offset..offset + need) else {
            warn!(
                "{}: the last record, at offset {offset}, is cut short (the server stopped while writing it); ignoring it",
                path.display()
            );
            break;
        };
        let uid = uid_at(record, 1);
        if record[0] == BOOKED {
            let octets = [record[129], record[130], record[131], record[132]];
            let booking = Booking {
                uid,
                handshake: uid_at(record, 65),
                ip: ResponderIp::from_octets(octets),
                port: u16::from_be_bytes([record[133], record[134]]),
            };
            held.insert(uid, booking);
        } else {
            held.remove(&uid);
        }
        offset += need;
    }
    Ok(held.into_values().collect())
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
        let compact = (MAGIC.len() + live.len() * BOOKED_LEN) as u64;
        assert_eq!(fs::metadata(&path).unwrap().len(), compact);
        journal.released(&live[0].uid).unwrap();
        drop(journal);
        let (_, mut recorded) = Journal::open(&path).unwrap();
        recorded.sort_by_key(|b| b.port);
        assert_eq!(recorded, [live[1]]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
