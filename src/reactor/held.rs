//! What the reactor tells of held bookings: their records in the state
//! file (a shared holder's under its slot key, with its name and mode),
//! the fencing token or the count in force after a reply byte, and QUERY's
//! view of a lock.

use std::io;

use super::Server;
use super::journal::Recorded;
use crate::handshake::Handshake;
use crate::registry::{Answer, Booking, Mode, Registry};
use crate::status::{Holder, LockStatus, MAX_LISTED_HOLDERS, SharedHolders};
use crate::uid::Uid;
use crate::wire::{Request, TOKEN_LEN};

impl Server {
    /// The key the booking of `uid` held with `handshake` is kept under:
    /// `uid` for an exclusive one, its slot's key for a shared one.
    pub(super) fn key_held_with(&self, uid: &Uid, handshake: &Handshake) -> Option<Uid> {
        self.registry.held_with(uid, handshake).map(|booking| booking.uid)
    }

    /// What answers `request` with `answer`: the reply byte, and after it,
    /// for a grant to a request that asked for it, the booking's fencing
    /// token; `None` if that booking is no longer the requester's.
    pub(super) fn reply_bytes(&self, request: &Request, answer: Answer) -> Option<Reply> {
        let mut reply = Reply {
            buf: [answer.byte(), 0, 0, 0, 0, 0, 0, 0, 0],
            len: 1,
        };
        let granted = matches!(answer, Answer::Granted | Answer::Lined | Answer::NoLine);
        if let (
            true,
            Request::Wait {
                uid,
                handshake,
                token: true,
                ..
            },
        ) = (granted, request)
        {
            let booking = self.registry.held_with(uid, handshake)?;
            reply.buf[1..].copy_from_slice(&booking.token.to_be_bytes());
            reply.len += TOKEN_LEN;
        }
        if let Answer::SlotsInForce(count) = answer {
            reply.buf[1..5].copy_from_slice(&count.to_be_bytes());
            reply.len += 4;
        }
        Some(reply)
    }

    /// Records in the state file, if there is one, that the booking under
    /// `key` is now held.
    pub(super) fn record_booked(&mut self, key: &Uid) -> io::Result<()> {
        let registry = &self.registry;
        let (Some(journal), Some(booking)) = (&mut self.journal, registry.holder(key)) else {
            return Ok(());
        };
        let group = registry.group_of(key);
        journal.booked(booking, group, registry.len(), recorded(registry))
    }

    /// Records in the state file, if there is one, that the booking under
    /// `key` is free.
    pub(super) fn record_released(&mut self, key: &Uid) -> io::Result<()> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        journal.released(key, self.registry.len(), recorded(&self.registry))
    }

    /// What QUERY tells of `uid`: the table as it stands, and the owner of
    /// each holder's responder as the kernel knows it. No holder is
    /// verified: a question must not make the server call anyone.
    pub(super) fn lock_status(&mut self, uid: &Uid) -> LockStatus {
        let Some(lock) = self.registry.lock(uid) else {
            return LockStatus {
                holder: None,
                shared: None,
                waiters: 0,
            };
        };
        let waiters = lock.waiters as u64;
        let count = lock.holders.len() as u64;
        let (mode, bookings): (Mode, Vec<Booking>) = (
            lock.mode,
            lock.holders
                .iter()
                .take(MAX_LISTED_HOLDERS)
                .map(|booking| **booking)
                .collect(),
        );
        let holders: Vec<Holder> = bookings.iter().map(|booking| self.holder(booking)).collect();
        let slots = match mode {
            Mode::Exclusive => {
                return LockStatus {
                    holder: holders.first().copied(),
                    shared: None,
                    waiters,
                };
            }
            Mode::Shared => None,
            Mode::Slots(n) => Some(n),
        };
        LockStatus {
            holder: None,
            shared: (count > 0).then_some(SharedHolders {
                slots,
                count,
                holders,
            }),
            waiters,
        }
    }

    /// What QUERY tells of the holder of `booking`.
    fn holder(&mut self, booking: &Booking) -> Holder {
        Holder {
            since: (booking.since != 0).then_some(booking.since),
            user: self.owners.of_listener(booking.responder()),
            address: booking.responder().ip(),
            port: booking.port,
            line: Some(self.registry.has_line(&booking.uid)),
            token: Some(booking.token),
        }
    }
}

/// Every booking held, with its group if shared, as the state file keeps
/// them.
fn recorded<R: Copy + PartialEq>(registry: &Registry<R>) -> impl Iterator<Item = Recorded<'_>> {
    registry
        .bookings()
        .map(|booking| (booking, registry.group_of(&booking.uid)))
}

/// A reply as written: its byte, and the fencing token when one was asked
/// for with a grant, or the count in force; a few bytes, never allocated.
pub(super) struct Reply {
    buf: [u8; 1 + TOKEN_LEN],
    len: usize,
}

impl Reply {
    /// The bytes to write.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
