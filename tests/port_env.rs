//! `NAMASTE_PORT` as the library reads it. Its own test binary, with a
//! single test: the environment is the process's, shared by all its
//! threads.

use namaste::DEFAULT_PORT;
use namaste::client::{Client, PORT_VAR};

#[test]
fn the_default_client_takes_its_port_from_namaste_port_and_ignores_a_bad_one() {
    let set = |value: &str| {
        // SAFETY: the only test of this binary; no other thread reads or
        // writes the environment meanwhile.
        unsafe { std::env::set_var(PORT_VAR, value) }
    };
    set("64123");
    assert_eq!(Client::new().port(), 64123);
    assert_eq!(Client::from_env().map(|client| client.port()), Ok(64123));
    set("not a port");
    assert_eq!(Client::new().port(), DEFAULT_PORT, "a bad value is ignored");
    let error = Client::from_env().expect_err("from_env reports it");
    assert_eq!(error.value, "not a port");
    set("");
    assert_eq!(Client::new().port(), DEFAULT_PORT, "empty is unset");
}
