//! The lock recipe on etcd's keys, as etcd's own lock service and
//! `etcdctl lock` lay them out: each contender puts a key of its own,
//! `{prefix}{NAME}/{lease in hex}`, on its lease; the key created first
//! holds the lock, and each waiter watches the key created just before its
//! own, so waiters are served in the order they came (first come, first
//! served, by create revision), each the moment the one before leaves.

use std::thread;
use std::time::{Duration, Instant};

use super::api::{Etcd, KeyValue};
use super::http::Error;

/// How soon a queue that could not be read is read again.
const RETRY: Duration = Duration::from_millis(500);

/// The longest a waiter watches before it reads the queue again.
const READ_AGAIN: Duration = Duration::from_secs(2);

/// One contender for a lock.
pub struct Contender<'a> {
    pub etcd: &'a Etcd,
    /// Every key of the lock starts with it.
    pub lock: &'a [u8],
    /// The contender's own key, under `lock`.
    pub key: &'a [u8],
    /// What the key holds: who holds it, for `status`.
    pub value: &'a [u8],
    pub lease: i64,
}

impl Contender<'_> {
    /// Takes the lock if it is free, without queueing: no key is left
    /// behind when another holds it. Answers the token, the key's create
    /// revision, or None.
    pub fn try_take(&self) -> Result<Option<i64>, Error> {
        self.etcd
            .create_if_none(self.lock, self.key, self.value, self.lease)
    }

    /// Queues for the lock and waits up to `timeout` for it. Answers the
    /// token, or None when the time ran out (the key is left to the
    /// lease's revocation, which removes it from the queue). While etcd is
    /// out of reach (restarted, say), the place is kept, and asked about
    /// again, for as long as the lease lives.
    pub fn wait_for(&self, timeout: Duration) -> Result<Option<i64>, Error> {
        let deadline = Instant::now() + timeout;
        let token = self.etcd.create(self.key, self.value, self.lease)?;
        loop {
            match self.served(token, deadline) {
                Err(e) if e.is_passing() && Instant::now() + RETRY < deadline => {
                    thread::sleep(RETRY);
                }
                Ok(Turn::Waited) => {}
                Ok(Turn::Served) => return Ok(Some(token)),
                Ok(Turn::TimeRanOut) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the queue and waits, up to `deadline`, for the key before
    /// ours (that of `token`) to leave.
    fn served(&self, token: i64, deadline: Instant) -> Result<Turn, Error> {
        let (mut keys, at) = self.etcd.keys(self.lock, Some(token + 1))?;
        match keys.pop() {
            Some(KeyValue {
                key,
                create_revision,
                ..
            }) if key == self.key && create_revision == token => {}
            // The lease ran out while waiting (etcd was out of reach
            // longer than its TTL, say): the place in the queue is lost.
            _ => {
                return Err(Error::Refused(
                    "the lock's lease ended while waiting".into(),
                ));
            }
        }
        let Some(before) = keys.pop() else {
            return Ok(Turn::Served);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Turn::TimeRanOut);
        }
        // From the revision the keys were read at on, so that a deletion
        // in between is not missed; then, the queue is read again: the one
        // before may have left its own place only.
        // A while at a time: a member that froze after the watch began
        // never tells, and the next reading asks another.
        let mut watch = self.etcd.watch(&before.key, at + 1)?;
        let deleted = watch.deleted(left.min(READ_AGAIN))?;
        Ok(if deleted || left > READ_AGAIN {
            Turn::Waited
        } else {
            Turn::TimeRanOut
        })
    }
}

/// Where one look at the queue left a contender.
enum Turn {
    /// First in the queue: the lock is ours.
    Served,
    /// The one before left; the queue is to be read again.
    Waited,
    /// The wait's time ran out.
    TimeRanOut,
}
