//! Namaste: named locks for the processes of one machine.
//!
//! A process *books* a 64-byte id with the server and *checks out* when it
//! is done. While it holds the id, no other process can book it. The server
//! calls a holder back on its liveness responder, and only proof that the
//! responder is gone frees the id: a process that crashed leaves no stale
//! lock behind, and one that is merely slow keeps its lock. The wire
//! protocol is that of namaste 0.6.0, byte for byte.
//!
//! The library is the client ([`client::Client`], [`client::Booking`]),
//! the ids ([`Uid`], and [`uid::LockId`] with its name), what STATUS and
//! QUERY answer ([`status`]), what LIST answers ([`listing`]) and, with
//! the `server` feature (a default), the server itself ([`server`]). A
//! program that only books and notifies builds without the server:
//! `default-features = false`.
//!
//! ```no_run
//! use namaste::Uid;
//! use namaste::client::{Client, Error};
//!
//! fn main() -> Result<(), Error> {
//!     // 127.0.0.1, on the port NAMASTE_PORT names or 64009.
//!     let client = Client::new();
//!     let id = Uid::from_name("com.example.nightly-backup");
//!     match client.book(id) {
//!         // Held until `booking` checks out or is dropped; should this
//!         // process be killed, the lock is freed once it is gone.
//!         Ok(booking) => {
//!             println!("backing up under lock {:?}", booking.uid());
//!             booking.check_out()?;
//!         }
//!         Err(Error::Held) => println!("another backup runs; not starting a second"),
//!         Err(e) => return Err(e),
//!     }
//!     Ok(())
//! }
//! ```

// Every public item says what it is for.
#![warn(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Declares modules that are this crate's own business: private, or with
/// the `internals` feature (this crate's tests, examples and fuzz targets
/// only) public but hidden from the docs.
macro_rules! internal_modules {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

pub mod client;
mod deadlines;
pub mod listing;
mod nonblocking;
#[cfg(feature = "server")]
pub mod server;
pub mod status;
pub mod uid;

internal_modules! {
    handshake;
    #[cfg(feature = "server")]
    reactor;
    #[cfg(feature = "server")]
    registry;
    wire;
}

/// Which OS user owns a socket. The command line of this package asks it
/// who runs the server; it is no API of the library, so it is hidden from
/// the docs.
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod owner;

pub use uid::Uid;

/// The address the server listens on by default: loopback, so only
/// processes of this machine can reach it.
pub const DEFAULT_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The port the server listens on by default.
pub const DEFAULT_PORT: u16 = 64009;

/// How long a peer may take to send a whole request, and a verification to
/// complete, before the connection is given up.
pub const DEFAULT_RW_TIMEOUT: Duration = Duration::from_secs(3);

/// Compiles the README's Rust examples as doctests, so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
