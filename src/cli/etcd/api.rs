//! The few calls of etcd's v3 API that a lock needs, over the JSON
//! gateway: keys and values in base64, 64-bit numbers as strings.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::http::{Endpoints, Error, Lines};

/// One key as etcd keeps it.
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The revision that created the key: the lock's fencing token.
    pub create_revision: i64,
    pub lease: i64,
}

/// What a lease keep-alive found.
pub enum Lease {
    /// Alive, renewed for its whole TTL.
    Alive,
    /// Gone: revoked, or expired.
    Gone,
}

/// etcd, through its JSON gateway.
pub struct Etcd {
    endpoints: Endpoints,
    /// How long one request may take.
    timeout: Duration,
}

impl Etcd {
    pub fn new(endpoints: Endpoints, timeout: Duration) -> Etcd {
        Etcd { endpoints, timeout }
    }

    fn call(&self, path: &str, body: Value) -> Result<Value, Error> {
        self.endpoints.post(path, &body, self.timeout)
    }

    /// A new lease of `ttl` seconds: its id, and the TTL etcd granted
    /// (etcd raises one below its minimum).
    pub fn grant(&self, ttl: i64) -> Result<(i64, i64), Error> {
        let reply = self.call("/v3/lease/grant", json!({ "TTL": ttl.to_string() }))?;
        if let Some(said) = reply["error"].as_str() {
            return Err(Error::Refused(said.to_owned()));
        }
        number(&reply["ID"])
            .zip(number(&reply["TTL"]).filter(|ttl| *ttl > 0))
            .ok_or_else(|| malformed("a lease", &reply))
    }

    /// Renews `lease` once, within `timeout`.
    pub fn keep_alive(&self, lease: i64, timeout: Duration) -> Result<Lease, Error> {
        let request = json!({ "ID": lease.to_string() });
        let reply = self
            .endpoints
            .post("/v3/lease/keepalive", &request, timeout)?;
        // The reply to a lease etcd no longer has carries no TTL.
        Ok(match number(&reply["result"]["TTL"]) {
            Some(ttl) if ttl > 0 => Lease::Alive,
            _ => Lease::Gone,
        })
    }

    /// Ends `lease`, and so deletes every key attached to it.
    pub fn revoke(&self, lease: i64) -> Result<(), Error> {
        self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() }))
            .map(drop)
    }

    /// Creates `key` with `value` on `lease` if no key starts with
    /// `prefix`: the lock taken without queueing. Answers the key's
    /// create revision, or None when another key is there.
    pub fn create_if_none(
        &self,
        prefix: &[u8],
        key: &[u8],
        value: &[u8],
        lease: i64,
    ) -> Result<Option<i64>, Error> {
        // A compare over a range holds when every key in it does; with no
        // key in it, as for a missing key, whose create revision is 0.
        let reply = self.call(
            "/v3/kv/txn",
            json!({
                "compare": [{
                    "key": b64(prefix), "range_end": b64(&range_end(prefix)),
                    "target": "CREATE", "result": "EQUAL", "create_revision": "0",
                }],
                "success": [{ "request_put": put(key, value, lease) }],
            }),
        )?;
        if reply["succeeded"].as_bool() != Some(true) {
            return Ok(None);
        }
        revision(&reply).map(Some)
    }

    /// Creates `key` with `value` on `lease`: a place in the queue.
    /// Answers its create revision.
    pub fn create(&self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, Error> {
        let reply = self.call("/v3/kv/put", put(key, value, lease))?;
        revision(&reply)
    }

    /// The keys starting with `prefix` created before `revision` (all
    /// when None), oldest first; and the store's revision then.
    pub fn keys(&self, prefix: &[u8], before: Option<i64>) -> Result<(Vec<KeyValue>, i64), Error> {
        let mut request = json!({
            "key": b64(prefix), "range_end": b64(&range_end(prefix)),
            "sort_order": "ASCEND", "sort_target": "CREATE",
        });
        if let Some(revision) = before {
            request["max_create_revision"] = json!((revision - 1).to_string());
        }
        let reply = self.call("/v3/kv/range", request)?;
        let at = revision(&reply)?;
        let kvs = reply["kvs"].as_array().map_or(&[][..], Vec::as_slice);
        let keys = kvs
            .iter()
            .map(|kv| {
                Some(KeyValue {
                    key: unb64(&kv["key"])?,
                    value: unb64(&kv["value"]).unwrap_or_default(),
                    create_revision: number(&kv["create_revision"])?,
                    lease: number(&kv["lease"]).unwrap_or(0),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("keys", &reply))?;
        Ok((keys, at))
    }

    /// Whether `key` is there, asked within `timeout`.
    pub fn exists(&self, key: &[u8], timeout: Duration) -> Result<bool, Error> {
        let request = json!({ "key": b64(key), "count_only": true });
        let reply = self.endpoints.post("/v3/kv/range", &request, timeout)?;
        revision(&reply)?;
        Ok(number(&reply["count"]).unwrap_or(0) > 0)
    }

    /// Watches `key` from revision `from` on.
    pub fn watch(&self, key: &[u8], from: i64) -> Result<Watch, Error> {
        let request = json!({ "create_request": {
            "key": b64(key), "start_revision": from.to_string(),
        }});
        let mut lines = self.endpoints.stream("/v3/watch", &request, self.timeout)?;
        // The first line says the watch was created.
        let created = lines.next(self.timeout)?;
        if created["result"]["created"].as_bool() != Some(true) {
            return Err(malformed("a watch", &created));
        }
        Ok(Watch { lines })
    }
}

/// A watch on one key.
pub struct Watch {
    lines: Lines,
}

impl Watch {
    /// Waits up to `timeout` for the key's deletion: answers whether it
    /// came.
    pub fn deleted(&mut self, timeout: Duration) -> Result<bool, Error> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let event = match self.lines.next(left) {
                Ok(event) => event,
                Err(Error::TimedOut) => return Ok(false),
                Err(e) => return Err(e),
            };
            let events = event["result"]["events"].as_array();
            if events.is_some_and(|events| events.iter().any(|e| e["type"] == "DELETE")) {
                return Ok(true);
            }
            if event["result"]["canceled"].as_bool() == Some(true) {
                return Err(malformed("a watch", &event));
            }
        }
    }
}

fn put(key: &[u8], value: &[u8], lease: i64) -> Value {
    json!({ "key": b64(key), "value": b64(value), "lease": lease.to_string() })
}

/// The end of the range of every key starting with `prefix`.
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every key: etcd's "\0" as a range end.
    vec![0]
}

fn revision(reply: &Value) -> Result<i64, Error> {
    number(&reply["header"]["revision"]).ok_or_else(|| malformed("a revision", reply))
}

/// A 64-bit number, which the gateway writes as a string.
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        other => other.as_i64(),
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(value: &Value) -> Option<Vec<u8>> {
    STANDARD.decode(value.as_str()?).ok()
}

fn malformed(what: &str, reply: &Value) -> Error {
    let mut text = reply.to_string();
    text.truncate(200);
    Error::Refused(format!("expected {what}, got {text}"))
}
