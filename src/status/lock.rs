//! One lock as QUERY reports it: free, held by one holder, or held shared
//! or with slots by several, and how many wait.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::ParseStatusError;

/// The most holders of a lock held shared a QUERY line names (it names
/// how many there are in all): so that the line stays short enough for
/// one write to a fresh socket.
pub const MAX_LISTED_HOLDERS: usize = 32;

/// One lock, as QUERY reports it: who holds it and how many wait.
///
/// ```
/// use namaste::status::{Holder, LockStatus};
///
/// let line = "held since=1800000000 user=1000 address=127.0.0.1 port=40123 line=yes token=42 waiters=2";
/// let lock: LockStatus = line.parse().unwrap();
/// assert_eq!(lock.holder.map(|holder| holder.user), Some(Some(1000)));
/// assert_eq!(lock.holder.map(|holder| holder.line), Some(Some(true)));
/// assert_eq!(lock.holder.map(|holder| holder.token), Some(Some(42)));
/// assert_eq!(lock.to_string(), line);
/// let free: LockStatus = "free waiters=0".parse().unwrap();
/// assert_eq!((free.holder, free.shared, free.waiters), (None, None, 0));
/// let shared = "shared slots=3 holders=2 waiters=0; since=1 user=0 address=127.0.0.1 port=5 line=yes token=3; since=2 user=0 address=127.0.0.1 port=6 line=yes token=4";
/// let lock: LockStatus = shared.parse().unwrap();
/// assert_eq!(lock.shared.as_ref().map(|held| (held.slots, held.count)), Some((Some(3), 2)));
/// assert_eq!(lock.to_string(), shared);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStatus {
    /// The holder, when the lock is held exclusive; `None` when it is
    /// free or held shared.
    pub holder: Option<Holder>,
    /// Its holders, when it is held shared or with slots.
    pub shared: Option<SharedHolders>,
    /// WAITs queued for the lock.
    pub waiters: u64,
}

/// The holders of a lock held shared or with slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedHolders {
    /// The count of slots in force; `None` when held shared.
    pub slots: Option<u32>,
    /// How many hold it.
    pub count: u64,
    /// The first [`MAX_LISTED_HOLDERS`] of them, the lowest slot first.
    pub holders: Vec<Holder>,
}

/// The holder of a lock, as the server knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// When it was granted, in seconds since the Unix epoch; `None` when
    /// the server does not know (a booking an earlier version recorded).
    pub since: Option<u64>,
    /// The OS user id that owns the holder's liveness responder; `None`
    /// when the kernel could not tell (the responder is gone, say: the
    /// holder is not verified to answer a QUERY).
    pub user: Option<u32>,
    /// The loopback address of the holder's liveness responder, where the
    /// server calls it (and where the processes that hold the lock can be
    /// found): the address the holder connected from.
    pub address: IpAddr,
    /// The port of the holder's liveness responder.
    pub port: u16,
    /// Whether the booking has a line (its holder's connection, kept
    /// open): `None` from a server that keeps none (an older one).
    pub line: Option<bool>,
    /// The fencing token of its grant: `None` from a server that gives
    /// none (an older one).
    pub token: Option<u64>,
}

impl LockStatus {
    /// Every holder named: the exclusive one, or the shared ones listed.
    pub fn holders(&self) -> impl Iterator<Item = &Holder> {
        self.holder
            .iter()
            .chain(self.shared.iter().flat_map(|shared| &shared.holders))
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unknown = |value: Option<String>| value.unwrap_or_else(|| "?".into());
        write!(
            f,
            "since={} user={} address={} port={}",
            unknown(self.since.map(|since| since.to_string())),
            unknown(self.user.map(|user| user.to_string())),
            self.address,
            self.port,
        )?;
        match self.line {
            Some(true) => f.write_str(" line=yes")?,
            Some(false) => f.write_str(" line=no")?,
            None => {}
        }
        if let Some(token) = self.token {
            write!(f, " token={token}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(holder) = self.holder {
            return write!(f, "held {holder} waiters={}", self.waiters);
        }
        let Some(shared) = &self.shared else {
            return write!(f, "free waiters={}", self.waiters);
        };
        f.write_str("shared")?;
        if let Some(slots) = shared.slots {
            write!(f, " slots={slots}")?;
        }
        write!(f, " holders={} waiters={}", shared.count, self.waiters)?;
        for holder in &shared.holders {
            write!(f, "; {holder}")?;
        }
        Ok(())
    }
}

/// The words of a line, each taken by its name in order.
struct Words<'a> {
    words: std::iter::Peekable<std::str::Split<'a, char>>,
    line: &'a str,
}

impl<'a> Words<'a> {
    fn new(part: &'a str, line: &'a str) -> Words<'a> {
        Words {
            words: part.split(' ').peekable(),
            line,
        }
    }

    fn error(&self) -> ParseStatusError {
        ParseStatusError(self.line.to_string())
    }

    /// The value of the next word if it is `name=VALUE`.
    fn text(&mut self, name: &str) -> Result<&'a str, ParseStatusError> {
        self.words
            .next_if(|word| {
                word.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('='))
            })
            .and_then(|word| word.strip_prefix(name))
            .and_then(|word| word.strip_prefix('='))
            .ok_or_else(|| self.error())
    }

    /// A number, or `None` for `?`.
    fn number(&self, value: &str) -> Result<Option<u64>, ParseStatusError> {
        match value {
            "?" => Ok(None),
            value => value.parse::<u64>().map(Some).map_err(|_| self.error()),
        }
    }

    fn known(&mut self, name: &str) -> Result<u64, ParseStatusError> {
        let value = self.text(name)?;
        self.number(value)?.ok_or_else(|| self.error())
    }

    fn holder(&mut self) -> Result<Holder, ParseStatusError> {
        let line = self.line;
        let error = || ParseStatusError(line.to_string());
        let since = self.text("since")?;
        let user = self.text("user")?;
        Ok(Holder {
            since: self.number(since)?,
            user: self
                .number(user)?
                .map(|user| u32::try_from(user).map_err(|_| error()))
                .transpose()?,
            address: self.text("address")?.parse().map_err(|_| error())?,
            port: u16::try_from(self.known("port")?).map_err(|_| error())?,
            // Only ours since lines: an older server's line has none.
            line: match self.text("line") {
                Ok("yes") => Some(true),
                Ok("no") => Some(false),
                Ok(_) => return Err(error()),
                Err(_) => None,
            },
            // Only ours since fencing tokens.
            token: match self.text("token") {
                Ok(token) => Some(token.parse().map_err(|_| error())?),
                Err(_) => None,
            },
        })
    }

    /// Nothing may follow.
    fn end(mut self) -> Result<(), ParseStatusError> {
        match self.words.next() {
            None => Ok(()),
            Some(_) => Err(self.error()),
        }
    }
}

impl FromStr for LockStatus {
    type Err = ParseStatusError;

    fn from_str(line: &str) -> Result<LockStatus, ParseStatusError> {
        let error = || ParseStatusError(line.to_string());
        let mut parts = line.trim_end().split("; ");
        let first = parts.next().ok_or_else(error)?;
        let (state, rest) = first.split_once(' ').ok_or_else(error)?;
        let mut words = Words::new(rest, line);
        let (holder, shared) = match state {
            "free" => (None, None),
            "held" => (Some(words.holder()?), None),
            "shared" => {
                let slots = match words.text("slots") {
                    Ok(slots) => Some(slots.parse().map_err(|_| error())?),
                    Err(_) => None,
                };
                let count = words.known("holders")?;
                let holders = parts
                    .by_ref()
                    .map(|part| {
                        let mut holder = Words::new(part, line);
                        let parsed = holder.holder()?;
                        holder.end().map(|()| parsed)
                    })
                    .collect::<Result<Vec<Holder>, _>>()?;
                (
                    None,
                    Some(SharedHolders {
                        slots,
                        count,
                        holders,
                    }),
                )
            }
            _ => return Err(error()),
        };
        let waiters = words.known("waiters")?;
        words.end()?;
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(LockStatus {
            holder,
            shared,
            waiters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_line_round_trips_with_and_without_what_is_unknown() {
        for line in [
            "free waiters=0",
            "free waiters=3",
            "held since=1800000000 user=0 address=127.0.0.1 port=1 waiters=0",
            "held since=? user=? address=::1 port=65535 waiters=64",
            "held since=1 user=1 address=127.0.0.5 port=2 waiters=0",
            "held since=1 user=1 address=127.0.0.5 port=2 line=yes waiters=0",
            "held since=? user=? address=::1 port=3 line=no waiters=1",
            "held since=1 user=1 address=127.0.0.5 port=2 line=yes token=1 waiters=0",
            "held since=? user=? address=::1 port=3 line=no token=18446744073709551615 waiters=1",
            "shared holders=0 waiters=2",
            "shared slots=3 holders=40 waiters=0; since=1 user=1 address=127.0.0.5 port=2 line=yes token=1",
        ] {
            let lock: LockStatus = line.parse().unwrap();
            assert_eq!(lock.to_string(), line);
        }
    }

    #[test]
    fn refuses_what_is_not_a_lock_line() {
        for line in [
            "",
            "held",
            "free",
            "taken waiters=0",
            "free waiters=?",
            "free waiters=0 more",
            "shared waiters=0",
            "shared holders=1 waiters=0 ; since=1",
            "shared slots=x holders=1 waiters=0",
            "shared holders=1 waiters=0; since=1 user=1 address=127.0.0.1 port=1 extra=1",
            "held since=1 user=1 address=127.0.0.1 port=1 waiters=0; since=1 user=1 address=127.0.0.1 port=1",
            "held since=1 user=1 address=127.0.0.1 port=? waiters=0",
            "held since=1 user=1 address=127.0.0.1 port=70000 waiters=0",
            "held since=1 user=4294967296 address=127.0.0.1 port=1 waiters=0",
            "held user=1 since=1 address=127.0.0.1 port=1 waiters=0",
            "held since=1 user=1 port=1 waiters=0",
            "held since=1 user=1 address=? port=1 waiters=0",
            "held since=1 user=1 address=localhost port=1 waiters=0",
            "held since=1 user=1 address=127.0.0.1 port=1 line=maybe waiters=0",
            "held since=1 user=1 address=127.0.0.1 port=1 line=yes token=? waiters=0",
            "held since=1 user=1 address=127.0.0.1 port=1 line=yes token=-1 waiters=0",
        ] {
            assert_eq!(
                line.parse::<LockStatus>(),
                Err(ParseStatusError(line.into())),
                "{line}"
            );
        }
    }
}
