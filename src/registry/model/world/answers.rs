//! Carrying out the registry's actions in the modelled world, and
//! checking every answer against what the world knows.

use crate::handshake::Handshake;
use super::{Kind, World, client_of};
use crate::registry::model::{SENDER, handshake, number, uid};
use crate::registry::{Action, Answer, Refusal};

impl World {
    /// Carries out the actions of one registry call. Grants that cannot be
    /// delivered are reported after them all, as the reactor does: by then
    /// the registry has served the rest of the uid's pending requests. The
    /// ends of connections that closed before they were watched come last,
    /// as the reactor hears of them once it polls again.
    pub(super) fn carry_out(&mut self, mut actions: Vec<Action<u32>>) {
        while !actions.is_empty() {
            let mut undelivered = Vec::new();
            let mut watched = Vec::new();
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Verify { uid, handshake, .. } => {
                        let u = number(&uid);
                        assert!(
                            self.in_flight[u as usize].is_none(),
                            "two verifications: {:?}",
                            self.trace
                        );
                        self.in_flight[u as usize] = Some(handshake);
                    }
                    Action::Dropped { uid } => assert_eq!(
                        self.table[number(&uid) as usize],
                        None,
                        "dropped a booking without proof of death: {:?}",
                        self.trace
                    ),
                    Action::Pending { to } => {
                        self.watch(to);
                        watched.push(to);
                    }
                    Action::CloseLine { to } => self.line_closed(to),
                    Action::Queued { to } => {
                        let pending = self.pending.get_mut(&to).expect("queued, not pending");
                        assert!(
                            matches!(pending.kind, Kind::Wait | Kind::Line),
                            "{:?}",
                            self.trace
                        );
                        pending.queued = Some(self.next_queued);
                        self.next_queued += 1;
                        self.watch(to);
                        watched.push(to);
                    }
                    Action::Reply { to, answer } => {
                        undelivered.extend(self.answered(to, Ok(answer)));
                    }
                    Action::Refuse { to, why } => {
                        undelivered.extend(self.answered(to, Err(why)));
                    }
                }
            }
            // Dropping an undelivered grant may hand the uid to the next
            // waiter: more actions.
            for (u, hs) in undelivered {
                if self.table[u as usize] == Some(hs) {
                    self.table[u as usize] = None;
                }
                self.registry.grant_undelivered(uid(u), hs, &mut actions);
            }
            // A client that left before it was watched closed its
            // connection: the reactor tells the next time it polls.
            for r in watched {
                if self.pending.contains_key(&r) {
                    self.report_end(r, &mut actions);
                }
            }
        }
    }

    /// Takes the answer to request `r`; answers the uid and handshake of a
    /// grant its requester can no longer receive.
    fn answered(&mut self, r: u32, answer: Result<Answer, Refusal>) -> Option<(u8, Handshake)> {
        let pending = self
            .pending
            .remove(&r)
            .unwrap_or_else(|| panic!("request {r} answered twice: {:?}", self.trace));
        assert!(
            !pending.left,
            "request {r} answered after its connection ended: {:?}",
            self.trace
        );
        let u = pending.uid;
        self.check_per_user(&pending, answer);
        let Some(c) = pending.client else {
            let holder = self.table[u as usize];
            match answer {
                Ok(Answer::Delivered) => assert!(
                    holder.is_some_and(|hs| self.clients[client_of(hs)].alive),
                    "{:?}",
                    self.trace
                ),
                Ok(Answer::NoHolder) => assert_eq!(holder, None, "{:?}", self.trace),
                Ok(Answer::Declined) => assert!(holder.is_some(), "{:?}", self.trace),
                Err(Refusal::Full { limit, share }) => {
                    self.check_full_for(SENDER, u, limit, share);
                }
                Err(Refusal::Inconclusive | Refusal::OtherUsersId) => {}
                other => panic!("{other:?} to a notify: {:?}", self.trace),
            }
            return None;
        };
        if !pending.abandoned {
            self.clients[c].waiting = None;
        }
        let listening = self.clients[c].alive && !pending.abandoned;
        let mine = Some(handshake(c as u32));
        match (pending.kind, answer) {
            (Kind::Book | Kind::Wait, Ok(Answer::Granted)) | (Kind::Line, Ok(Answer::NoLine)) => {
                self.check_grant(r, &pending, mine, false);
                self.check_token(u, mine);
            }
            (Kind::Line, Ok(Answer::Lined)) => {
                self.check_grant(r, &pending, mine, true);
                self.check_token(u, mine);
            }
            _ => {}
        }
        if pending.kind == Kind::Attach {
            self.answered_attach(r, c, u, answer, listening);
            return None;
        }
        let slot = &mut self.table[u as usize];
        match (pending.kind, answer) {
            (Kind::Book | Kind::Wait, Ok(Answer::Granted)) | (Kind::Line, Ok(Answer::NoLine)) => {
                *slot = mine;
                if !listening {
                    // The reply cannot reach a process that is gone or
                    // stopped listening.
                    return mine.map(|hs| (u, hs));
                }
                self.clients[c].holds |= 1 << u;
            }
            (Kind::Line, Ok(Answer::Lined)) => {
                *slot = mine;
                if !listening {
                    // Its connection closed while it waited unwatched
                    // behind a verification: the reactor finds it closed
                    // and cannot deliver the grant.
                    return mine.map(|hs| (u, hs));
                }
                self.lines[u as usize] = Some((c, r));
                self.clients[c].holds |= 1 << u;
            }
            (Kind::Book, Ok(Answer::Denied)) => {}
            (Kind::Wait | Kind::Line, Ok(Answer::Denied)) => {
                let own_verification_failed = self.resolved == mine && self.proved_alive != mine;
                let no_time = pending.until <= self.now && pending.queued.is_none();
                assert!(
                    pending.until <= self.now || own_verification_failed || no_time,
                    "a waiter denied before its time: {:?}",
                    self.trace
                );
            }
            (Kind::CheckOut, Ok(Answer::CheckedOut)) => {
                assert_eq!(*slot, mine, "released by a non-holder: {:?}", self.trace);
                *slot = None;
                self.clients[c].holds &= !(1 << u);
                // Checked out on its line, which the reactor then closes;
                // one checked out elsewhere is closed by `CloseLine`.
                if self.lines[u as usize].is_some_and(|(_, line)| line == r) {
                    self.lines[u as usize] = None;
                }
            }
            (Kind::CheckOut, Ok(Answer::NotCheckedOut)) => {
                assert_ne!(
                    *slot, mine,
                    "a holder could not check out: {:?}",
                    self.trace
                )
            }
            (_, Err(Refusal::Full { limit, share })) => self.check_full(c, u, limit, share),
            (_, Err(Refusal::Inconclusive | Refusal::OtherUsersId)) => {}
            other => panic!("unexpected {other:?}: {:?}", self.trace),
        }
        None
    }
}
