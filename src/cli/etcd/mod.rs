//! `hold --etcd` and `status --etcd`: the lock kept in etcd's v3 API
//! instead of the local server, for locks across machines. The options are
//! read here in every build, so that a build without the cargo feature
//! `etcd` refuses them in one line instead of silently locking locally.

#[cfg(feature = "etcd")]
mod api;
#[cfg(feature = "etcd")]
mod hold;
#[cfg(feature = "etcd")]
mod http;
#[cfg(feature = "etcd")]
mod keeper;
#[cfg(feature = "etcd")]
mod queue;
#[cfg(feature = "etcd")]
mod status;

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use super::args::{Args, Usage, quoted};
use super::target::Target;

/// The variable that names etcd's endpoints when `--etcd` does not.
pub const ETCD_VARIABLE: &str = "NAMASTE_ETCD";

/// The key prefix under which locks live unless `--etcd-prefix` says.
const DEFAULT_PREFIX: &str = "namaste/";

/// The lease's time to live unless `--ttl` says: how long a lock outlives
/// a machine that died holding it.
const DEFAULT_TTL_SECONDS: usize = 10;

/// The longest TTL etcd grants (its own limit): a larger one would not fit
/// etcd's numbers, nor be renewed in time.
const LONGEST_TTL_SECONDS: usize = 9_000_000_000;

/// The etcd options of `hold` and `status`, as given.
#[derive(Default)]
pub struct Options {
    endpoints: Option<OsString>,
    prefix: Option<OsString>,
    ttl: Option<usize>,
    lost_signal: Option<i32>,
}

/// Where and how a lock is kept in etcd, once the options are checked.
// Read only by the feature's code; without it, the options are refused.
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
pub struct Etcd {
    /// The client URLs, tried in turn.
    pub endpoints: Vec<String>,
    /// The key prefix; the lock NAME is the prefix `{prefix}{NAME}/`.
    pub prefix: Vec<u8>,
    /// The lease's time to live, in seconds.
    pub ttl: i64,
    /// The signal sent to the command's process group when the lock is lost.
    pub lost_signal: i32,
}

/// What `hold` passes on: the same choices as for the local lock.
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
pub struct HoldRequest<'a> {
    pub name: &'a OsStr,
    pub command: &'a [OsString],
    pub wait: Option<std::time::Duration>,
    pub inherit: bool,
    pub quiet: bool,
    pub conflict: u8,
}

/// The signals `--lost-signal` takes by name.
const SIGNALS: &[(&str, i32)] = &[
    ("TERM", libc::SIGTERM),
    ("INT", libc::SIGINT),
    ("HUP", libc::SIGHUP),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
];

impl Options {
    /// Takes `option`, with its value from `args`, if it is one of the
    /// etcd options; answers whether it was. `hold` takes them all,
    /// `status` all but the lease's.
    pub fn take(&mut self, option: &str, args: &mut Args, hold: bool) -> Result<bool, Usage> {
        match option {
            "--etcd" => self.endpoints = Some(args.raw(option)?.to_owned()),
            "--etcd-prefix" => self.prefix = Some(args.raw(option)?.to_owned()),
            "--ttl" if hold => self.ttl = Some(ttl(args.count(option, 2)?)?),
            "--lost-signal" if hold => self.lost_signal = Some(signal_named(args.raw(option)?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The etcd to keep the lock in, if `--etcd` or `NAMASTE_ETCD` names
    /// one; the other etcd options without it are refused, not ignored.
    pub fn chosen(self) -> Result<Option<Etcd>, Usage> {
        let endpoints = match self.endpoints.or_else(|| std::env::var_os(ETCD_VARIABLE)) {
            Some(endpoints) => endpoints,
            None if self.prefix.is_some() || self.ttl.is_some() || self.lost_signal.is_some() => {
                return Err(Usage(
                    "--etcd-prefix, --ttl and --lost-signal need --etcd URL (or NAMASTE_ETCD)"
                        .into(),
                ));
            }
            None => return Ok(None),
        };
        let Some(text) = endpoints.to_str() else {
            return Err(Usage(format!(
                "--etcd takes URLs, not {}",
                quoted(&endpoints)
            )));
        };
        let endpoints: Vec<String> = text
            .split(',')
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(Usage(
                "--etcd needs at least one URL, such as http://127.0.0.1:2379".into(),
            ));
        }
        let prefix = self.prefix.map_or_else(
            || DEFAULT_PREFIX.as_bytes().to_vec(),
            |p| p.as_encoded_bytes().to_vec(),
        );
        Ok(Some(Etcd {
            endpoints,
            prefix,
            ttl: i64::try_from(self.ttl.unwrap_or(DEFAULT_TTL_SECONDS)).unwrap_or(i64::MAX),
            lost_signal: self.lost_signal.unwrap_or(libc::SIGTERM),
        }))
    }
}

/// A lease's TTL of `seconds`, if etcd grants one so long.
fn ttl(seconds: usize) -> Result<usize, Usage> {
    if seconds > LONGEST_TTL_SECONDS {
        return Err(Usage(format!(
            "--ttl takes at most {LONGEST_TTL_SECONDS} seconds (etcd's longest lease), not {seconds}"
        )));
    }
    Ok(seconds)
}

/// A signal by name (TERM or SIGTERM) or number.
fn signal_named(value: &OsStr) -> Result<i32, Usage> {
    let text = value.to_str().unwrap_or_default();
    let name = text.strip_prefix("SIG").unwrap_or(text);
    SIGNALS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, signal)| *signal)
        .or_else(|| text.parse::<i32>().ok().filter(|n| (1..=64).contains(n)))
        .ok_or_else(|| {
            Usage(format!(
                "--lost-signal takes TERM, INT, HUP, KILL, USR1, USR2 or a number from 1 to 64, not {}",
                quoted(value)
            ))
        })
}

/// Runs `hold` with the lock in `etcd`.
pub fn hold(etcd: Etcd, request: HoldRequest) -> Result<ExitCode, Usage> {
    #[cfg(feature = "etcd")]
    return hold::main(etcd, request);
    #[cfg(not(feature = "etcd"))]
    {
        let _ = (etcd, request);
        Err(not_built())
    }
}

/// Runs `status NAME` for the lock in `etcd`.
pub fn status(etcd: Etcd, name: &OsStr) -> Result<ExitCode, Usage> {
    #[cfg(feature = "etcd")]
    return status::main(etcd, name);
    #[cfg(not(feature = "etcd"))]
    {
        let _ = (etcd, name);
        Err(not_built())
    }
}

#[cfg(not(feature = "etcd"))]
fn not_built() -> Usage {
    Usage(format!(
        "--etcd (or {ETCD_VARIABLE}) needs a namaste built with the cargo feature etcd"
    ))
}

/// The NAME of a lock in etcd, for `command`: exactly one, and none of the
/// options that only the local server knows.
pub fn lock_name<'a>(
    command: &str,
    name: Option<&'a OsStr>,
    local: &Target,
    pass_messages: bool,
) -> Result<&'a OsStr, Usage> {
    if local.given() || pass_messages {
        return Err(Usage(format!(
            "{command} --etcd takes none of --port, --uid, --per-user and --pass-messages: they are the local server's"
        )));
    }
    match name {
        // The lock a/b's keys lie under a's prefix: a/b held would make a
        // look held, though not the other way round.
        Some(name) if name.as_encoded_bytes().contains(&b'/') => Err(Usage(format!(
            "{command} --etcd takes a NAME without /, not {}: etcd's keys would nest",
            quoted(name)
        ))),
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(Usage(format!("{command} --etcd needs one NAME"))),
    }
}
