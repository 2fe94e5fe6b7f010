//! The modelled world's OS users: each user's use recounted from the
//! registry's state, the shares it must stay within, the refusals for a
//! bound it must deserve, and per-user ids kept to their users.

use std::collections::BTreeMap;

use super::{Kind, Pending, World};
use crate::owner::ROOT;
use crate::registry::model::{SENDER, uid, user};
use crate::registry::{Answer, Checking, Refusal, Use, User};
use crate::wire::Limit;

impl World {
    /// Every user's use, counted afresh from the registry's state.
    fn recount(&self) -> BTreeMap<User, Use> {
        let registry = &self.registry;
        let mut uses: BTreeMap<User, Use> = BTreeMap::new();
        for booking in registry.bookings() {
            uses.entry(booking.user).or_default().bookings += 1;
            if registry.has_line(&booking.uid) {
                uses.entry(booking.user).or_default().lines += 1;
            }
        }
        for pending in registry.pending.values() {
            if let Checking::Candidate { booking, .. } = &pending.checking {
                uses.entry(booking.user).or_default().bookings += 1;
            }
            for waiter in &pending.waiting {
                uses.entry(waiter.user).or_default().pending += 1;
            }
        }
        for waiter in self.parked() {
            uses.entry(waiter.user).or_default().pending += 1;
        }
        for (_, waiter) in registry.waiting.all() {
            uses.entry(waiter.user).or_default().waiters += 1;
        }
        uses
    }

    /// Each user's use is what it holds and has waiting, and no user takes
    /// more than its share of bookings, lines or waiters.
    pub(super) fn check_users(&self) {
        let recount: Vec<_> = self.recount().into_iter().collect();
        assert_eq!(
            self.registry.usage(),
            recount,
            "use miscounted: {:?}",
            self.trace
        );
        let limits = &self.limits;
        for (user, used) in recount {
            for (limit, count, bound) in [
                ("bookings", used.bookings, limits.max_bookings),
                ("lines", used.lines, limits.max_lines),
                ("waiters", used.waiters, limits.max_waiters),
            ] {
                assert!(
                    count <= limits.share(bound),
                    "user {user} past its share of {limit}: {:?}",
                    self.trace
                );
            }
            for u in 0..self.uids {
                assert!(
                    self.registry.waiting.count_for_user(&uid(u), user)
                        <= limits.share(limits.max_waiters_per_id),
                    "user {user} past its share of waiters for {u}: {:?}",
                    self.trace
                );
            }
        }
    }

    /// The use of `limit` by `user` (for `u`, for a limit per id), that
    /// of everyone, and the limit's bound.
    fn use_of(&self, limit: Limit, user: User, u: u8) -> (usize, usize, usize) {
        let registry = &self.registry;
        let limits = &self.limits;
        let used = registry
            .usage()
            .into_iter()
            .find(|&(of, _)| of == user)
            .map_or_else(Use::default, |(_, used)| used);
        let id = uid(u);
        let pending_for_id = |of: Option<User>| {
            registry.pending.get(&id).map_or(0, |pending| {
                let waiting = pending.waiting.iter();
                waiting.filter(|w| of.is_none_or(|of| w.user == of)).count()
            })
        };
        match limit {
            Limit::Bookings => (
                used.bookings,
                registry.len() + registry.reserved,
                limits.max_bookings,
            ),
            Limit::Waiters => (used.waiters, registry.waiters(), limits.max_waiters),
            Limit::WaitersForId => (
                registry.waiting.count_for_user(&id, user),
                registry.waiters_for(&id),
                limits.max_waiters_per_id,
            ),
            Limit::Pending => (used.pending, registry.pending_requests, limits.max_pending),
            Limit::PendingForId => (
                pending_for_id(Some(user)),
                pending_for_id(None),
                limits.max_waiting,
            ),
        }
    }

    /// The request of client `c` about `u` was refused for `limit`.
    pub(super) fn check_full(&self, c: usize, u: u8, limit: Limit, share: bool) {
        self.check_full_for(user(c as u32), u, limit, share);
    }

    /// A request of `user` about `u` was refused for `limit`: for its
    /// share only at that share; for the total only when the users cannot
    /// all fit their shares under it, or some user is past its share, or
    /// (requests pending) the total is reached by what is never turned
    /// away.
    pub(super) fn check_full_for(&self, user: User, u: u8, limit: Limit, share_reached: bool) {
        let (mine, total, bound) = self.use_of(limit, user, u);
        let share = self.limits.share(bound);
        if share_reached {
            assert!(
                mine >= share,
                "{limit:?}: refused for its share at {mine} of {share}: {:?}",
                self.trace
            );
            return;
        }
        let users = self.users();
        let crowded = users.len() * share > bound;
        let someone_past = users
            .iter()
            .any(|&other| self.use_of(limit, other, u).0 > share);
        let unrefusable_in =
            matches!(limit, Limit::Pending | Limit::PendingForId) && total >= bound;
        assert!(
            crowded || someone_past || unrefusable_in,
            "{limit:?}: user {user} under its share refused for others' use: {:?}",
            self.trace
        );
    }

    /// The users of the clients and of the sender of messages.
    fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = (0..self.clients.len() as u32).map(user).collect();
        users.push(SENDER);
        users.sort_unstable();
        users.dedup();
        users
    }

    /// A request of a per-user id is refused exactly when another user
    /// sent it (a message, when neither its user nor root sent it).
    pub(super) fn check_per_user(&self, pending: &Pending, answer: Result<Answer, Refusal>) {
        let Some(owner) = uid(pending.uid).per_user_owner() else {
            assert_ne!(answer, Err(Refusal::OtherUsersId), "{:?}", self.trace);
            return;
        };
        let sender = pending.client.map_or(SENDER, |c| user(c as u32));
        let forbidden = match pending.kind {
            Kind::CheckOut => false,
            Kind::Notify => sender != owner && sender != ROOT,
            Kind::Book | Kind::Wait | Kind::Line | Kind::Attach => sender != owner,
        };
        assert_eq!(
            forbidden,
            answer == Err(Refusal::OtherUsersId),
            "{answer:?} to user {sender} for the id of user {owner}: {:?}",
            self.trace
        );
    }
}
