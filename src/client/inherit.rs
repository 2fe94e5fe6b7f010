//! Handing a booking down to child processes, the way a lock file's
//! descriptor is inherited: the children keep the booking's line and the
//! responder's listening socket, so the line stays open, the port listens,
//! and the booking stands, for as long as any of them lives, even if this
//! process is killed.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{Booking, Error};

impl Booking {
    /// Lets the processes that `command` starts keep this booking: they
    /// inherit its line, if the server keeps one, and the liveness
    /// responder's listening socket (two descriptors, which they never
    /// need to touch).
    ///
    /// While this process lives, nothing changes: dropping the booking
    /// checks out. If this process dies first (killed with SIGKILL, say)
    /// while a child still has the descriptors, the booking stands until
    /// the last process holding them exits. On a line, contenders are
    /// answered at once meanwhile, and the line's close frees the lock the
    /// moment that last process exits. Without a line (an older server, or
    /// one restarted since, to which this process had not re-attached),
    /// the port keeps listening though nobody answers on it; the server
    /// counts that silence as alive (each contender waits one rw timeout to
    /// be denied) until the port refuses connections, and the next taker
    /// is granted then. A line re-attached after a restart is not handed to
    /// children already started. A child that closes its descriptors, as
    /// daemons often do, gives up its share.
    ///
    /// The hook stays on `command` (with duplicates of the descriptors,
    /// closed when `command` is dropped), so every spawn of it shares the
    /// booking. Only our server keeps a silent holder's booking; the
    /// published 0.6.0 server drops it after one rw timeout.
    ///
    /// ```no_run
    /// use std::process::Command;
    ///
    /// use namaste::Uid;
    /// use namaste::client::Client;
    ///
    /// let client = Client::new();
    /// // Another backup running is an error here: Error::Held.
    /// let booking = client.book(Uid::from_name("nightly-backup"))?;
    /// let mut command = Command::new("backup.sh");
    /// booking.share_with(&mut command)?;
    /// let status = command.status()?;
    /// // The script and whatever it left running held the lock; if we
    /// // had been killed meanwhile, they would still hold it.
    /// println!("backup.sh: {status}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn share_with<'c>(&self, command: &'c mut Command) -> Result<&'c mut Command, Error> {
        let listener = self.responder.duplicate_listener().map_err(Error::Io)?;
        let line = self.responder.line().duplicate().map_err(Error::Io)?;
        self.responder.line().hand_down();
        // SAFETY: the hook runs in the child between fork and exec, where
        // only async-signal-safe calls are allowed; it makes up to four
        // fcntl calls and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                inheritable(listener.as_raw_fd())?;
                match &line {
                    Some(line) => inheritable(line.as_raw_fd()),
                    None => Ok(()),
                }
            });
        }
        Ok(command)
    }

    /// Gives the booking up to the processes started from a command passed
    /// to [`share_with`](Booking::share_with), without checking out: it
    /// stands while any of them keeps the line (or, without one, the
    /// listening socket), and frees once the last one exits, as if this
    /// process had been killed. For a launcher that exits while the
    /// programs it started run on, and for a program whose command has
    /// exited but left children running that hold the booking.
    pub fn leave_to_children(mut self) {
        self.owes_check_out = false;
    }
}

/// Clears close-on-exec on `fd`, so that the program about to be executed
/// keeps it.
fn inheritable(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns; it touches no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
