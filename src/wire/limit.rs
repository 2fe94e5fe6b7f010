//! The bounds a request can be refused for, as the server names them to
//! our clients in the reply to a refused WAIT, LINE, ATTACH or NOTIFY.

use std::fmt;

/// The reply bits that say a bound was reached: `REPLY_FULL | code`, with
/// [`FULL_SHARE`] when it was the requester's own share of it.
pub const REPLY_FULL: u8 = 0x10;
/// Set in a [`REPLY_FULL`] reply when the requester's OS user had taken
/// its share of the bound (clear: the server's total was reached).
pub const FULL_SHARE: u8 = 0x08;

/// A bound of the server's, one user's share of which is
/// `max(1, bound / --shares)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Bookings held at once (`--max-bookings`).
    Bookings,
    /// WAITs queued for held ids, in all (`--max-waiters`).
    Waiters,
    /// WAITs queued for one held id (`--max-waiters-per-id`).
    WaitersForId,
    /// Requests pending behind verifications, in all (half of
    /// `--max-connections`).
    Pending,
    /// Requests pending behind the verification of one id
    /// (`--max-waiting`).
    PendingForId,
}

impl Limit {
    /// Every limit, in the order of their codes.
    pub const ALL: [Limit; 5] = [
        Limit::Bookings,
        Limit::Waiters,
        Limit::WaitersForId,
        Limit::Pending,
        Limit::PendingForId,
    ];

    /// Its number in a reply byte, 0..=4.
    pub fn code(self) -> u8 {
        match self {
            Limit::Bookings => 0,
            Limit::Waiters => 1,
            Limit::WaitersForId => 2,
            Limit::Pending => 3,
            Limit::PendingForId => 4,
        }
    }

    /// The limit numbered `code` in a reply byte, if any.
    pub fn from_code(code: u8) -> Option<Limit> {
        Limit::ALL.into_iter().find(|limit| limit.code() == code)
    }

    /// The reply byte that tells a client this limit was reached, and
    /// whether it was its own user's share of it.
    pub fn reply(self, share: bool) -> u8 {
        REPLY_FULL | self.code() | if share { FULL_SHARE } else { 0 }
    }

    /// The limit and whether it was the requester's share, if `byte` is a
    /// reply that says a limit was reached.
    pub fn of_reply(byte: u8) -> Option<(Limit, bool)> {
        if byte & !(FULL_SHARE | 0x07) != REPLY_FULL {
            return None;
        }
        Some((Limit::from_code(byte & 0x07)?, byte & FULL_SHARE != 0))
    }

    /// The server option that sets it, for messages.
    pub fn option(self) -> &'static str {
        match self {
            Limit::Bookings => "--max-bookings",
            Limit::Waiters => "--max-waiters",
            Limit::WaitersForId => "--max-waiters-per-id",
            Limit::Pending => "--max-connections",
            Limit::PendingForId => "--max-waiting",
        }
    }
}

/// What it bounds, for messages: "bookings", "waiters for one id", ...
impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Bookings => "bookings",
            Limit::Waiters => "waiters",
            Limit::WaitersForId => "waiters for one id",
            Limit::Pending => "requests pending behind verifications",
            Limit::PendingForId => "requests pending behind one id's verification",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_and_share_round_trips_through_its_reply_byte() {
        for limit in Limit::ALL {
            assert_eq!(Limit::from_code(limit.code()), Some(limit));
            for share in [false, true] {
                assert_eq!(Limit::of_reply(limit.reply(share)), Some((limit, share)));
            }
        }
    }

    #[test]
    fn other_replies_are_no_limit() {
        for byte in [0x00, 0x01, 0x02, 0x03, 0x04, 0x15, 0x1f, 0x20, 0x30, 0xff] {
            assert_eq!(Limit::of_reply(byte), None, "{byte:#04x}");
        }
    }
}
