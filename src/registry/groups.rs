//! Shared locks and counting semaphores: a name held by several holders
//! at once is a *group* of bookings, each under a slot key of its own.
//!
//! Every proof of life or death, line, probe, sweep and round of
//! reclaiming works per booking, so each holder of a shared name keeps its
//! own record in the table, under a key derived from the name and the
//! slot's index ([`slot_key`]): the first free index, so that a name with
//! `n` slots uses `n` keys at most. Requests and verifications stay keyed
//! by the name: the one verification in flight per name serves its
//! exclusive holder and its shared ones alike, and a holder called back
//! answers the name it asked for, not the key.
//!
//! A group lives while it has holders; the count in force lives while
//! anyone holds the name shared or waits for it so.

use std::collections::HashMap;

use sha3::{Digest, Sha3_512};

use super::{Answer, Booking, Counter, Mode, Registry};
use crate::handshake::Handshake;
use crate::uid::{UID_LEN, Uid};

/// What the bytes of a slot key begin with: no request may name one.
const SLOT_MARKER: &[u8; 8] = b"\xffNMSTSL\x01";

/// The part of a slot key shared by all slots of one name.
type Stem = [u8; UID_LEN - 12];

/// The key of slot `index` of the name `name`: a marker, the index
/// (big-endian), and the first 52 bytes of a SHA3-512 digest of the name.
/// A name's digest begins with the marker by chance once in 2^64 names.
pub fn slot_key(name: &Uid, index: u32) -> Uid {
    key_of_stem(&stem(name), index)
}

/// Whether `uid` has the form of a slot key.
pub fn is_slot_key(uid: &Uid) -> bool {
    uid.as_bytes().starts_with(SLOT_MARKER)
}

fn stem(name: &Uid) -> Stem {
    let mut hasher = Sha3_512::new();
    // A prefix no name hashed by Uid::from_name begins with.
    hasher.update(b"\0namaste slot\0");
    hasher.update(name.as_bytes());
    let digest: [u8; UID_LEN] = hasher.finalize().into();
    let mut stem = [0; UID_LEN - 12];
    stem.copy_from_slice(&digest[..UID_LEN - 12]);
    stem
}

fn key_of_stem(stem: &Stem, index: u32) -> Uid {
    let mut bytes = [0; UID_LEN];
    bytes[..8].copy_from_slice(SLOT_MARKER);
    bytes[8..12].copy_from_slice(&index.to_be_bytes());
    bytes[12..].copy_from_slice(stem);
    Uid::from_bytes(bytes)
}

fn index_of(key: &Uid) -> u32 {
    let mut index = [0; 4];
    index.copy_from_slice(&key.as_bytes()[8..12]);
    u32::from_be_bytes(index)
}

fn stem_of(key: &Uid) -> Stem {
    let mut stem = [0; UID_LEN - 12];
    stem.copy_from_slice(&key.as_bytes()[12..]);
    stem
}

/// The holders of one name held shared or with slots.
#[derive(Clone)]
struct Group {
    mode: Mode,
    stem: Stem,
    /// The indices of the slots held, sorted.
    held: Vec<u32>,
}

/// Every group, and the name each group's keys belong to.
#[derive(Clone, Default)]
pub(super) struct Groups {
    by_name: HashMap<Uid, Group>,
    names: HashMap<Stem, Uid>,
}

impl Groups {
    /// The mode of the group of `name`, if it has holders.
    pub fn mode(&self, name: &Uid) -> Option<Mode> {
        self.by_name.get(name).map(|group| group.mode)
    }

    /// The slots of `name` held.
    pub fn held(&self, name: &Uid) -> usize {
        self.by_name.get(name).map_or(0, |group| group.held.len())
    }

    /// The keys of the slots of `name` held, lowest index first.
    pub fn keys(&self, name: &Uid) -> impl Iterator<Item = Uid> + '_ {
        self.by_name.get(name).into_iter().flat_map(|group| {
            let stem = &group.stem;
            group.held.iter().map(move |&index| key_of_stem(stem, index))
        })
    }

    /// The name the slot key `key` belongs to, while its group lives.
    pub fn lock_of(&self, key: &Uid) -> Option<Uid> {
        if !is_slot_key(key) {
            return None;
        }
        self.names.get(&stem_of(key)).copied()
    }

    /// The key of the first free slot of `name`, held in `mode` or free.
    pub fn free_key(&self, name: &Uid) -> Uid {
        let Some(group) = self.by_name.get(name) else {
            return slot_key(name, 0);
        };
        // The first index that is not its own place in the sorted list.
        let index = group
            .held
            .iter()
            .zip(0..)
            .find(|&(&held, at)| held != at)
            .map_or(group.held.len() as u32, |(_, at)| at);
        key_of_stem(&group.stem, index)
    }

    /// The slot `key` of `name` is held from now on, in `mode`; answers
    /// false if `key` is no slot of `name`, or the group's mode is another.
    pub fn join(&mut self, name: Uid, key: &Uid, mode: Mode) -> bool {
        let stem = stem(&name);
        if !is_slot_key(key) || stem_of(key) != stem {
            return false;
        }
        let group = self.by_name.entry(name).or_insert_with(|| Group {
            mode,
            stem,
            held: Vec::new(),
        });
        let index = index_of(key);
        match group.held.binary_search(&index) {
            Ok(_) => false,
            Err(_) if group.mode != mode => false,
            Err(at) => {
                group.held.insert(at, index);
                self.names.insert(stem, name);
                true
            }
        }
    }

    /// The slot `key` is free again; its group goes with its last holder.
    /// Answers the name it belonged to.
    pub fn leave(&mut self, key: &Uid) -> Option<Uid> {
        let name = self.lock_of(key)?;
        let group = self.by_name.get_mut(&name)?;
        if let Ok(at) = group.held.binary_search(&index_of(key)) {
            group.held.remove(at);
        }
        if group.held.is_empty() {
            self.by_name.remove(&name);
            self.names.remove(&stem_of(key));
        }
        Some(name)
    }
}

/// What QUERY and LIST tell of one name: how it is held, by whom, and
/// who waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockView<'a> {
    /// How it is held: [`Mode::Exclusive`] by its one holder, or in the
    /// mode of its shared holders; while nobody holds it, the mode in
    /// force of its waiters, or exclusive.
    pub mode: Mode,
    /// The mode shared holders or waiters fixed, if any: a request shared
    /// or with slots must ask the same.
    pub in_force: Option<Mode>,
    /// The bookings of its holders, the lowest slot first: each under its
    /// own key, the name for an exclusive one.
    pub holders: Vec<&'a Booking>,
    /// WAITs queued for it.
    pub waiters: usize,
}

impl<R: Copy + PartialEq> Registry<R> {
    /// How `name` is held and waited for; `None` while nobody holds it or
    /// waits for it. O(its holders).
    pub fn lock(&self, name: &Uid) -> Option<LockView<'_>> {
        let exclusive = self.bookings.get(name);
        let holders: Vec<&Booking> = exclusive
            .into_iter()
            .chain(self.groups.keys(name).filter_map(|key| self.bookings.get(&key)))
            .collect();
        let waiters = self.waiting.count_for(name);
        if holders.is_empty() && waiters == 0 {
            return None;
        }
        let in_force = self.in_force(name);
        let mode = match (exclusive, self.groups.mode(name)) {
            (None, Some(mode)) => mode,
            (None, None) => in_force.unwrap_or(Mode::Exclusive),
            (Some(_), _) => Mode::Exclusive,
        };
        Some(LockView {
            mode,
            in_force,
            holders,
            waiters,
        })
    }

    /// The name whose booking is kept under `key`: the slot key's name, or
    /// `key` itself for an exclusive booking.
    pub fn lock_of(&self, key: &Uid) -> Uid {
        self.groups.lock_of(key).unwrap_or(*key)
    }

    /// The name and mode the booking under `key` was granted for, if it is
    /// a slot of a name held shared or with slots; `None` for an
    /// exclusive booking, kept under its name.
    pub fn group_of(&self, key: &Uid) -> Option<(Uid, Mode)> {
        let name = self.groups.lock_of(key)?;
        Some((name, self.groups.mode(&name)?))
    }

    /// The booking of `name` held with `handshake`, exclusive or shared.
    pub fn held_with(&self, name: &Uid, handshake: &Handshake) -> Option<&Booking> {
        let matches = |booking: &&Booking| booking.handshake.matches(handshake);
        if let Some(holder) = self.bookings.get(name) {
            return Some(holder).filter(matches);
        }
        self.groups
            .keys(name)
            .filter_map(|key| self.bookings.get(&key))
            .find(matches)
    }

    /// The lines of the holders of `name`: its exclusive holder's, or each
    /// shared holder's that has one.
    pub fn lines_of(&self, name: &Uid) -> impl Iterator<Item = R> + '_ {
        std::iter::once(*name)
            .chain(self.groups.keys(name))
            .filter_map(|key| self.lines.get(&key).copied())
    }

    /// The key of the booking of `name` whose line is `from`'s connection.
    pub(super) fn line_key(&self, name: &Uid, from: R) -> Option<Uid> {
        std::iter::once(*name)
            .chain(self.groups.keys(name))
            .find(|key| self.lines.get(key) == Some(&from))
    }

    /// Whether anyone holds `name`, exclusive or shared.
    pub(super) fn is_held(&self, name: &Uid) -> bool {
        self.bookings.get(name).is_some() || self.groups.held(name) > 0
    }

    /// Whether a request of `name` in `mode` may be granted now, as far as
    /// the holders go: exclusive when nobody holds it, shared or with
    /// slots beside holders of its mode while a slot is free.
    pub(super) fn room_for(&self, name: &Uid, mode: Mode) -> bool {
        if self.bookings.get(name).is_some() {
            return false;
        }
        let held = self.groups.held(name);
        match mode {
            Mode::Exclusive => held == 0,
            Mode::Shared => true,
            // No slots at all would wait without end: one, at least.
            Mode::Slots(n) => held < n.max(1) as usize,
        }
    }

    /// A holder of `name` whose life only a call-back can tell (it has no
    /// line): the exclusive holder, or the shared one checked least
    /// recently, so that probes take turns among them.
    pub(super) fn callback_holder(&self, name: &Uid) -> Option<Booking> {
        std::iter::once(*name)
            .chain(self.groups.keys(name))
            .filter(|key| !self.lines.contains_key(key))
            .filter_map(|key| self.bookings.get(&key).copied())
            .min_by_key(|booking| booking.checked)
    }

    /// The mode shared holders or waiters of `name` fixed, if any: a
    /// request shared or with slots must ask the same.
    pub fn in_force(&self, name: &Uid) -> Option<Mode> {
        self.groups
            .mode(name)
            .or_else(|| self.waiting.first_shared_mode(name))
    }

    /// The answer for a request of `name` in `mode` that another mode in
    /// force forbids, if it does. An exclusive request takes every slot:
    /// it has no count to disagree with, and costs no look at the queue.
    pub(super) fn conflict(&self, name: &Uid, mode: Mode) -> Option<Answer> {
        if mode == Mode::Exclusive {
            return None;
        }
        match (mode, self.in_force(name)?) {
            (asked, in_force) if asked == in_force => None,
            (_, Mode::Slots(n)) => Some(Answer::SlotsInForce(n)),
            _ => Some(Answer::SharedInForce),
        }
    }

    /// Enters `booking`, granted in `mode`, in the table: exclusive under
    /// its name, shared under the key of the first free slot, which
    /// becomes its uid. Answers false when it cannot be held: taken, or
    /// its booker holds the name already.
    pub(super) fn hold(&mut self, booking: &mut Booking, mode: Mode) -> bool {
        let name = booking.uid;
        if mode == Mode::Exclusive {
            return self.groups.held(&name) == 0 && self.bookings.insert(*booking);
        }
        if self.held_with(&name, &booking.handshake).is_some() || !self.room_for(&name, mode) {
            return false;
        }
        let key = self.groups.free_key(&name);
        booking.uid = key;
        if !self.groups.join(name, &key, mode) {
            return false;
        }
        if self.bookings.insert(*booking) {
            return true;
        }
        self.groups.leave(&key);
        false
    }

    /// Takes back a shared booking recorded before a restart, as
    /// [`restore`](Registry::restore) does an exclusive one: `booking`'s
    /// uid is the slot key it was held under, `name` and `mode` those it
    /// was granted for. Answers false when the key is no slot of `name`,
    /// is held, another mode is in force, or the table is full. It keeps
    /// its fencing token, and later grants take greater ones.
    pub fn restore_shared(&mut self, name: Uid, mode: Mode, mut booking: Booking) -> bool {
        booking.checked = self.checks;
        self.resume_tokens_after(booking.token);
        let key = booking.uid;
        let fits = mode != Mode::Exclusive
            && self.bookings.get(&name).is_none()
            && self.bookings.len() < self.limits.max_bookings
            && self.bookings.get(&key).is_none()
            && self.groups.mode(&name).is_none_or(|held| held == mode);
        if !fits || !self.groups.join(name, &key, mode) {
            return false;
        }
        self.bookings.insert(booking);
        self.users.take(booking.user, Counter::Bookings);
        self.sweep_later(booking.since);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keys_are_told_apart_from_names_and_from_each_other() {
        let name = Uid::from_name("jobs");
        let (first, second) = (slot_key(&name, 0), slot_key(&name, 1));
        assert_ne!(first, second);
        assert_ne!(first, slot_key(&Uid::from_name("other jobs"), 0));
        assert!(is_slot_key(&first) && !is_slot_key(&name));
        assert_eq!((index_of(&second), stem_of(&second)), (1, stem(&name)));
    }

    #[test]
    fn the_first_free_slot_is_taken_and_the_group_goes_with_its_last_holder() {
        let mut groups = Groups::default();
        let name = Uid::from_name("jobs");
        for index in 0..3 {
            let key = groups.free_key(&name);
            assert_eq!(key, slot_key(&name, index));
            assert!(groups.join(name, &key, Mode::Slots(3)));
        }
        assert_eq!(groups.leave(&slot_key(&name, 1)), Some(name));
        assert_eq!(groups.free_key(&name), slot_key(&name, 1));
        assert!(!groups.join(name, &slot_key(&name, 1), Mode::Shared));
        assert_eq!(groups.lock_of(&slot_key(&name, 2)), Some(name));
        groups.leave(&slot_key(&name, 0));
        groups.leave(&slot_key(&name, 2));
        assert_eq!(groups.mode(&name), None);
        assert_eq!(groups.lock_of(&slot_key(&name, 2)), None);
    }
}
