//! A small HTTP/1.0 client for etcd's JSON gateway: one connection per
//! request, the body read to the close, so that neither chunks nor
//! keep-alive need handling; a watch is the same response read line by
//! line as etcd flushes it. Endpoints are tried in turn, the last one that
//! answered first.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The most of a reply read: etcd's replies to us are small, and a reply
/// without end must not take all memory.
const LONGEST_REPLY: u64 = 16 << 20;

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// No endpoint could be reached; names each and why.
    Unreachable(String),
    /// An endpoint answered with an error, or with what is not etcd's JSON.
    Refused(String),
    /// The time given ran out before the answer came.
    TimedOut,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable(why) => write!(f, "no etcd answers at {why}"),
            Error::Refused(why) => write!(f, "etcd refused: {why}"),
            Error::TimedOut => f.write_str("etcd did not answer in time"),
        }
    }
}

/// One client URL, as `host:port`.
struct Endpoint {
    url: String,
    authority: String,
}

/// etcd's client URLs, and which answered last.
pub struct Endpoints {
    endpoints: Vec<Endpoint>,
    last_good: Cell<usize>,
}

impl Endpoints {
    /// The endpoints of `urls` (`http://host:port`, or `host:port`).
    pub fn new(urls: &[String]) -> Result<Endpoints, String> {
        let endpoints = urls
            .iter()
            .map(|url| {
                let authority = match url.split_once("://") {
                    Some(("http", rest)) => rest,
                    Some((scheme, _)) => {
                        return Err(format!(
                            "{url}: only http:// is spoken (not {scheme}://); keep etcd's client port on a trusted network"
                        ));
                    }
                    None => url.as_str(),
                };
                let authority = authority.split('/').next().unwrap_or_default();
                if authority.is_empty() {
                    return Err(format!("{url}: no host:port in it"));
                }
                Ok(Endpoint {
                    url: url.clone(),
                    authority: authority.to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Endpoints {
            endpoints,
            last_good: Cell::new(0),
        })
    }

    /// POSTs `body` to `path` and answers the reply's JSON, within
    /// `timeout` per endpoint.
    pub fn post(&self, path: &str, body: &Value, timeout: Duration) -> Result<Value, Error> {
        let mut reply = self.open(path, body, timeout)?;
        let mut text = Vec::new();
        (&mut reply)
            .take(LONGEST_REPLY)
            .read_to_end(&mut text)
            .map_err(read_error)?;
        parse(&text)
    }

    /// POSTs `body` to `path` and answers the reply as a stream of JSON
    /// lines (a watch), each read within the time `next` is given.
    pub fn stream(&self, path: &str, body: &Value, timeout: Duration) -> Result<Lines, Error> {
        Ok(Lines {
            reply: self.open(path, body, timeout)?,
        })
    }

    /// Sends the request to the first endpoint that takes it, and reads
    /// the status line and the headers.
    fn open(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<BufReader<TcpStream>, Error> {
        let body = body.to_string();
        let mut failures = Vec::new();
        let count = self.endpoints.len();
        for turn in 0..count {
            let at = (self.last_good.get() + turn) % count;
            let endpoint = &self.endpoints[at];
            match request(endpoint, path, &body, timeout) {
                Ok(reply) => {
                    self.last_good.set(at);
                    return Ok(reply);
                }
                Err(Sent::NotTaken(e)) => failures.push(format!("{} ({e})", endpoint.url)),
                Err(Sent::Failed(e)) => return Err(e),
            }
        }
        Err(Error::Unreachable(failures.join(", ")))
    }
}

/// A request that failed before any endpoint took it (another may), or
/// after (no other is asked: it may have done it).
enum Sent {
    NotTaken(io::Error),
    Failed(Error),
}

fn request(
    endpoint: &Endpoint,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<BufReader<TcpStream>, Sent> {
    let addrs = endpoint
        .authority
        .to_socket_addrs()
        .map_err(Sent::NotTaken)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let deadline = Instant::now() + timeout;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Sent::NotTaken(io::ErrorKind::TimedOut.into()));
        }
        let stream = match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => stream,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.set_write_timeout(Some(left)))
            .map_err(Sent::NotTaken)?;
        let head = format!(
            "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            endpoint.authority,
            body.len()
        );
        (&stream)
            .write_all(head.as_bytes())
            .and_then(|()| (&stream).write_all(body.as_bytes()))
            .map_err(Sent::NotTaken)?;
        let mut reply = BufReader::new(stream);
        read_head(&mut reply).map_err(Sent::Failed)?;
        return Ok(reply);
    }
    Err(Sent::NotTaken(last))
}

/// Reads the status line and the headers; an error status is refused with
/// what its body says.
fn read_head(reply: &mut BufReader<TcpStream>) -> Result<(), Error> {
    let mut status = String::new();
    reply.read_line(&mut status).map_err(read_error)?;
    let code = status
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut line = String::new();
    loop {
        line.clear();
        let read = (&mut *reply)
            .take(8192)
            .read_line(&mut line)
            .map_err(read_error)?;
        if read == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    if code == "200" {
        return Ok(());
    }
    let mut text = Vec::new();
    let _ = reply.take(4096).read_to_end(&mut text);
    let said = parse(&text)
        .ok()
        .and_then(|json| json["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&text).trim().to_owned());
    Err(Error::Refused(format!("HTTP {code}: {said}")))
}

/// A watch's reply, one JSON object a line.
pub struct Lines {
    reply: BufReader<TcpStream>,
}

impl Lines {
    /// The next line's JSON, waiting at most `timeout` for it.
    pub fn next(&mut self, timeout: Duration) -> Result<Value, Error> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.reply
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(read_error)?;
        let mut line = Vec::new();
        let read = (&mut self.reply)
            .take(LONGEST_REPLY)
            .read_until(b'\n', &mut line)
            .map_err(read_error)?;
        if read == 0 {
            return Err(Error::Refused("the watch ended".into()));
        }
        parse(&line)
    }
}

fn read_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::TimedOut,
        _ => Error::Refused(format!("the reply broke off ({e})")),
    }
}

fn parse(text: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(text).map_err(|e| {
        Error::Refused(format!(
            "not etcd's JSON ({e}): {}",
            String::from_utf8_lossy(&text[..text.len().min(200)])
        ))
    })
}
