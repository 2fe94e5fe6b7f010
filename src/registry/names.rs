//! Names: what our clients say a booked uid is the id of, kept beside the
//! booking for LIST, and only when it is true.

use super::{Booking, Registry, User};
use crate::uid::Uid;

impl<R: Copy + PartialEq> Registry<R> {
    /// Names the booking under the key `key`, just granted to a request
    /// from `user` that carried `name`, if the uid it was granted for (the
    /// key itself, or the name of the slot key of a shared booking) is the
    /// id of that name: of the name itself, or of the name for `user`
    /// alone. Nobody labels a lock with
    /// a name it is not the id of, so another user's lock cannot be shown
    /// under a lie. Answers whether the name is kept; a booking no longer
    /// held keeps none.
    pub fn name(&mut self, key: &Uid, user: User, name: Box<[u8]>) -> bool {
        self.lock_of(key).is_named_by(&name, user) && self.bookings.set_name(key, name)
    }

    /// The name of the booking of `uid`, if it is held and has one.
    pub fn name_of(&self, uid: &Uid) -> Option<&[u8]> {
        self.bookings.name(uid)
    }

    /// How many bookings have a name.
    pub fn names(&self) -> usize {
        self.bookings.names()
    }

    /// The booking in `slot` of the table, if it is used: slots are dense
    /// (`0..len()`), and a removal moves the last booking into the slot
    /// it frees, so a walk from the last slot down to 0 meets every
    /// booking held all along at least once, whatever comes and goes
    /// between its steps.
    pub fn booking_at(&self, slot: usize) -> Option<&Booking> {
        self.bookings.at(slot)
    }
}
