//! The published namaste 0.6.0 client as a real peer of our server.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{TestServer, random};
use namaste::DEFAULT_RW_TIMEOUT;
use namaste06::client::Client;

/// The sequence of the published crate's own server test.
#[test]
fn the_published_clients_own_sequence() -> std::io::Result<()> {
    let server = TestServer::start();
    let port = Some(server.port());
    let (uid, hs) = (random().0, random().0);
    for (uid, hs) in [(uid, hs), (hs, uid)] {
        let client = Client::book(uid, hs, port, DEFAULT_RW_TIMEOUT)?.expect("granted");
        assert!(Client::book(uid, hs, port, DEFAULT_RW_TIMEOUT)?.is_none());
        assert!(client.check_out()?);
        assert!(
            Client::book(uid, hs, port, DEFAULT_RW_TIMEOUT)?
                .expect("granted again")
                .check_out()?
        );
        assert!(!client.check_out()?);
    }
    Ok(())
}

/// Published clients contending for one id: one grant per round, where the
/// published server grants two or more in most rounds.
#[test]
fn published_clients_contending_get_one_grant() {
    const CONTENDERS: usize = 8;
    let server = Arc::new(TestServer::start());
    for round in 0..20 {
        let uid = random().0;
        let barrier = Arc::new(Barrier::new(CONTENDERS));
        let grants: usize = (0..CONTENDERS)
            .map(|_| {
                let (server, barrier) = (server.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let booking =
                        Client::book(uid, random().0, Some(server.port()), DEFAULT_RW_TIMEOUT)
                            .expect("server answers");
                    barrier.wait();
                    usize::from(booking.is_some())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum();
        assert_eq!(grants, 1, "round {round}");
    }
}
