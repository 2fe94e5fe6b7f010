//! Booking: on a line where the server keeps one, as BOOK and WAIT did
//! before lines otherwise, and the fall-back between the two.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::responder::Responder;
use super::{Booking, Client, Error, MAX_UNREAD_MESSAGES, REPLY_PATIENCE, read_before};
use crate::handshake::Handshake;
use crate::uid::{LockId, Uid};
use crate::wire::{
    MAX_WAIT, Mode, REPLY_NO, REPLY_SHARED_IN_FORCE, REPLY_SLOTS_IN_FORCE, REPLY_YES, Request,
    TOKEN_LEN, name_prefix,
};

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
    /// clones. The LINE carries the lock's name (for `namaste list`) and
    /// asks for the booking's fencing token ([`Booking::token`]), unless
    /// the server showed it keeps no names or gives no tokens.
    pub fn book(&self, id: impl Into<LockId>) -> Result<Booking, Error> {
        let id = id.into();
        // A server of ours that knows lines but not names or tokens closes
        // such a LINE: then the LINE goes again, without what it knows not.
        while self.lines.load(Ordering::Relaxed) {
            let asked = self.asks(&id);
            match self.book_by(&id, Duration::ZERO, |handshake, port| {
                self.line_request(id.uid(), handshake, port, Duration::ZERO, true)
            }) {
                Err(Error::Refused) => self.learn_what_the_server_keeps(),
                lined => return lined,
            }
            if self.asks(&id) == asked {
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

    /// What a LINE for `id` would carry beyond the request itself: its
    /// name, and a question for the fencing token.
    fn asks(&self, id: &LockId) -> (bool, bool) {
        (self.sends_name(id), self.tokens.load(Ordering::Relaxed))
    }

    /// After a LINE or WAIT closed without a reply: stops asking for lines
    /// if the server keeps none, sending names if it keeps none, and asking
    /// for tokens if it gives none. Our server at one of its limits, or
    /// restarting, closes such a request too; only its STATUS, which names
    /// `lines=`, `names=` and `tokens=`, tells them apart.
    fn learn_what_the_server_keeps(&self) {
        match self.status() {
            Ok(status) => {
                if status.lines.is_none() {
                    self.lines.store(false, Ordering::Relaxed);
                }
                if status.names.is_none() {
                    self.names.store(false, Ordering::Relaxed);
                }
                if status.tokens.is_none() {
                    self.tokens.store(false, Ordering::Relaxed);
                }
            }
            Err(Error::NoServer { .. } | Error::Io(_)) => {}
            Err(_) => {
                self.lines.store(false, Ordering::Relaxed);
                self.names.store(false, Ordering::Relaxed);
                self.tokens.store(false, Ordering::Relaxed);
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
                self.line_request(uid, handshake, port, wait, line)
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

    /// A LINE (when `line`) or a WAIT for `uid`: our server's requests,
    /// which ask for the fencing token too unless the server gives none.
    fn line_request(
        &self,
        uid: Uid,
        handshake: Handshake,
        port: u16,
        wait: Duration,
        line: bool,
    ) -> Request {
        Request::Wait {
            uid,
            handshake,
            port,
            wait,
            line,
            token: self.tokens.load(Ordering::Relaxed),
            mode: Mode::Exclusive,
        }
    }

    /// Starts a liveness responder with a fresh handshake, sends the
    /// request `make` builds for them (after the name of `id`, for a
    /// request of ours, when [`sends_name`](Client::sends_name)), and
    /// waits for the reply `wait` longer than for a plain request.
    pub(super) fn book_by(
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
        let with_token = matches!(request, Request::Wait { token: true, .. });
        let prefix = match id.name().and_then(name_prefix) {
            Some(prefix) if ours && self.sends_name(id) => prefix,
            _ => Vec::new(),
        };
        let (reply, mut stream) = self.exchange(&[prefix, request.encode()].concat(), wait)?;
        if reply == REPLY_NO {
            return Err(Error::Held);
        }
        if ours && reply == REPLY_SLOTS_IN_FORCE {
            let count = self.read_after_reply(&mut stream)?;
            return Err(Error::SlotsInForce(u32::from_be_bytes(count)));
        }
        if ours && reply == REPLY_SHARED_IN_FORCE {
            return Err(Error::SharedInForce);
        }
        // A BOOK's reply is 0.6.0's: anything but no is yes.
        if let Some(refused) = Error::of_refusal(reply).filter(|_| ours) {
            return Err(refused);
        }
        let mut booking = Booking {
            uid,
            handshake,
            client: self.clone(),
            responder,
            messages,
            owes_check_out: true,
            token: None,
        };
        if with_token {
            // Dropped on failure, the booking checks out.
            booking.token = Some(self.read_token(&mut stream)?);
        }
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

impl Client {
    /// Reads the fencing token that follows a grant's reply byte on
    /// `stream`, when the request asked for it.
    fn read_token(&self, stream: &mut TcpStream) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(
            self.read_after_reply::<TOKEN_LEN>(stream)?,
        ))
    }

    /// Reads the `N` bytes that follow a reply byte on `stream`.
    fn read_after_reply<const N: usize>(&self, stream: &mut TcpStream) -> Result<[u8; N], Error> {
        let deadline = Instant::now() + self.rw_timeout * REPLY_PATIENCE;
        let mut bytes = [0; N];
        let mut got = 0;
        while got < N {
            match read_before(stream, &mut bytes[got..], deadline).map_err(Error::Io)? {
                0 => return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
                n => got += n,
            }
        }
        Ok(bytes)
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

#[cfg(test)]
mod tests;
