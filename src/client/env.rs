//! The server's port from the environment: `NAMASTE_PORT`, so every
//! program of a session (the command line and the programs that link the
//! library) finds a server started on another port without a flag each.

use std::env;
use std::ffi::OsString;
use std::fmt;

/// The variable that names the server's port.
pub const PORT_VAR: &str = "NAMASTE_PORT";

/// `NAMASTE_PORT` is set, but not to a port (a number from 1 to 65535).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortVarError {
    /// What the variable holds, as the system gave it.
    pub value: OsString,
}

impl fmt::Display for PortVarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PORT_VAR}={:?} is not a port (a number from 1 to 65535)",
            self.value
        )
    }
}

impl std::error::Error for PortVarError {}

/// The port `NAMASTE_PORT` names: `Ok(None)` when it is unset or empty,
/// an error when it holds anything but a number from 1 to 65535.
///
/// ```
/// use namaste::client::port_from_env;
///
/// let port = match port_from_env() {
///     Ok(port) => port.unwrap_or(namaste::DEFAULT_PORT),
///     Err(e) => {
///         eprintln!("{e}"); // NAMASTE_PORT="abc" is not a port (...)
///         std::process::exit(64)
///     }
/// };
/// # let _ = port;
/// ```
pub fn port_from_env() -> Result<Option<u16>, PortVarError> {
    match env::var_os(PORT_VAR) {
        None => Ok(None),
        Some(value) => parse_port(value),
    }
}

fn parse_port(value: OsString) -> Result<Option<u16>, PortVarError> {
    if value.is_empty() {
        return Ok(None);
    }
    match value.to_str().map(str::parse::<u16>) {
        Some(Ok(port)) if port != 0 => Ok(Some(port)),
        _ => Err(PortVarError { value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_a_number_from_1_to_65535() {
        assert_eq!(parse_port("64010".into()), Ok(Some(64010)));
        assert_eq!(parse_port("65535".into()), Ok(Some(65535)));
        assert_eq!(parse_port("".into()), Ok(None), "empty is unset");
        for bad in ["0", "65536", "-1", " 64010", "port", "6401O"] {
            assert_eq!(
                parse_port(bad.into()),
                Err(PortVarError { value: bad.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_error_names_the_variable_and_its_value() {
        let error = parse_port("abc".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "NAMASTE_PORT=\"abc\" is not a port (a number from 1 to 65535)"
        );
    }
}
