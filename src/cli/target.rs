//! What `hold`, `notify` and `status` share: which server they ask (`--port`,
//! else `NAMASTE_PORT`) and which lock they mean (NAME, `--per-user`,
//! `--uid`), read and checked in one place so that the three agree.

use std::ffi::{OsStr, OsString};

use namaste::Uid;
use namaste::client::Client;
use namaste::uid::LockId;

use super::args::{Arg, Args, Usage, chosen_port, counted, quoted, unknown};

/// The options the client commands share, as given.
#[derive(Default)]
pub struct Target {
    port: Option<u16>,
    uid: Option<Uid>,
    per_user: bool,
}

/// The lock a command names: its id (with its name, when the id is a
/// name's), and how messages name it.
pub struct Lock {
    pub id: LockId,
    /// NAME in quotes, or the id's first digits when only `--uid` was given.
    pub shown: String,
}

impl Target {
    /// Takes `option`, with its value from `args`, if it is one of the
    /// shared ones; answers whether it was.
    pub fn take(&mut self, option: &str, args: &mut Args) -> Result<bool, Usage> {
        match option {
            "--port" => self.port = Some(args.port(option, None)?),
            "--uid" => self.uid = Some(args.uid(option)?),
            "--per-user" => self.per_user = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A client of the server on the port asked for.
    pub fn client(&self) -> Result<Client, Usage> {
        Ok(Client::new().with_port(chosen_port(self.port, None)?))
    }

    /// Whether any of the options was given: they choose a lock of the
    /// local server, and mean nothing to a lock in etcd.
    pub fn given(&self) -> bool {
        self.port.is_some() || self.names_a_lock()
    }

    /// Whether a lock was named by an option alone (`--uid`, `--per-user`),
    /// for `status`, which without one prints the counters.
    pub fn names_a_lock(&self) -> bool {
        self.uid.is_some() || self.per_user
    }

    /// The lock `command` names with `name` and the options. With `--uid`
    /// NAME may be left out; given, it only names the lock in messages.
    /// `--uid` and `--per-user` together name it twice, and are refused
    /// rather than one silently winning.
    pub fn lock(&self, command: &str, name: Option<&OsStr>) -> Result<Lock, Usage> {
        if name.is_some_and(OsStr::is_empty) {
            return Err(Usage(format!("{command} needs a NAME that is not empty")));
        }
        match (self.uid, name) {
            (Some(_), _) if self.per_user => Err(Usage(
                "--uid and --per-user each choose the id: give one of them".into(),
            )),
            (Some(uid), name) => Ok(Lock {
                id: uid.into(),
                shown: name.map_or_else(|| shown_id(&uid), quoted),
            }),
            (None, Some(name)) => Ok(Lock {
                id: super::id_of(name, self.per_user),
                shown: quoted(name),
            }),
            (None, None) => Err(Usage(format!("{command} needs a NAME (or --uid HEX)"))),
        }
    }
}

/// An id given without a name, for messages: its first 16 digits, enough
/// to tell it apart.
fn shown_id(uid: &Uid) -> String {
    let hex = uid.to_string();
    format!("the lock {}…", &hex[..16.min(hex.len())])
}

/// The command line of a command that takes a lock's NAME and one word
/// more (`notify NAME MESSAGE`, `check NAME TOKEN`): the lock's options,
/// `-q`, and the two words (NAME may be left out with `--uid`).
pub struct NameAnd<'a> {
    pub target: Target,
    pub quiet: bool,
    pub name: Option<&'a OsStr>,
    pub word: &'a OsStr,
}

/// Reads the command line `args` of `command`, whose word after NAME is
/// called `word` in messages.
pub fn name_and<'a>(command: &str, word: &str, args: &'a [OsString]) -> Result<NameAnd<'a>, Usage> {
    let mut words: Vec<&OsStr> = Vec::new();
    let mut target = Target::default();
    let mut quiet = false;
    let mut args = Args::new(args);
    while let Some(arg) = args.next()? {
        match arg {
            Arg::Option("-q" | "--quiet") => quiet = true,
            Arg::Option(option) if target.take(option, &mut args)? => {}
            Arg::Option(other) => return Err(unknown(command, other)),
            Arg::Positional(given) => words.push(given),
            Arg::Rest(rest) => words.extend(rest.iter().map(OsString::as_os_str)),
        }
    }
    let (name, given) = match words[..] {
        [name, given] => (Some(name), given),
        [given] if target.names_a_lock() => (None, given),
        _ => {
            return Err(Usage(format!(
                "{command} needs a NAME and a {word}, not {}",
                counted(words.len(), "word", "words")
            )));
        }
    };
    Ok(NameAnd {
        target,
        quiet,
        name,
        word: given,
    })
}
