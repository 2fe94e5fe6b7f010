//! A small HTTP/1.0 client for etcd's JSON gateway: one connection per
//! request, the body read to the close, so that neither chunks nor
//! keep-alive need handling; a watch is the same response read line by
//! line as etcd flushes it. Endpoints are tried in turn, the last one that
//! answered first, and the next one is tried when one does not answer in
//! its share of the time (a frozen member still takes connections). Every
//! read and write ends by one deadline, however little comes at a time.

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
    /// The connection ended before the reply did (etcd stopped, say).
    BrokeOff(String),
}

impl Error {
    /// Whether asking again later may get an answer: etcd was out of
    /// reach, not refusing.
    pub fn is_passing(&self) -> bool {
        !matches!(self, Error::Refused(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable(why) => write!(f, "no etcd answers at {why}"),
            Error::Refused(why) => write!(f, "etcd refused: {why}"),
            Error::TimedOut => f.write_str("etcd did not answer in time"),
            Error::BrokeOff(why) => write!(f, "etcd's reply broke off: {why}"),
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
                // etcd's gateway lives at the root: a path would be
                // dropped, not used.
                let (authority, path) = authority.split_once('/').unwrap_or((authority, ""));
                if !path.is_empty() {
                    return Err(format!("{url}: no path is taken (etcd's is /v3/...)"));
                }
                let port = authority.rsplit_once(':').map(|(_, port)| port);
                if !port.is_some_and(|port| port.parse::<u16>().is_ok_and(|port| port > 0)) {
                    return Err(format!(
                        "{url}: no host:port in it (a port from 1 to 65535)"
                    ));
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
    /// `timeout` in all.
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

    /// Sends the request to the endpoints in turn until one answers, and
    /// reads the status line and the headers. An endpoint that takes the
    /// request but does not answer (a frozen member, a partition without a
    /// reset) is given its share of `timeout` only, so that the next ones
    /// are asked in time; the requests are all safe to ask again (renewals,
    /// reads, our own key put on our own lease).
    fn open(&self, path: &str, body: &Value, timeout: Duration) -> Result<Reply, Error> {
        let body = body.to_string();
        let deadline = Instant::now() + timeout;
        let mut failures = Vec::new();
        let mut timed_out = false;
        let count = self.endpoints.len();
        for turn in 0..count {
            let at = (self.last_good.get() + turn) % count;
            let endpoint = &self.endpoints[at];
            let left = deadline.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(count - turn).unwrap_or(u32::MAX);
            match request(endpoint, path, &body, Instant::now() + share) {
                Ok(reply) => {
                    self.last_good.set(at);
                    return Ok(reply);
                }
                Err(Sent::Answered(e)) => {
                    self.last_good.set(at);
                    return Err(e);
                }
                Err(Sent::Unanswered(e)) => {
                    timed_out |= matches!(e, Error::TimedOut);
                    failures.push(format!("{} ({e})", endpoint.url));
                }
            }
        }
        if timed_out {
            return Err(Error::TimedOut);
        }
        Err(Error::Unreachable(failures.join(", ")))
    }
}

/// A request that no endpoint answered (the next one may), or that one
/// answered with an error (etcd's members agree: no other is asked).
enum Sent {
    Unanswered(Error),
    Answered(Error),
}

fn request(endpoint: &Endpoint, path: &str, body: &str, deadline: Instant) -> Result<Reply, Sent> {
    let not_taken = |e: io::Error| Sent::Unanswered(Error::Unreachable(e.to_string()));
    let addrs = endpoint.authority.to_socket_addrs().map_err(not_taken)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Sent::Unanswered(Error::TimedOut));
        }
        let stream = match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => stream,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut stream = Deadlined { stream, deadline };
        let head = format!(
            "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            endpoint.authority,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .map_err(|e| Sent::Unanswered(read_error(e)))?;
        let mut reply = BufReader::new(stream);
        return match read_head(&mut reply) {
            Ok(()) => Ok(reply),
            Err(Head::Broken(e)) => Err(Sent::Unanswered(e)),
            Err(Head::Status(e)) => Err(Sent::Answered(e)),
        };
    }
    Err(not_taken(last))
}

/// Why a reply's head was not taken.
enum Head {
    /// It broke off or did not come in time.
    Broken(Error),
    /// It came, with an error status.
    Status(Error),
}

/// Reads the status line and the headers; an error status is refused with
/// what its body says.
fn read_head(reply: &mut Reply) -> Result<(), Head> {
    let mut status = String::new();
    reply
        .read_line(&mut status)
        .map_err(|e| Head::Broken(read_error(e)))?;
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
            .map_err(|e| Head::Broken(read_error(e)))?;
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
    Err(Head::Status(Error::Refused(format!("HTTP {code}: {said}"))))
}

/// A reply being read.
type Reply = BufReader<Deadlined>;

/// A connection that ends every read and write by one deadline: a peer
/// that keeps sending a little at a time cannot keep us waiting past it.
struct Deadlined {
    stream: TcpStream,
    deadline: Instant,
}

impl Deadlined {
    /// The time left, set as the socket's timeout; an error once none is.
    fn time_left(&self) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.set_write_timeout(Some(left))
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.time_left()?;
        self.stream.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.time_left()?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A watch's reply, one JSON object a line.
pub struct Lines {
    reply: Reply,
}

impl Lines {
    /// The next line's JSON, waiting at most `timeout` for it.
    pub fn next(&mut self, timeout: Duration) -> Result<Value, Error> {
        self.reply.get_mut().deadline = Instant::now() + timeout.max(Duration::from_millis(1));
        let mut line = Vec::new();
        let read = (&mut self.reply)
            .take(LONGEST_REPLY)
            .read_until(b'\n', &mut line)
            .map_err(read_error)?;
        if read == 0 {
            return Err(Error::BrokeOff("the watch ended".into()));
        }
        parse(&line)
    }
}

fn read_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::TimedOut,
        _ => Error::BrokeOff(e.to_string()),
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
