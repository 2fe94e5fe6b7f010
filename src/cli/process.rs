//! The processes behind a liveness responder, found through `/proc` as
//! `lslocks` finds the holders of a file lock: the listening socket's
//! inode, asked of the kernel for the exact address the server calls,
//! then every process with a descriptor of it. Another user's descriptors
//! are hidden unless one is root, and then this says so.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use namaste::owner::Owners;

/// What `/proc` shows of the processes holding a responder.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processes {
    /// The processes with the listening socket open, lowest pid first:
    /// `hold` and the command it handed the socket down to, say.
    pub pids: Vec<u32>,
    /// Processes whose descriptors this user may not read: one of them may
    /// be a holder.
    pub hidden: usize,
    /// Whether the holder's listening socket was found: at the address
    /// the server calls, owned by the user the server reports.
    pub listening: bool,
}

/// The processes that have open the socket listening at exactly
/// `responder`, if `owner` owns it: the socket the server calls, not one of
/// another user on another loopback address, or one bound after the
/// holder's was closed.
pub fn holding(responder: SocketAddr, owner: Option<u32>) -> Processes {
    holding_each(&[(responder, owner)])
        .pop()
        .unwrap_or_default()
}

/// What [`holding`] finds for each responder and its owner, in order,
/// with one walk of `/proc` for them all (`list`): it costs a look at
/// every descriptor of every process, however many responders there are.
pub fn holding_each(responders: &[(SocketAddr, Option<u32>)]) -> Vec<Processes> {
    let mut found: Vec<Processes> = responders.iter().map(|_| Processes::default()).collect();
    let mut owners = Owners::open();
    let mut wanted = HashMap::new();
    for (i, (responder, owner)) in responders.iter().enumerate() {
        if let (Ok(listener), Some(owner)) = (owners.listener(*responder), owner)
            && listener.user == *owner
        {
            wanted.insert(OsString::from(format!("socket:[{}]", listener.inode)), i);
            found[i].listening = true;
        }
    }
    if wanted.is_empty() {
        return found;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match open_among(&entry.path().join("fd"), &wanted) {
            Some(held) => held.into_iter().for_each(|i| found[i].pids.push(pid)),
            None => found
                .iter_mut()
                .filter(|processes| processes.listening)
                .for_each(|processes| processes.hidden += 1),
        }
    }
    for processes in &mut found {
        processes.pids.sort_unstable();
        processes.pids.dedup();
    }
    found
}

/// The command line of `pid`, one item per argument.
pub fn command_line(pid: u32) -> Option<Vec<Vec<u8>>> {
    let mut line = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if line.last() == Some(&0) {
        line.pop();
    }
    // A zombie, or a kernel thread: no command line at all.
    if line.is_empty() {
        return None;
    }
    Some(line.split(|&byte| byte == 0).map(<[u8]>::to_vec).collect())
}

/// The responders, by their index in `wanted`, that a descriptor in the
/// directory `fds` links to; `None` when the directory cannot be read
/// (another user's process, or one that just exited).
fn open_among(fds: &Path, wanted: &HashMap<OsString, usize>) -> Option<Vec<usize>> {
    let entries = fs::read_dir(fds).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|fd| {
                wanted
                    .get(fs::read_link(fd.path()).ok()?.as_os_str())
                    .copied()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn finds_this_process_behind_its_own_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let found = holding(listener.local_addr().unwrap(), Some(me()));
        assert!(found.listening);
        assert_eq!(found.pids, [std::process::id()]);
        let command = command_line(std::process::id()).unwrap();
        let mine: Vec<Vec<u8>> = std::env::args_os()
            .map(|arg| arg.into_encoded_bytes())
            .collect();
        assert_eq!(command, mine);
    }

    #[test]
    fn finds_each_of_several_listeners_in_one_walk() {
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let nobody_listens = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut asked: Vec<_> = listeners
            .iter()
            .map(|listener| (listener.local_addr().unwrap(), Some(me())))
            .collect();
        asked.insert(1, (nobody_listens, Some(me())));
        let found = holding_each(&asked);
        assert_eq!(found.len(), 4);
        assert_eq!(found[1], Processes::default());
        for processes in [&found[0], &found[2], &found[3]] {
            assert!(processes.listening);
            assert_eq!(processes.pids, [std::process::id()]);
        }
    }

    #[test]
    fn finds_nothing_where_nothing_listens() {
        let at = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(holding(at, Some(me())), Processes::default());
    }

    #[test]
    fn finds_nothing_behind_a_listener_of_another_user_or_address() {
        let listener = TcpListener::bind("127.0.0.2:0").unwrap();
        let at = listener.local_addr().unwrap();
        assert_eq!(holding(at, Some(me() + 1)), Processes::default());
        assert_eq!(holding(at, None), Processes::default());
        let elsewhere = SocketAddr::from(([127, 0, 0, 1], at.port()));
        assert_eq!(holding(elsewhere, Some(me())), Processes::default());
        assert!(holding(at, Some(me())).listening);
    }

    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions and touches no memory.
        unsafe { libc::geteuid() }
    }
}
