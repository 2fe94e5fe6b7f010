//! A held id, and the messages its holder receives.

use std::sync::mpsc::{Receiver, SyncSender};

use super::responder::Responder;
use super::{Client, Error, LineState};
use crate::handshake::Handshake;
use crate::uid::Uid;

/// A NOTIFY message, as its holder receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The OS user id of the process that sent it: the holder's own user
    /// or root (0), as the kernel told the server. The server hands over
    /// nothing from anyone else.
    pub sender: u32,
    /// The message as sent: any bytes, at most 64 KiB.
    pub bytes: Vec<u8>,
}

/// A held id. While it lives, its line (when the server keeps one) stays
/// open and its liveness responder answers the server; dropping it checks
/// out (best effort) and stops the responder, so no thread, socket or
/// port outlives it.
#[must_use = "dropping a Booking checks out at once: keep it while the work it protects runs"]
pub struct Booking {
    pub(super) uid: Uid,
    pub(super) handshake: Handshake,
    pub(super) client: Client,
    pub(super) responder: Responder,
    pub(super) messages: Receiver<Message>,
    /// Whether dropping it should check out: not once it has, or once the
    /// booking is left to child processes.
    pub(super) owes_check_out: bool,
    /// Its fencing token, if the server told it.
    pub(super) token: Option<u64>,
}

impl Booking {
    /// The id held.
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The booking's fencing token: a number the server gives each grant,
    /// greater than every one it gave before (across its restarts too,
    /// with a state file), so greater than any earlier holder's of this
    /// id. Hand it to the resource the lock protects, which keeps the
    /// greatest it has seen and refuses smaller ones: a holder that lost
    /// the booking without knowing it (a child it was left to closed the
    /// line and ran on, say) then cannot write after the next holder. `None` when the server gives no tokens (the published
    /// 0.6.0, say).
    pub fn token(&self) -> Option<u64> {
        self.token
    }

    /// How the server knows this booking's holder is alive now: on its
    /// line, or by calling back (see [`LineState`]).
    pub fn line_state(&self) -> LineState {
        self.responder.line().state()
    }

    /// The port of the liveness responder, for diagnostics.
    pub fn responder_port(&self) -> u16 {
        self.responder.port()
    }

    /// The messages other processes send with [`Client::notify`], in the
    /// order they arrived (unless [`forward_messages`](Booking::forward_messages)
    /// sends them elsewhere). At most [`MAX_UNREAD_MESSAGES`](super::MAX_UNREAD_MESSAGES) wait here
    /// unread; further ones are declined, and their senders told so.
    pub fn messages(&self) -> &Receiver<Message> {
        &self.messages
    }

    /// Sends the messages that arrive from now on to `to` instead of
    /// [`messages`](Booking::messages), each turned into a `T`: so that one
    /// thread can wait for messages and for other events of its own on one
    /// channel. Messages that arrived before stay in `messages()`. The
    /// channel's bound is the bound on unread messages: while it is full,
    /// or once its receiver is dropped, messages are declined, so their
    /// senders learn that the holder did not take them. (Other senders of
    /// the channel may block while it is full; messages never do.)
    ///
    /// ```no_run
    /// use std::sync::mpsc;
    ///
    /// use namaste::Uid;
    /// use namaste::client::{Client, Message};
    ///
    /// enum Event {
    ///     Message(Message),
    ///     Tick,
    /// }
    ///
    /// impl From<Message> for Event {
    ///     fn from(message: Message) -> Event {
    ///         Event::Message(message)
    ///     }
    /// }
    ///
    /// // Held by another live process: Error::Held.
    /// let booking = Client::new().book(Uid::from_name("editor"))?;
    /// let (events, inbox) = mpsc::sync_channel(16);
    /// booking.forward_messages(events.clone());
    /// std::thread::spawn(move || loop {
    ///     std::thread::sleep(std::time::Duration::from_secs(1));
    ///     if events.send(Event::Tick).is_err() {
    ///         break;
    ///     }
    /// });
    /// for event in inbox {
    ///     match event {
    ///         Event::Message(message) => println!("{}", String::from_utf8_lossy(&message.bytes)),
    ///         Event::Tick => {}
    ///     }
    /// }
    /// # Ok::<(), namaste::client::Error>(())
    /// ```
    pub fn forward_messages<T: From<Message> + Send + 'static>(&self, to: SyncSender<T>) {
        self.responder.forward(Box::new(move |message| {
            to.try_send(T::from(message)).is_ok()
        }));
    }

    /// Releases the id; answers whether the server released it (`false`
    /// means the booking was already gone, for instance taken over after
    /// the responder stopped answering).
    pub fn check_out(mut self) -> Result<bool, Error> {
        self.owes_check_out = false;
        self.check_out_now()
    }

    /// Checks out on the line, or, without one (or if the server had closed
    /// it), on a new connection.
    fn check_out_now(&self) -> Result<bool, Error> {
        if let Some(line) = self.responder.line().take_for_check_out()
            && let Some(released) = self.client.check_out_on(line, self.uid, self.handshake)
        {
            return Ok(released);
        }
        self.client.check_out(self.uid, self.handshake)
    }
}

/// Shows the id and the responder port; never the handshake.
impl std::fmt::Debug for Booking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Booking")
            .field("uid", &self.uid)
            .field("responder_port", &self.responder.port())
            .finish_non_exhaustive()
    }
}

impl Drop for Booking {
    fn drop(&mut self) {
        if self.owes_check_out {
            // Best effort: if the server cannot be told, the stopped
            // responder makes the booking fail its next verification.
            let _ = self.check_out_now();
        }
    }
}
