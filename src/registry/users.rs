//! What each OS user takes of the registry's bounds, so that a request
//! past its user's share can be refused while others still get in.
//!
//! Only users that take something have an entry: memory follows the load,
//! not the number of users ever seen.

use std::collections::HashMap;

use super::events::{Use, User};

/// One of the counts kept per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counter {
    Bookings,
    Lines,
    Waiters,
    Pending,
}

/// The use of every user that uses anything.
#[derive(Clone, Default)]
pub(super) struct Users {
    uses: HashMap<User, Use>,
}

impl Users {
    /// How much of `counter` `user` takes now.
    pub fn count(&self, user: User, counter: Counter) -> usize {
        let mut used = self.uses.get(&user).copied().unwrap_or_default();
        *field(&mut used, counter)
    }

    /// `user` takes one more of `counter`.
    pub fn take(&mut self, user: User, counter: Counter) {
        *field(self.uses.entry(user).or_default(), counter) += 1;
    }

    /// `user` gives one of `counter` back.
    pub fn give(&mut self, user: User, counter: Counter) {
        let Some(used) = self.uses.get_mut(&user) else {
            return;
        };
        let count = field(used, counter);
        *count = count.saturating_sub(1);
        if *used == Use::default() {
            self.uses.remove(&user);
        }
    }

    /// Every user that takes anything, sorted by user.
    pub fn all(&self) -> Vec<(User, Use)> {
        let mut all: Vec<_> = self
            .uses
            .iter()
            .map(|(&user, &used)| (user, used))
            .collect();
        all.sort_unstable_by_key(|&(user, _)| user);
        all
    }
}

fn field(used: &mut Use, counter: Counter) -> &mut usize {
    match counter {
        Counter::Bookings => &mut used.bookings,
        Counter::Lines => &mut used.lines,
        Counter::Waiters => &mut used.waiters,
        Counter::Pending => &mut used.pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_that_gives_back_everything_leaves_no_entry() {
        let mut users = Users::default();
        users.take(5, Counter::Bookings);
        users.take(5, Counter::Pending);
        users.take(6, Counter::Lines);
        assert_eq!(users.count(5, Counter::Bookings), 1);
        users.give(5, Counter::Bookings);
        assert_eq!(users.all().len(), 2);
        users.give(5, Counter::Pending);
        users.give(7, Counter::Waiters);
        assert_eq!(
            users.all(),
            [(
                6,
                Use {
                    lines: 1,
                    ..Use::default()
                }
            )]
        );
        assert_eq!(users.uses.len(), 1);
    }
}
