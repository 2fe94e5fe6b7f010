//! The WAITs queued for held uids, first come first served, and the times
//! the registry must act on: each waiter's deadline, and each queue's next
//! probe of its holder.
//!
//! Deadlines of any length arrive in any order, so a binary heap keeps
//! them; an entry whose waiter has left stays in the heap until it comes
//! due or the heap is rebuilt, which happens once stale entries outnumber
//! live ones, so the heap stays proportional to the waiters.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use super::booking::ResponderIp;
use super::{Mode, User};
use crate::handshake::Handshake;
use crate::uid::Uid;

/// A WAIT in a uid's queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Queued<R> {
    pub from: R,
    pub ip: ResponderIp,
    pub user: User,
    pub handshake: Handshake,
    pub port: u16,
    pub until: Instant,
    /// Names its deadline in the heap.
    pub ticket: u64,
    /// It asked for a line (LINE).
    pub line: bool,
    /// How it asks to hold the uid.
    pub mode: Mode,
}

#[derive(Clone)]
struct Queue<R> {
    waiters: VecDeque<Queued<R>>,
    /// The next probe of the holder, and the ticket that names it.
    probe: (Instant, u64),
}

/// Something the registry must act on at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timer {
    at: Instant,
    ticket: u64,
    uid: Uid,
}

impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> Ordering {
        (self.at, self.ticket).cmp(&(other.at, other.ticket))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What came due.
#[derive(Debug)]
pub(super) enum Due<R> {
    /// This waiter's wait for `uid` is over; it has left the queue.
    Deadline { uid: Uid, waiter: Queued<R> },
    /// A deadline whose waiter is no longer queued: it may be the one being
    /// verified for a grant, which must then not be granted.
    Lapsed { uid: Uid, ticket: u64 },
    /// Time to probe the holder of `uid`; the next probe is scheduled.
    Probe { uid: Uid },
}

#[derive(Clone)]
pub(super) struct Waiting<R> {
    queues: HashMap<Uid, Queue<R>>,
    timers: BinaryHeap<Reverse<Timer>>,
    count: usize,
    next_ticket: u64,
}

impl<R: Copy + PartialEq> Waiting<R> {
    pub fn new() -> Waiting<R> {
        Waiting {
            queues: HashMap::new(),
            timers: BinaryHeap::new(),
            count: 0,
            next_ticket: 0,
        }
    }

    /// Waiters in all queues.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Waiters in the queue of `uid`.
    pub fn count_for(&self, uid: &Uid) -> usize {
        self.queues.get(uid).map_or(0, |queue| queue.waiters.len())
    }

    /// A ticket for a new waiter's deadline.
    pub fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Waiters of `user` in the queue of `uid`: O(the queue), which its
    /// bound keeps short.
    pub fn count_for_user(&self, uid: &Uid, user: User) -> usize {
        self.queues.get(uid).map_or(0, |queue| {
            queue.waiters.iter().filter(|w| w.user == user).count()
        })
    }

    /// Puts `waiter` at the back of the queue of `uid`; the registry has
    /// checked the bounds. A new queue's first probe is at `first_probe`.
    pub fn join(&mut self, uid: Uid, waiter: Queued<R>, first_probe: Instant) {
        // Each timer is pushed after the state it stands for is in place,
        // so that a rebuild of the heap keeps it.
        let new_queue = !self.queues.contains_key(&uid);
        let probe = if new_queue { self.ticket() } else { 0 };
        let queue = self.queues.entry(uid).or_insert_with(|| Queue {
            waiters: VecDeque::new(),
            probe: (first_probe, probe),
        });
        queue.waiters.push_back(waiter);
        self.count += 1;
        if new_queue {
            self.push_timer(first_probe, probe, uid);
        }
        self.push_timer(waiter.until, waiter.ticket, uid);
    }

    /// The first waiter of `uid`'s queue, left in it.
    pub fn front(&self, uid: &Uid) -> Option<&Queued<R>> {
        self.queues.get(uid)?.waiters.front()
    }

    /// The mode of the first waiter of `uid` that asks to hold it shared
    /// or with slots, if any: O(the queue), which its bound keeps short.
    pub fn first_shared_mode(&self, uid: &Uid) -> Option<Mode> {
        let queue = self.queues.get(uid)?;
        let modes = queue.waiters.iter().map(|waiter| waiter.mode);
        modes.into_iter().find(|&mode| mode != Mode::Exclusive)
    }

    /// Takes the first waiter of `uid`'s queue.
    pub fn pop_front(&mut self, uid: &Uid) -> Option<Queued<R>> {
        let queue = self.queues.get_mut(uid)?;
        let waiter = queue.waiters.pop_front();
        if queue.waiters.is_empty() {
            self.queues.remove(uid);
        }
        if waiter.is_some() {
            self.count -= 1;
        }
        waiter
    }

    /// Takes `from` out of `uid`'s queue, if it is there.
    pub fn leave(&mut self, uid: &Uid, from: R) -> Option<Queued<R>> {
        self.remove(uid, |waiter| waiter.from == from)
    }

    /// When the registry next needs to be told the time.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(timer)| timer.at)
    }

    /// The next thing due at `now`, if any; a probe comes with the next one
    /// already scheduled, at `next_probe`.
    pub fn next_due(&mut self, now: Instant, next_probe: Instant) -> Option<Due<R>> {
        let Reverse(timer) = self.timers.peek().copied()?;
        if timer.at > now {
            return None;
        }
        self.timers.pop();
        let is_probe = self
            .queues
            .get(&timer.uid)
            .is_some_and(|queue| queue.probe.1 == timer.ticket);
        if is_probe {
            let ticket = self.ticket();
            if let Some(queue) = self.queues.get_mut(&timer.uid) {
                queue.probe = (next_probe, ticket);
            }
            self.push_timer(next_probe, ticket, timer.uid);
            return Some(Due::Probe { uid: timer.uid });
        }
        if let Some(waiter) = self.remove(&timer.uid, |w| w.ticket == timer.ticket) {
            return Some(Due::Deadline {
                uid: timer.uid,
                waiter,
            });
        }
        Some(Due::Lapsed {
            uid: timer.uid,
            ticket: timer.ticket,
        })
    }

    fn remove(&mut self, uid: &Uid, which: impl Fn(&Queued<R>) -> bool) -> Option<Queued<R>> {
        let queue = self.queues.get_mut(uid)?;
        let index = queue.waiters.iter().position(which)?;
        let waiter = queue.waiters.remove(index);
        if queue.waiters.is_empty() {
            self.queues.remove(uid);
        }
        self.count -= 1;
        waiter
    }

    /// Schedules the timer of a waiter or probe already in the queues.
    fn push_timer(&mut self, at: Instant, ticket: u64, uid: Uid) {
        self.timers.push(Reverse(Timer { at, ticket, uid }));
        // Every live timer is a waiter's deadline or a queue's probe;
        // past twice that, stale ones are the majority: keep the live.
        let live = self.count + self.queues.len();
        if self.timers.len() > 2 * live + 64 {
            self.timers = self
                .queues
                .iter()
                .flat_map(|(&uid, queue)| {
                    let probe = Timer {
                        at: queue.probe.0,
                        ticket: queue.probe.1,
                        uid,
                    };
                    let deadlines = queue.waiters.iter().map(move |w| Timer {
                        at: w.until,
                        ticket: w.ticket,
                        uid,
                    });
                    std::iter::once(probe).chain(deadlines)
                })
                .map(Reverse)
                .collect();
        }
    }

    /// Every queued waiter and its uid, for the model's recount of each
    /// user's waiters.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn all(&self) -> impl Iterator<Item = (&Uid, &Queued<R>)> {
        self.queues
            .iter()
            .flat_map(|(uid, queue)| queue.waiters.iter().map(move |waiter| (uid, waiter)))
    }

    /// Timers held, live and stale, for tests of the heap's bound.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn timers(&self) -> usize {
        self.timers.len()
    }
}
