//! Opening the state file and its lock so that nobody else's file is ever
//! used, and rewriting the state file whole.
//!
//! As ssh does with its keys: the files must be regular files of the
//! server's user that nobody else can write, never reached through a
//! symbolic link, in a directory of that user (or root) that others cannot
//! write to unless it is sticky. Another user who can plant a file there
//! could otherwise make the server restore bookings no process made, or
//! hold the lock so that it never starts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::records::{MAGIC, encode_booking, encode_last_token};
use super::Recorded;

/// Refuses a state file at `path` that another user could replace: one
/// whose directory, or any directory above it, belongs to another user
/// than the server's or root, or is writable by group or others without
/// being sticky, as the path is written and as its links resolve; or one
/// reached through a symbolic link of another user. Whoever can write to
/// any of those could swap a directory below it for one of their choice
/// between two starts (as ssh checks the directories above its keys).
pub(super) fn check_directory(path: &Path) -> io::Result<()> {
    let dir = directory_of(path);
    let cannot = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot use the state file {}: {e}", path.display()),
        )
    };
    let written = std::path::absolute(dir).map_err(cannot)?;
    let resolved = fs::canonicalize(dir).map_err(cannot)?;
    for (ancestor, follow) in written
        .ancestors()
        .map(|a| (a, false))
        .chain(resolved.ancestors().map(|a| (a, true)))
    {
        let meta = if follow {
            fs::metadata(ancestor)
        } else {
            fs::symlink_metadata(ancestor)
        }
        .map_err(cannot)?;
        if let Some(why) = unsafe_for_the_state(&meta) {
            let what = if meta.file_type().is_symlink() {
                "a symbolic link that"
            } else {
                "a directory that"
            };
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: {} is {what} {why}, who could plant files there; give --state a path in a directory of the server's user",
                    path.display(),
                    ancestor.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Why a directory (or a link to one) on the way to the state file lets
/// another user than the server's change what lies below it, if it does.
fn unsafe_for_the_state(meta: &fs::Metadata) -> Option<String> {
    let owner = meta.uid();
    if owner != server_user() && owner != 0 {
        return Some(format!("belongs to user id {owner}"));
    }
    let mode = meta.mode();
    // A link's own mode is always 0777 and means nothing: only its owner
    // can change where it points.
    if !meta.file_type().is_symlink() && mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Some(format!(
            "is writable by others and not sticky (mode {:04o})",
            mode & 0o7777
        ));
    }
    None
}

/// Takes the lock beside the state file at `path`, `FILE.lock`, or fails
/// when another server holds it.
pub(super) fn lock(path: &Path) -> io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = open_checked(
        &lock_path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )?;
    // SAFETY: flock on a descriptor we own; it touches no memory.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::other(format!(
                "{}: another server uses this state file (it holds {}); give each server its own --state",
                path.display(),
                lock_path.display()
            )),
            _ => context(&lock_path, e),
        });
    }
    Ok(file)
}

/// The state file at `path`, opened to be read and appended to, or `None`
/// when there is none yet.
pub(super) fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match open_checked(path, OpenOptions::new().read(true).append(true)) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens `path` with `options`, never through a symbolic link and never
/// waiting (a FIFO would block the open), then refuses what is not a
/// regular file of the server's user that only it can write.
fn open_checked(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    let opened = options
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
            return refuse(not_a_file(path, "a directory"));
        }
        // The kernel may refuse another user's file or link in a sticky
        // directory itself (fs.protected_*); say what is there either way.
        Err(e) => match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => return refuse(a_link(path)),
            Ok(meta) if meta.uid() != server_user() => return refuse(not_ours(path, &meta)),
            _ => return Err(context(path, e)),
        },
    };
    let meta = file.metadata().map_err(|e| context(path, e))?;
    if !meta.is_file() {
        return refuse(not_a_file(path, kind_of(&meta)));
    }
    if meta.uid() != server_user() {
        return refuse(not_ours(path, &meta));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "{}: is writable by others (mode {:04o}); chmod go-w it, or remove it",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(file)
}

fn a_link(path: &Path) -> String {
    format!(
        "{}: is a symbolic link; the state file and its lock are never used through one: remove it, or give --state another path",
        path.display()
    )
}

fn not_ours(path: &Path, meta: &fs::Metadata) -> String {
    format!(
        "{}: belongs to user id {}, not to the server's ({}); a file another user made is never used: remove it, or give --state another path",
        path.display(),
        meta.uid(),
        server_user()
    )
}

fn not_a_file(path: &Path, kind: &str) -> String {
    format!(
        "{}: not a regular file but {kind}; --state takes the path of a file",
        path.display()
    )
}

/// Writes a log of `last_token`, the last fencing token given out, and
/// `bookings` to a new file and renames it over the
/// one at `path`, so a crash leaves either the old log or the new one, never
/// half of one. The new file has a name nobody can guess, is created only
/// if nothing (not even a symbolic link) has that name, and is readable by
/// its owner only: another user who can write to the directory can
/// neither redirect the write nor read the handshakes. Answers the log
/// opened for appending, and its size; on failure, the error as the system
/// gave it (for the caller to say what failed), and nothing left behind.
pub(super) fn write_log<'a>(
    path: &Path,
    bookings: impl Iterator<Item = Recorded<'a>>,
    last_token: u64,
) -> io::Result<(File, u64)> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&encode_last_token(last_token));
    for (booking, group) in bookings {
        bytes.extend_from_slice(&encode_booking(booking, group));
    }
    let (next, mut file) = create_temporary(path)?;
    let written = file
        .write_all(&bytes)
        .and_then(|()| fs::rename(&next, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&next);
        return Err(e);
    }
    Ok((file, bytes.len() as u64))
}

/// A new file beside `path` with a random name that starts with its,
/// created exclusively, never through a symbolic link, mode 0600.
fn create_temporary(path: &Path) -> io::Result<(PathBuf, File)> {
    let stem = path.file_name().unwrap_or_default().to_string_lossy();
    loop {
        let mut random = [0; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let next = directory_of(path).join(format!(".{stem}.{suffix}.tmp"));
        // Appending: after a torn write is cut back off, the next record
        // must go to the new end, not after the cut.
        let created = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&next);
        match created {
            Ok(file) => return Ok((next, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn server_user() -> u32 {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() }
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "something else"
    }
}

/// `e`, saying which file it is about.
pub(super) fn context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
