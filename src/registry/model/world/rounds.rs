//! The modelled world's rounds of reclaiming at the bookings bound: one
//! per scope, among the scope's own bookings, each waiting for its
//! verifications, and the order in which they pick holders.

use super::World;
use crate::registry::model::{number, uid};
use crate::registry::reclaim::{ROUND, ROUNDS, Scope};
use crate::registry::{Booking, Verdict, Waiter};
use crate::handshake::Handshake;

impl World {
    /// The requests parked for rounds of reclaiming, in all scopes.
    pub(super) fn parked(&self) -> impl Iterator<Item = &Waiter<u32>> {
        let reclaims = self.registry.reclaims.values();
        reclaims.flat_map(|reclaim| reclaim.parked.iter())
    }

    /// Every round verifies a few bookings of its own scope, each held by
    /// the holder it verifies and with its verification in flight; a
    /// request is parked only for a round in flight of its own user's
    /// share or of the total, and for no more than its rounds.
    pub(super) fn check_rounds(&self) {
        for (&scope, reclaim) in &self.registry.reclaims {
            assert!(reclaim.round.len() <= ROUND, "{:?}", self.trace);
            assert!(
                reclaim.parked.is_empty() || !reclaim.round.is_empty(),
                "parked without a round: {:?}",
                self.trace
            );
            for &(id, handshake) in &reclaim.round {
                let holder = self
                    .registry
                    .held_with(&id, &handshake)
                    .expect("a round verifies holders");
                assert_eq!(holder.handshake, handshake, "{:?}", self.trace);
                assert_eq!(
                    self.in_flight[number(&id) as usize],
                    Some(handshake),
                    "a round waits for no verification: {:?}",
                    self.trace
                );
                if let Scope::Share(user) = scope {
                    assert_eq!(holder.user, user, "another user's round: {:?}", self.trace);
                }
            }
            for waiter in &reclaim.parked {
                assert!(waiter.rounds < ROUNDS, "{:?}", self.trace);
                if let Scope::Share(user) = scope {
                    assert_eq!(
                        waiter.user, user,
                        "parked in another user's round: {:?}",
                        self.trace
                    );
                }
            }
        }
    }

    /// The verification of `u`'s holder with `handshake` just ended with
    /// `verdict`, when the registry held `before`: if it kept the holder,
    /// that booking is now checked more recently than all of them, so no
    /// round picks it before the others. A candidate's verdict checks no
    /// holder: the same booker may be granted on a line in the same call,
    /// stamped with the count it came in at.
    pub(super) fn check_checked(
        &self,
        u: u8,
        handshake: Handshake,
        verdict: Verdict,
        before: &[Booking],
    ) {
        let was_holder = before
            .iter()
            .any(|held| held.uid == uid(u) && held.handshake == handshake);
        let kept = was_holder && matches!(verdict, Verdict::Alive | Verdict::Silent);
        let Some(holder) = self
            .registry
            .held_with(&uid(u), &handshake)
            .filter(|_| kept)
        else {
            return;
        };
        for other in before.iter().filter(|other| other.uid != holder.uid) {
            assert!(
                other.checked < holder.checked,
                "a booking checked just now is not the last checked: {:?}",
                self.trace
            );
        }
    }
}
