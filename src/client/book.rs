//! Booking: on a line where the server keeps one, as BOOK and WAIT did
//! before lines otherwise, and the fall-back between the two.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::responder::Responder;
use super::{Booking, Client, Error, MAX_UNREAD_MESSAGES};
use crate::handshake::Handshake;
use crate::uid::{LockId, Uid};
use crate::wire::{MAX_WAIT, REPLY_NO, REPLY_YES, Request, name_prefix};

impl Client {
    /// Books `uid`: answers the [`Booking`] when granted, [`Error::Held`]
    /// when another live process holds it. Like a mutex guard, the booking
    /// is the `Ok` value, so `client.book(uid)?;`, which would check out at
    /// once, warns that it is unused.
    ///
    /// Our server grants it on a line (a LINE request): the connection
    /// stays open while the booking is held, and its close frees the lock
    /// at once, even when this process is killed. A server that keeps no
    /// lines, such as the published 0.6.0, closes that request; then this
    /// sends a plain BOOK, and, from then on, so does this client and its
    /// clones.
    pub fn book(&self, id: impl Into<LockId>) -> Result<Booking, Error> {
        let id = id.into();
        // A server of ours that knows lines but not names closes a named
        // LINE: then the LINE goes again, without the name.
        for _ in 0..2 {
            if !self.lines.load(Ordering::Relaxed) {
                break;
            }
            let named = self.sends_name(&id);
            match self.book_by(&id, Duration::ZERO, |handshake, port| {
                line_request(id.uid(), handshake, port, Duration::ZERO, true)
            }) {
                Err(Error::Refused) => self.learn_what_the_server_keeps(),
                lined => return lined,
            }
            if !named || self.names.load(Ordering::Relaxed) {
                break;
            }
        }
        let uid = id.uid();
        self.book_by(&id, Duration::ZERO, |handshake, port| Request::Book {
            uid,
            handshake,
            port,
        })
    }

    /// After a LINE or WAIT closed without a reply: stops asking for lines
    /// if the server keeps none, and stops sending names if it keeps none.
    /// Our server at one of its limits, or restarting, closes such a
    /// request too; only its STATUS, which names `lines=` and `names=`,
    /// tells them apart.
    fn learn_what_the_server_keeps(&self) {
        match self.status() {
            Ok(status) => {
                if status.lines.is_none() {
                    self.lines.store(false, Ordering::Relaxed);
                }
                if status.names.is_none() {
                    self.names.store(false, Ordering::Relaxed);
                }
            }
            Err(Error::NoServer { .. } | Error::Io(_)) => {}
            Err(_) => {
                self.lines.store(false, Ordering::Relaxed);
                self.names.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Whether a request for `id` goes with its name: when it has one
    /// that fits a NAME prefix, and the server is not known to keep none.
    fn sends_name(&self, id: &LockId) -> bool {
        self.names.load(Ordering::Relaxed) && id.name().and_then(name_prefix).is_some()
    }

    /// Books `uid`, waiting for at most `timeout` while another live
    /// process holds it; `Duration::ZERO` tries once. Answers
    /// [`Error::Held`] when the time is up; another error at once when no
    /// server answers the first request.
    ///
    /// Our server serves waiters in arrival order and grants the id the
    /// moment its holder checks out, proves dead or its line closes (a LINE
    /// request, granted on a line as [`book`](Client::book) is; a WAIT to
    /// a server without lines). A server without WAIT, such as the
    /// published 0.6.0, closes such a request at once; then, and whenever
    /// a wait is cut short (its waiter
    /// limits, or the server restarting: waiters are not recorded in its
    /// state file), this tries a plain book and pauses, with growing,
    /// jittered pauses up to a second, before it waits again, until the
    /// time is up. A server that has answered once and then stops
    /// answering is taken for one restarting.
    pub fn book_wait(&self, id: impl Into<LockId>, timeout: Duration) -> Result<Booking, Error> {
        let id = id.into();
        let uid = id.uid();
        // Too far ahead for the clock to name: as good as for ever.
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_millis(20);
        let mut answered = false;
        loop {
            let left = deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return self.book(id);
            }
            let wait = left.min(MAX_WAIT);
            let line = self.lines.load(Ordering::Relaxed);
            let waited = self.book_by(&id, wait, |handshake, port| {
                line_request(uid, handshake, port, wait, line)
            });
            let waited = match waited {
                Err(Error::Refused) => {
                    answered = true;
                    self.learn_what_the_server_keeps();
                    self.book(id.clone())
                }
                other => other,
            };
            match waited {
                Ok(booking) => return Ok(booking),
                // Its time is up, or it was not granted for want of proof
                // that this process is alive: try again while time is left.
                Err(Error::Held | Error::Refused) => answered = true,
                Err(Error::NoServer { .. }) if answered => {}
                Err(e) => return Err(e),
            }
            let left = deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(Error::Held);
            }
            std::thread::sleep(jittered(pause).min(left));
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Starts a liveness responder with a fresh handshake, sends the
    /// request `make` builds for them (after the name of `id`, for a
    /// request of ours, when [`sends_name`](Client::sends_name)), and
    /// waits for the reply `wait` longer than for a plain request.
    fn book_by(
        &self,
        id: &LockId,
        wait: Duration,
        make: impl FnOnce(Handshake, u16) -> Request,
    ) -> Result<Booking, Error> {
        let uid = id.uid();
        let handshake = loop {
            let handshake = Handshake::random().map_err(Error::Random)?;
            if handshake.as_bytes() != uid.as_bytes() {
                break handshake;
            }
        };
        let (sender, messages) = mpsc::sync_channel(MAX_UNREAD_MESSAGES);
        let responder = Responder::start(uid, handshake, self.rw_timeout, self.port, sender)
            .map_err(Error::Io)?;
        let request = make(handshake, responder.port());
        let lined = matches!(request, Request::Wait { line: true, .. });
        let ours = matches!(request, Request::Wait { .. });
        let prefix = match id.name().and_then(name_prefix) {
            Some(prefix) if ours && self.sends_name(id) => prefix,
            _ => Vec::new(),
        };
        let (reply, stream) = self.exchange(&[prefix, request.encode()].concat(), wait)?;
        if reply == REPLY_NO {
            return Err(Error::Held);
        }
        // A BOOK's reply is 0.6.0's: anything but no is yes.
        if let Some(refused) = Error::of_refusal(reply).filter(|_| ours) {
            return Err(refused);
        }
        let booking = Booking {
            uid,
            handshake,
            client: self.clone(),
            responder,
            messages,
            owes_check_out: true,
        };
        if lined && reply == REPLY_YES {
            // Dropped on failure, the booking checks out.
            let reattach = self.reattach;
            booking
                .responder
                .line()
                .keep(stream, reattach)
                .map_err(Error::Io)?;
        }
        Ok(booking)
    }
}

/// A LINE (when `line`) or a WAIT for `uid`.
fn line_request(uid: Uid, handshake: Handshake, port: u16, wait: Duration, line: bool) -> Request {
    Request::Wait {
        uid,
        handshake,
        port,
        wait,
        line,
    }
}

/// A pause between half of `pause` and all of it, so that waiters who
/// collided once do not collide again.
fn jittered(pause: Duration) -> Duration {
    let mut random = [0; 4];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    };
    pause.mul_f64(0.5 + fraction / 2.0)
}
