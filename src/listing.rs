//! The LIST reply: one line of text for every booking held, then `end`,
//! written by the server and read by the client.
//!
//! Names are arbitrary bytes, so a line carries a name in hex; every other
//! field is a number, an address or `?` (unknown), as in the QUERY line.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::status::ParseStatusError;
use crate::uid::Uid;
use crate::wire::Mode;

/// The line that ends a whole LIST reply: a reply cut short lacks it, and
/// a server that knows no LIST writes nothing at all.
pub const LIST_END: &str = "end";

/// One held lock, as LIST reports it.
///
/// ```
/// use namaste::listing::Listed;
///
/// let line = format!(
///     "uid={} user=1000 address=127.0.0.1 port=40123 since=1800000000 line=yes waiters=2 token=42 name=6564",
///     "ab".repeat(64)
/// );
/// let lock: Listed = line.parse().unwrap();
/// assert_eq!(lock.name.as_deref(), Some(&b"ed"[..]));
/// assert_eq!((lock.user, lock.waiters, lock.token), (Some(1000), 2, Some(42)));
/// assert_eq!(lock.to_string(), line);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The id held.
    pub uid: Uid,
    /// The name its booker gave, which the server checked is the uid's;
    /// `None` when none was given, or when the asker may not see it (the
    /// lock is another OS user's, and the asker is not root).
    pub name: Option<Vec<u8>>,
    /// The OS user whose request was granted the booking, as the kernel
    /// told; `None` when it could not tell (or for a booking restored from
    /// an older state file).
    pub user: Option<u32>,
    /// The loopback address of the holder's liveness responder.
    pub address: IpAddr,
    /// The port of the holder's liveness responder.
    pub port: u16,
    /// When it was granted, in seconds since the Unix epoch; `None` when
    /// the server does not know.
    pub since: Option<u64>,
    /// Whether the booking has a line (its holder's connection, kept open).
    pub line: bool,
    /// WAITs queued for the lock.
    pub waiters: u64,
    /// The fencing token of this holder's grant; `None` from a server
    /// that lists none (an older one).
    pub token: Option<u64>,
    /// How this holder holds it: a lock held shared or with slots is
    /// listed once for each of its holders.
    pub mode: Mode,
}

impl Listed {
    /// The mode as a word: `exclusive`, `shared`, or `slots:N`.
    pub fn mode_word(&self) -> String {
        match self.mode {
            Mode::Exclusive => "exclusive".to_string(),
            Mode::Shared => "shared".to_string(),
            Mode::Slots(n) => format!("slots:{n}"),
        }
    }
}

impl fmt::Display for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unknown = |value: Option<u64>| value.map_or_else(|| "?".into(), |v| v.to_string());
        write!(
            f,
            "uid={} user={} address={} port={} since={} line={} waiters={}",
            self.uid,
            unknown(self.user.map(u64::from)),
            self.address,
            self.port,
            unknown(self.since),
            if self.line { "yes" } else { "no" },
            self.waiters
        )?;
        if let Some(token) = self.token {
            write!(f, " token={token}")?;
        }
        // Left out when exclusive, as servers before shared locks write.
        if self.mode != Mode::Exclusive {
            write!(f, " mode={}", self.mode_word())?;
        }
        if let Some(name) = &self.name {
            f.write_str(" name=")?;
            name.iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
        }
        Ok(())
    }
}

impl FromStr for Listed {
    type Err = ParseStatusError;

    fn from_str(line: &str) -> Result<Listed, ParseStatusError> {
        let error = || ParseStatusError(line.to_string());
        let mut words = line.trim_end().split(' ').peekable();
        let mut text = |name: &str| {
            words
                .next_if(|word| word.split_once('=').is_some_and(|(key, _)| key == name))
                .and_then(|word| word.split_once('='))
                .map(|(_, value)| value)
        };
        let mut field = |name: &str| text(name).ok_or_else(error);
        let number = |value: &str| match value {
            "?" => Ok(None),
            value => value.parse::<u64>().map(Some).map_err(|_| error()),
        };
        Ok(Listed {
            uid: field("uid")?.parse().map_err(|_| error())?,
            user: number(field("user")?)?
                .map(|user| u32::try_from(user).map_err(|_| error()))
                .transpose()?,
            address: field("address")?.parse().map_err(|_| error())?,
            port: field("port")?.parse().map_err(|_| error())?,
            since: number(field("since")?)?,
            line: match field("line")? {
                "yes" => true,
                "no" => false,
                _ => return Err(error()),
            },
            waiters: number(field("waiters")?)?.ok_or_else(error)?,
            // Only ours since tokens are listed.
            token: text("token").map(number).transpose()?.flatten(),
            mode: match text("mode") {
                None => Mode::Exclusive,
                Some("shared") => Mode::Shared,
                Some(word) => word
                    .strip_prefix("slots:")
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .map(Mode::Slots)
                    .ok_or_else(error)?,
            },
            name: text("name")
                .map(from_hex)
                .transpose()
                .map_err(|()| error())?,
        })
    }
}

/// The bytes that `hex` spells, two digits each.
fn from_hex(hex: &str) -> Result<Vec<u8>, ()> {
    let digits = hex.as_bytes();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| ())?;
            u8::from_str_radix(text, 16).map_err(|_| ())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: Option<&[u8]>) -> Listed {
        Listed {
            uid: Uid::from_name("x"),
            name: name.map(<[u8]>::to_vec),
            user: None,
            address: IpAddr::from([127, 0, 0, 1]),
            port: 1,
            token: Some(7),
            since: None,
            line: false,
            waiters: 0,
            mode: Mode::Exclusive,
        }
    }

    #[test]
    fn a_shared_or_slotted_holder_round_trips_its_mode() {
        for mode in [Mode::Shared, Mode::Slots(3)] {
            let lock = Listed {
                mode,
                ..listed(Some(b"n"))
            };
            assert_eq!(lock.to_string().parse(), Ok(lock));
        }
        let good = listed(Some(b"n")).to_string();
        let slots = good.replace(" name=", " mode=slots:0 name=");
        assert!(slots.parse::<Listed>().is_err(), "{slots}");
    }

    #[test]
    fn any_name_round_trips_and_none_is_left_out() {
        for name in [None, Some(&b"a b\n\"\xff\x00"[..]), Some(&[0xfe; 255][..])] {
            let lock = listed(name);
            let line = lock.to_string();
            assert!(!line.contains('\n'));
            assert_eq!(line.parse(), Ok(lock));
        }
        assert!(!listed(None).to_string().contains("name="));
    }

    #[test]
    fn refuses_what_is_not_a_listed_lock() {
        let good = listed(Some(b"n")).to_string();
        for line in [
            String::new(),
            LIST_END.to_string(),
            good.replace("name=6e", "name=6"),
            good.replace("name=6e", "name=zz"),
            good.replace("name=6e", "name="),
            good.replace("line=no", "line=maybe"),
            good.replace("port=1", "port=?"),
            good.replace("waiters=0", "waiters=?"),
            good.replace("user=?", "user=4294967296"),
            good.replace("uid=", "id="),
        ] {
            assert!(line.parse::<Listed>().is_err(), "{line}");
        }
    }
}
