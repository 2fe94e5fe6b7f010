//! The STATUS and QUERY replies: one line of text each, written by the
//! server and read by the client.

mod lock;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use lock::{Holder, LockStatus, MAX_LISTED_HOLDERS, SharedHolders};

/// The server's counters, as STATUS reports them.
///
/// ```
/// use namaste::status::Status;
///
/// let line = "namaste 0.1.0 bookings=2 connections=1 requests=40 verifications_failed=3 uptime=61s lines=1 names=1 tokens=17";
/// let status: Status = line.parse().unwrap();
/// assert_eq!((status.bookings, status.lines, status.names, status.tokens), (2, Some(1), Some(1), Some(17)));
/// assert_eq!(status.to_string(), line);
/// // An older server says nothing of tokens, an older one nothing of
/// // names either, the oldest nothing of lines.
/// let older: Status = line.strip_suffix(" tokens=17").unwrap().parse().unwrap();
/// assert_eq!((older.names, older.tokens), (Some(1), None));
/// let old: Status = line.strip_suffix(" names=1 tokens=17").unwrap().parse().unwrap();
/// assert_eq!((old.lines, old.names), (Some(1), None));
/// let oldest: Status = line.strip_suffix(" lines=1 names=1 tokens=17").unwrap().parse().unwrap();
/// assert_eq!(oldest.lines, None);
/// // Root is told what each OS user uses, others their own use.
/// let used = format!("{line} use=0:2,1,0,0 use=1000:0,0,3,1");
/// let status: Status = used.parse().unwrap();
/// assert_eq!(status.usage[1].user, 1000);
/// assert_eq!(status.usage[1].waiters, 3);
/// assert_eq!(status.to_string(), used);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The server's version.
    pub version: String,
    /// Bookings held now.
    pub bookings: u64,
    /// Connections open now, the STATUS request's own included.
    pub connections: u64,
    /// Requests answered or refused since the server started.
    pub requests: u64,
    /// Verifications that found no live process.
    pub verifications_failed: u64,
    /// Time since the server started, in whole seconds.
    pub uptime: Duration,
    /// Lines kept now (connections on which holders keep their bookings);
    /// `None` from a server that keeps none (an older one).
    pub lines: Option<u64>,
    /// Bookings that have a name (given by their booker, shown by LIST);
    /// `None` from a server that keeps none (an older one).
    pub names: Option<u64>,
    /// The last fencing token given to a grant, or the count the server
    /// started above (the clock, in microseconds, or its state file's last);
    /// `None` from a server that gives none (an older one).
    pub tokens: Option<u64>,
    /// What each OS user uses of the server's limits, by user: every user
    /// that uses any when root asks, the asker's own use otherwise; empty
    /// from an older server.
    pub usage: Vec<UserUse>,
}

/// What one OS user uses of the server's limits, each of which it may take
/// a share of (`namaste run --shares`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserUse {
    /// The OS user id; `u32::MAX` stands for the users the kernel could
    /// not tell, who share one share.
    pub user: u32,
    /// Bookings held.
    pub bookings: u64,
    /// Lines kept (bookings held on their holder's connection).
    pub lines: u64,
    /// WAITs queued for held ids.
    pub waiters: u64,
    /// Requests pending behind verifications.
    pub pending: u64,
}

/// `use=USER:BOOKINGS,LINES,WAITERS,PENDING`, as the status line carries it.
impl fmt::Display for UserUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "use={}:{},{},{},{}",
            self.user, self.bookings, self.lines, self.waiters, self.pending
        )
    }
}

impl UserUse {
    /// The use a `use=` word of a status line carries, if it is one.
    fn parse(word: &str) -> Option<UserUse> {
        let (user, counts) = word.strip_prefix("use=")?.split_once(':')?;
        let mut counts = counts.split(',').map(str::parse::<u64>);
        let mut next = || counts.next()?.ok();
        let used = UserUse {
            user: user.parse().ok()?,
            bookings: next()?,
            lines: next()?,
            waiters: next()?,
            pending: next()?,
        };
        next().is_none().then_some(used)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "namaste {} bookings={} connections={} requests={} verifications_failed={} uptime={}s",
            self.version,
            self.bookings,
            self.connections,
            self.requests,
            self.verifications_failed,
            self.uptime.as_secs()
        )?;
        if let Some(lines) = self.lines {
            write!(f, " lines={lines}")?;
        }
        if let Some(names) = self.names {
            write!(f, " names={names}")?;
        }
        if let Some(tokens) = self.tokens {
            write!(f, " tokens={tokens}")?;
        }
        self.usage.iter().try_for_each(|used| write!(f, " {used}"))
    }
}

/// A line that is not a status line; holds the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStatusError(pub String);

impl fmt::Display for ParseStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Namaste status line: {:?}", self.0)
    }
}

impl std::error::Error for ParseStatusError {}

impl FromStr for Status {
    type Err = ParseStatusError;

    fn from_str(line: &str) -> Result<Status, ParseStatusError> {
        let error = || ParseStatusError(line.to_string());
        let mut words = line.trim_end().split(' ').peekable();
        if words.next() != Some("namaste") {
            return Err(error());
        }
        let version = words.next().ok_or_else(error)?.to_string();
        let mut counter = |name: &str| -> Result<u64, ParseStatusError> {
            let value = words
                .next_if(|word| {
                    word.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('='))
                })
                .and_then(|word| word.strip_prefix(name))
                .and_then(|word| word.strip_prefix('='))
                .ok_or_else(error)?;
            value
                .strip_suffix('s')
                .unwrap_or(value)
                .parse()
                .map_err(|_| error())
        };
        Ok(Status {
            version,
            bookings: counter("bookings")?,
            connections: counter("connections")?,
            requests: counter("requests")?,
            verifications_failed: counter("verifications_failed")?,
            uptime: Duration::from_secs(counter("uptime")?),
            // Only ours since lines: an older server's line ends before.
            lines: counter("lines").ok(),
            // Only ours since names.
            names: counter("names").ok(),
            // Only ours since fencing tokens.
            tokens: counter("tokens").ok(),
            // A newer server's words that this version does not know are
            // skipped, as older versions skip these.
            usage: words.filter_map(UserUse::parse).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_status_line() {
        for line in [
            "",
            "hello",
            "namaste 0.1.0",
            "namaste 0.1.0 bookings=x connections=1 requests=1 verifications_failed=0 uptime=1s",
            "namaste 0.1.0 connections=1 bookings=1 requests=1 verifications_failed=0 uptime=1s",
        ] {
            assert_eq!(line.parse::<Status>(), Err(ParseStatusError(line.into())));
        }
    }
}
