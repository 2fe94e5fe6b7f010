//! The STATUS reply: one line of counters, written by the server and read
//! by the client.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The server's counters, as STATUS reports them.
///
/// ```
/// use namaste::status::Status;
///
/// let line = "namaste 0.1.0 bookings=2 connections=1 requests=40 verifications_failed=3 uptime=61s";
/// let status: Status = line.parse().unwrap();
/// assert_eq!(status.bookings, 2);
/// assert_eq!(status.to_string(), line);
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
        )
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
        let mut words = line.trim_end().split(' ');
        if words.next() != Some("namaste") {
            return Err(error());
        }
        let version = words.next().ok_or_else(error)?.to_string();
        let mut counter = |name: &str| -> Result<u64, ParseStatusError> {
            let value = words
                .next()
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
