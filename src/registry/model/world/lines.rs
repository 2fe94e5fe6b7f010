//! The modelled world's lines: granted, checked out on or elsewhere,
//! closed by their process's death, lost in a restart and attached again.

use std::time::Instant;

use super::{Kind, Pending, World};
use crate::registry::model::{handshake, uid, user};
use crate::registry::{Action, Answer, Mode, Refusal, Registry, User};

impl Pending {
    pub(super) fn new(client: Option<usize>, kind: Kind, uid: u8, until: Instant) -> Pending {
        Pending {
            client,
            kind,
            uid,
            mode: Mode::Exclusive,
            abandoned: false,
            until,
            queued: None,
            watched: false,
            left: false,
        }
    }
}

impl World {
    /// The lines kept for the bookings of `of`.
    fn lines_of(&self, of: User) -> usize {
        let lined = |&&(_, c): &&(u8, usize)| user(c as u32) == of;
        self.lines.keys().filter(lined).count()
    }

    /// The line of client `c`'s booking of `u` closes without a check
    /// out: its end is the proof that frees the booking, as the last close
    /// of a lock file's descriptor.
    pub(super) fn end_line(&mut self, u: u8, c: usize, out: &mut Vec<Action<u32>>) {
        let r = self.lines.remove(&(u, c)).expect("a line");
        let hs = handshake(c as u32);
        let key = self.registry.held_with(&uid(u), &hs).map(|b| b.uid);
        self.release(u, hs);
        self.forget(c, u);
        let before = out.len();
        self.registry.ended(r, uid(u), out);
        assert!(
            key.is_some_and(|key| out.get(before) == Some(&Action::Dropped { uid: key })),
            "a line ended and its booking stayed: {:?}",
            self.trace
        );
    }

    /// The registry asks to close the line `to`, whose booking was checked
    /// out on another connection (answered just before).
    pub(super) fn line_closed(&mut self, to: u32) {
        let (u, c) = self
            .lines
            .iter()
            .find(|&(_, &line)| line == to)
            .map(|(&held, _)| held)
            .unwrap_or_else(|| panic!("closed {to}, which no line is: {:?}", self.trace));
        assert!(
            !self.has(u, handshake(c as u32)),
            "a line closed while held: {:?}",
            self.trace
        );
        self.lines.remove(&(u, c));
    }

    /// The server restarts: its bookings survive, as the state file keeps
    /// them; every connection closes unanswered, lines included, and every
    /// verification is forgotten.
    pub(super) fn restart(&mut self) {
        let mut registry = Registry::new(self.limits);
        registry.set_wall_clock(self.wall_clock);
        // The state file keeps the last token given, as it keeps the
        // bookings, each with its own.
        registry.resume_tokens_after(self.registry.last_token());
        for booking in self.registry.bookings() {
            let name = self.registry.lock_of(&booking.uid);
            let restored = match self.registry.lock(&name).map(|lock| lock.mode) {
                Some(mode @ (Mode::Shared | Mode::Slots(_))) => {
                    registry.restore_shared(name, mode, *booking)
                }
                _ => registry.restore(*booking),
            };
            assert!(restored, "{:?}", self.trace);
            assert_eq!(
                registry.holder(&booking.uid).map(|b| b.token),
                Some(booking.token),
                "a restored booking's token changed: {:?}",
                self.trace
            );
        }
        self.registry = registry;
        for pending in self.pending.values_mut() {
            pending.abandoned = true;
            pending.left = true;
        }
        for client in &mut self.clients {
            client.waiting = None;
        }
        self.lines.clear();
        self.in_flight.fill(None);
    }

    /// The answer to the ATTACH `r` of client `c` for `u`.
    pub(super) fn answered_attach(
        &mut self,
        r: u32,
        c: usize,
        u: u8,
        answer: Result<Answer, Refusal>,
        listening: bool,
    ) {
        let held = self.has(u, handshake(c as u32));
        match answer {
            Ok(Answer::Lined) => {
                assert!(held && listening, "{:?}", self.trace);
                assert!(!self.lines.contains_key(&(u, c)), "{:?}", self.trace);
                self.lines.insert((u, c), r);
            }
            Ok(Answer::NoLine) => assert!(
                held && (self.lines.contains_key(&(u, c))
                    || self.registry.lines() >= self.limits.max_lines
                    || self.lines_of(user(c as u32)) >= self.limits.share(self.limits.max_lines)),
                "attached without a line with room for one: {:?}",
                self.trace
            ),
            Ok(Answer::Lost) => assert!(!held, "a held booking lost: {:?}", self.trace),
            Err(Refusal::Full { limit, share }) => self.check_full(c, u, limit, share),
            other => panic!("{other:?} to an attach: {:?}", self.trace),
        }
    }
}
