//! The server, for a program that runs one in-process (as `namaste run`
//! does): bind it with a [`Config`], run it, and stop it from another
//! thread through a [`Stopper`].
//!
//! ```no_run
//! use namaste::server::{Config, Server};
//!
//! let server = Server::bind(Config::default())?; // 127.0.0.1:64009
//! let stopper = server.stopper();
//! std::thread::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_secs(60));
//!     let _ = stopper.stop();
//! });
//! server.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub use crate::reactor::{Config, MAX_DURATION, Server, Stopper};
