//! `status NAME --etcd`: who holds the lock in etcd and who waits for it,
//! from the keys' records and etcd's own (create revision, lease).

use std::ffi::OsStr;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::Etcd;
use super::api::{self, KeyValue};
use super::hold::failed;
use super::http::Endpoints;
use crate::cli::args::{Usage, escaped};
use crate::cli::out;
use crate::cli::status::utc;

/// How long `status` waits for etcd.
const TIMEOUT: Duration = Duration::from_secs(5);

pub fn main(options: Etcd, name: &OsStr) -> Result<ExitCode, Usage> {
    let endpoints = Endpoints::new(&options.endpoints).map_err(|e| Usage(format!("--etcd {e}")))?;
    let etcd = api::Etcd::new(endpoints, TIMEOUT);
    let mut lock = options.prefix;
    lock.extend_from_slice(name.as_encoded_bytes());
    lock.push(b'/');
    let keys = match etcd.keys(&lock, None) {
        Ok((keys, _)) => keys,
        Err(e) => return Ok(failed(e)),
    };
    let Some((holder, waiters)) = keys.split_first() else {
        out("state=free waiters=0\n");
        return Ok(ExitCode::SUCCESS);
    };
    out(format_args!(
        "state=held waiters={} {}\n",
        waiters.len(),
        described(holder)
    ));
    for waiter in waiters {
        out(format_args!("waiter {}\n", described(waiter)));
    }
    Ok(ExitCode::SUCCESS)
}

/// One contender's line: what its key's record says (a key that another
/// tool put, `etcdctl lock` say, has none), its token and its lease.
fn described(kv: &KeyValue) -> String {
    let record: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
    let text = |field: &str| match &record[field] {
        Value::String(text) => escaped(text.as_bytes(), 64),
        Value::Number(number) => number.to_string(),
        _ => "?".into(),
    };
    let since = record["since"].as_u64().map_or_else(|| "?".into(), utc);
    format!(
        "since={since} host={} user={} pid={} token={} lease={:x} key={}",
        text("host"),
        text("user"),
        text("pid"),
        kv.create_revision,
        kv.lease,
        escaped(&kv.key, 200),
    )
}
