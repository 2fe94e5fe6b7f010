//! A booking's line: the connection on which the server granted it, kept
//! open for as long as the booking is held. Its close tells the server at
//! once that every process holding it is gone, as the last close of a lock
//! file's descriptor does.
//!
//! The responder's poll thread watches the line. When the server closes it
//! while the booking is held (a restart, which keeps bookings but not
//! lines), the thread re-attaches on a new connection (ATTACH), retrying
//! with growing pauses, until the server gives the booking's fate: a new
//! line, held under the call-back rules without one, or lost. The thread
//! never blocks on the server: the re-attach is one more non-blocking
//! connection in its poll.
//!
//! A booking handed down to child processes does not re-attach: the new
//! line would be this process's alone, and the booking would end with this
//! process while the children it was handed to still run. It stays under
//! the call-back rules instead, which the children keep by keeping the
//! responder's listening socket. Nor does one of a client that turned
//! re-attaching off: an ATTACH carries the handshake to whatever listens on
//! the port.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::handshake::Handshake;
use crate::uid::Uid;
use crate::wire::{Limit, REPLY_NO, REPLY_NO_LINE, REPLY_OTHER_USER, REPLY_YES, Request};

/// The poll token of the line.
pub(super) const LINE: Token = Token(usize::MAX - 2);
/// The poll token of a re-attach in flight.
pub(super) const ATTACH: Token = Token(usize::MAX - 3);

/// The pause before the second try to re-attach; it doubles up to
/// [`LONGEST_PAUSE`]. The first try is made at once.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between tries to re-attach.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// How the server knows that a booking's holder is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineState {
    /// The server keeps the booking's line open: contenders are answered
    /// at once, and the line's close (every process that has it gone)
    /// ends the booking at once.
    Open,
    /// The server closed the line (it restarted, say) and this process is
    /// re-attaching; meanwhile the server calls the responder back, as for
    /// a booking without a line.
    Reattaching,
    /// No line: the server proves the holder alive by calling its
    /// responder back (a server that keeps no lines, its bound of lines
    /// reached, or the line not given back after a restart).
    CallBack,
    /// The server closed the line (it restarted, say) of a booking that
    /// does not re-attach (it was handed down to child processes, or the
    /// client turned re-attaching off): it lives under the call-back
    /// rules, answered by whichever process keeps the responder's socket.
    Unattached,
    /// The server answered a re-attach that it no longer holds the booking
    /// (it restarted without its state file, say).
    Lost,
}

/// What the booking and the responder's thread share of the line.
struct Shared {
    state: LineState,
    /// The open line, blocking, registered with the poll under [`LINE`].
    line: Option<TcpStream>,
    /// Set once the booking is being checked out: the line's close is
    /// then expected, and nothing is re-attached any more.
    done: bool,
    /// Whether to re-attach once the server closes the line: not when the
    /// client turned it off, nor once the line was handed down.
    reattach: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // The state stays consistent at every step, so a panic elsewhere
    // leaves nothing half done.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The booking's side of the line.
pub(super) struct Line {
    shared: Arc<Mutex<Shared>>,
    registry: Registry,
}

impl Line {
    /// The state of the line of a booking granted without one.
    pub fn new(registry: Registry) -> Line {
        Line {
            shared: Arc::new(Mutex::new(Shared {
                state: LineState::CallBack,
                line: None,
                done: false,
                reattach: false,
            })),
            registry,
        }
    }

    /// Keeps `line`, on which the server granted the booking, and has the
    /// responder's thread watch it; it is re-attached, should the server
    /// close it, if `reattach` says so.
    pub fn keep(&self, line: TcpStream, reattach: bool) -> io::Result<()> {
        let mut shared = lock(&self.shared);
        watch(&self.registry, &line)?;
        shared.line = Some(line);
        shared.state = LineState::Open;
        shared.reattach = reattach;
        Ok(())
    }

    /// The line is handed down to child processes: it is never re-attached
    /// from now on, since a new line could not reach them.
    pub fn hand_down(&self) {
        lock(&self.shared).reattach = false;
    }

    /// How the server knows the holder is alive now.
    pub fn state(&self) -> LineState {
        lock(&self.shared).state
    }

    /// A second descriptor of the open line, if there is one, to hand
    /// down to child processes.
    pub fn duplicate(&self) -> io::Result<Option<OwnedFd>> {
        let shared = lock(&self.shared);
        shared
            .line
            .as_ref()
            .map(|line| line.as_fd().try_clone_to_owned())
            .transpose()
    }

    /// Begins the check out: nothing is re-attached from now on, and the
    /// open line, if any, is no longer watched and is answered, to carry
    /// the CHECK OUT.
    pub fn take_for_check_out(&self) -> Option<TcpStream> {
        let mut shared = lock(&self.shared);
        shared.done = true;
        let line = shared.line.take()?;
        let _ = self.registry.deregister(&mut SourceFd(&line.as_raw_fd()));
        Some(line)
    }

    /// The responder thread's side of this line.
    pub fn watcher(
        &self,
        uid: Uid,
        handshake: Handshake,
        server_port: u16,
        rw_timeout: Duration,
    ) -> Watch {
        Watch {
            shared: self.shared.clone(),
            attach: Request::Attach { uid, handshake }.encode(),
            server: SocketAddr::from((Ipv4Addr::LOCALHOST, server_port)),
            rw_timeout,
            attempt: None,
            retry: None,
        }
    }
}

fn watch(registry: &Registry, line: &TcpStream) -> io::Result<()> {
    registry.register(&mut SourceFd(&line.as_raw_fd()), LINE, Interest::READABLE)
}

/// The responder thread's side of the line: notices its close, and
/// re-attaches.
pub(super) struct Watch {
    shared: Arc<Mutex<Shared>>,
    /// The ATTACH request, ready to be sent.
    attach: Vec<u8>,
    server: SocketAddr,
    rw_timeout: Duration,
    attempt: Option<Attempt>,
    /// When to try next, and the pause after that try fails.
    retry: Option<(Instant, Duration)>,
}

/// One ATTACH in flight.
struct Attempt {
    stream: mio::net::TcpStream,
    sent: usize,
    /// Past it, the try is given up, and another one made after `pause`.
    deadline: Instant,
    pause: Duration,
}

/// How one ATTACH ended.
enum Attached {
    /// Not yet: wait for the socket.
    Pending,
    /// A reply byte.
    Replied(u8),
    /// No server, or it closed without a reply: try again later.
    Failed,
}

impl Watch {
    /// When the thread must next call [`tick`](Watch::tick).
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.attempt {
            Some(attempt) => Some(attempt.deadline),
            None => self.retry.map(|(at, _)| at),
        }
    }

    /// The line is readable: the server closed it, unless a check out is
    /// under way. (The server writes nothing on a line but the answer to a
    /// CHECK OUT; should anything else come, it is read and dropped.)
    pub fn line_ready(&mut self, registry: &Registry, now: Instant) {
        let mut shared = lock(&self.shared);
        if shared.done {
            return;
        }
        let Some(line) = shared.line.as_ref() else {
            return;
        };
        if !closed(line) {
            return;
        }
        if let Some(line) = shared.line.take() {
            let _ = registry.deregister(&mut SourceFd(&line.as_raw_fd()));
        }
        if !shared.reattach {
            shared.state = LineState::Unattached;
            return;
        }
        shared.state = LineState::Reattaching;
        self.retry = Some((now, FIRST_PAUSE));
    }

    /// The re-attach in flight can move on.
    pub fn attach_ready(&mut self, registry: &Registry, now: Instant) {
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        match advance(attempt, &self.attach) {
            Attached::Pending => {}
            Attached::Failed => self.give_up_attempt(registry, now),
            Attached::Replied(reply) => self.settle(registry, reply, now),
        }
    }

    /// Starts a re-attach that is due, and gives up one past its deadline.
    pub fn tick(&mut self, registry: &Registry, now: Instant) {
        if lock(&self.shared).done {
            self.retry = None;
            if let Some(mut attempt) = self.attempt.take() {
                let _ = registry.deregister(&mut attempt.stream);
            }
            return;
        }
        if self.attempt.as_ref().is_some_and(|a| a.deadline <= now) {
            self.give_up_attempt(registry, now);
        }
        match self.retry {
            Some((at, pause)) if self.attempt.is_none() && at <= now => {
                self.retry = None;
                self.start_attempt(registry, now, pause);
            }
            _ => {}
        }
    }

    fn start_attempt(&mut self, registry: &Registry, now: Instant, pause: Duration) {
        let mut stream = match mio::net::TcpStream::connect(self.server) {
            Ok(stream) => stream,
            Err(_) => return self.retry_after(now, pause),
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if registry.register(&mut stream, ATTACH, interest).is_err() {
            return self.retry_after(now, pause);
        }
        self.attempt = Some(Attempt {
            stream,
            sent: 0,
            deadline: now + self.rw_timeout,
            pause,
        });
        // A connection on loopback may be ready at once.
        self.attach_ready(registry, now);
    }

    fn give_up_attempt(&mut self, registry: &Registry, now: Instant) {
        if let Some(mut attempt) = self.attempt.take() {
            let _ = registry.deregister(&mut attempt.stream);
            self.retry_after(now, attempt.pause);
        }
    }

    fn retry_after(&mut self, now: Instant, pause: Duration) {
        self.retry = Some((now + pause, (pause * 2).min(LONGEST_PAUSE)));
    }

    /// The server answered the ATTACH with `reply`.
    fn settle(&mut self, registry: &Registry, reply: u8, now: Instant) {
        let Some(mut attempt) = self.attempt.take() else {
            return;
        };
        let _ = registry.deregister(&mut attempt.stream);
        let mut shared = lock(&self.shared);
        if shared.done {
            // Checking out: this line closes with the attempt, and the
            // check out, on a new connection, decides.
            return;
        }
        shared.state = match reply {
            REPLY_YES => {
                // SAFETY: the descriptor comes from a socket we own and
                // give up here; nothing else closes it.
                let line = unsafe { TcpStream::from_raw_fd(attempt.stream.into_raw_fd()) };
                let kept = line
                    .set_nonblocking(false)
                    .and_then(|()| watch(registry, &line));
                if kept.is_err() {
                    drop(shared);
                    return self.retry_after(now, attempt.pause);
                }
                shared.line = Some(line);
                LineState::Open
            }
            // Another user's per-user id can never be attached: the
            // booking, if it is still held, lives by call-backs.
            REPLY_NO_LINE | REPLY_OTHER_USER => LineState::CallBack,
            REPLY_NO => LineState::Lost,
            // A limit reached (requests pending behind the id's
            // verification, say): it may free, so try again later, with
            // the pauses growing, as after no answer.
            full if Limit::of_reply(full).is_some() => {
                drop(shared);
                return self.retry_after(now, attempt.pause);
            }
            // A byte the protocol does not define: try again, as after
            // no answer.
            _ => {
                drop(shared);
                return self.retry_after(now, attempt.pause);
            }
        };
    }
}

/// Writes what is left of the ATTACH and reads its reply, as far as the
/// socket allows.
fn advance(attempt: &mut Attempt, request: &[u8]) -> Attached {
    while attempt.sent < request.len() {
        match attempt.stream.write(&request[attempt.sent..]) {
            Ok(0) => return Attached::Failed,
            Ok(n) => attempt.sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Still connecting, or the buffer is full.
            Err(e)
                if e.kind() == ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::ENOTCONN) =>
            {
                return Attached::Pending;
            }
            Err(_) => return Attached::Failed,
        }
    }
    let mut reply = [0];
    loop {
        return match attempt.stream.read(&mut reply) {
            Ok(1) => Attached::Replied(reply[0]),
            Ok(_) => Attached::Failed,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => Attached::Pending,
            Err(_) => Attached::Failed,
        };
    }
}

/// Whether the server has closed `line` (an end of stream, or an error
/// such as a reset). Never blocks, and takes nothing but stray bytes.
fn closed(line: &TcpStream) -> bool {
    let fd = line.as_raw_fd();
    let mut byte = [0u8; 64];
    loop {
        // SAFETY: recv writes at most `byte.len()` bytes into `byte`, on a
        // descriptor `line` keeps open.
        let peeked = unsafe {
            libc::recv(
                fd,
                byte.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match peeked {
            0 => return true,
            n if n > 0 => {
                // SAFETY: as above, without MSG_PEEK: the stray bytes go.
                unsafe {
                    libc::recv(fd, byte.as_mut_ptr().cast(), byte.len(), libc::MSG_DONTWAIT);
                }
            }
            _ => {
                let error = io::Error::last_os_error();
                match error.kind() {
                    ErrorKind::Interrupted => {}
                    ErrorKind::WouldBlock => return false,
                    _ => return true,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
