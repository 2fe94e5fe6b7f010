//! Reading a command's arguments as the OS gives them (bytes, not
//! necessarily UTF-8): options as `--name value`, `--name=value` or `-X
//! value`, positionals, and everything after `--`, which is passed on as
//! is. Every value is checked here, with a one-line error of our own.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use namaste::Uid;

/// A command line that makes no sense, with what is wrong in one line.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One argument, as a command sees it.
pub enum Arg<'a> {
    /// `--name`, `--name=value` or `-X`; the value, when not inline, is the
    /// next argument, taken with one of [`Args`]' value methods.
    Option(&'a str),
    /// A word that is not an option.
    Positional(&'a OsStr),
    /// Everything after `--`.
    Rest(&'a [OsString]),
}

/// Whether `args` ask for help before any `--` (after it, they belong to
/// the command that `hold` runs).
pub fn asks_for_help(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--help" || arg == "-h")
}

pub struct Args<'a> {
    args: &'a [OsString],
    inline: Option<&'a OsStr>,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [OsString]) -> Args<'a> {
        Args { args, inline: None }
    }

    pub fn next(&mut self) -> Result<Option<Arg<'a>>, Usage> {
        let Some((first, rest)) = self.args.split_first() else {
            return Ok(None);
        };
        self.args = rest;
        self.inline = None;
        let bytes = first.as_bytes();
        if bytes == b"--" {
            let rest = self.args;
            self.args = &[];
            return Ok(Some(Arg::Rest(rest)));
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            return Ok(Some(Arg::Positional(first)));
        }
        let (name, value) = match bytes.iter().position(|&b| b == b'=') {
            Some(at) if bytes.starts_with(b"--") => (&bytes[..at], Some(&bytes[at + 1..])),
            _ => (bytes, None),
        };
        let name = std::str::from_utf8(name)
            .map_err(|_| Usage(format!("no option is named {}", quoted(first))))?;
        self.inline = value.map(OsStr::from_bytes);
        Ok(Some(Arg::Option(name)))
    }

    /// The raw value of the option `name` just read.
    pub fn raw(&mut self, name: &str) -> Result<&'a OsStr, Usage> {
        if let Some(value) = self.inline.take() {
            return Ok(value);
        }
        let (value, rest) = self
            .args
            .split_first()
            .ok_or_else(|| Usage(format!("{name} needs a value")))?;
        self.args = rest;
        Ok(value)
    }

    /// The value of the option `name` just read, as text.
    fn text(&mut self, name: &str, what: &str) -> Result<&'a str, Usage> {
        let value = self.raw(name)?;
        value
            .to_str()
            .ok_or_else(|| Usage(format!("{name} takes {what}, not {}", quoted(value))))
    }

    /// The value of `name` as a TCP port, 1 to 65535, or also 0 when
    /// `zero_means` says what 0 would mean.
    pub fn port(&mut self, name: &str, zero_means: Option<&str>) -> Result<u16, Usage> {
        let value = self.raw(name)?;
        port_named(name, value, zero_means)
    }

    /// The value of `name` as a whole number, at least `min`.
    pub fn count(&mut self, name: &str, min: usize) -> Result<usize, Usage> {
        let what = format!("a whole number, at least {min}");
        let text = self.text(name, &what)?;
        text.parse::<usize>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| {
                Usage(format!(
                    "{name} takes {what}, not {}",
                    quoted(OsStr::new(text))
                ))
            })
    }

    /// The value of `name` as a number of seconds (fractions allowed),
    /// more than 0 unless `zero` allows it, and at most `max`.
    pub fn seconds(
        &mut self,
        name: &str,
        zero: bool,
        max: Option<Duration>,
    ) -> Result<Duration, Usage> {
        let what = match (zero, max) {
            (true, None) => "a number of seconds, 0 or more".to_string(),
            (false, None) => "a number of seconds, more than 0".to_string(),
            (true, Some(max)) => format!(
                "a number of seconds, 0 or more and at most {}",
                max.as_secs()
            ),
            (false, Some(max)) => format!(
                "a number of seconds, more than 0 and at most {}",
                max.as_secs()
            ),
        };
        let text = self.text(name, &what)?;
        text.parse::<f64>()
            .ok()
            .and_then(|seconds| match Duration::try_from_secs_f64(seconds) {
                Ok(duration) => Some(duration),
                // Beyond what a Duration holds: as good as for ever.
                Err(_) if seconds > 0.0 => Some(Duration::MAX),
                Err(_) => None,
            })
            .filter(|d| zero || !d.is_zero())
            .filter(|d| max.is_none_or(|max| *d <= max))
            .ok_or_else(|| {
                Usage(format!(
                    "{name} takes {what}, not {}",
                    quoted(OsStr::new(text))
                ))
            })
    }

    /// The value of `name` as an id of 128 hex digits.
    pub fn uid(&mut self, name: &str) -> Result<Uid, Usage> {
        let text = self.text(name, "an id of 128 hex digits")?;
        text.parse()
            .map_err(|e| Usage(format!("{name} {}: {e}", quoted(OsStr::new(text)))))
    }

    /// The value of `name` as an IP address.
    pub fn ip(&mut self, name: &str) -> Result<IpAddr, Usage> {
        let what = "an IP address such as 127.0.0.1 or ::1";
        let text = self.text(name, what)?;
        text.parse().map_err(|_| {
            Usage(format!(
                "{name} takes {what}, not {}",
                quoted(OsStr::new(text))
            ))
        })
    }

    /// The value of `name` as one word of `choices`.
    pub fn choice(&mut self, name: &str, choices: &[&'static str]) -> Result<&'static str, Usage> {
        let what = format!("one of {}", choices.join(", "));
        let text = self.text(name, &what)?;
        choices
            .iter()
            .find(|choice| **choice == text)
            .copied()
            .ok_or_else(|| {
                Usage(format!(
                    "{name} takes {what}, not {}",
                    quoted(OsStr::new(text))
                ))
            })
    }

    /// The value of `name` as a path, whatever its bytes.
    pub fn path(&mut self, name: &str) -> Result<PathBuf, Usage> {
        Ok(PathBuf::from(self.raw(name)?))
    }
}

/// The variable that names the server's port when `--port` does not.
pub const PORT_VARIABLE: &str = "NAMASTE_PORT";

/// The server's port: `given` by `--port`, else `NAMASTE_PORT`'s, else the
/// default. A variable that is set but names no port is a usage error that
/// names it, never a silent fall back to the default server.
pub fn chosen_port(given: Option<u16>, zero_means: Option<&str>) -> Result<u16, Usage> {
    if let Some(port) = given {
        return Ok(port);
    }
    match std::env::var_os(PORT_VARIABLE) {
        Some(value) => port_named(PORT_VARIABLE, &value, zero_means),
        None => Ok(namaste::DEFAULT_PORT),
    }
}

/// `value`, given as `name`, as a TCP port: 1 to 65535, or also 0 when
/// `zero_means` says what 0 would mean.
fn port_named(name: &str, value: &OsStr, zero_means: Option<&str>) -> Result<u16, Usage> {
    let what = "a port number from 1 to 65535";
    match value.to_str().map(str::parse::<u16>) {
        Some(Ok(0)) if zero_means.is_none() => {
            Err(Usage(format!("{name} takes {what}; 0 names no server")))
        }
        Some(Ok(port)) => Ok(port),
        _ => Err(Usage(format!("{name} takes {what}, not {}", quoted(value)))),
    }
}

/// The error for an option `command` does not have.
pub fn unknown(command: &str, option: &str) -> Usage {
    Usage(format!(
        "{command} has no option {}",
        quoted(OsStr::new(option))
    ))
}

/// A user's word, for a message: in quotes, with anything that is not
/// printable text escaped, and cut short when long.
pub fn quoted(word: &OsStr) -> String {
    format!("\"{}\"", escaped(word.as_bytes(), 60))
}

/// `bytes` as one line of printable text: control characters (escape
/// sequences, newlines) and bytes that are not UTF-8 escaped, so that they
/// can neither recolour nor break a terminal; cut after `longest`
/// characters, with a note of the whole length. Escapes no more than it
/// keeps: a 64 KiB message costs what its first line does.
pub fn escaped(bytes: &[u8], longest: usize) -> String {
    let mut text = String::new();
    let mut kept = 0;
    for chunk in bytes.utf8_chunks() {
        let invalid = chunk.invalid().iter().flat_map(|byte| {
            let [high, low] = [byte >> 4, byte & 0xf]
                .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('?'));
            ['\\', 'x', high, low]
        });
        for c in chunk.valid().escape_debug().chain(invalid) {
            if kept == longest {
                return format!("{text}… ({} bytes in all)", bytes.len());
            }
            text.push(c);
            kept += 1;
        }
    }
    text
}

/// `text`, made of `bytes` bytes, cut after `longest` characters with a
/// note of the whole length.
pub fn shortened(text: String, longest: usize, bytes: usize) -> String {
    if text.chars().count() <= longest {
        return text;
    }
    let cut: String = text.chars().take(longest).collect();
    format!("{cut}… ({bytes} bytes in all)")
}

/// `n` and the noun, singular or plural as `n` wants.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bytes_and_cuts_long_text_with_its_length() {
        assert_eq!(escaped(b"a\x1b[31m\xff\n", 100), r"a\u{1b}[31m\xff\n");
        assert_eq!(escaped(b"abc", 3), "abc");
        assert_eq!(escaped(b"abcdef", 3), "abc… (6 bytes in all)");
        // An escape is cut as its characters are.
        assert_eq!(escaped(b"a\xff", 3), r"a\x… (2 bytes in all)");
        assert_eq!(escaped(&vec![b'm'; 65536], 2), "mm… (65536 bytes in all)");
    }
}
