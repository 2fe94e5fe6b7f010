//! Carrying out the registry's actions in the modelled world, and
//! checking every answer against what the world knows.

use crate::handshake::Handshake;
use super::{Kind, World, client_of};
use crate::registry::model::{self, SENDER, handshake, number, uid};
use crate::registry::{Action, Answer, Mode, Refusal, is_slot_key, slot_key};

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
                    // A slot may be taken again in the same call: whose
                    // booking it was shows in the comparison of the
                    // tables after the event.
                    Action::Dropped { uid } if is_slot_key(&uid) => assert!(
                        (0..self.uids).any(|u| (0..self.clients.len() as u32)
                            .any(|slot| slot_key(&model::uid(u), slot) == uid)),
                        "dropped a slot of no uid: {:?}",
                        self.trace
                    ),
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
                self.release(u, hs);
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
                Ok(Answer::NoHolder) => assert!(self.is_free(u), "{:?}", self.trace),
                Ok(Answer::Declined) => assert!(!self.is_free(u), "{:?}", self.trace),
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
        let hs = handshake(c as u32);
        let mine = Some(hs);
        let granted = match (pending.kind, answer) {
            (Kind::Book | Kind::Wait, Ok(Answer::Granted)) | (Kind::Line, Ok(Answer::NoLine)) => {
                Some(false)
            }
            (Kind::Line, Ok(Answer::Lined)) => Some(true),
            _ => None,
        };
        if let Some(on_line) = granted {
            self.check_grant(r, &pending, mine, on_line);
            self.check_token(u, &hs);
        }
        if pending.kind == Kind::Attach {
            self.answered_attach(r, c, u, answer, listening);
            return None;
        }
        if let (Some(on_line), Some(hs)) = (granted, mine) {
            match pending.mode {
                Mode::Exclusive => self.table[u as usize] = mine,
                mode => {
                    let (holders, in_force) = &mut self.groups[u as usize];
                    holders.push(hs);
                    *in_force = Some(mode);
                }
            }
            if !listening {
                // The reply cannot reach a process that is gone or
                // stopped listening (or, on a line, whose connection
                // closed while it waited unwatched behind a
                // verification): the grant is undelivered.
                return Some((u, hs));
            }
            if on_line {
                self.lines.insert((u, c), r);
            }
            self.clients[c].holds |= 1 << u;
            if pending.mode != Mode::Exclusive {
                self.clients[c].shares |= 1 << u;
            }
            return None;
        }
        match (pending.kind, answer) {
            (Kind::Book, Ok(Answer::Denied)) => {}
            (Kind::Wait | Kind::Line, Ok(Answer::Denied)) => {
                let own_verification_failed = self.resolved == mine && self.proved_alive != mine;
                let no_time = pending.until <= self.now && pending.queued.is_none();
                // One booking of a uid per handshake: a client that holds
                // it, unbeknownst to itself, is denied another.
                let held_already = pending.mode != Mode::Exclusive && self.has(u, hs);
                assert!(
                    pending.until <= self.now || own_verification_failed || no_time || held_already,
                    "a waiter denied before its time: {:?}",
                    self.trace
                );
            }
            (Kind::Line, Ok(answer @ (Answer::SlotsInForce(_) | Answer::SharedInForce))) => {
                self.check_in_force(u, pending.mode, answer);
            }
            (Kind::CheckOut, Ok(Answer::CheckedOut)) => {
                assert!(self.has(u, hs), "released by a non-holder: {:?}", self.trace);
                self.release(u, hs);
                self.forget(c, u);
                // Checked out on its line, which the reactor then closes;
                // one checked out elsewhere is closed by `CloseLine`.
                if self.lines.get(&(u, c)) == Some(&r) {
                    self.lines.remove(&(u, c));
                }
            }
            (Kind::CheckOut, Ok(Answer::NotCheckedOut)) => {
                assert!(!self.has(u, hs), "a holder could not check out: {:?}", self.trace)
            }
            (_, Err(Refusal::Full { limit, share })) => self.check_full(c, u, limit, share),
            (_, Err(Refusal::Inconclusive | Refusal::OtherUsersId)) => {}
            other => panic!("unexpected {other:?}: {:?}", self.trace),
        }
        None
    }
}
