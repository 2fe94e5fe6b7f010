//! `namaste hold`: run a command while holding a lock, like flock(1): the
//! command and its children keep the lock, and once the last of them is
//! gone nothing stale is left.

use std::ffi::OsString;
use std::num::NonZeroU32;
use std::process::{Command, ExitCode};
use std::time::Duration;

use namaste::client::{self, Booking, Client, LineState, Mode};
use namaste::uid::LockId;

use super::args::{Arg, Args, Usage, quoted, unknown};
use super::etcd;
use super::lock_env::LockName;
use super::message_pipe::{self, CommandEnd, MESSAGE_FD_VARIABLE};
use super::printer::{Printer, Sink, Unshown, say_within_grace};
use super::supervise::run_passing_signals;
use super::target::{Lock, Target};
use super::{EX_TEMPFAIL, fail, fail_request, say, trust};

pub const HELP: &str = "\
namaste hold: run a command while holding a lock

Usage: namaste hold NAME [OPTIONS] -- COMMAND [ARGS...]
       namaste hold --uid HEX [OPTIONS] -- COMMAND [ARGS...]

Books the lock NAME and runs COMMAND. If another live process holds NAME,
prints one line and exits without running COMMAND.

What is held, and for how long: COMMAND and every process it starts
inherit the lock's line (the connection on which the server granted it)
and its listening socket, as flock(1) hands down its file descriptor. The
lock is held until the last process that kept them exits: COMMAND, and
whatever it left running in the background, even if this process is
killed (even with SIGKILL); then it is free at once. A holder that is
stopped or too slow keeps the lock, and contenders are told so at once.
A restart of the server closes the line; the server then calls the
holder back instead, as one that keeps no lines (an older one) does: the
lock is still held while any process that kept the listening socket
lives (this process is not needed: it does not re-attach a line, which
would be its own alone, nor send its secret to the port again), a stopped
holder keeps it too, and only proof that all are gone (nothing listens on
the port any more) frees it. Without a line from the start, this process
checks out when COMMAND exits.

Options:
  --uid HEX       the lock's id as 128 hex digits, instead of the id of
                  NAME; NAME may then be left out, and given only names the
                  lock in messages (not with --per-user)
  --per-user      the id of NAME for this OS user alone: another user's
                  `hold --per-user NAME` is another lock
  --port N        the server's port on 127.0.0.1 (default: NAMASTE_PORT if
                  set, else 64009)
  -q, --quiet     no line when NAME is held elsewhere (errors are still
                  said), as flock(1) is silent
  --pass-messages COMMAND reads the messages sent to NAME instead of this
                  process printing them: see below
  -s, --shared    hold NAME shared: beside any number of other shared
                  holders, never beside an exclusive one; first come, first
                  served across both (a queued exclusive request keeps later
                  shared ones behind it)
  --slots N       hold one of N slots of NAME: at most N holders at once,
                  served in arrival order; the first request fixes N while
                  anyone holds or waits, another N is refused (78).
                  A holder cannot upgrade in place: it ends its hold and asks
                  again. Neither goes with --etcd.
  --wait SECS     if NAME is held, wait for up to SECS seconds; waiters are
                  served in arrival order, the moment the lock frees
                  (0: try once, as without --wait)
  --no-inherit    COMMAND does not inherit the lock (as flock -o): for a
                  command that starts a daemon which must not keep it; the
                  lock ends when COMMAND exits, or at once if this process
                  is killed
  -E, --conflict-exit-code N
                  the exit status when NAME is held elsewhere (default 75)
  --etcd URL[,URL...]
                  keep the lock in etcd instead (default: NAMASTE_ETCD if
                  set; needs a build with the cargo feature etcd): see
                  below; not with --uid, --per-user, --port, --pass-messages
  --etcd-prefix P the key prefix of the lock in etcd (default namaste/)
  --ttl SECS      with --etcd: the lease's time to live, a whole number of
                  seconds, at least 2 and at most 9000000000 (default 10);
                  etcd may raise it to its own minimum
  --lost-signal SIG
                  with --etcd: the signal for the command when the lock is
                  lost: TERM (the default), INT, HUP, KILL, USR1, USR2 or a
                  number

Exit status:
  COMMAND's       COMMAND ran; 128 + N when signal N ended it
  75              NAME is held by another live process (see -E)
  73              the server refused the booking or the wait at one of its
                  limits (bookings, waiters, ...): your OS user's share of
                  it, or the total, as the message says; COMMAND did not run
  78              --slots N met NAME held or waited for with another count
                  (the line names it), or --shared met it with slots, or
                  --slots met it shared; COMMAND did not run
  77              NAME is another OS user's per-user id (--uid): only that
                  user may hold it; COMMAND did not run
  126, 127        COMMAND was found but could not run, or was not found
  68              no server answers on the port: COMMAND did not run
  69              the server on the port runs as another OS user than root,
                  yours or NAMASTE_SERVER_USER's: COMMAND did not run
  1               the lock was lost while COMMAND ran (the server restarted
                  without its state file, say) and COMMAND itself exited 0;
                  or another error (the server closed without a reply, ...)
  2               a command line that makes no sense, or a NAMASTE_PORT
                  that names no port

Messages sent to NAME with `namaste notify` (by your OS user, or root: the
server hands over no others) are printed on standard error, one line each
with the sender's user, control characters escaped, cut after 1000
characters. At most 16 wait to be printed; past them a message is
declined. A standard error that takes nothing never keeps the lock past
COMMAND: when COMMAND exits, this process checks out (or leaves the lock to
what COMMAND left running), gives standard error a second, and exits.
SIGTERM, SIGINT and SIGHUP sent to this process are passed on to COMMAND,
and the lock is held until it exits: stopping `namaste hold` never leaves
COMMAND running unlocked. Those a terminal sends (Ctrl-C, a hang-up) reach
COMMAND directly, and are not passed on: COMMAND gets each once.

COMMAND finds the lock's name in NAMASTE_NAME (NAME as given; with --uid
and no NAME, the id's 128 hex digits) and its fencing token in
NAMASTE_TOKEN: a number the server gives each grant, greater than any
earlier holder's of this lock (across restarts of the server too). A resource that keeps the greatest token it has seen and refuses
smaller ones cannot be written by a holder that lost the lock without
knowing it (a background process left with the lock that closed the
descriptors it inherited, then wrote); `namaste check NAME TOKEN` tells
whether a token is the current holder's. NAMASTE_TOKEN is unset when
the server gives no tokens (an older one, or the published 0.6.0).

With --pass-messages, COMMAND gets the read end of a pipe instead, whose
descriptor number is in NAMASTE_MESSAGE_FD: one line per message, the
sender's user, a colon and a space, then the message escaped as above and
cut after 900 characters (a line is always whole), so a shell script reads
one with `read -r message <&\"$NAMASTE_MESSAGE_FD\"`. This process never
waits for COMMAND to read: what the pipe has no room for is dropped, and
how many were is said when COMMAND exits.

With --etcd, the lock lives in etcd as the keys P NAME / LEASE (P the
prefix, LEASE the lease in hex; a NAME with / is refused), each on its
lease, as `etcdctl lock` keeps the lock P NAME, so that the two take
turns. A small keeper process
keeps the lease alive while any process of COMMAND's tree lives (even if
this process is killed with SIGKILL) and revokes it the moment the last
one exits; if the machine dies, the lock frees when the lease's TTL runs
out. COMMAND gets the lock's token, the key's create revision, in
NAMASTE_TOKEN: it grows with every holder. If the lock is lost (etcd ended
the lease, the lock's key was deleted, or etcd was out of reach for a
whole TTL), the keeper says so and sends --lost-signal to COMMAND's
process group (COMMAND's own, unless this process runs in a terminal's
foreground: then to COMMAND alone); if the keeper dies, this process
does. Then this process exits 1 if COMMAND exits 0. A URL that takes the
request but does not answer in its share of the time is passed over for
the next. No etcd at any URL: 68, with one line naming them.
";

pub fn main(args: &[OsString]) -> Result<ExitCode, Usage> {
    let mut name = None;
    let mut target = Target::default();
    let mut wait = None;
    let mut inherit = true;
    let mut quiet = false;
    let mut pass_messages = false;
    let mut conflict = EX_TEMPFAIL;
    let mut command: &[OsString] = &[];
    let mut etcd = etcd::Options::default();
    let mut mode = Mode::Exclusive;
    let mut args = Args::new(args);
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Option(option @ "--wait") => wait = Some(args.seconds(option, true, None)?),
            Arg::Option("--no-inherit") => inherit = false,
            Arg::Option("-q" | "--quiet") => quiet = true,
            Arg::Option("--pass-messages") => pass_messages = true,
            Arg::Option("-s" | "--shared") => mode = Mode::Shared,
            Arg::Option(option @ "--slots") => {
                let slots = u32::try_from(args.count(option, 1)?)
                    .map_err(|_| Usage(format!("{option} takes at most {}", u32::MAX)))?;
                mode = Mode::Slots(slots);
            }
            Arg::Option(option @ ("-E" | "--conflict-exit-code")) => {
                let code = args.count(option, 0)?;
                conflict = u8::try_from(code)
                    .map_err(|_| Usage(format!("{option} takes an exit status from 0 to 255")))?;
            }
            Arg::Option(option) if target.take(option, &mut args)? => {}
            Arg::Option(option) if etcd.take(option, &mut args, true)? => {}
            Arg::Option(other) => return Err(unknown("hold", other)),
            Arg::Positional(word) if name.is_none() => name = Some(word),
            Arg::Positional(word) => {
                return Err(Usage(format!(
                    "put the command after --: -- {} ...",
                    quoted(word)
                )));
            }
            Arg::Rest(rest) => command = rest,
        }
    }
    if command.is_empty() {
        return Err(Usage("hold needs a command after --".into()));
    }
    if let Some(etcd) = etcd.chosen()? {
        if mode != Mode::Exclusive {
            return Err(Usage(
                "--shared and --slots are not for --etcd: its locks have one holder".into(),
            ));
        }
        let name = etcd::lock_name("hold", name, &target, pass_messages)?;
        let request = etcd::HoldRequest {
            name,
            command,
            wait,
            inherit,
            quiet,
            conflict,
        };
        return etcd::hold(etcd, request);
    }
    let Lock { id, shown } = target.lock("hold", name)?;
    // An ATTACH would carry the handshake to whatever listens on the
    // port, which hold does not vouch for after its request: after a
    // restart its bookings stay under the call-back rules.
    let client = target.client()?.with_reattach(false);
    let booked = match trust::vouched(client.port(), || book(&client, id.clone(), mode, wait)) {
        Ok(booked) => booked,
        Err(untrusted) => return Ok(untrusted),
    };
    Ok(match booked {
        Ok(booking) => {
            let (sink, message_end) = if pass_messages {
                match message_pipe::open() {
                    Ok((end, writer)) => (Sink::Pipe(writer), Some(end)),
                    Err(e) => {
                        return Ok(fail(format_args!(
                            "cannot open a pipe for the messages: {e}"
                        )));
                    }
                }
            } else {
                (Sink::Stderr, None)
            };
            let (to_print, queue) = Printer::queue();
            booking.forward_messages(to_print);
            // Only once forwarding has begun is this all that came before.
            let earlier = booking.messages().try_iter().collect();
            let printer = Printer::start(shown.clone(), earlier, queue, sink);
            let named = LockName {
                name,
                uid: id.uid(),
            };
            let (code, succeeded) = run_holding(&booking, named, command, inherit, message_end);
            // The lock ends with the command, before anything more is
            // written (standard error may take nothing): checked out, or,
            // on a line handed down, left to whatever of the command's
            // tree still has the line; our copy closes here.
            let checked_out = match booking.line_state() {
                LineState::Open if inherit => {
                    booking.leave_to_children();
                    Ok(true)
                }
                // The server restarted: what the command left running keeps
                // the responder's socket, and so the lock, as long as the
                // server still has it as ours.
                LineState::Unattached if inherit => left_after_restart(&client, booking),
                _ => booking.check_out(),
            };
            let Unshown { unprinted, dropped } = printer.finish();
            if unprinted > 0 {
                say_within_grace(format_args!(
                    "{unprinted} messages for {shown} were not printed: standard error did not take them in time"
                ));
            }
            if dropped > 0 {
                say_within_grace(format_args!(
                    "{dropped} messages for {shown} were dropped: the command's {MESSAGE_FD_VARIABLE} had no room for them"
                ));
            }
            match checked_out {
                Ok(true) => code,
                Ok(false) => {
                    say_within_grace(format_args!(
                        "{shown} was no longer booked when the command ended: it ran unlocked for a while"
                    ));
                    if succeeded { ExitCode::FAILURE } else { code }
                }
                Err(e) => {
                    say_within_grace(format_args!("warning: could not check out {shown}: {e}"));
                    code
                }
            }
        }
        Err(client::Error::Held) => {
            // `--wait 0` is one try: nothing was waited for.
            let waited = wait
                .filter(|t| !t.is_zero())
                .map_or(String::new(), |t| format!(" (waited {t:?})"));
            if !quiet {
                say(format_args!(
                    "{shown} is held by another live process{waited}"
                ));
            }
            ExitCode::from(conflict)
        }
        Err(e) => fail_request(e),
    })
}

/// Books `id` in `mode`, waiting for up to `wait` if given.
fn book(
    client: &Client,
    id: LockId,
    mode: Mode,
    wait: Option<Duration>,
) -> Result<Booking, client::Error> {
    let timeout = wait.unwrap_or(Duration::ZERO);
    match (mode, wait) {
        (Mode::Shared, _) => client.book_wait_shared(id, timeout),
        // The command line takes no count below 1.
        (Mode::Slots(slots), _) => {
            let slots = NonZeroU32::new(slots).unwrap_or(NonZeroU32::MIN);
            client.book_wait_slots(id, slots, timeout)
        }
        (Mode::Exclusive, Some(timeout)) => client.book_wait(id, timeout),
        (Mode::Exclusive, None) => client.book(id),
    }
}

/// A booking handed down whose line the server closed (it restarted) is
/// left to what the command left running, which keeps the responder's
/// socket and so the booking, if the server still has it as ours there;
/// answers whether it does. Asked with QUERY, which carries no secret.
fn left_after_restart(client: &Client, booking: Booking) -> Result<bool, client::Error> {
    let ours = match client.query(booking.uid()) {
        // Past the holders QUERY lists, a lock held shared cannot show
        // this one: it is taken as still held rather than said lost.
        Ok(lock) => {
            lock.holders()
                .any(|holder| holder.port == booking.responder_port())
                || lock
                    .shared
                    .is_some_and(|shared| shared.count > shared.holders.len() as u64)
        }
        Err(_) => return booking.check_out(),
    };
    booking.leave_to_children();
    Ok(ours)
}

/// Runs `command` while `booking` is held; answers its exit status, and
/// whether it exited with 0.
/// With `message_end`, the command gets that end of the messages' pipe,
/// and this process's copy is closed once it has started.
fn run_holding(
    booking: &Booking,
    named: LockName,
    command: &[OsString],
    inherit: bool,
    message_end: Option<CommandEnd>,
) -> (ExitCode, bool) {
    let mut to_run = Command::new(&command[0]);
    to_run.args(&command[1..]);
    named.tell(&mut to_run, booking.token());
    if inherit && let Err(e) = booking.share_with(&mut to_run) {
        let failed = fail(format_args!(
            "cannot hand the lock down to the command: {e}"
        ));
        return (failed, false);
    }
    if let Some(end) = &message_end {
        end.hand_to(&mut to_run);
    }
    run_passing_signals(to_run, &command[0], None, |_| drop(message_end))
}
