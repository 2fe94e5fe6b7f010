//! Which OS user owns the socket at the other end of a loopback
//! connection, or a listening socket. The kernel records the owner of every
//! socket, and NETLINK_SOCK_DIAG answers it for one exact address pair: a
//! hash lookup in the kernel, where reading `/proc/net/tcp` would scan
//! every socket of the machine. Asked only for NOTIFY (its sender and the
//! holder it goes to) and QUERY, so BOOK and CHECK OUT never pay for it.

use std::io::{self, ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use log::{debug, warn};
use mio::net::TcpStream;
use netlink_packet_core::{
    Emitable, ErrorBuffer, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, Parseable,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};
use socket2::{Domain, Protocol, Socket, Type};

/// An OS user id, as the kernel records it for a socket.
pub type UserId = u32;

/// The root user, who may message any holder.
pub const ROOT: UserId = 0;

/// Whether a NOTIFY from `sender` may reach a holder run by `holder`: only
/// within one user, or from root, who can reach every process anyway.
pub fn may_message(sender: UserId, holder: UserId) -> bool {
    sender == ROOT || sender == holder
}

/// Room for one answer: a netlink header and an `inet_diag_msg` take 88
/// bytes, an error 36 plus the request echoed back.
const ANSWER_ROOM: usize = 512;

/// The netlink socket the server asks through, opened once.
pub(super) struct Owners {
    socket: Result<Socket, String>,
    sequence: u32,
    /// Whether a failed look-up has been logged as a warning yet: the
    /// first says why, the rest go to the debug log.
    warned: bool,
}

impl Owners {
    /// Opens the socket. Failing is not fatal (a sandbox may forbid
    /// AF_NETLINK): every look-up then fails, and messages between
    /// processes are refused rather than delivered to someone unchecked.
    pub fn open() -> Owners {
        let socket = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::DGRAM,
            Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
        )
        // The kernel answers while `send` runs, so a blocking read could
        // only ever wait for nothing.
        .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
        .map_err(|e| format!("cannot open a NETLINK_SOCK_DIAG socket: {e}"));
        Owners {
            socket,
            sequence: 0,
            warned: false,
        }
    }

    /// Owners as a sandbox without netlink leaves them: every look-up fails.
    #[cfg(test)]
    pub fn unavailable() -> Owners {
        Owners {
            socket: Err("no netlink here".into()),
            sequence: 0,
            warned: false,
        }
    }

    /// The owner of the process end of `stream`, the server's connection
    /// with it; `None`, logged, when the kernel cannot tell.
    pub fn of_peer(&mut self, stream: &TcpStream) -> Option<UserId> {
        let (peer, local) = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(peer), Ok(local)) => (peer, local),
            (Err(e), _) | (_, Err(e)) => {
                self.failed(format_args!("connection without an address: {e}"));
                return None;
            }
        };
        self.of_socket(peer, local)
    }

    /// The owner of the socket listening at `listener`.
    pub fn of_listener(&mut self, listener: SocketAddr) -> Option<UserId> {
        let anywhere = match listener.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.of_socket(listener, SocketAddr::new(anywhere, 0))
    }

    /// The owner of the TCP socket bound at `socket` and connected to
    /// `peer` (or listening, for an unspecified `peer`).
    fn of_socket(&mut self, socket: SocketAddr, peer: SocketAddr) -> Option<UserId> {
        match self.ask(socket, peer) {
            Ok(user) => Some(user),
            // Not a failure to tell: the process closed it (a holder that
            // died, a sender that gave up).
            Err(e) if e.kind() == ErrorKind::NotFound => {
                debug!("no socket at {socket} to tell the owner of");
                None
            }
            Err(e) => {
                self.failed(format_args!("the owner of {socket}: {e}"));
                None
            }
        }
    }

    fn ask(&mut self, socket: SocketAddr, peer: SocketAddr) -> io::Result<UserId> {
        let netlink = self
            .socket
            .as_ref()
            .map_err(|why| io::Error::other(why.clone()))?;
        self.sequence = self.sequence.wrapping_add(1);
        let request = encode(socket, peer, self.sequence);
        netlink.send(&request)?;
        let mut answer = [0; ANSWER_ROOM];
        // An answer left over from an earlier failed look-up is skipped.
        loop {
            let len = match (&*netlink).read(&mut answer) {
                Ok(len) => len,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Err(io::Error::other("the kernel did not answer"));
                }
                Err(e) => return Err(e),
            };
            // Only the fixed header of the answer is read: parsing whole
            // messages, attributes and all, would cost the binary 180 KiB.
            let unreadable = |e| io::Error::other(format!("unreadable answer: {e}"));
            let message = NetlinkBuffer::new_checked(&answer[..len]).map_err(unreadable)?;
            if message.sequence_number() != self.sequence {
                continue;
            }
            return match message.message_type() {
                SOCK_DIAG_BY_FAMILY => InetResponseHeader::parse(message.payload())
                    .map(|header| header.uid)
                    .map_err(unreadable),
                NLMSG_ERROR => match ErrorBuffer::new_checked(message.payload())
                    .map_err(unreadable)?
                    .code()
                {
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    None => Err(io::Error::other("an empty error")),
                },
                _ => Err(io::Error::other("an answer of another kind")),
            };
        }
    }

    fn failed(&mut self, why: std::fmt::Arguments) {
        if self.warned {
            debug!("cannot tell which OS user owns a socket: {why}");
            return;
        }
        self.warned = true;
        warn!(
            "cannot tell which OS user owns a socket ({why}); messages are refused when their sender's or holder's user is unknown (further failures are logged at debug level)"
        );
    }
}

/// The request for the one socket bound at `socket` and connected to
/// `peer`.
fn encode(socket: SocketAddr, peer: SocketAddr, sequence: u32) -> Vec<u8> {
    let socket_id = SocketId {
        source_port: socket.port(),
        destination_port: peer.port(),
        source_address: socket.ip(),
        destination_address: peer.ip(),
        interface_id: 0,
        // All ones: the kernel looks the socket up by its addresses alone.
        cookie: [0xff; 8],
    };
    let family = match socket {
        SocketAddr::V4(_) => AF_INET,
        SocketAddr::V6(_) => AF_INET6,
    };
    let request = InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::all(),
        socket_id,
    };
    let mut header = NetlinkHeader::default();
    let header_len = header.buffer_len();
    header.length = (header_len + request.buffer_len()) as u32;
    header.message_type = SOCK_DIAG_BY_FAMILY;
    // No NLM_F_DUMP: one exact socket, not a walk through all of them.
    header.flags = NLM_F_REQUEST;
    header.sequence_number = sequence;
    let mut bytes = vec![0; header.length as usize];
    header.emit(&mut bytes[..header_len]);
    request.emit(&mut bytes[header_len..]);
    bytes
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn finds_the_owner_of_both_ends_and_of_a_listener() {
        let me = unsafe { libc::geteuid() };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap();
        let client = TcpStream::from_std(std::net::TcpStream::connect(at).unwrap());
        let (accepted, _) = listener.accept().unwrap();
        let accepted = TcpStream::from_std(accepted);
        let mut owners = Owners::open();
        assert_eq!(owners.of_peer(&accepted), Some(me));
        assert_eq!(owners.of_peer(&client), Some(me));
        assert_eq!(owners.of_listener(at), Some(me));
    }

    #[test]
    fn knows_no_owner_of_a_socket_that_is_not_there() {
        let at = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let mut owners = Owners::open();
        assert_eq!(owners.of_listener(at), None);
        // A failed look-up leaves nothing behind to confuse the next one.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let me = unsafe { libc::geteuid() };
        assert_eq!(owners.of_listener(listener.local_addr().unwrap()), Some(me));
    }

    #[test]
    fn only_the_same_user_or_root_may_message() {
        assert!(may_message(1000, 1000));
        assert!(may_message(ROOT, 1000));
        assert!(!may_message(1000, ROOT));
        assert!(!may_message(1001, 1000));
    }
}
