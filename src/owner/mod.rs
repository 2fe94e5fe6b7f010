//! Which OS user owns a socket: the other end of a loopback connection, or
//! a listener. The kernel records the owner of every socket, and
//! NETLINK_SOCK_DIAG answers it for one exact address pair: a hash lookup
//! in the kernel, where reading `/proc/net/tcp` would scan every socket of
//! the machine. The server asks it for NOTIFY (its sender and the holder
//! it goes to) and QUERY, so BOOK and CHECK OUT never pay for it; the
//! command line asks it who runs the server, and which socket is a
//! holder's responder.
//!
//! Only a socket that a process holds open, in the state asked for, has an
//! owner worth believing. A connection whose process has closed its socket
//! lives on in the kernel for a while (to finish closing), with no inode,
//! and once only its address is left (TIME_WAIT) the kernel reports it as
//! root's: believing that would let anyone who writes a request and hangs
//! up at once pass for root.

use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use log::{debug, warn};
use mio::net::TcpStream;
use netlink_packet_core::{
    Emitable, ErrorBuffer, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, Parseable,
};
use netlink_packet_sock_diag::constants::{
    AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, TCP_ESTABLISHED, TCP_FIN_WAIT1,
    TCP_FIN_WAIT2, TCP_LISTEN,
};
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

/// A socket that a process holds open, as the kernel describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    /// The OS user that owns it.
    pub user: UserId,
    /// Its inode: `socket:[INODE]` in `/proc/PID/fd` of every process that
    /// has it open. Never 0.
    pub inode: u32,
}

/// Why a socket's owner cannot be told.
#[derive(Debug)]
pub enum Unknown {
    /// No socket at that address (pair).
    Gone,
    /// A socket, but none that a process holds open in the state asked
    /// for: a connection whose process has closed it, or one not yet
    /// accepted. Its owner, if the kernel names one, is not to be believed.
    NotLive {
        /// The TCP state the kernel reports (`/proc/net/tcp`'s numbers).
        state: u8,
        /// The inode it reports; 0 for a socket no process holds.
        inode: u32,
    },
    /// The kernel could not be asked, or answered something unreadable.
    Failed(io::Error),
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::Gone => f.write_str("no such socket"),
            Unknown::NotLive { state, inode } => write!(
                f,
                "not a live socket of a process (TCP state {state}, inode {inode})"
            ),
            Unknown::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Room for one answer: a netlink header and an `inet_diag_msg` take 88
/// bytes, an error 36 plus the request echoed back.
const ANSWER_ROOM: usize = 512;

/// The netlink socket to ask through, opened once.
pub struct Owners {
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

    /// The process end of `stream`, the server's connection with it, while
    /// that end is held by a process, established or half-closed; why not
    /// when it cannot be told (logged).
    pub fn peer(&mut self, stream: &TcpStream) -> Result<Owned, Unknown> {
        let (peer, local) = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(peer), Ok(local)) => (peer, local),
            (Err(e), _) | (_, Err(e)) => {
                debug!("no owner for a connection without an address: {e}");
                return Err(Unknown::Gone);
            }
        };
        // A requester that half-closed after its request (`shutdown`, as
        // `nc -N` does) still holds its socket and waits for the answer.
        let asked = self.ask(
            peer,
            local,
            &[TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2],
        );
        self.log(peer, &asked);
        asked
    }

    /// The owner of the socket listening at `listener`; `None`, logged,
    /// when none listens there.
    pub fn of_listener(&mut self, listener: SocketAddr) -> Option<UserId> {
        let asked = self.listener(listener);
        self.log(listener, &asked);
        asked.ok().map(|owned| owned.user)
    }

    /// The socket listening at exactly `at` (a listener on another address
    /// that would take connections to `at`, such as 0.0.0.0, is not it).
    pub fn listener(&mut self, at: SocketAddr) -> Result<Owned, Unknown> {
        let anywhere = match at.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.ask(at, SocketAddr::new(anywhere, 0), &[TCP_LISTEN])
    }

    /// The socket that takes connections to `at`: one listening at
    /// exactly `at`, or else on the unspecified address of its family, or
    /// else, for IPv4, on IPv6's (`[::]`, which takes IPv4 connections
    /// too unless it is IPv6-only). A server may listen on any of them.
    pub fn receiving(&mut self, at: SocketAddr) -> Result<Owned, Unknown> {
        let anywhere = [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ];
        let mut asked = self.listener(at);
        for ip in anywhere {
            if !matches!(asked, Err(Unknown::Gone)) || (at.is_ipv6() && ip.is_ipv4()) {
                continue;
            }
            asked = self.listener(SocketAddr::new(ip, at.port()));
        }
        asked
    }

    /// The established socket bound at `socket` and connected to `peer`.
    pub fn connected(&mut self, socket: SocketAddr, peer: SocketAddr) -> Result<Owned, Unknown> {
        self.ask(socket, peer, &[TCP_ESTABLISHED])
    }

    /// Asks for the socket bound at `socket` and connected to `peer`
    /// (unspecified for a listener), and believes the answer only for that
    /// very socket, in one of `states`, held by a process.
    fn ask(
        &mut self,
        socket: SocketAddr,
        peer: SocketAddr,
        states: &[u8],
    ) -> Result<Owned, Unknown> {
        let header = self.exchange(socket, peer)?;
        let id = &header.socket_id;
        let same = SocketAddr::new(id.source_address, id.source_port) == socket
            && SocketAddr::new(id.destination_address, id.destination_port) == peer;
        if !same {
            return Err(Unknown::Gone);
        }
        if !states.contains(&header.state) || header.inode == 0 {
            return Err(Unknown::NotLive {
                state: header.state,
                inode: header.inode,
            });
        }
        Ok(Owned {
            user: header.uid,
            inode: header.inode,
        })
    }

    fn exchange(
        &mut self,
        socket: SocketAddr,
        peer: SocketAddr,
    ) -> Result<InetResponseHeader, Unknown> {
        let failed = |e: io::Error| match e.kind() {
            ErrorKind::NotFound => Unknown::Gone,
            _ => Unknown::Failed(e),
        };
        let netlink = self
            .socket
            .as_ref()
            .map_err(|why| Unknown::Failed(io::Error::other(why.clone())))?;
        self.sequence = self.sequence.wrapping_add(1);
        let request = encode(socket, peer, self.sequence);
        netlink.send(&request).map_err(failed)?;
        let mut answer = [0; ANSWER_ROOM];
        // An answer left over from an earlier failed look-up is skipped.
        loop {
            let len = match (&*netlink).read(&mut answer) {
                Ok(len) => len,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Err(failed(io::Error::other("the kernel did not answer")));
                }
                Err(e) => return Err(failed(e)),
            };
            // Only the fixed header of the answer is read: parsing whole
            // messages, attributes and all, would cost the binary 180 KiB.
            let unreadable =
                |e| Unknown::Failed(io::Error::other(format!("unreadable answer: {e}")));
            let message = NetlinkBuffer::new_checked(&answer[..len]).map_err(unreadable)?;
            if message.sequence_number() != self.sequence {
                continue;
            }
            return match message.message_type() {
                SOCK_DIAG_BY_FAMILY => {
                    InetResponseHeader::parse(message.payload()).map_err(unreadable)
                }
                NLMSG_ERROR => match ErrorBuffer::new_checked(message.payload())
                    .map_err(unreadable)?
                    .code()
                {
                    Some(code) => Err(failed(io::Error::from_raw_os_error(-code.get()))),
                    None => Err(failed(io::Error::other("an empty error"))),
                },
                _ => Err(failed(io::Error::other("an answer of another kind"))),
            };
        }
    }

    /// Logs why the owner of the socket at `socket` is unknown: at debug
    /// level when the process closed it (a holder that died, a sender that
    /// gave up), as a warning the first time the kernel could not be asked.
    fn log(&mut self, socket: SocketAddr, asked: &Result<Owned, Unknown>) {
        match asked {
            Ok(_) => {}
            Err(Unknown::Failed(why)) if !self.warned => {
                self.warned = true;
                warn!(
                    "cannot tell which OS user owns a socket (the owner of {socket}: {why}); requests of unknown users share one user's share of every limit, and messages are refused when their sender's or holder's user is unknown (further failures are logged at debug level)"
                );
            }
            Err(why) => debug!("no owner for the socket at {socket}: {why}"),
        }
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
pub(crate) mod test_users;
#[cfg(test)]
mod tests;
