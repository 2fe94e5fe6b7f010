//! `hold`'s printer: the messages sent to its lock, written to standard
//! error by a thread of their own.
//!
//! Standard error may be a pipe that nobody reads, so a write to it may
//! block for ever. The thread that waits for the command must never be
//! the one that blocks: the lock has to end when the command ends. So the
//! messages go to a bounded queue that this thread empties; while it is
//! full (standard error does not take them) further messages are
//! declined, as a library holder's unread ones are, and `hold` keeps no
//! more. What is still queued when `hold` is done is dropped, and counted.
//! With `--pass-messages` the lines go to the command's pipe instead, which
//! never blocks: what it cannot take at once is dropped, and counted.

use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use namaste::client::{MAX_UNREAD_MESSAGES, Message};

use super::args::escaped;
use super::message_pipe::PipeWriter;
use super::users::described;

/// How long `hold`, its command done and its lock released, gives standard
/// error to take what is left, and then its last lines.
const GRACE: Duration = Duration::from_secs(1);

/// Messages not yet written, shared by the printing thread and
/// [`Printer::finish`].
struct Unprinted {
    /// Those that arrived before the queue existed, printed first.
    earlier: Vec<Message>,
    queue: Receiver<Message>,
    /// Whether the thread has taken one out and is writing it.
    writing: bool,
}

/// Where the messages go.
pub enum Sink {
    /// Standard error, which may block, in lines that say the lock and the
    /// sender.
    Stderr,
    /// The command's pipe (`--pass-messages`), which never blocks, in lines
    /// of the sender and the message.
    Pipe(PipeWriter),
}

/// The running printer of one lock's messages.
pub struct Printer {
    unprinted: Arc<Mutex<Unprinted>>,
    /// Messages the command's pipe had no room for.
    dropped: Arc<AtomicUsize>,
    done: Receiver<()>,
}

/// What became of the messages that were not passed on, once `hold` is
/// done.
pub struct Unshown {
    /// Still waiting for standard error to take them.
    pub unprinted: usize,
    /// Dropped because the command's pipe had no room (or no reader).
    pub dropped: usize,
}

impl Printer {
    /// The queue of messages to print, which takes at most
    /// [`MAX_UNREAD_MESSAGES`] unprinted ones: its sender for the booking
    /// to forward messages to, its receiver for [`Printer::start`].
    pub fn queue() -> (SyncSender<Message>, Receiver<Message>) {
        mpsc::sync_channel(MAX_UNREAD_MESSAGES)
    }

    /// Starts printing messages for the lock `name`: those in `earlier`
    /// (which arrived before the booking forwarded them to the queue)
    /// first, then those of `queue`.
    pub fn start(
        name: String,
        earlier: Vec<Message>,
        queue: Receiver<Message>,
        mut sink: Sink,
    ) -> Printer {
        let unprinted = Arc::new(Mutex::new(Unprinted {
            earlier: earlier.into_iter().rev().collect(),
            queue,
            writing: false,
        }));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (finished, done) = mpsc::channel();
        let shared = unprinted.clone();
        let dropping = dropped.clone();
        thread::spawn(move || {
            while let Some(message) = next(&shared) {
                match &mut sink {
                    Sink::Stderr => show(&name, &message),
                    Sink::Pipe(pipe) => {
                        if !pipe.offer(pipe_line(&message).as_bytes()) {
                            dropping.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if let Ok(mut unprinted) = shared.lock() {
                    unprinted.writing = false;
                }
            }
            let _ = finished.send(());
        });
        Printer {
            unprinted,
            dropped,
            done,
        }
    }

    /// Waits a moment for the messages still queued to be written, once
    /// every sender of the queue is gone (the booking is dropped); answers
    /// how many could not be, and are dropped, and how many the command's
    /// pipe had no room for.
    pub fn finish(self) -> Unshown {
        let unprinted = self.unprinted_after_grace();
        Unshown {
            unprinted,
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    fn unprinted_after_grace(&self) -> usize {
        match self.done.recv_timeout(GRACE) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => 0,
            // Stuck writing, so it holds the lock no longer than a
            // moment; a thread that holds it is still waiting for a
            // message (some sender lives on), with none left unprinted.
            Err(RecvTimeoutError::Timeout) => match self.unprinted.try_lock() {
                Ok(unprinted) => {
                    unprinted.earlier.len()
                        + unprinted.queue.try_iter().count()
                        + usize::from(unprinted.writing)
                }
                Err(_) => 0,
            },
        }
    }
}

/// The next message to print; `None` once every sender is gone and all
/// are printed.
fn next(unprinted: &Mutex<Unprinted>) -> Option<Message> {
    // Held while waiting: only `finish` takes it too, and only tries.
    let mut unprinted = unprinted.lock().ok()?;
    let message = match unprinted.earlier.pop() {
        Some(message) => message,
        None => unprinted.queue.recv().ok()?,
    };
    unprinted.writing = true;
    Some(message)
}

/// Prints a message sent to the lock, and who sent it, in one write (so
/// that a pipe takes the line whole or not at all, never half of it before
/// `hold`'s last words); a standard error that is gone (a closed pipe,
/// say) must not stop `hold`.
fn show(name: &str, message: &Message) {
    let line = format!(
        "namaste: message for {name} from {}: {}\n",
        described(message.sender),
        escaped(&message.bytes, 1000)
    );
    let _ = io::stderr().write_all(line.as_bytes());
}

/// A message for the command's pipe: the sender's user, a colon and a
/// space, and the message, escaped as on standard error; cut so that the
/// line fits one write to the pipe (the sender's name after 64 characters,
/// the message after 900, each at most 4 bytes).
fn pipe_line(message: &Message) -> String {
    format!(
        "{}: {}\n",
        escaped(described(message.sender).as_bytes(), 64),
        escaped(&message.bytes, 900)
    )
}

/// Like `say`, but gives up after [`GRACE`] if standard error takes
/// nothing (a pipe full and unread): for `hold`'s last lines, so that it
/// exits whatever standard error does.
pub fn say_within_grace(line: impl std::fmt::Display) {
    let mut ready = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    let timeout = libc::c_int::try_from(GRACE.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes the one pollfd given, which lives on
    // this stack frame.
    if unsafe { libc::poll(&mut ready, 1, timeout) } != 1 || ready.revents & libc::POLLOUT == 0 {
        return;
    }
    // A line of `say` fits in what a pipe with room takes at once; written
    // past the lock of `io::stderr()`, which a printer stuck in a write
    // holds.
    // SAFETY: descriptor 2 stays open for the life of the process, and
    // `ManuallyDrop` never closes it.
    let mut stderr = ManuallyDrop::new(unsafe { File::from_raw_fd(libc::STDERR_FILENO) });
    let _ = stderr.write_all(format!("namaste: {line}\n").as_bytes());
}
