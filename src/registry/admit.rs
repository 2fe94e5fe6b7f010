//! Admitting a request: a per-user id only from its user, and room for it
//! behind its uid's verification within the bounds and the user's shares.

use std::collections::VecDeque;

use super::{Action, Ask, Counter, Refusal, Registry, User, Waiter, refuse};
use crate::wire::Limit;

impl<R: Copy + PartialEq> Registry<R> {
    /// Serves `waiter`, or puts it behind the verification in flight for
    /// its uid if there is room.
    pub(super) fn admit(&mut self, waiter: Waiter<R>, out: &mut Vec<Action<R>>) {
        let uid = waiter.ask.uid();
        let Some(pending) = self.pending.get(&uid) else {
            self.serve_pending(uid, VecDeque::new(), Some(waiter), false, out);
            return;
        };
        let mine = pending
            .waiting
            .iter()
            .filter(|w| w.user == waiter.user)
            .count();
        let for_id = pending.waiting.len();
        let limits = &self.limits;
        let full_for_id = limits.full(Limit::PendingForId, mine, for_id);
        // A check out frees what others wait for: it is never turned
        // away for the pending requests' sake in all.
        let full_in_all = match waiter.ask {
            Ask::CheckOut { .. } => None,
            _ => self.pending_full(waiter.user),
        };
        if let Some(why) = first_full([full_in_all, full_for_id]) {
            refuse(waiter.from, why, out);
            return;
        }
        if let Some(pending) = self.pending.get_mut(&uid) {
            pending.waiting.push_back(waiter);
        }
        self.pending_requests += 1;
        self.users.take(waiter.user, Counter::Pending);
        out.push(Action::Pending { to: waiter.from });
    }

    /// Why one more request of `user` cannot wait, pending or parked, if
    /// it cannot: its share of the requests pending in all, or the total.
    pub(super) fn pending_full(&self, user: User) -> Option<Refusal> {
        let mine = self.users.count(user, Counter::Pending);
        let limits = &self.limits;
        limits.full(Limit::Pending, mine, self.pending_requests)
    }
}

/// The refusal to tell of those a request meets: one for a share first, so
/// that a refusal for a total says that others are past theirs.
pub(super) fn first_full(refusals: [Option<Refusal>; 2]) -> Option<Refusal> {
    let for_total = |why: &Refusal| !matches!(why, Refusal::Full { share: true, .. });
    refusals.into_iter().flatten().min_by_key(for_total)
}

/// Whether `user` may ask `ask`: a per-user id is booked, waited for and
/// attached to by its own user alone, and messaged by it or root. A check
/// out needs the holder's handshake anyway.
pub(super) fn may_ask(user: User, ask: &Ask) -> bool {
    let Some(owner) = ask.uid().per_user_owner() else {
        return true;
    };
    match ask {
        Ask::CheckOut { .. } => true,
        Ask::Notify { .. } => user == owner || user == crate::owner::ROOT,
        Ask::Book { .. } | Ask::Wait { .. } | Ask::Attach { .. } => user == owner,
    }
}
