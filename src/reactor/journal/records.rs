//! The records of the state file, and its replay.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use log::{error, warn};

use super::files::context;
use crate::handshake::Handshake;
use crate::registry::{Booking, Mode, ResponderIp, UNKNOWN_USER};
use crate::uid::{UID_LEN, Uid};

/// The header every state file starts with.
pub(super) const MAGIC: &[u8; 8] = b"NAMASTE\x01";
/// A booking without the time it was granted, as earlier versions wrote
/// it; still read.
const BOOKED: u8 = b'B';
/// A booking and, last, when it was granted (u64, big-endian), as
/// earlier versions wrote it, without its OS user; still read.
const HELD: u8 = b'H';
/// A booking, when it was granted, and the OS user of the request that
/// was granted it (u32, big-endian), as earlier versions wrote it, without
/// its fencing token; still read.
const OWNED: u8 = b'O';
/// A booking, when it was granted, its OS user (its share is kept for
/// that user across a restart) and, last, its fencing token (u64,
/// big-endian).
const FENCED: u8 = b'F';
/// A booking held shared or as one of a count of slots: a [`FENCED`]
/// record under its slot key, then the name it was granted for and its
/// count (u32, big-endian; 0 for shared), so that a restart puts it back
/// in its group.
const SLOTTED: u8 = b'S';
/// The last fencing token given out (u64, big-endian): written first in a
/// rewritten log, so that the tokens of bookings released before the
/// rewrite are never given again.
const LAST_TOKEN: u8 = b'T';
const RELEASED: u8 = b'R';
const BOOKED_LEN: usize = 1 + 2 * UID_LEN + 4 + 2;
const HELD_LEN: usize = BOOKED_LEN + 8;
const OWNED_LEN: usize = HELD_LEN + 4;
/// The size of the record of a booking.
pub(super) const BOOKING_LEN: usize = OWNED_LEN + 8;
/// The size of the record of a booking held shared or with slots.
const SLOTTED_LEN: usize = BOOKING_LEN + UID_LEN + 4;
/// The size of the record of the last token.
pub(super) const LAST_TOKEN_LEN: usize = 1 + 8;
/// The size of the record of a check out.
pub(super) const RELEASED_LEN: usize = 1 + UID_LEN;

/// The name a booking held shared or with slots was granted for, and how:
/// its booking is kept under a slot key of that name.
pub(crate) type Group = (Uid, Mode);

/// A booking held, and its group if it is held shared or with slots.
pub(crate) type Held = (Booking, Option<Group>);

/// What a state file records.
pub(super) struct Replayed {
    /// The bookings it leaves held, each with its fencing token (those
    /// recorded without one, by an earlier version, are given new ones,
    /// above every token the file names) and its group.
    pub bookings: Vec<Held>,
    /// The greatest token the file names, or gave to a booking recorded
    /// without one.
    pub last_token: u64,
    /// Where its last whole record ends: a record cut short after it is
    /// to be cut off before anything is appended.
    pub whole: u64,
    /// Whether it was renamed aside for an unreadable record: the path no
    /// longer names it.
    pub set_aside: bool,
}

/// The record of `booking` held, in `group` if it is held shared or with
/// slots.
pub(super) fn encode_booking(booking: &Booking, group: Option<Group>) -> Vec<u8> {
    let mut record = vec![0; BOOKING_LEN];
    record[0] = FENCED;
    record[1..65].copy_from_slice(booking.uid.as_bytes());
    record[65..129].copy_from_slice(booking.handshake.as_bytes());
    record[129..133].copy_from_slice(&booking.ip.octets());
    record[133..BOOKED_LEN].copy_from_slice(&booking.port.to_be_bytes());
    record[BOOKED_LEN..HELD_LEN].copy_from_slice(&booking.since.to_be_bytes());
    record[HELD_LEN..OWNED_LEN].copy_from_slice(&booking.user.to_be_bytes());
    record[OWNED_LEN..].copy_from_slice(&booking.token.to_be_bytes());
    if let Some((name, mode)) = group {
        record[0] = SLOTTED;
        record.extend_from_slice(name.as_bytes());
        let count = match mode {
            Mode::Slots(n) => n,
            Mode::Shared | Mode::Exclusive => 0,
        };
        record.extend_from_slice(&count.to_be_bytes());
    }
    record
}

/// The record of the last fencing token given out.
pub(super) fn encode_last_token(token: u64) -> [u8; LAST_TOKEN_LEN] {
    let mut record = [0; LAST_TOKEN_LEN];
    record[0] = LAST_TOKEN;
    record[1..].copy_from_slice(&token.to_be_bytes());
    record
}

/// The record of `uid` checked out.
pub(super) fn encode_released(uid: &Uid) -> [u8; RELEASED_LEN] {
    let mut record = [0; RELEASED_LEN];
    record[0] = RELEASED;
    record[1..].copy_from_slice(uid.as_bytes());
    record
}

/// The bookings a log leaves held, read a record at a time, so that memory
/// follows the live bookings, not the length of the history. A record cut
/// short at the end (a crash while writing) is skipped with a warning; an
/// unreadable record further in ends the replay there, and the file is
/// renamed aside.
pub(super) fn replay(path: &Path, mut log: impl Read) -> io::Result<Replayed> {
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
    let mut held: HashMap<Uid, Held> = HashMap::new();
    let mut offset = MAGIC.len();
    let mut record = [0; SLOTTED_LEN];
    let mut was_set_aside = false;
    let mut last_token = 0;
    loop {
        let got = read_up_to(&mut log, &mut record[..1]).map_err(|e| context(path, e))?;
        if got == 0 {
            break;
        }
        let need = match record[0] {
            BOOKED => BOOKED_LEN,
            HELD => HELD_LEN,
            OWNED => OWNED_LEN,
            FENCED => BOOKING_LEN,
            SLOTTED => SLOTTED_LEN,
            LAST_TOKEN => LAST_TOKEN_LEN,
            RELEASED => RELEASED_LEN,
            other => {
                set_aside(
                    path,
                    offset,
                    &format!("unknown record type {other:#04x}"),
                    held.len(),
                );
                was_set_aside = true;
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
        offset += need;
        if record[0] == LAST_TOKEN {
            last_token = last_token.max(u64_at(&record, 1));
            continue;
        }
        let uid = uid_at(&record, 1);
        if record[0] != RELEASED {
            let octets = [record[129], record[130], record[131], record[132]];
            let mut since = [0; 8];
            if record[0] != BOOKED {
                since.copy_from_slice(&record[BOOKED_LEN..HELD_LEN]);
            }
            let user = match record[0] {
                OWNED | FENCED | SLOTTED => u32::from_be_bytes([
                    record[HELD_LEN],
                    record[HELD_LEN + 1],
                    record[HELD_LEN + 2],
                    record[HELD_LEN + 3],
                ]),
                _ => UNKNOWN_USER,
            };
            let booking = Booking {
                uid,
                handshake: Handshake::from_bytes(bytes_at(&record, 65)),
                ip: ResponderIp::from_octets(octets),
                port: u16::from_be_bytes([record[133], record[134]]),
                since: u64::from_be_bytes(since),
                user,
                // The registry stamps what it restores.
                checked: 0,
                // 0: none recorded, given one below.
                token: match record[0] {
                    FENCED | SLOTTED => u64_at(&record, OWNED_LEN),
                    _ => 0,
                },
            };
            let group = (record[0] == SLOTTED).then(|| {
                let count = &record[BOOKING_LEN + UID_LEN..SLOTTED_LEN];
                let mode = match u32::from_be_bytes([count[0], count[1], count[2], count[3]]) {
                    0 => Mode::Shared,
                    n => Mode::Slots(n),
                };
                (uid_at(&record, BOOKING_LEN), mode)
            });
            last_token = last_token.max(booking.token);
            held.insert(uid, (booking, group));
        } else {
            held.remove(&uid);
        }
    }
    let mut bookings: Vec<Held> = held.into_values().collect();
    for (booking, _) in bookings.iter_mut().filter(|(booking, _)| booking.token == 0) {
        // As the registry counts: at the end of the count, the last again.
        last_token = last_token.saturating_add(1);
        booking.token = last_token;
    }
    Ok(Replayed {
        bookings,
        last_token,
        whole: offset as u64,
        set_aside: was_set_aside,
    })
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

fn u64_at(record: &[u8], offset: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&record[offset..offset + 8]);
    u64::from_be_bytes(bytes)
}

fn uid_at(record: &[u8], offset: usize) -> Uid {
    Uid::from_bytes(bytes_at(record, offset))
}

fn bytes_at(record: &[u8], offset: usize) -> [u8; UID_LEN] {
    let mut bytes = [0; UID_LEN];
    bytes.copy_from_slice(&record[offset..offset + UID_LEN]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booking() -> Booking {
        Booking {
            uid: Uid::from_bytes([7; UID_LEN]),
            handshake: Handshake::from_bytes([!7; UID_LEN]),
            ip: ResponderIp::LOCALHOST,
            port: 4007,
            since: 1_800_000_007,
            user: 65534,
            checked: 0,
            token: 5,
        }
    }

    fn replay_log(records: &[&[u8]]) -> Replayed {
        let log = [&MAGIC[..]].iter().chain(records).copied().collect::<Vec<_>>().concat();
        let replayed = replay(Path::new("old"), &log[..]).unwrap();
        assert_eq!(replayed.whole, log.len() as u64);
        replayed
    }

    /// Replays a state file of one record of `kind`, the first `len`
    /// bytes of the record of `booking() as written now.
    fn replay_one(kind: u8, len: usize) -> Vec<Booking> {
        let mut record = encode_booking(&booking(), None);
        record[0] = kind;
        bookings(replay_log(&[&record[..len]]))
    }

    fn bookings(replayed: Replayed) -> Vec<Booking> {
        replayed.bookings.into_iter().map(|(booking, _)| booking).collect()
    }

    #[test]
    fn reads_the_bookings_of_earlier_versions_giving_them_a_token() {
        let unknown = Booking {
            user: UNKNOWN_USER,
            token: 1,
            ..booking()
        };
        assert_eq!(
            replay_one(BOOKED, BOOKED_LEN),
            [Booking {
                since: 0,
                ..unknown
            }]
        );
        assert_eq!(replay_one(HELD, HELD_LEN), [unknown]);
        assert_eq!(
            replay_one(OWNED, OWNED_LEN),
            [Booking {
                token: 1,
                ..booking()
            }]
        );
    }

    #[test]
    fn a_booking_keeps_its_user_and_token_across_a_replay() {
        assert_eq!(replay_one(FENCED, BOOKING_LEN), [booking()]);
    }

    #[test]
    fn the_last_token_outlives_released_bookings_and_tops_the_new_ones() {
        let released = Booking {
            uid: Uid::from_bytes([8; UID_LEN]),
            token: 12,
            ..booking()
        };
        let older = encode_booking(
            &Booking {
                uid: Uid::from_bytes([9; UID_LEN]),
                ..booking()
            },
            None,
        );
        let replayed = replay_log(&[
            &encode_last_token(9),
            &encode_booking(&booking(), None),
            &encode_booking(&released, None),
            &encode_released(&released.uid),
            &[&[OWNED][..], &older[1..OWNED_LEN]].concat(),
        ]);
        assert_eq!(replayed.last_token, 13);
        let mut tokens: Vec<u64> = replayed.bookings.iter().map(|(b, _)| b.token).collect();
        tokens.sort();
        assert_eq!(tokens, [5, 13]);
        // A rewritten log names no booking, only the last token.
        assert_eq!(replay_log(&[&encode_last_token(9)]).last_token, 9);
    }

    #[test]
    fn a_last_token_at_the_end_of_the_count_stays_there() {
        let older = encode_booking(&booking(), None);
        let replayed = replay_log(&[
            &encode_last_token(u64::MAX),
            &[&[OWNED][..], &older[1..OWNED_LEN]].concat(),
        ]);
        assert_eq!(replayed.last_token, u64::MAX);
        assert_eq!(replayed.bookings[0].0.token, u64::MAX);
    }

    #[test]
    fn a_slot_booking_keeps_its_name_and_mode_across_a_replay() {
        let name = Uid::from_name("jobs");
        for mode in [Mode::Shared, Mode::Slots(3)] {
            let record = encode_booking(&booking(), Some((name, mode)));
            assert_eq!(record.len(), SLOTTED_LEN);
            let replayed = replay_log(&[&record]);
            assert_eq!(replayed.bookings, [(booking(), Some((name, mode)))]);
        }
    }
}
