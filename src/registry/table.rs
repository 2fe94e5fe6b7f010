//! The booking table: records kept densely in fixed-size chunks, found
//! through a hash index of 4-byte slot numbers keyed by uid.
//!
//! A hash set of whole records would leave a quarter of its buckets empty
//! at 168 bytes each; here an empty bucket costs 5 bytes, and the records
//! themselves never sit in spare capacity beyond one chunk. Removal moves
//! the last record into the freed slot, so records stay contiguous and
//! memory returns as bookings are checked out.
//!
//! Names sit beside the records, in a map of their own: few bookings have
//! one, and those that do pay for it alone. A name leaves with its
//! booking, in [`Table::remove`], whichever way the booking ends.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::Booking;
use crate::uid::Uid;

/// Records per chunk: big enough that chunk bookkeeping is noise, small
/// enough that one spare chunk is a small price.
const CHUNK: usize = 1024;

#[derive(Clone)]
pub(super) struct Table {
    /// Slot numbers, hashed by the uid of the record in that slot.
    index: HashTable<u32>,
    /// Slot `s` is `chunks[s / CHUNK][s % CHUNK]`; slots `0..len` are used.
    chunks: Vec<Vec<Booking>>,
    len: usize,
    /// The names of the bookings whose bookers gave one; every key is
    /// held.
    names: HashMap<Uid, Box<[u8]>>,
    /// Keyed hashing: uids come from any process on the machine, so an
    /// attacker must not be able to choose colliding ones.
    hasher: RandomState,
}

impl Table {
    pub fn new() -> Table {
        Table {
            index: HashTable::new(),
            chunks: Vec::new(),
            len: 0,
            names: HashMap::new(),
            hasher: RandomState::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = &Booking> {
        self.chunks.iter().flatten()
    }

    /// The booking in slot `slot`, if it is used: slots are dense, so
    /// walking them from 0 to `len` visits every booking once.
    pub fn at(&self, slot: usize) -> Option<&Booking> {
        let slot = u32::try_from(slot)
            .ok()
            .filter(|&s| (s as usize) < self.len)?;
        Some(record(&self.chunks, slot))
    }

    pub fn get(&self, uid: &Uid) -> Option<&Booking> {
        let slot = *self.index.find(self.hash(uid), |&slot| {
            record(&self.chunks, slot).uid == *uid
        })?;
        Some(record(&self.chunks, slot))
    }

    /// The name of the booking of `uid`, if it is held and has one.
    pub fn name(&self, uid: &Uid) -> Option<&[u8]> {
        self.names.get(uid).map(|name| &name[..])
    }

    /// Names the booking of `uid`, if it is held; answers whether it is.
    pub fn set_name(&mut self, uid: &Uid, name: Box<[u8]>) -> bool {
        let held = self.get(uid).is_some();
        if held {
            self.names.insert(*uid, name);
        }
        held
    }

    /// How many bookings have a name.
    pub fn names(&self) -> usize {
        self.names.len()
    }

    /// Stamps the booking of `uid`, if held, as checked at `checked`.
    pub fn set_checked(&mut self, uid: &Uid, checked: u64) {
        let Some(&slot) = self.index.find(self.hash(uid), |&slot| {
            record(&self.chunks, slot).uid == *uid
        }) else {
            return;
        };
        let slot = slot as usize;
        self.chunks[slot / CHUNK][slot % CHUNK].checked = checked;
    }

    /// Adds `booking` unless its uid is held; answers whether it did.
    pub fn insert(&mut self, booking: Booking) -> bool {
        if self.get(&booking.uid).is_some() {
            return false;
        }
        let Ok(slot) = u32::try_from(self.len) else {
            return false;
        };
        let hash = self.hash(&booking.uid);
        if self.chunks.len() * CHUNK == self.len {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks[self.len / CHUNK].push(booking);
        self.len += 1;
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        self.index.insert_unique(hash, slot, |&slot| {
            hasher.hash_one(record(chunks, slot).uid)
        });
        true
    }

    /// Removes the booking of `uid`, if held.
    pub fn remove(&mut self, uid: &Uid) -> Option<Booking> {
        let chunks = &self.chunks;
        let entry = self
            .index
            .find_entry(self.hasher.hash_one(uid), |&slot| {
                record(chunks, slot).uid == *uid
            })
            .ok()?;
        let (slot, _) = entry.remove();
        if self.names.remove(uid).is_some() && self.names.len() < self.names.capacity() / 4 {
            self.names.shrink_to(self.names.len() * 2);
        }
        let last = self.len - 1;
        if slot as usize != last {
            // The last record moves into the freed slot; its index entry
            // follows it.
            let moved_uid = record(&self.chunks, last as u32).uid;
            let moved = self
                .index
                .find_mut(self.hasher.hash_one(moved_uid), |&s| s as usize == last)
                .expect("every record is indexed");
            *moved = slot;
            let last_record = *record(&self.chunks, last as u32);
            let freed = &mut self.chunks[slot as usize / CHUNK][slot as usize % CHUNK];
            let removed = std::mem::replace(freed, last_record);
            self.pop_last();
            Some(removed)
        } else {
            self.pop_last()
        }
    }

    /// Drops the record in the last slot, and memory no longer needed.
    fn pop_last(&mut self) -> Option<Booking> {
        let removed = self.chunks[(self.len - 1) / CHUNK].pop();
        self.len -= 1;
        // One empty chunk is kept, so that a load hovering around a chunk
        // boundary does not allocate and free a chunk per booking.
        if self.chunks.len() > self.len.div_ceil(CHUNK) + 1 {
            self.chunks.pop();
        }
        if self.index.capacity() > 64 && self.len < self.index.capacity() / 4 {
            let (chunks, hasher) = (&self.chunks, &self.hasher);
            self.index.shrink_to(self.len * 2, |&slot| {
                hasher.hash_one(record(chunks, slot).uid)
            });
        }
        removed
    }

    fn hash(&self, uid: &Uid) -> u64 {
        self.hasher.hash_one(uid)
    }
}

fn record(chunks: &[Vec<Booking>], slot: u32) -> &Booking {
    let slot = slot as usize;
    &chunks[slot / CHUNK][slot % CHUNK]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::handshake::Handshake;
    use crate::registry::ResponderIp;

    fn booking(n: u32) -> Booking {
        let mut uid = [0; 64];
        uid[..4].copy_from_slice(&n.to_be_bytes());
        Booking {
            uid: Uid::from_bytes(uid),
            handshake: Handshake::from_bytes([0xee; 64]),
            ip: ResponderIp::LOCALHOST,
            port: n as u16,
            since: 0,
            user: 0,
            checked: 0,
            token: 0,
        }
    }

    /// Inserts and removes across several chunks in a scrambled order,
    /// checking every lookup against a plain map.
    #[test]
    fn behaves_like_a_map_across_chunks() {
        let mut table = Table::new();
        let mut model = HashMap::new();
        let n = 5 * CHUNK as u32 + 17;
        for i in 0..n {
            assert!(table.insert(booking(i)));
            model.insert(booking(i).uid, i as u16);
        }
        assert!(!table.insert(booking(3)), "a held uid is not booked twice");
        // Remove every third, in an order that moves records around.
        for i in (0..n).rev().step_by(3).chain((1..n).step_by(7)) {
            let expected = model.remove(&booking(i).uid);
            assert_eq!(table.remove(&booking(i).uid).map(|b| b.port), expected);
        }
        assert_eq!(table.len(), model.len());
        for i in 0..n {
            let uid = booking(i).uid;
            assert_eq!(table.get(&uid).map(|b| b.port), model.get(&uid).copied());
        }
        for i in 0..n {
            table.remove(&booking(i).uid);
        }
        assert_eq!(table.len(), 0);
        assert!(
            table.chunks.len() <= 1,
            "{} chunks kept",
            table.chunks.len()
        );
        assert!(
            table.index.capacity() <= 64 * 2,
            "{}",
            table.index.capacity()
        );
    }

    #[test]
    fn a_name_leaves_with_its_booking_and_only_a_held_one_is_named() {
        let mut table = Table::new();
        assert!(!table.set_name(&booking(1).uid, b"one".to_vec().into()));
        assert_eq!(table.name(&booking(1).uid), None);
        for i in 0..3 {
            table.insert(booking(i));
        }
        assert!(table.set_name(&booking(1).uid, b"one".to_vec().into()));
        assert!(table.set_name(&booking(2).uid, b"two".to_vec().into()));
        table.remove(&booking(1).uid);
        assert_eq!(table.name(&booking(1).uid), None);
        assert_eq!(table.name(&booking(2).uid), Some(&b"two"[..]), "moved");
        table.insert(booking(1));
        assert_eq!(table.name(&booking(1).uid), None, "a new booking, unnamed");
        assert_eq!(table.names(), 1);
    }

    #[test]
    fn a_record_is_168_bytes() {
        assert_eq!(std::mem::size_of::<Booking>(), 168);
    }
}
