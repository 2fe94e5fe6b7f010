//! Between OS users: a message crosses no user boundary, and anyone can
//! ask who holds a lock. The other user is `nobody`, reached with `su`,
//! so these tests need root; without it they say so and pass (under
//! `CI=true` they fail).

mod common;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::users::{as_nobody, decoy_listening, notify_and_hang_up_as_nobody, root_or_skip};
use common::{Running, stderr};
use namaste::Uid;
use namaste::client::Client;

/// `namaste hold NAME -- sleep 60`, by `nobody` or by us, its standard
/// error piped to the test.
fn holder(server: &Running, name: &str, nobody: bool) -> (Child, BufReader<ChildStderr>) {
    let port = server.port.to_string();
    let args = ["hold", name, "--port", &port, "--", "sleep", "60"];
    let mut command = if nobody {
        as_nobody(&args)
    } else {
        let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
        command.args(args);
        command
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for_bookings(1);
    let messages = BufReader::new(child.stderr.take().unwrap());
    (child, messages)
}

fn next_line(messages: &mut BufReader<ChildStderr>) -> String {
    let mut line = String::new();
    messages.read_line(&mut line).unwrap();
    line
}

fn notify(name: &str, message: &str, server: &Running, nobody: bool) -> Output {
    let port = server.port.to_string();
    let args = ["notify", name, message, "--port", &port];
    if nobody {
        as_nobody(&args).output().unwrap()
    } else {
        common::namaste(&args)
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_message_from_another_user_is_refused_and_never_reaches_the_holder() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let (hold, mut messages) = holder(&server, "victim", false);
    let refused = notify("victim", "rm -rf ~", &server, true);
    assert_eq!(refused.status.code(), Some(77), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("another OS user holds \"victim\""),
        "{}",
        stderr(&refused)
    );
    // The next line the holder prints is root's message: nobody's never
    // arrived.
    let delivered = notify("victim", "from the same user", &server, false);
    assert_eq!(delivered.status.code(), Some(0), "{}", stderr(&delivered));
    assert_eq!(
        next_line(&mut messages),
        "namaste: message for \"victim\" from root: from the same user\n"
    );
    // Refusing the message kept the booking.
    assert_eq!(server.bookings(), 1);
    stop(hold);
}

#[test]
fn a_message_from_the_holders_own_user_or_from_root_is_delivered() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let (hold, mut messages) = holder(&server, "shared", true);
    let own = notify("shared", "open a.txt", &server, true);
    assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    assert_eq!(
        next_line(&mut messages),
        "namaste: message for \"shared\" from nobody: open a.txt\n"
    );
    let root = notify("shared", "please save", &server, false);
    assert_eq!(root.status.code(), Some(0), "{}", stderr(&root));
    assert_eq!(
        next_line(&mut messages),
        "namaste: message for \"shared\" from root: please save\n"
    );
    stop(hold);
}

#[test]
fn status_names_the_holders_processes_and_user_and_says_free_when_free() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let free = common::namaste(&["status", "backup", "--port", &port]);
    assert_eq!(free.status.code(), Some(0), "{}", stderr(&free));
    assert_eq!(
        String::from_utf8_lossy(&free.stdout),
        "state=free waiters=0\n"
    );

    let (hold, _messages) = holder(&server, "backup", true);
    // su runs `namaste hold` as its child, and hold runs sleep.
    let hold_pid = children_of(hold.id())[0];
    let sleep_pid = children_of(hold_pid)[0];
    let held = common::namaste(&["status", "backup", "--port", &port]);
    assert_eq!(held.status.code(), Some(0), "{}", stderr(&held));
    let line = String::from_utf8_lossy(&held.stdout).into_owned();
    assert!(line.starts_with("state=held since=20"), "{line}");
    assert!(line.contains(" user=nobody user_id=65534 "), "{line}");
    let pids: Vec<u32> = field(&line, "pid")
        .split(',')
        .map(|pid| pid.parse().unwrap())
        .collect();
    let mut expected = vec![hold_pid, sleep_pid];
    expected.sort_unstable();
    assert_eq!(
        pids, expected,
        "hold and the command it handed the lock to: {line}"
    );
    assert!(line.contains(" waiters=0 "), "{line}");
    assert!(
        line.ends_with(&format!(
            " command={} hold backup --port {port} -- sleep 60\n",
            env!("CARGO_BIN_EXE_namaste")
        )),
        "{line}"
    );

    stop(hold);

    // Another user sees who holds it, but not root's processes.
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let (root_hold, _root_messages) = holder(&server, "backup", false);
    let seen = as_nobody(&["status", "backup", "--port", &port])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&seen.stdout).into_owned();
    assert!(line.contains(" user=root user_id=0 "), "{line}");
    assert!(line.contains(" pid=? command=?"), "{line}");
    assert!(
        stderr(&seen).contains("cannot see which process holds \"backup\""),
        "{}",
        stderr(&seen)
    );
    stop(root_hold);
}

/// A sender that writes its NOTIFY and hangs up at once has, by the time
/// the server asks who owns it, no socket of its own left: the kernel
/// keeps a closing connection of a closed socket in a form it reports as
/// root's (user 0, inode 0). Such a message must never be delivered, let
/// alone as root's.
#[test]
fn a_notify_whose_sender_hangs_up_at_once_is_never_delivered_as_roots() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let (hold, mut messages) = holder(&server, "lockd", false);
    let uid = Uid::from_name("lockd");
    // Long enough that the close rides on the data.
    let forged = vec![b'x'; 600];
    for _ in 0..10 {
        notify_and_hang_up_as_nobody(server.port, uid, &forged);
    }
    // Every one of them answered: only this STATUS connection is open,
    // beside the holder's line.
    let client = Client::new().with_port(server.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let others = |status: namaste::status::Status| status.connections - status.lines.unwrap_or(0);
    while others(client.status().unwrap()) != 1 {
        assert!(Instant::now() < deadline, "the senders were never answered");
        thread::sleep(Duration::from_millis(20));
    }
    let delivered = notify("lockd", "from the holders user", &server, false);
    assert_eq!(delivered.status.code(), Some(0), "{}", stderr(&delivered));
    assert_eq!(
        next_line(&mut messages),
        "namaste: message for \"lockd\" from root: from the holders user\n"
    );
    stop(hold);
}

/// A process of another user listening on other loopback addresses at
/// the holder's responder port is no holder: `status NAME` names the
/// processes behind the exact address the server called, owned by the user
/// the server reports.
#[test]
fn status_names_the_holder_and_not_a_decoy_on_another_loopback_address() {
    if !root_or_skip() {
        return;
    }
    let server = Running::start(&[]);
    let port = server.port.to_string();
    let (hold, _messages) = holder(&server, "decoyed", false);
    let hold_pid = hold.id();
    let sleep_pid = children_of(hold_pid)[0];
    let status = || {
        let held = common::namaste(&["status", "decoyed", "--port", &port]);
        assert_eq!(held.status.code(), Some(0), "{}", stderr(&held));
        String::from_utf8_lossy(&held.stdout).into_owned()
    };
    let responder: u16 = field(&status(), "port").parse().unwrap();
    let addresses = (2..40).map(|last| Ipv4Addr::new(127, 0, 0, last)).collect();
    let mut decoy = decoy_listening(responder, addresses);
    let line = status();
    let _ = decoy.kill();
    let _ = decoy.wait();
    assert!(line.contains(" user=root user_id=0 "), "{line}");
    assert_eq!(
        field(&line, "pid"),
        format!("{hold_pid},{sleep_pid}"),
        "hold and its command, not the decoy {}: {line}",
        decoy.id()
    );
    assert!(line.ends_with(" -- sleep 60\n"), "{line}");
    stop(hold);
}

/// The value of `key=` in a `status NAME` line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// The pids of the children of `pid`, lowest first.
fn children_of(pid: u32) -> Vec<u32> {
    let output = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .unwrap();
    let mut pids: Vec<u32> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect();
    pids.sort_unstable();
    assert!(!pids.is_empty(), "{pid} has no children");
    pids
}

/// The server asks the kernel who sent each request; a requester that
/// half-closes its connection after the request (`shutdown`, as `nc -N`
/// does) still holds its socket, is still told apart, and still gets its
/// answer: the STATUS line, and the reply to a NOTIFY. (A BOOK or WAIT
/// that half-closes is taken for a booker gone, as a line's close is.)
#[test]
fn a_requester_that_half_closes_is_still_answered() {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};

    use namaste::wire::Request;

    let server = Running::start(&[]);
    let ask = |request: &Request| {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Corked, the request goes out with the FIN, so the server never
        // reads it before the half-close.
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and an int option of the right size.
        let corked = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&stream),
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(corked, 0);
        stream.write_all(&request.encode()).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    };
    let status = String::from_utf8(ask(&Request::Status)).unwrap();
    assert!(status.starts_with("namaste "), "{status:?}");
    let notify = Request::Notify {
        uid: Uid::from_name("nobody holds this"),
        message: b"hi".to_vec(),
    };
    assert_eq!(ask(&notify), [0], "no holder");
}
