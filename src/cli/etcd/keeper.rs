//! The keeper: a small process of its own that keeps the lock's lease
//! alive for as long as any process of the command's tree lives, even when
//! `hold` itself is killed with SIGKILL. The command's tree inherits the
//! write end of a pipe, as flock(1) hands down its descriptor; the keeper
//! holds the read end, and when the last process holding the write end
//! has exited it reads the end of the pipe and revokes the lease at once.
//! When etcd says the lease is gone, the lock's key is gone (deleted by
//! hand), or etcd has been out of reach for a whole TTL (after which etcd
//! may have ended the lease), the lock is lost: the keeper says so, signals
//! the command's process group, and tells `hold`. If the keeper itself
//! dies while the command runs, nothing renews the lease: `hold` says so
//! and signals the command in its place.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::api::{Etcd, Lease};

/// How soon a failed keep-alive is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// The least time a keep-alive is given, even when the lease is about to
/// end: enough for a reply on a healthy network.
const MIN_REQUEST: Duration = Duration::from_millis(50);

/// What `hold` keeps of its keeper.
pub struct Keeper {
    pid: libc::pid_t,
    /// The pipe's write end: the lease lives while a copy of it is open.
    /// Whom to signal if the lock is lost is written to it once known.
    pub tree: File,
    /// A copy of the pipe's read end, to see whether the tree still
    /// holds the write end.
    tree_watch: File,
    /// What `hold` hears from the keeper, shared with the thread that
    /// watches it.
    lost: Arc<Lost>,
    lost_signal: i32,
    shown: String,
}

/// The keeper's news of a lost lock.
struct Lost {
    /// One byte arrives here if the keeper lost the lock; the end of the
    /// pipe, without that byte, if the keeper died.
    pipe: File,
    /// Set before `hold` lets go of its copy of the tree's pipe: from
    /// then on the keeper may end, revoking the lease, as it should.
    finishing: AtomicBool,
    /// Set when the keeper died while the command ran.
    keeper_died: AtomicBool,
}

/// What the keeper needs to know.
pub struct Lock<'a> {
    pub etcd: &'a Etcd,
    pub lease: i64,
    pub ttl: Duration,
    pub lost_signal: i32,
    /// The lock's name, for the line that says it was lost.
    pub shown: &'a str,
    /// The contender's own key: the lock is lost if it is deleted.
    pub key: &'a [u8],
}

impl Keeper {
    /// Forks the keeper for `lock`. Must be called while this process has
    /// a single thread: the child runs on after fork.
    pub fn start(lock: &Lock) -> io::Result<Keeper> {
        let (tree_read, tree) = pipe()?;
        let (lost, lost_write) = pipe()?;
        // SAFETY: the process has one thread (see above), so the child
        // may run any code; it never returns from this function.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(tree);
            drop(lost);
            keep(lock, File::from(tree_read), File::from(lost_write));
            // SAFETY: _exit ends this child alone, without running the
            // parent's exit handlers or flushing its buffers twice.
            unsafe { libc::_exit(0) };
        }
        let lost = File::from(lost);
        set_nonblocking(&lost);
        Ok(Keeper {
            pid,
            tree: File::from(tree),
            tree_watch: File::from(tree_read),
            lost: Arc::new(Lost {
                pipe: lost,
                finishing: AtomicBool::new(false),
                keeper_died: AtomicBool::new(false),
            }),
            lost_signal: lock.lost_signal,
            shown: lock.shown.to_owned(),
        })
    }

    /// The keeper's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The command runs, holding the lock: tells the keeper whom to signal
    /// if the lock is lost, as kill(2) takes it (a process group as its id
    /// negated, or one process), and watches the keeper in a thread of
    /// this process, which signals `target` in its place if it dies.
    pub fn command_started(&self, target: libc::pid_t) {
        let _ = (&self.tree).write_all(&target.to_ne_bytes());
        let lost = Arc::clone(&self.lost);
        let (signal, shown) = (self.lost_signal, self.shown.clone());
        thread::spawn(move || {
            wait_readable(&lost.pipe);
            // The keeper said so itself (and signalled), or ended because
            // `hold` let go.
            if lost.finishing.load(Ordering::SeqCst) || bytes_waiting(&lost.pipe) > 0 {
                return;
            }
            lost.keeper_died.store(true, Ordering::SeqCst);
            let why = "its keeper died, and nothing renews its lease";
            announce(&shown, why, &target.to_ne_bytes(), signal);
        });
    }

    /// Lets go of this process's copy of the pipe; if no other is left
    /// (nothing of the command's tree lives on), waits for the keeper to
    /// revoke the lease and exit, so that the lock is free before `hold`
    /// exits. Answers whether the keeper said the lock was lost.
    pub fn finish(self) -> bool {
        let Keeper {
            pid,
            tree,
            tree_watch,
            lost,
            ..
        } = self;
        lost.finishing.store(true, Ordering::SeqCst);
        drop(tree);
        let mut poll = libc::pollfd {
            fd: tree_watch.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: poll reads and writes the one pollfd given.
        let polled = unsafe { libc::poll(&mut poll, 1, 0) };
        if polled > 0 && poll.revents & libc::POLLHUP != 0 {
            let mut status = 0;
            // SAFETY: waitpid writes only into `status`.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
        let mut byte = [0];
        matches!((&lost.pipe).read(&mut byte), Ok(1)) || lost.keeper_died.load(Ordering::SeqCst)
    }
}

/// A pipe whose ends are closed on exec: the command inherits the write
/// end only when asked.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut ends = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `ends`, which we own then.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are open, and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

fn set_nonblocking(file: &File) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// The keeper's life: out of the terminal's process group (Ctrl-C is for
/// the command, which decides when the lock ends), standard input and
/// output let go (a reader of `hold`'s output is not kept waiting), the
/// lease renewed every third of its TTL until the tree is gone.
fn keep(lock: &Lock, mut tree: File, mut lost: File) {
    // SAFETY: plain calls on this process and on descriptors 0 and 1.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    let period = lock.ttl / 3;
    // Counted from before each request that renewed the lease, so that it
    // never ends at etcd before it does here.
    let mut renewed = Instant::now();
    let mut next = renewed + period;
    let mut target = Vec::with_capacity(4);
    loop {
        match readable_until(&tree, next) {
            Ok(true) => {
                let mut bytes = [0; 4];
                match tree.read(&mut bytes) {
                    Ok(0) => {
                        let _ = lock.etcd.revoke(lock.lease);
                        return;
                    }
                    Ok(n) => target.extend_from_slice(&bytes[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return lose(lock, &target, &mut lost, "its keeper lost its pipe"),
                }
                continue;
            }
            Ok(false) => {}
            Err(_) => return lose(lock, &target, &mut lost, "its keeper lost its pipe"),
        }
        // Never past the moment the lease may have ended at etcd, so that
        // the lock is given up no later than etcd may hand it on.
        let asked = Instant::now();
        let expiry = renewed + lock.ttl;
        let timeout = expiry.saturating_duration_since(asked).min(period);
        match lock.etcd.keep_alive(lock.lease, timeout.max(MIN_REQUEST)) {
            Ok(Lease::Alive) => {
                renewed = asked;
                next = asked + period;
                // Once the command runs, the key is the lock: deleted by
                // hand, it frees the lock though the lease lives on.
                let holding = target.len() == 4;
                let gone = || {
                    matches!(
                        lock.etcd.exists(lock.key, timeout.max(MIN_REQUEST)),
                        Ok(false)
                    )
                };
                if holding && gone() {
                    return lose(lock, &target, &mut lost, "its key was deleted");
                }
            }
            Ok(Lease::Gone) => return lose(lock, &target, &mut lost, "etcd has ended its lease"),
            Err(e) if Instant::now() >= expiry => {
                let why = format!("etcd was out of reach for its whole TTL ({e})");
                return lose(lock, &target, &mut lost, &why);
            }
            Err(_) => next = (Instant::now() + RETRY).min(expiry),
        }
    }
}

/// Waits until `tree` can be read or `deadline` has come.
fn readable_until(tree: &File, deadline: Instant) -> io::Result<bool> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut poll = libc::pollfd {
        fd: tree.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes the one pollfd given.
    match unsafe { libc::poll(&mut poll, 1, millis) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// The lock is lost: says so, signals the command's process group (or
/// the command) if known, and tells `hold`.
fn lose(lock: &Lock, target: &[u8], lost: &mut File, why: &str) {
    announce(lock.shown, why, target, lock.lost_signal);
    let _ = lost.write_all(b"L");
    let _ = lock.etcd.revoke(lock.lease);
}

/// Says that the lock `shown` was lost and why, and sends `signal` to
/// `target` (kill(2)'s pid, in bytes as the pipe carries it) if known.
fn announce(shown: &str, why: &str, target: &[u8], signal: i32) {
    let _ = writeln!(
        io::stderr(),
        "namaste: lost {shown}: {why}; sending signal {signal} to the command"
    );
    if let Ok(target) = <[u8; 4]>::try_from(target) {
        let target = libc::pid_t::from_ne_bytes(target);
        // Never every process (-1), nor init or our own group (1, 0).
        if !(-1..=1).contains(&target) {
            // SAFETY: kill(2) takes plain integers.
            unsafe { libc::kill(target, signal) };
        }
    }
}

/// Blocks until `pipe` can be read: a byte or its end.
fn wait_readable(pipe: &File) {
    let mut poll = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll reads and writes the one pollfd given.
    while unsafe { libc::poll(&mut poll, 1, -1) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// How many bytes `pipe` holds unread.
fn bytes_waiting(pipe: &File) -> libc::c_int {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `count`.
    if unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut count) } < 0 {
        return 0;
    }
    count
}
