//! The harness of the registry's tests: a registry whose requesters are
//! client numbers, the actions they expect, and the limits most use.

use super::*;

pub(super) const ROOMY: Limits = limits(100, 100);

/// A registry whose requesters are client numbers, and whose actions are
/// collected for the test to look at.
pub(super) struct Harness {
    pub(super) registry: Registry<u32>,
}

impl Harness {
    pub(super) fn new(limits: Limits) -> Harness {
        Harness {
            registry: Registry::new(limits),
        }
    }

    /// The actions a request brings, but for `Pending`, which the tests of
    /// pending requests look at on their own.
    pub(super) fn request(&mut self, client: u32, ask: Ask) -> Vec<Action<u32>> {
        let mut out = Vec::new();
        self.registry
            .request(client, LOCAL, user(client), ask, &mut out);
        out.retain(|action| !matches!(action, Action::Pending { .. }));
        out
    }

    pub(super) fn verified(&mut self, u: u8, verdict: Verdict) -> Vec<Action<u32>> {
        let mut out = Vec::new();
        self.registry.verified(uid(u), verdict, &mut out);
        out
    }

    /// The connection of `client`, about `u`, ended.
    pub(super) fn ended(&mut self, client: u32, u: u8) -> Vec<Action<u32>> {
        let mut out = Vec::new();
        self.registry.ended(client, uid(u), &mut out);
        out
    }

    pub(super) fn grant_undelivered(&mut self, uid: Uid, handshake: Handshake) -> bool {
        self.registry
            .grant_undelivered(uid, handshake, &mut Vec::new())
    }

    pub(super) fn holder_handshake(&self, u: u8) -> Option<Handshake> {
        self.registry
            .holder(&uid(u))
            .map(|booking| booking.handshake)
    }

    /// Books `u` for `client` on a free uid, with the client alive.
    pub(super) fn grant(&mut self, u: u8, client: u32) {
        assert_eq!(self.request(client, book(u, client)), [verify(u, client)]);
        assert_eq!(
            self.verified(u, Verdict::Alive),
            [answer(client, Answer::Granted)]
        );
    }
}

pub(super) fn verify(u: u8, client: u32) -> Action<u32> {
    Action::Verify {
        uid: uid(u),
        handshake: handshake(client),
        at: SocketAddr::new(LOCAL.into(), port(client)),
        message_from: None,
    }
}

/// The verification of holder `client` that hands over `sender`'s message.
pub(super) fn verify_with_message(u: u8, client: u32, sender: u32) -> Action<u32> {
    Action::Verify {
        uid: uid(u),
        handshake: handshake(client),
        at: SocketAddr::new(LOCAL.into(), port(client)),
        message_from: Some(sender),
    }
}

pub(super) fn dropped(u: u8) -> Action<u32> {
    Action::Dropped { uid: uid(u) }
}

pub(super) fn answer(client: u32, answer: Answer) -> Action<u32> {
    Action::Reply { to: client, answer }
}

pub(super) fn refused(client: u32, why: Refusal) -> Action<u32> {
    Action::Refuse { to: client, why }
}

/// The refusal for the total of `limit`, not a share of it.
pub(super) fn total(limit: Limit) -> Refusal {
    Refusal::Full {
        limit,
        share: false,
    }
}
