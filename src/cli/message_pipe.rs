//! `hold --pass-messages`: the messages sent to the lock, handed to the
//! command on a pipe of its own, one line each, so that a shell script can
//! react to them (`read -r message <&"$NAMASTE_MESSAGE_FD"`).
//!
//! The command may never read. So `hold` writes without blocking: what the
//! pipe cannot take at once is dropped and counted, and the pipe's
//! capacity bounds what waits unread. Each line fits one atomic write
//! (`PIPE_BUF`), so the command reads whole lines or none, never half of
//! one.

use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The variable that tells the command which descriptor to read.
pub const MESSAGE_FD_VARIABLE: &str = "NAMASTE_MESSAGE_FD";

/// The longest line one write puts in a pipe whole (POSIX's `PIPE_BUF`,
/// 4096 on Linux): a longer one could be taken in part.
pub const LONGEST_LINE: usize = libc::PIPE_BUF;

/// A new pipe: its read end for the command, its write end for `hold`.
/// Both are closed on exec (the read end is opened to the command alone by
/// [`CommandEnd::hand_to`]); the write end never blocks, the read end
/// does, as a shell's `read` expects.
pub fn open() -> io::Result<(CommandEnd, PipeWriter)> {
    let mut ends = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `ends`, which has room for
    // them.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened, and are ours alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(ends[0]), File::from_raw_fd(ends[1])) };
    set_non_blocking(write.as_raw_fd())?;
    Ok((CommandEnd(read), PipeWriter(write)))
}

/// The read end of the pipe, until the command has it. `hold` drops its
/// own copy once the command has started, so that a command that closes
/// its copy (or exits) makes writes fail at once instead of filling a
/// pipe nobody reads.
pub struct CommandEnd(OwnedFd);

impl CommandEnd {
    /// Lets `command` inherit the read end, at the same number, and says
    /// that number in `NAMASTE_MESSAGE_FD`.
    pub fn hand_to(&self, command: &mut Command) {
        let fd = self.0.as_raw_fd();
        command.env(MESSAGE_FD_VARIABLE, fd.to_string());
        // SAFETY: the hook runs in the child between fork and exec, where
        // only async-signal-safe calls are allowed; it makes two fcntl
        // calls and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The write end of the pipe, `hold`'s.
pub struct PipeWriter(File);

impl PipeWriter {
    /// Puts `line` (at most [`LONGEST_LINE`] bytes) in the pipe whole, if
    /// it has room at once; answers whether it did.
    pub fn offer(&mut self, line: &[u8]) -> bool {
        if line.len() > LONGEST_LINE {
            return false;
        }
        loop {
            match self.0.write(line) {
                Ok(written) => return written == line.len(),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Full (WouldBlock), or nobody has the read end any more.
                Err(_) => return false,
            }
        }
    }
}

fn set_non_blocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns; it touches no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
