//! Handshakes: the secret a booker gives the server with its booking, which
//! the server sends back to the holder's responder to prove it alive, and
//! which a check out must carry. Only the holder and the server know it.

use std::fmt;

use crate::uid::UID_LEN;

/// A booking's 64-byte secret. It travels where a [`Uid`](crate::Uid)
/// does in the 0.6.0 protocol, but is never one: an id is a public name,
/// this must be unguessable, new per booking, and compared in constant
/// time.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake([u8; UID_LEN]);

impl Handshake {
    /// A fresh handshake from the operating system's random source: new
    /// per booking, so no one can guess it or reuse an old one.
    pub fn random() -> Result<Handshake, getrandom::Error> {
        let mut bytes = [0; UID_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Handshake(bytes))
    }

    /// The handshake with these bytes, as read from the wire.
    pub const fn from_bytes(bytes: [u8; UID_LEN]) -> Handshake {
        Handshake(bytes)
    }

    /// The raw bytes, as they travel on the wire.
    pub fn as_bytes(&self) -> &[u8; UID_LEN] {
        &self.0
    }

    /// Compares secrets in time that does not depend on where they differ,
    /// so a peer cannot learn a handshake byte by byte from how fast
    /// wrong guesses are rejected.
    pub fn matches(&self, other: &Handshake) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0, |differences, (a, b)| differences | (a ^ b))
            == 0
    }
}

/// Shortened to its first 8 bytes: enough to tell handshakes apart in a
/// log line without giving one away whole.
impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8]
            .iter()
            .try_for_each(|byte| write!(f, "{byte:02x}"))?;
        f.write_str("…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_is_equality() {
        let secret = Handshake::from_bytes([0x5a; UID_LEN]);
        assert!(secret.matches(&secret));
        for at in [0, 31, 63] {
            let mut bytes = *secret.as_bytes();
            bytes[at] ^= 0x80;
            assert!(!secret.matches(&Handshake::from_bytes(bytes)));
        }
    }

    #[test]
    fn random_handshakes_differ() {
        assert_ne!(Handshake::random().unwrap(), Handshake::random().unwrap());
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let secret = Handshake::from_bytes([0xab; UID_LEN]);
        assert_eq!(format!("{secret:?}"), "abababababababab…");
    }
}
