//! The load generator's peers: the server under load, asked over
//! loopback, and the liveness responders its bookers point it at.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use namaste::Uid;
use namaste::handshake::Handshake;
use namaste::wire::Request;

use super::PATIENCE;

/// The server under load, and its process for CPU and memory readings.
pub struct Server {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
}

impl Server {
    /// CPU time (user + system) the server has used so far.
    pub fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields, in clock ticks of 1/100 s on Linux.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .ok()
    }

    /// Sends `request` and reads the line of text it answers; `None` on
    /// any failure.
    pub fn ask_line(&self, request: &Request) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, PATIENCE).ok()?;
        stream.set_read_timeout(Some(PATIENCE)).ok()?;
        stream.write_all(&request.encode()).ok()?;
        let mut line = String::new();
        stream.take(1024).read_to_string(&mut line).ok()?;
        Some(line)
    }

    /// Sends `request` and reads the reply byte; `None` on any failure.
    pub fn ask(&self, request: &Request) -> Option<u8> {
        let mut stream = TcpStream::connect_timeout(&self.addr, PATIENCE).ok()?;
        stream.set_read_timeout(Some(PATIENCE)).ok()?;
        stream.write_all(&request.encode()).ok()?;
        let mut reply = [0];
        match stream.read(&mut reply) {
            Ok(1) => Some(reply[0]),
            _ => None,
        }
    }
}

/// A liveness responder for load: answers any handshake `h` with
/// `h ^ key`, so one responder serves every id its worker books without a
/// table. Handshakes are `uid ^ key`, fresh keys per worker.
pub struct Responder {
    pub port: u16,
    key: [u8; 64],
}

impl Responder {
    pub fn start() -> Responder {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind responder");
        let port = listener.local_addr().unwrap().port();
        let mut key = *Handshake::random().expect("random key").as_bytes();
        key[0] |= 1; // never all zero, so a handshake never equals its uid
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(PATIENCE));
                let mut heard = [0; 64];
                if stream.read_exact(&mut heard).is_ok() {
                    let answer: Vec<u8> = heard.iter().zip(key).map(|(h, k)| h ^ k).collect();
                    let _ = stream.write_all(&answer);
                }
            }
        });
        Responder { port, key }
    }

    pub fn handshake(&self, uid: &Uid) -> Handshake {
        let mut handshake = *uid.as_bytes();
        handshake
            .iter_mut()
            .zip(self.key)
            .for_each(|(h, k)| *h ^= k);
        Handshake::from_bytes(handshake)
    }

    pub fn book(&self, uid: Uid) -> Request {
        Request::Book {
            uid,
            handshake: self.handshake(&uid),
            port: self.port,
        }
    }

    pub fn check_out(&self, uid: Uid) -> Request {
        Request::CheckOut {
            uid,
            handshake: self.handshake(&uid),
        }
    }
}
