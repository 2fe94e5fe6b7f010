//! The owner look-ups against real sockets on loopback.

use std::io::Write;
use std::net::TcpListener;

use super::test_users::{NOBODY, as_user};
use super::*;

fn me() -> UserId {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() }
}

/// A connection to a listener of ours from a socket of `user`: our
/// end and theirs; `None` when another user's socket needs root.
fn connected_pair(user: UserId) -> Option<(TcpStream, std::net::TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    let connect = || std::net::TcpStream::connect(at).unwrap();
    let client = if user == me() {
        connect()
    } else {
        as_user("connected_pair", user, connect)?
    };
    let (accepted, _) = listener.accept().unwrap();
    Some((TcpStream::from_std(accepted), client))
}

#[test]
fn finds_the_owner_of_both_ends_and_of_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    let client = TcpStream::from_std(std::net::TcpStream::connect(at).unwrap());
    let (accepted, _) = listener.accept().unwrap();
    let accepted = TcpStream::from_std(accepted);
    let mut owners = Owners::open();
    assert_eq!(
        owners.peer(&accepted).ok().map(|owned| owned.user),
        Some(me())
    );
    assert_eq!(
        owners.peer(&client).ok().map(|owned| owned.user),
        Some(me())
    );
    assert_eq!(owners.of_listener(at), Some(me()));
}

#[test]
fn finds_another_users_end_of_a_connection_and_listener() {
    let test = "finds_another_users_end_of_a_connection_and_listener";
    let Some(listener) = as_user(test, NOBODY, || TcpListener::bind("127.0.0.1:0").unwrap()) else {
        return;
    };
    let mut owners = Owners::open();
    assert_eq!(
        owners.of_listener(listener.local_addr().unwrap()),
        Some(NOBODY)
    );
    let (accepted, _theirs) = connected_pair(NOBODY).unwrap();
    assert_eq!(
        owners.peer(&accepted).ok().map(|owned| owned.user),
        Some(NOBODY)
    );
}

/// Another user's socket that wrote and closed becomes, once the close
/// is acknowledged, an entry the kernel reports as root's with no
/// inode: it has no owner.
#[test]
fn a_peer_that_wrote_and_hung_up_has_no_owner_not_root() {
    let Some((accepted, mut theirs)) = connected_pair(NOBODY) else {
        return;
    };
    let (peer, local) = (
        accepted.peer_addr().unwrap(),
        accepted.local_addr().unwrap(),
    );
    theirs.write_all(&[0x5a; 600]).unwrap();
    drop(theirs);
    let mut owners = Owners::open();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while owners.exchange(peer, local).unwrap().uid != ROOT {
        assert!(
            std::time::Instant::now() < deadline,
            "never reported as root's"
        );
        std::thread::yield_now();
    }
    assert!(matches!(
        owners.peer(&accepted),
        Err(Unknown::NotLive { inode: 0, .. })
    ));
    assert_eq!(owners.peer(&accepted).ok().map(|owned| owned.user), None);
}

#[test]
fn a_listener_on_another_address_is_not_the_one_asked_for() {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut owners = Owners::open();
    assert!(matches!(
        owners.listener(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(Unknown::Gone)
    ));
    assert!(owners.listener(listener.local_addr().unwrap()).is_ok());
}

#[test]
fn a_listener_on_an_unspecified_address_is_the_one_receiving_loopback() {
    let test = "a_listener_on_an_unspecified_address_is_the_one_receiving_loopback";
    let user = if me() == ROOT { NOBODY } else { me() };
    let mut owners = Owners::open();
    for anywhere in ["0.0.0.0:0", "[::]:0"] {
        // No traffic: the listener is only looked up, then closed.
        let bind = || TcpListener::bind(anywhere);
        let listener = if user == me() {
            bind()
        } else {
            as_user(test, user, bind).unwrap()
        };
        let Ok(listener) = listener else {
            eprintln!("skipped part of {test}: cannot listen on {anywhere}");
            continue;
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], listener.local_addr().unwrap().port()));
        assert!(matches!(owners.listener(loopback), Err(Unknown::Gone)));
        let owned = owners.receiving(loopback).unwrap();
        assert_eq!(owned.user, user, "{anywhere}");
    }
}

#[test]
fn knows_no_owner_of_a_socket_that_is_not_there() {
    let at = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut owners = Owners::open();
    assert_eq!(owners.of_listener(at), None);
    // A failed look-up leaves nothing behind to confuse the next one.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        owners.of_listener(listener.local_addr().unwrap()),
        Some(me())
    );
}

#[test]
fn only_the_same_user_or_root_may_message() {
    assert!(may_message(1000, 1000));
    assert!(may_message(ROOT, 1000));
    assert!(!may_message(1000, ROOT));
    assert!(!may_message(1001, 1000));
}
