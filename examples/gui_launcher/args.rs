//! The launcher's command line, in a file of its own so that a plain
//! `cargo test` checks it (tests/gui_launcher_args.rs) without building the
//! GUI toolkit.

/// One line saying how the launcher is called.
pub const USAGE: &str = "usage: gui_launcher [--port N] [--] [PROGRAM ...]";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The window, on the server at `port` (the client's default when
    /// `None`), offering `programs`.
    Run {
        /// The server's port, if given.
        port: Option<u16>,
        /// The programs' command lines.
        programs: Vec<String>,
    },
    /// The usage line, and nothing else.
    Help,
}

/// Reads the arguments (without the program's name). An option it does not
/// know is an error rather than a program to offer: a mistyped `--prot`
/// would otherwise become a Launch button. After `--`, every word is a
/// program.
pub fn parse(args: Vec<String>) -> Result<Parsed, String> {
    let mut port = None;
    let mut programs = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|port| *port != 0)
                        .ok_or_else(|| {
                            format!("--port takes a port number from 1 to 65535, not {value:?}")
                        })?,
                );
            }
            "--help" | "-h" => return Ok(Parsed::Help),
            "--" => {
                programs.extend(args);
                break;
            }
            option if option.starts_with('-') && option != "-" => {
                return Err(format!("unknown option {option:?}; {USAGE}"));
            }
            _ => programs.push(arg),
        }
    }
    Ok(Parsed::Run { port, programs })
}
