//! Ids: the 64-byte names that processes book.

use std::fmt;
use std::str::FromStr;

use sha3::{Digest, Sha3_512};

/// Length in bytes of a [`Uid`]: the size of a SHA3-512 digest.
pub const UID_LEN: usize = 64;

/// What the bytes of a per-user id begin with.
const PER_USER_MARKER: &[u8; 8] = b"\xffNMSTPU\x01";

/// A 64-byte id: the name of a lock, what a process books. Its bytes are
/// no secret; those of a handshake are, and have a type of their own.
///
/// ```
/// use namaste::Uid;
///
/// let id = Uid::from_name("com.example.editor");
/// assert_eq!(id, Uid::from_name("com.example.editor"));
/// assert_eq!(id.to_string().parse::<Uid>(), Ok(id));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uid([u8; UID_LEN]);

impl Uid {
    /// The id of a name: the SHA3-512 digest of its UTF-8 bytes, so every
    /// program that agrees on a name agrees on the id.
    pub fn from_name(name: &str) -> Uid {
        Uid::from_name_bytes(name.as_bytes())
    }

    /// The id of a name given as bytes that need not be UTF-8 (a file name
    /// from the shell, say): the SHA3-512 digest of those bytes, so for a
    /// UTF-8 name the same id as [`Uid::from_name`].
    ///
    /// ```
    /// use namaste::Uid;
    ///
    /// assert_eq!(Uid::from_name_bytes(b"editor"), Uid::from_name("editor"));
    /// ```
    pub fn from_name_bytes(name: &[u8]) -> Uid {
        Uid(Sha3_512::digest(name).into())
    }

    /// The id of a name for one OS user (`user` is the numeric user id):
    /// two users running the same single-instance program get two ids, so
    /// neither keeps the other's from starting. Unlike [`Uid::from_name`],
    /// this is no id the published 0.6.0 knows.
    ///
    /// The id says whose it is ([`Uid::per_user_owner`]), so the server
    /// can refuse it to every other user: its first 8 bytes are a marker,
    /// the next 4 the user (big-endian), the rest the first 52 bytes of a
    /// SHA3-512 digest of the user and the name.
    ///
    /// ```
    /// use namaste::Uid;
    ///
    /// let mine = Uid::per_user(b"editor", 1000);
    /// assert_eq!(mine, Uid::per_user(b"editor", 1000));
    /// assert_ne!(mine, Uid::per_user(b"editor", 1001));
    /// assert_ne!(mine, Uid::from_name("editor"));
    /// assert_eq!(mine.per_user_owner(), Some(1000));
    /// assert_eq!(Uid::from_name("editor").per_user_owner(), None);
    /// ```
    pub fn per_user(name: &[u8], user: u32) -> Uid {
        let mut hasher = Sha3_512::new();
        // A prefix no plain name hashed by from_name can begin with, so a
        // per-user id's digest never equals the id of some other name.
        hasher.update(b"\0namaste per-user id\0");
        hasher.update(user.to_be_bytes());
        hasher.update(name);
        let digest: [u8; UID_LEN] = hasher.finalize().into();
        let mut bytes = [0; UID_LEN];
        bytes[..PER_USER_MARKER.len()].copy_from_slice(PER_USER_MARKER);
        bytes[8..12].copy_from_slice(&user.to_be_bytes());
        bytes[12..].copy_from_slice(&digest[..UID_LEN - 12]);
        Uid(bytes)
    }

    /// The id of a name for the OS user this process runs as (its
    /// effective user id, the one the server sees): [`Uid::per_user`]
    /// without looking the user up yourself.
    ///
    /// ```
    /// use namaste::Uid;
    ///
    /// let mine = Uid::per_user_for_me(b"editor");
    /// assert!(mine.per_user_owner().is_some());
    /// assert_eq!(mine, Uid::per_user(b"editor", mine.per_user_owner().unwrap()));
    /// ```
    pub fn per_user_for_me(name: &[u8]) -> Uid {
        // SAFETY: geteuid has no preconditions, cannot fail and touches
        // no memory.
        Uid::per_user(name, unsafe { libc::geteuid() })
    }

    /// The OS user whose per-user id this is ([`Uid::per_user`]), if it is
    /// one. A plain name's digest begins with the marker by chance once in
    /// 2^64 names.
    pub fn per_user_owner(&self) -> Option<u32> {
        let (marker, rest) = self.0.split_first_chunk::<8>()?;
        let user = rest.first_chunk::<4>()?;
        (marker == PER_USER_MARKER).then(|| u32::from_be_bytes(*user))
    }

    /// Whether this is the id of `name` ([`Uid::from_name_bytes`]), or of
    /// `name` for the OS user `user` ([`Uid::per_user`]).
    ///
    /// ```
    /// use namaste::Uid;
    ///
    /// assert!(Uid::from_name("editor").is_named_by(b"editor", 1000));
    /// assert!(Uid::per_user(b"editor", 1000).is_named_by(b"editor", 1000));
    /// assert!(!Uid::per_user(b"editor", 1000).is_named_by(b"editor", 1001));
    /// assert!(!Uid::from_name("editor").is_named_by(b"other", 1000));
    /// ```
    pub fn is_named_by(&self, name: &[u8], user: u32) -> bool {
        match self.per_user_owner() {
            Some(owner) if owner == user => *self == Uid::per_user(name, user),
            _ => *self == Uid::from_name_bytes(name),
        }
    }

    /// A fresh id from the operating system's random source: a lock no
    /// other program names.
    pub fn random() -> Result<Uid, getrandom::Error> {
        let mut bytes = [0; UID_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Uid(bytes))
    }

    /// The id with these bytes, as read from the wire or a file.
    pub const fn from_bytes(bytes: [u8; UID_LEN]) -> Uid {
        Uid(bytes)
    }

    /// The raw bytes, as they travel on the wire.
    pub fn as_bytes(&self) -> &[u8; UID_LEN] {
        &self.0
    }
}

impl From<[u8; UID_LEN]> for Uid {
    fn from(bytes: [u8; UID_LEN]) -> Uid {
        Uid(bytes)
    }
}

/// Lower-case hex, 128 characters.
impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Shortened to its first 8 bytes: enough to tell ids apart in a log line,
/// and a handshake printed by mistake is not given away whole.
impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8]
            .iter()
            .try_for_each(|byte| write!(f, "{byte:02x}"))?;
        f.write_str("…")
    }
}

/// A lock's id and, when it was made from one, its name, which our
/// clients send along when they book so that the server can show it
/// (`namaste list`, to root and to the lock's own OS user). A [`Uid`]
/// converts into one without a name. Names of more than 255 bytes are not
/// sent; the lock then shows by its id alone.
///
/// ```
/// use namaste::Uid;
/// use namaste::uid::LockId;
///
/// let id = LockId::named(b"nightly-backup");
/// assert_eq!(id.uid(), Uid::from_name("nightly-backup"));
/// assert_eq!(id.name(), Some(&b"nightly-backup"[..]));
/// assert_eq!(LockId::from(id.uid()).name(), None);
/// assert_eq!(LockId::per_user_named(b"x").uid(), Uid::per_user_for_me(b"x"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockId {
    uid: Uid,
    name: Option<Box<[u8]>>,
}

impl LockId {
    /// The id of `name` ([`Uid::from_name_bytes`]), with its name.
    pub fn named(name: &[u8]) -> LockId {
        LockId {
            uid: Uid::from_name_bytes(name),
            name: Some(name.into()),
        }
    }

    /// The id of `name` for the OS user this process runs as
    /// ([`Uid::per_user_for_me`]), with its name.
    pub fn per_user_named(name: &[u8]) -> LockId {
        LockId {
            uid: Uid::per_user_for_me(name),
            name: Some(name.into()),
        }
    }

    /// The id.
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The name the id was made from, if it was made from one.
    pub fn name(&self) -> Option<&[u8]> {
        self.name.as_deref()
    }
}

impl From<Uid> for LockId {
    fn from(uid: Uid) -> LockId {
        LockId { uid, name: None }
    }
}

/// Why a text is not a hex [`Uid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseUidError {
    /// The text does not have exactly 128 characters (its length is given).
    Length(usize),
    /// The character at this position is not a hex digit.
    NotHex(usize),
}

impl fmt::Display for ParseUidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseUidError::Length(len) => write!(
                f,
                "an id is {} hex digits, this one has {len} characters",
                UID_LEN * 2
            ),
            ParseUidError::NotHex(at) => {
                write!(f, "character {} of the id is not a hex digit", at + 1)
            }
        }
    }
}

impl std::error::Error for ParseUidError {}

/// Parses 128 hex digits, either case.
impl FromStr for Uid {
    type Err = ParseUidError;

    fn from_str(text: &str) -> Result<Uid, ParseUidError> {
        let digits = text.as_bytes();
        if digits.len() != UID_LEN * 2 {
            return Err(ParseUidError::Length(text.chars().count()));
        }
        let mut bytes = [0; UID_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let high = hex_value(digits[2 * i]).ok_or(ParseUidError::NotHex(2 * i))?;
            let low = hex_value(digits[2 * i + 1]).ok_or(ParseUidError::NotHex(2 * i + 1))?;
            *byte = high << 4 | low;
        }
        Ok(Uid(bytes))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_name_is_sha3_512() {
        // SHA3-512("abc"), FIPS 202 example.
        let expected = "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
                        10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0";
        assert_eq!(Uid::from_name("abc").to_string(), expected);
    }

    #[test]
    fn a_per_user_id_names_its_user_and_hides_the_name() {
        let id = Uid::per_user(b"editor", 0x0102_0304);
        assert_eq!(&id.0[..12], b"\xffNMSTPU\x01\x01\x02\x03\x04");
        assert_eq!(id.per_user_owner(), Some(0x0102_0304));
        assert_ne!(&id.0[12..], &Uid::per_user(b"other", 0x0102_0304).0[12..]);
        let mut plain = Uid::from_name("editor");
        assert_eq!(plain.per_user_owner(), None);
        plain.0[..8].copy_from_slice(b"\xffNMSTPU\x02");
        assert_eq!(plain.per_user_owner(), None, "another marker");
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(Uid::random().unwrap(), Uid::random().unwrap());
    }

    #[test]
    fn hex_round_trips_in_either_case() {
        let id = Uid::from_name("round trip");
        assert_eq!(id.to_string().parse::<Uid>(), Ok(id));
        assert_eq!(id.to_string().to_uppercase().parse::<Uid>(), Ok(id));
    }

    #[test]
    fn hex_errors_say_what_is_wrong() {
        assert_eq!("abc".parse::<Uid>(), Err(ParseUidError::Length(3)));
        let mut text = "0".repeat(128);
        text.replace_range(5..6, "g");
        assert_eq!(text.parse::<Uid>(), Err(ParseUidError::NotHex(5)));
        // A multi-byte character must not be split or panic.
        let text = format!("é{}", "0".repeat(126));
        assert_eq!(text.parse::<Uid>(), Err(ParseUidError::NotHex(0)));
        assert_eq!(
            ParseUidError::NotHex(5).to_string(),
            "character 6 of the id is not a hex digit"
        );
    }

    #[test]
    fn per_user_for_me_is_the_id_of_this_process_user() {
        // SAFETY: as in per_user_for_me.
        let me = unsafe { libc::geteuid() };
        assert_eq!(Uid::per_user_for_me(b"x"), Uid::per_user(b"x", me));
    }

    #[test]
    fn debug_shows_only_a_prefix() {
        let id = Uid([0xab; UID_LEN]);
        assert_eq!(format!("{id:?}"), "abababababababab…");
    }
}
