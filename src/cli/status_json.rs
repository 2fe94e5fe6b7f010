//! `status --json`: the server's counters, or one lock, as one JSON
//! document (see `json` for how strings are written).

use namaste::status::{Holder, LockStatus, Status, UserUse};

use super::json::{array, hex, number, object, or_null, string};
use super::status::{Seen, utc};
use super::users::name_of;

/// The counters and the use per OS user, as `status --json` prints them.
pub fn counters(status: &Status) -> String {
    object(&[
        ("version", string(status.version.as_bytes())),
        ("bookings", status.bookings.to_string()),
        ("connections", status.connections.to_string()),
        ("requests", status.requests.to_string()),
        (
            "verifications_failed",
            status.verifications_failed.to_string(),
        ),
        ("uptime_seconds", status.uptime.as_secs().to_string()),
        ("lines", number(status.lines)),
        ("names", number(status.names)),
        ("users", array(status.usage.iter().map(user_use))),
    ])
}

/// One OS user's use; `u32::MAX` stands for the users nobody could tell.
fn user_use(used: &UserUse) -> String {
    let user = (used.user != u32::MAX).then_some(used.user);
    object(&[
        ("user", user_name(user)),
        ("user_id", number(user.map(u64::from))),
        ("bookings", used.bookings.to_string()),
        ("lines", used.lines.to_string()),
        ("waiters", used.waiters.to_string()),
        ("pending", used.pending.to_string()),
    ])
}

/// The lock of `status NAME --json`, whose holder shows as `seen`; `name`
/// is the lock's name, when it was given one.
pub fn lock(lock: &LockStatus, seen: &Seen, name: Option<&[u8]>) -> String {
    let named = [
        ("name", or_null(name.map(string))),
        ("name_hex", or_null(name.map(hex))),
    ];
    if let Some(shared) = &lock.shared {
        let tokens = shared.holders.iter().map(|holder| number(holder.token));
        return object(&[
            named[0].clone(),
            named[1].clone(),
            ("state", string(b"shared")),
            ("slots", number(shared.slots.map(u64::from))),
            ("holders", shared.count.to_string()),
            ("waiters", lock.waiters.to_string()),
            ("tokens", array(tokens)),
            ("pids", array(seen.pids.iter().map(u32::to_string))),
        ]);
    }
    let Some(Holder {
        since, user, port, ..
    }) = lock.holder
    else {
        return object(&[
            named[0].clone(),
            named[1].clone(),
            ("state", string(b"free")),
            ("waiters", lock.waiters.to_string()),
        ]);
    };
    let command = seen
        .command
        .as_ref()
        .map(|args| array(args.iter().map(|arg| string(arg))));
    object(&[
        named[0].clone(),
        named[1].clone(),
        ("state", string(b"held")),
        (
            "since",
            or_null(since.map(|since| string(utc(since).as_bytes()))),
        ),
        ("user", user_name(user)),
        ("user_id", number(user.map(u64::from))),
        ("port", port.to_string()),
        ("waiters", lock.waiters.to_string()),
        // A held lock's holder has a process: none seen is unknown.
        (
            "pids",
            or_null((!seen.pids.is_empty()).then(|| array(seen.pids.iter().map(u32::to_string)))),
        ),
        ("command", or_null(command)),
    ])
}

/// The name of OS user `user` as a JSON string; `null` when unknown.
pub fn user_name(user: Option<u32>) -> String {
    or_null(user.and_then(name_of).map(|name| string(name.as_bytes())))
}
