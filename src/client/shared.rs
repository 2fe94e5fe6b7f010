//! Booking beside others: shared locks, and one of a count of slots (a
//! counting semaphore). Our server's requests alone carry a mode, on a
//! line and with the fencing token, so there is no fall-back to a
//! server that knows none: such a server closes the request, and the
//! caller sees [`Error::Refused`].

use std::num::NonZeroU32;
use std::time::Duration;

use super::{Booking, Client, Error};
use crate::uid::LockId;
use crate::wire::{MAX_WAIT, Mode, Request};

impl Client {
    /// Books `id` shared: granted beside any number of other shared
    /// holders, never beside an exclusive one. First come, first served
    /// across modes: a request shared waits behind an exclusive one queued
    /// before it. Answers [`Error::Held`] when it cannot be granted now,
    /// [`Error::SlotsInForce`] with the count in force when the lock is
    /// held or waited for with slots. A holder cannot turn its booking exclusive in place: it
    /// checks out and books again.
    pub fn book_shared(&self, id: impl Into<LockId>) -> Result<Booking, Error> {
        self.book_in_mode(id.into(), Mode::Shared, Duration::ZERO)
    }

    /// As [`book_shared`](Client::book_shared), waiting in the lock's
    /// queue for at most `timeout` (at most about 49.7 days, the longest a WAIT can ask for).
    pub fn book_wait_shared(
        &self,
        id: impl Into<LockId>,
        timeout: Duration,
    ) -> Result<Booking, Error> {
        self.book_in_mode(id.into(), Mode::Shared, timeout)
    }

    /// Books one of `slots` slots of `id`: at most `slots` holders at once,
    /// served in arrival order. The first request fixes the count while
    /// anyone holds or waits: another count is answered
    /// [`Error::SlotsInForce`] with the count in force, a shared lock
    /// [`Error::SharedInForce`]. Answers [`Error::Held`] when every slot is
    /// taken.
    pub fn book_slots(&self, id: impl Into<LockId>, slots: NonZeroU32) -> Result<Booking, Error> {
        self.book_in_mode(id.into(), Mode::Slots(slots.get()), Duration::ZERO)
    }

    /// As [`book_slots`](Client::book_slots), waiting in the lock's queue
    /// for at most `timeout` (at most about 49.7 days, the longest a WAIT can ask for).
    pub fn book_wait_slots(
        &self,
        id: impl Into<LockId>,
        slots: NonZeroU32,
        timeout: Duration,
    ) -> Result<Booking, Error> {
        self.book_in_mode(id.into(), Mode::Slots(slots.get()), timeout)
    }

    fn book_in_mode(&self, id: LockId, mode: Mode, timeout: Duration) -> Result<Booking, Error> {
        let (uid, wait) = (id.uid(), timeout.min(MAX_WAIT));
        self.book_by(&id, wait, |handshake, port| Request::Wait {
            uid,
            handshake,
            port,
            wait,
            line: true,
            token: true,
            mode,
        })
    }
}
