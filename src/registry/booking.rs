//! One held booking, stored in a set keyed by its uid.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use crate::uid::Uid;

/// Who holds a uid, and how to reach it to prove it is still alive.
///
/// Equality and hashing look at the uid alone, so a `HashSet<Booking>`
/// is a table keyed by uid that can be searched with a bare [`Uid`].
#[derive(Debug, Clone, Copy)]
pub struct Booking {
    /// The id held.
    pub uid: Uid,
    /// The holder's secret: it alone checks out, and it is what the
    /// holder's responder expects to hear.
    pub handshake: Uid,
    /// The holder's address, as the server saw it connect.
    pub ip: IpAddr,
    /// The holder's liveness responder port.
    pub port: u16,
}

impl Booking {
    /// Where the holder's liveness responder listens.
    pub fn responder(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl PartialEq for Booking {
    fn eq(&self, other: &Booking) -> bool {
        self.uid == other.uid
    }
}

impl Eq for Booking {}

impl Hash for Booking {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uid.hash(state);
    }
}

impl Borrow<Uid> for Booking {
    fn borrow(&self) -> &Uid {
        &self.uid
    }
}
