//! Reading a command's arguments: options as `--name value` or
//! `--name=value`, positionals, and everything after `--`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
    /// `--name` or `--name=value`; the value, when not inline, is the next
    /// argument, taken with [`Args::value`].
    Option(&'a str),
    /// A word that is not an option.
    Positional(&'a str),
    /// Everything after `--`.
    Rest(&'a [String]),
}

/// Whether `args` ask for help before any `--` (after it, they belong to
/// the command that `hold` runs).
pub fn asks_for_help(args: &[String]) -> bool {
    args.iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--help" || arg == "-h")
}

pub struct Args<'a> {
    args: &'a [String],
    inline: Option<&'a str>,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Args<'a> {
        Args { args, inline: None }
    }

    pub fn next(&mut self) -> Option<Arg<'a>> {
        let (first, rest) = self.args.split_first()?;
        self.args = rest;
        self.inline = None;
        Some(match first.as_str() {
            "--" => {
                let rest = self.args;
                self.args = &[];
                Arg::Rest(rest)
            }
            option if option.starts_with("--") => match option.split_once('=') {
                Some((name, value)) => {
                    self.inline = Some(value);
                    Arg::Option(name)
                }
                None => Arg::Option(option),
            },
            word => Arg::Positional(word),
        })
    }

    /// The value of the option `name` just read, parsed.
    pub fn value<T>(&mut self, name: &str) -> Result<T, Usage>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let value = match self.inline.take() {
            Some(value) => value,
            None => {
                let (value, rest) = self
                    .args
                    .split_first()
                    .ok_or_else(|| Usage(format!("{name} needs a value")))?;
                self.args = rest;
                value.as_str()
            }
        };
        value
            .parse()
            .map_err(|e| Usage(format!("{name} {value:?} is not valid: {e}")))
    }

    /// The value of the option `name` just read, as a positive number of
    /// seconds (fractions allowed), at most `max`.
    pub fn seconds(&mut self, name: &str, max: Duration) -> Result<Duration, Usage> {
        let seconds: f64 = self.value(name)?;
        Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|duration| !duration.is_zero() && *duration <= max)
            .ok_or_else(|| {
                Usage(format!(
                    "{name} must be a positive number of seconds, at most {}",
                    max.as_secs()
                ))
            })
    }

    /// The value of the option `name` just read, as a number of seconds,
    /// zero or more (fractions allowed).
    pub fn seconds_or_zero(&mut self, name: &str) -> Result<Duration, Usage> {
        let seconds: f64 = self.value(name)?;
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| Usage(format!("{name} must be a number of seconds, 0 or more")))
    }
}

/// The error for an option `command` does not have.
pub fn unknown(command: &str, option: &str) -> Usage {
    Usage(format!("{command} has no option {option:?}"))
}
