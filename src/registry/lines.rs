//! Lines: the bookings whose holder's own connection is kept open, and
//! what a line's grant, attach, misuse and end do to the table.

use super::{Action, Answer, Booking, Counter, Mode, Registry, User, reply};
use crate::handshake::Handshake;
use crate::uid::Uid;

impl<R: Copy + PartialEq> Registry<R> {
    /// The number of lines kept.
    pub fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Whether the booking of `uid` has a line.
    pub fn has_line(&self, uid: &Uid) -> bool {
        self.lines.contains_key(uid)
    }

    /// The `Lined` answer to the ATTACH of `from` for `uid` could not be
    /// written: its client never learns that the connection is the line,
    /// so the booking goes back to the call-back rules, unreleased. (An
    /// undelivered grant on a line is [`grant_undelivered`].)
    ///
    /// [`grant_undelivered`]: Registry::grant_undelivered
    pub fn attach_undelivered(&mut self, from: R, uid: Uid) {
        if let Some(key) = self.line_key(&uid, from) {
            self.lines.remove(&key);
            if let Some(&holder) = self.bookings.get(&key) {
                self.users.give(holder.user, Counter::Lines);
                self.sweep_later(holder.since);
            }
        }
    }

    /// Whether one more line can be kept for a booking of `user`: within
    /// its share, and the total.
    pub(super) fn room_for_line(&self, user: User) -> bool {
        self.lines.len() < self.limits.max_lines
            && self.users.count(user, Counter::Lines) < self.limits.share(self.limits.max_lines)
    }

    /// Grants `booking` to `from` in `mode` on its line, with no
    /// call-back: the request that just arrived on its open connection
    /// proves it alive.
    pub(super) fn grant_on_line(
        &mut self,
        from: R,
        mut booking: Booking,
        mode: Mode,
        out: &mut Vec<Action<R>>,
    ) {
        self.stamp(&mut booking);
        // Served one at a time, the uid has room here.
        if self.hold(&mut booking, mode) {
            self.users.take(booking.user, Counter::Bookings);
            self.users.take(booking.user, Counter::Lines);
            self.lines.insert(booking.uid, from);
            reply(from, Answer::Lined, out);
        } else {
            reply(from, Answer::Denied, out);
        }
    }

    /// The ATTACH of `from`: the booking of `uid`, if held with
    /// `handshake`, gets `from`'s connection as its line, unless it has
    /// one or no more can be kept.
    pub(super) fn attach(&mut self, from: R, uid: Uid, handshake: Handshake, out: &mut Vec<Action<R>>) {
        let held = self
            .held_with(&uid, &handshake)
            .map(|holder| (holder.uid, holder.user));
        // The line counts against the share of the booking's user, as
        // the booking does.
        let answer = match held {
            None => Answer::Lost,
            Some((key, user)) if self.lines.contains_key(&key) || !self.room_for_line(user) => {
                Answer::NoLine
            }
            Some((key, user)) => {
                self.users.take(user, Counter::Lines);
                self.lines.insert(key, from);
                Answer::Lined
            }
        };
        reply(from, answer, out);
    }

    /// The line of the booking of `uid` under `key` ended without a check
    /// out: as the last close of a lock file's descriptor, that ends the
    /// booking. It is recorded released, then the uid's queue is served,
    /// unless a verification for the uid is in flight, whose verdict
    /// serves it.
    pub(super) fn line_ended(&mut self, uid: Uid, key: Uid, out: &mut Vec<Action<R>>) {
        if self.release(&key).is_none() {
            return;
        }
        out.push(Action::Dropped { uid: key });
        self.serve_behind(uid, out);
    }

    /// Removes the booking under the key `uid`, its line, if it has one,
    /// and its slot, if it is shared.
    pub(super) fn release(&mut self, uid: &Uid) -> Option<Booking> {
        let lined = self.lines.remove(uid).is_some();
        let booking = self.bookings.remove(uid)?;
        self.groups.leave(uid);
        if lined {
            self.users.give(booking.user, Counter::Lines);
        }
        self.users.give(booking.user, Counter::Bookings);
        Some(booking)
    }
}
