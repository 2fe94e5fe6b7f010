//! One step of non-blocking I/O, with the outcomes a state machine needs:
//! progress, "try again on the next readiness event", or the end.

use std::io::{self, ErrorKind, Read, Write};

/// What one non-blocking read or write did.
pub(crate) enum Io {
    /// Moved this many bytes (never zero).
    Done(usize),
    /// Nothing to do until the socket is ready again.
    WouldBlock,
    /// Closed by the peer, or failed: this exchange is over.
    Failed,
    /// The connection was refused: nothing listens at its address. Only a
    /// connection still being set up can see this.
    Refused,
}

pub(crate) fn read_some(stream: &mut impl Read, buf: &mut [u8]) -> Io {
    step(|| stream.read(buf))
}

pub(crate) fn write_some(stream: &mut impl Write, bytes: &[u8]) -> Io {
    step(|| stream.write(bytes))
}

/// Runs `io` until a signal no longer interrupts it; zero bytes moved means
/// the peer closed.
fn step(mut io: impl FnMut() -> io::Result<usize>) -> Io {
    loop {
        return match io() {
            Ok(0) => Io::Failed,
            Ok(n) => Io::Done(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Io::WouldBlock,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Io::Refused,
            Err(_) => Io::Failed,
        };
    }
}
