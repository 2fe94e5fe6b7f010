//! One held booking, and the compact address it is called back at.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::User;
use crate::handshake::Handshake;
use crate::uid::Uid;

/// Who holds a uid, and how to reach it to prove it is still alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking {
    /// The id held.
    pub uid: Uid,
    /// The holder's secret: it alone checks out, and it is what the
    /// holder's responder expects to hear.
    pub handshake: Handshake,
    /// The holder's address, as the server saw it connect.
    pub ip: ResponderIp,
    /// The holder's liveness responder port.
    pub port: u16,
    /// When it was granted, in seconds since the Unix epoch, as the
    /// registry was last told the time ([`Registry::set_wall_clock`]); 0
    /// when nobody knows (a booking recorded by an earlier version).
    ///
    /// [`Registry::set_wall_clock`]: super::Registry::set_wall_clock
    pub since: u64,
    /// The OS user of the request that was granted it, whose share it
    /// takes ([`UNKNOWN_USER`] when nobody knows).
    ///
    /// [`UNKNOWN_USER`]: super::UNKNOWN_USER
    pub user: User,
    /// When its holder was last proved alive or silent, on the registry's
    /// count of such verifications; a booking granted or restored takes
    /// the count it came in at. The lowest are the least recently checked,
    /// which a round of reclaiming verifies first. Not kept across a
    /// restart: the registry stamps what it restores.
    pub checked: u64,
    /// Its fencing token: the number of its grant on the registry's
    /// count of grants, which only grows, across restarts too (the state
    /// file keeps it), so that a resource can refuse a holder that lost
    /// the booking and writes after the next holder. 0 while not yet
    /// granted, and for a booking recorded by an earlier version, until
    /// it is given one on its restore.
    pub token: u64,
}

impl Booking {
    /// Where the holder's liveness responder listens.
    pub fn responder(&self) -> SocketAddr {
        SocketAddr::new(self.ip.into(), self.port)
    }
}

/// The address a requester connected from, where the server calls it
/// back, in four bytes: bookings are kept by the hundred thousand, so every
/// byte counts. An IPv4 address is kept as is; `::1`, the one IPv6 address
/// a loopback-only server hears from, as 0.0.0.0, which no client can
/// connect from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderIp([u8; 4]);

impl ResponderIp {
    /// 127.0.0.1, where every 0.6.0 client listens.
    pub const LOCALHOST: ResponderIp = ResponderIp([127, 0, 0, 1]);

    /// The address of a requester that connected from `ip`; `None` for an
    /// IPv6 address other than `::1`, which a loopback server never hears
    /// from.
    pub fn new(ip: IpAddr) -> Option<ResponderIp> {
        match ip {
            IpAddr::V4(v4) if !v4.is_unspecified() => Some(ResponderIp(v4.octets())),
            IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => Some(ResponderIp([0; 4])),
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .and_then(|v4| ResponderIp::new(v4.into())),
            IpAddr::V4(_) => None,
        }
    }
}

impl ResponderIp {
    /// The four bytes it is kept in, for the state file.
    pub fn octets(self) -> [u8; 4] {
        self.0
    }

    /// The address kept in these four bytes.
    pub fn from_octets(octets: [u8; 4]) -> ResponderIp {
        ResponderIp(octets)
    }
}

impl From<ResponderIp> for IpAddr {
    fn from(ip: ResponderIp) -> IpAddr {
        match ip.0 {
            [0, 0, 0, 0] => IpAddr::V6(Ipv6Addr::LOCALHOST),
            octets => IpAddr::V4(Ipv4Addr::from(octets)),
        }
    }
}

impl fmt::Display for ResponderIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        IpAddr::from(*self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_address_a_loopback_server_hears_from() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "10.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpAddr::from(ResponderIp::new(ip).unwrap()), ip);
        }
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(ResponderIp::new(mapped), Some(ResponderIp::LOCALHOST));
    }

    #[test]
    fn refuses_what_it_cannot_tell_apart() {
        for ip in ["0.0.0.0", "::", "::2", "fe80::1"] {
            assert_eq!(ResponderIp::new(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
