//! A holder's liveness responder: the listener the server calls back to
//! prove the holder alive, and where NOTIFY messages arrive.
//!
//! Any process on the machine can connect to it, so it must not be
//! stallable: one thread polls every connection without blocking, each has
//! a deadline, and when too many are open, whatever has arrived on them is
//! read first (a verification whose handshake is in is answered and
//! leaves), and only then is the oldest dropped. So silent connections can
//! never make the server's verification wait, and a flood cannot push it
//! out once its handshake is in. (Sparing connections that sent a correct
//! prefix of the handshake would do more, but would tell a flooder, by
//! which of its connections survive, the handshake byte by byte.) Should
//! a flood still push a verification out, the server hears silence, which
//! proves nothing: the booking stays.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::Message;
use crate::deadlines::{ConnRef, Deadlines};
use crate::nonblocking::{Io, read_some, write_some};
use crate::uid::{UID_LEN, Uid};
use crate::wire::{MAX_MESSAGE_LEN, MESSAGE_ACK, MESSAGE_HEADER_LEN};

const LISTENER: Token = Token(usize::MAX);
const STOP: Token = Token(usize::MAX - 1);

/// Takes one NOTIFY message; answers whether it was taken (acknowledged to
/// the sender).
pub(crate) type Deliver = Box<dyn Fn(Message) -> bool + Send>;

/// Connections served at once. The server's verification needs one; more
/// only let an attacker keep some open longer.
const MAX_EXCHANGES: usize = 16;

/// A running responder; stopping it (on drop) closes its port and ends its
/// thread before `drop` returns.
pub(crate) struct Responder {
    port: u16,
    /// The listening socket's descriptor, owned by the thread; open for as
    /// long as this value lives.
    listener_fd: RawFd,
    /// Where the responder thread hands NOTIFY messages.
    deliver: Arc<Mutex<Deliver>>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Listens on 127.0.0.1 at a port of the system's choosing; answers
    /// `handshake` with `uid`, and passes NOTIFY messages to `messages`
    /// until [`forward`](Responder::forward) names another receiver.
    pub fn start(
        uid: Uid,
        handshake: Uid,
        rw_timeout: Duration,
        messages: SyncSender<Message>,
    ) -> io::Result<Responder> {
        // Full or gone: not taken.
        let deliver: Deliver = Box::new(move |message| messages.try_send(message).is_ok());
        let deliver = Arc::new(Mutex::new(deliver));
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = listener.local_addr()?.port();
        let listener_fd = listener.as_raw_fd();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), STOP)?;
        let serve = Serve {
            poll,
            listener,
            uid,
            handshake,
            deliver: deliver.clone(),
            exchanges: Slab::with_capacity(MAX_EXCHANGES),
            deadlines: Deadlines::new(rw_timeout),
            next_generation: 0,
        };
        let thread = thread::Builder::new()
            // Fits the 15 characters Linux keeps of a thread name.
            .name(format!("responder:{port}"))
            .spawn(move || serve.run())?;
        Ok(Responder {
            port,
            listener_fd,
            deliver,
            waker,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Hands the NOTIFY messages that arrive from now on to `deliver`
    /// (on the responder's thread) instead; it answers whether it took
    /// each one.
    pub fn forward(&self, deliver: Deliver) {
        if let Ok(mut current) = self.deliver.lock() {
            *current = deliver;
        }
    }

    /// A second descriptor of the listening socket, which keeps the port
    /// listening for as long as it, or any copy a child inherits, is open.
    pub fn duplicate_listener(&self) -> io::Result<OwnedFd> {
        // SAFETY: the thread that owns the listener runs, and keeps it
        // open, until `self` is dropped; `&self` outlives this borrow.
        unsafe { BorrowedFd::borrow_raw(self.listener_fd) }.try_clone_to_owned()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let (Ok(()), Some(thread)) = (self.waker.wake(), self.thread.take()) {
            let _ = thread.join();
        }
    }
}

struct Serve {
    poll: Poll,
    listener: TcpListener,
    uid: Uid,
    handshake: Uid,
    deliver: Arc<Mutex<Deliver>>,
    exchanges: Slab<Exchange>,
    deadlines: Deadlines,
    next_generation: u32,
}

struct Exchange {
    stream: TcpStream,
    generation: u32,
    step: Step,
}

/// Where one connection is: a verification ends after `Answer`; a NOTIFY
/// goes on to its header (sender and length), its message and the
/// acknowledgement.
enum Step {
    Handshake {
        got: usize,
        heard: [u8; UID_LEN],
    },
    /// The uid for our own handshake; for any other, the handshake heard,
    /// and then the end.
    Answer {
        answer: [u8; UID_LEN],
        sent: usize,
        own: bool,
    },
    Header {
        got: usize,
        bytes: [u8; MESSAGE_HEADER_LEN],
    },
    Message {
        sender: u32,
        want: usize,
        message: Vec<u8>,
    },
    Ack,
}

impl Serve {
    fn run(mut self) {
        let mut events = Events::with_capacity(32);
        loop {
            let timeout = self
                .deadlines
                .next()
                .map(|at| at.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Nothing sensible is left to do; the booking will fail its
                // next verification, as a dead holder's would.
                Err(_) => return,
            }
            for event in events.iter() {
                match event.token() {
                    STOP => return,
                    LISTENER => self.accept(),
                    Token(key) => self.advance(key),
                }
            }
            let now = Instant::now();
            while let Some(expired) = self.deadlines.expired(now) {
                self.close(expired);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors, say: the connection stays in the
                // backlog, and the next event retries.
                Err(_) => return,
            };
            if self.exchanges.len() == MAX_EXCHANGES {
                // Whatever has arrived is read before anyone is given up:
                // a verification whose handshake is in is answered now,
                // and leaves.
                self.advance_all();
            }
            if self.exchanges.len() == MAX_EXCHANGES {
                self.drop_oldest();
            }
            let key = self.exchanges.vacant_key();
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            self.next_generation = self.next_generation.wrapping_add(1);
            let generation = self.next_generation;
            self.exchanges.insert(Exchange {
                stream,
                generation,
                step: Step::Handshake {
                    got: 0,
                    heard: [0; UID_LEN],
                },
            });
            self.deadlines
                .start(Instant::now(), ConnRef { key, generation });
            // The server writes its handshake right after connecting.
            self.advance(key);
        }
    }

    fn advance_all(&mut self) {
        let keys: Vec<usize> = self.exchanges.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.advance(key);
        }
    }

    /// Makes room for a new connection by giving up the longest-open one.
    fn drop_oldest(&mut self) {
        while let Some(oldest) = self.deadlines.pop_oldest() {
            if self.close(oldest) {
                return;
            }
        }
    }

    /// Closes `conn` if it is still open; answers whether it was.
    fn close(&mut self, conn: ConnRef) -> bool {
        let open = self
            .exchanges
            .get(conn.key)
            .is_some_and(|exchange| exchange.generation == conn.generation);
        if open {
            self.exchanges.remove(conn.key);
        }
        open
    }

    fn advance(&mut self, key: usize) {
        let Some(exchange) = self.exchanges.get_mut(key) else {
            return;
        };
        let finished = exchange.advance(&self.uid, &self.handshake, &self.deliver);
        if finished {
            self.exchanges.remove(key);
        }
    }
}

impl Exchange {
    /// Moves the exchange on as far as the socket allows; answers whether
    /// it is over.
    fn advance(&mut self, uid: &Uid, handshake: &Uid, deliver: &Mutex<Deliver>) -> bool {
        loop {
            let io = match &mut self.step {
                Step::Handshake { got, heard } => {
                    let io = read_some(&mut self.stream, &mut heard[*got..]);
                    if let Io::Done(n) = io {
                        *got += n;
                        if *got == UID_LEN {
                            let own = Uid(*heard).matches_secret(handshake);
                            // A handshake not ours is a call for a booking
                            // that once had this port, now dead. Answered
                            // with itself, never the uid it was sent for
                            // (the server refuses a uid equal to its
                            // handshake), it proves that booking gone, as
                            // silence would not; and it tells the caller
                            // nothing it did not know.
                            let answer = if own { *uid.as_bytes() } else { *heard };
                            self.step = Step::Answer {
                                answer,
                                sent: 0,
                                own,
                            };
                        }
                    }
                    io
                }
                Step::Answer { answer, sent, own } => {
                    let io = write_some(&mut self.stream, &answer[*sent..]);
                    if let Io::Done(n) = io {
                        *sent += n;
                        if *sent == UID_LEN && !*own {
                            return true;
                        }
                        if *sent == UID_LEN {
                            self.step = Step::Header {
                                got: 0,
                                bytes: [0; MESSAGE_HEADER_LEN],
                            };
                        }
                    }
                    io
                }
                // A plain verification ends here, with the server closing.
                Step::Header { got, bytes } => {
                    let io = read_some(&mut self.stream, &mut bytes[*got..]);
                    if let Io::Done(n) = io {
                        *got += n;
                        if *got == bytes.len() {
                            let [s0, s1, s2, s3, l0, l1, l2, l3] = *bytes;
                            let want = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
                            if want > MAX_MESSAGE_LEN {
                                return true;
                            }
                            self.step = Step::Message {
                                sender: u32::from_be_bytes([s0, s1, s2, s3]),
                                want,
                                message: Vec::new(),
                            };
                        }
                    }
                    io
                }
                Step::Message {
                    sender,
                    want,
                    message,
                } if message.len() == *want => {
                    let message = Message {
                        sender: *sender,
                        bytes: std::mem::take(message),
                    };
                    // The receiver lives as long as the booking; if it is
                    // gone, nobody takes the message and no ack is owed.
                    let taken = match deliver.lock() {
                        Ok(deliver) => deliver(message),
                        Err(_) => false,
                    };
                    if !taken {
                        return true;
                    }
                    self.step = Step::Ack;
                    continue;
                }
                Step::Message { want, message, .. } => {
                    let mut chunk = [0; 4096];
                    let room = chunk.len().min(*want - message.len());
                    let io = read_some(&mut self.stream, &mut chunk[..room]);
                    if let Io::Done(n) = io {
                        message.extend_from_slice(&chunk[..n]);
                    }
                    io
                }
                Step::Ack => {
                    return !matches!(write_some(&mut self.stream, &[MESSAGE_ACK]), Io::WouldBlock);
                }
            };
            match io {
                Io::Done(_) => {}
                Io::WouldBlock => return false,
                Io::Failed | Io::Refused => return true,
            }
        }
    }
}
