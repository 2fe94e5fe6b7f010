//! The processes behind a liveness responder, found through `/proc` as
//! `lslocks` finds the holders of a file lock: the listening socket's
//! inode from `/proc/net/tcp` (and `tcp6`), then every process with a
//! descriptor of it. Another user's descriptors are hidden unless one is
//! root, and then this says so.

use std::fs;
use std::path::Path;

/// What `/proc` shows of the processes holding a responder.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processes {
    /// The processes with the listening socket open, lowest pid first:
    /// `hold` and the command it handed the socket down to, say.
    pub pids: Vec<u32>,
    /// Processes whose descriptors this user may not read: one of them may
    /// be a holder.
    pub hidden: usize,
    /// Whether the listening socket was found at all.
    pub listening: bool,
}

/// `/proc/net/tcp`'s code for a listening socket.
const LISTEN: &str = "0A";

/// The processes that have the loopback socket listening on `port` open.
pub fn holding(port: u16) -> Processes {
    let Some(inode) = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .find_map(|table| listener_inode(&table, port))
    else {
        return Processes::default();
    };
    let link = format!("socket:[{inode}]");
    let mut found = Processes {
        listening: true,
        ..Processes::default()
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match has_open(&entry.path().join("fd"), &link) {
            Some(true) => found.pids.push(pid),
            Some(false) => {}
            None => found.hidden += 1,
        }
    }
    found.pids.sort_unstable();
    found
}

/// The command line of `pid`, its arguments separated by spaces.
pub fn command_line(pid: u32) -> Option<Vec<u8>> {
    let mut line = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if line.last() == Some(&0) {
        line.pop();
    }
    for byte in &mut line {
        if *byte == 0 {
            *byte = b' ';
        }
    }
    Some(line)
}

/// Whether a descriptor in the directory `fds` links to `link`; `None` when
/// the directory cannot be read (another user's process, or one that just
/// exited).
fn has_open(fds: &Path, link: &str) -> Option<bool> {
    let entries = fs::read_dir(fds).ok()?;
    Some(
        entries
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == link)),
    )
}

/// The inode of the socket listening on a loopback address at `port`, from
/// the text of `/proc/net/tcp` or `/proc/net/tcp6`.
fn listener_inode(table: &str, port: u16) -> Option<u64> {
    let port = format!("{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        let (address, local_port) = local.split_once(':')?;
        (local_port == port && *state == LISTEN && is_loopback(address))
            .then(|| inode.parse().ok())
            .flatten()
    })
}

/// Whether a `/proc/net/tcp` address (hex, in the kernel's byte order) is
/// 127.0.0.0/8 or ::1.
fn is_loopback(address: &str) -> bool {
    match address.len() {
        // The first octet is the last byte of the host-order word.
        8 => address.ends_with("7F"),
        32 => address == "00000000000000000000000001000000",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn finds_this_process_behind_its_own_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let found = holding(port);
        assert!(found.listening);
        assert_eq!(found.pids, [std::process::id()]);
        let command = command_line(std::process::id()).unwrap();
        assert!(!command.contains(&0));
    }

    #[test]
    fn finds_nothing_where_nothing_listens() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(holding(port), Processes::default());
    }

    #[test]
    fn reads_only_loopback_listeners_on_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9C49 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F40 0100007F:9C49 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0A000001:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
   3: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0
";
        assert_eq!(listener_inode(table, 0x9C49), Some(111));
        assert_eq!(listener_inode(table, 0x1F40), Some(444));
        assert_eq!(listener_inode(table, 80), None);
        assert!(is_loopback("00000000000000000000000001000000"));
        assert!(!is_loopback("00000000000000000000000000000000"));
    }
}
