//! Peers for the end-to-end tests: a server on a free loopback port, a
//! liveness responder, and raw request helpers.
#![allow(dead_code)] // each test file uses its own share of these

pub mod etcd;
pub mod hogs;
pub mod users;

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use namaste::Uid;
use namaste::handshake::Handshake;
use namaste::reactor::{Config, Server, Stopper};
use namaste::wire::Request;

/// A server running on its own thread, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stopper: Stopper,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(Config::default())
    }

    /// Starts with `config`, on a free port of 127.0.0.1 unless `config`
    /// names another loopback address.
    pub fn with(mut config: Config) -> TestServer {
        config.addr.set_port(0);
        let server = Server::bind(config).expect("bind test server");
        let addr = server.local_addr();
        let stopper = server.stopper();
        let thread = Some(thread::spawn(move || server.run()));
        TestServer {
            addr,
            stopper,
            thread,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sends `request` and answers the reply byte, or `None` when the
    /// server closed without one.
    pub fn send(&self, request: &Request) -> Option<u8> {
        send_bytes(self.addr, &request.encode())
    }

    pub fn book(&self, uid: Uid, handshake: Handshake, port: u16) -> Option<u8> {
        self.send(&Request::Book {
            uid,
            handshake,
            port,
        })
    }

    pub fn check_out(&self, uid: Uid, handshake: Handshake) -> Option<u8> {
        self.send(&Request::CheckOut { uid, handshake })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stopper.stop().expect("stop test server");
        if let Some(thread) = self.thread.take() {
            let result = thread.join().expect("server thread panicked");
            if !thread::panicking() {
                result.expect("server failed");
            }
        }
    }
}

/// Writes `bytes` to a new connection and reads the reply: `Some(byte)`,
/// or `None` when the server closed without replying.
pub fn send_bytes(addr: SocketAddr, bytes: &[u8]) -> Option<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).expect("write request");
    read_reply(&mut stream)
}

/// The one reply byte, or `None` on a close (or reset) without it.
pub fn read_reply(stream: &mut TcpStream) -> Option<u8> {
    let mut reply = [0; 1];
    match stream.read(&mut reply) {
        Ok(1) => Some(reply[0]),
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("reading the reply failed: {e}"),
    }
}

/// What a liveness responder does with a connection.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Answers the right handshake with the uid, as a live holder does.
    Honest,
    /// Reads the handshake, then answers these bytes of its own.
    Answers(&'static [u8]),
}

/// A liveness responder on 127.0.0.1, serving each connection on a thread
/// of its own; stops when dropped.
pub struct Responder {
    pub port: u16,
    stopped: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    pub fn honest(uid: Uid, handshake: Handshake) -> Responder {
        Responder::new(uid, handshake, Behaviour::Honest)
    }

    pub fn new(uid: Uid, handshake: Handshake, behaviour: Behaviour) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind responder");
        let port = listener.local_addr().unwrap().port();
        let stopped = Arc::new(AtomicBool::new(false));
        let thread = Some(thread::spawn({
            let stopped = stopped.clone();
            move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        thread::spawn(move || respond(stream, uid, handshake, behaviour));
                    }
                }
            }
        }));
        Responder {
            port,
            stopped,
            thread,
        }
    }
}

fn respond(mut stream: TcpStream, uid: Uid, handshake: Handshake, behaviour: Behaviour) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut heard = [0; 64];
    if stream.read_exact(&mut heard).is_err() {
        return;
    }
    let _ = match behaviour {
        Behaviour::Honest if heard == *handshake.as_bytes() => stream.write_all(uid.as_bytes()),
        Behaviour::Honest => Ok(()),
        Behaviour::Answers(bytes) => stream.write_all(bytes),
    };
    let _ = stream.shutdown(Shutdown::Both);
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A port that accepts connections in the kernel but never answers: the
/// listener is never read from.
pub fn silent_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind silent listener");
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let (listener, port) = silent_port();
    drop(listener);
    port
}

pub fn random() -> Uid {
    Uid::random().expect("random id")
}

/// A fresh handshake, as a booker makes one per booking.
pub fn secret() -> Handshake {
    Handshake::random().expect("random handshake")
}

/// Runs the `namaste` binary to completion.
pub fn namaste(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_namaste"))
        .args(args)
        .output()
        .expect("run namaste")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `namaste run` process on a free port, killed when dropped.
pub struct Running {
    pub child: Child,
    pub port: u16,
    log: BufReader<ChildStderr>,
    /// Lines read while waiting for the server to listen, not yet looked
    /// at by the test.
    startup: std::collections::VecDeque<String>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        Running::spawn(Running::command(args))
    }

    /// The command that starts `namaste run` on a free port with `args`.
    pub fn command(args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_namaste"));
        command.args(["run", "--port", "0"]).args(args);
        command
    }

    /// Starts it allowed at most `limit` open files.
    pub fn with_fd_limit(limit: u32, args: &[&str]) -> Running {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_namaste"))
            .args(["run", "--port", "0"])
            .args(args);
        Running::spawn(command)
    }

    /// Starts `command`, a `namaste run`, and waits until it listens.
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("start namaste run");
        let log = BufReader::new(child.stderr.take().unwrap());
        let mut running = Running {
            child,
            port: 0,
            log,
            startup: Default::default(),
        };
        let lines = running.log_lines_until("listening on");
        let line = lines.last().unwrap().clone();
        running.startup.extend(lines);
        running.port = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(": ").next())
            .and_then(|addr| addr.parse::<SocketAddr>().ok())
            .map(|addr| addr.port())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        running
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// CPU time (user and system) the server has used, in clock ticks of
    /// 1/100 s.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Files the server has open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// The bookings the server holds now.
    pub fn bookings(&self) -> u64 {
        namaste::client::Client::new()
            .with_port(self.port)
            .status()
            .unwrap()
            .bookings
    }

    /// Waits until the server holds `n` bookings.
    pub fn wait_for_bookings(&self, n: u64) {
        let client = namaste::client::Client::new().with_port(self.port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.status().unwrap().bookings != n {
            assert!(Instant::now() < deadline, "never reached {n} bookings");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` WAITs are queued for `uid`, as QUERY tells: the
    /// sign that a waiter is queued, and not merely started.
    pub fn wait_for_waiters(&self, uid: Uid, n: u64) {
        let client = namaste::client::Client::new().with_port(self.port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.query(uid).unwrap().waiters != n {
            assert!(Instant::now() < deadline, "never reached {n} waiters");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next log line that contains `text`; fails at the end of the log.
    pub fn log_line_with(&mut self, text: &str) -> String {
        self.log_lines_until(text).pop().unwrap()
    }

    /// The log lines up to and including the next one that contains
    /// `text`; fails at the end of the log.
    pub fn log_lines_until(&mut self, text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = match self.startup.pop_front() {
                Some(line) => line,
                None => {
                    let mut line = String::new();
                    let read = self.log.read_line(&mut line).unwrap();
                    assert!(read > 0, "the log ended without {text:?}: {lines:?}");
                    line
                }
            };
            let found = line.contains(text);
            lines.push(line);
            if found {
                return lines;
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &Child) {
    signal(child.id(), "-TERM");
}

/// Whether process `pid` has exited (a zombie has closed its files too).
pub fn exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Waits, for a while, until process `pid` has exited.
pub fn wait_until_exited(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exited(pid) {
        assert!(Instant::now() < deadline, "process {pid} never exited");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (as `kill` spells it: `-STOP`) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("namaste-{test}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The paths in the directory now.
    pub fn entries(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A shell loop that runs until the file `name` exists, or for 30 s
    /// at most, so that a failed test leaves nothing running.
    pub fn wait_for_file(&self, name: &str) -> String {
        format!(
            "i=0; while [ ! -e {} ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done",
            self.path(name).display()
        )
    }

    /// A shell script that writes its pid to `NAME.pid`, then waits for
    /// the file `NAME.stop`: a command whose start a test can wait for
    /// with [`Scratch::pid`] (`hold` runs its command only once it has
    /// its grant and believes the server that gave it).
    pub fn started_then_wait(&self, name: &str) -> String {
        format!(
            "echo $$ > {}; {}",
            self.path(&format!("{name}.pid")).display(),
            self.wait_for_file(&format!("{name}.stop"))
        )
    }

    pub fn touch(&self, name: &str) {
        fs::write(self.path(name), b"").unwrap();
    }

    /// The pid a process wrote to the file `name`, once it has.
    pub fn pid(&self, name: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = fs::read_to_string(self.path(name))
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "nobody wrote {name}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `namaste hold NAME --port PORT OPTIONS -- sh -c LOOP` (without NAME
/// when it is empty): holds until the file `end` appears in `scratch`.
pub fn hold_until(port: u16, name: &[u8], options: &[&str], scratch: &Scratch, end: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_namaste"))
        .arg("hold")
        .args((!name.is_empty()).then(|| OsStr::from_bytes(name)))
        .args(["--port", &port.to_string()])
        .args(options)
        .args(["--", "sh", "-c", &scratch.wait_for_file(end)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `namaste hold NAME --port PORT OPTIONS -- COMMAND`, with no input and
/// its output thrown away.
pub fn quiet_hold(port: u16, name: &str, options: &[&str], command: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_namaste"));
    cmd.args(["hold", name, "--port", &port.to_string()])
        .args(options)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// A holder's port that stays the test's own: answers the next `calls`
/// connections to `listener` with `reply` after reading a handshake, on a
/// thread. No other process can take the port in between, as one could
/// once a responder closed it.
pub fn answer_with(listener: Arc<TcpListener>, reply: [u8; 64], calls: usize) -> JoinHandle<()> {
    thread::spawn(move || {
        for _ in 0..calls {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut heard = [0; 64];
            if stream.read_exact(&mut heard).is_ok() {
                let _ = stream.write_all(&reply);
            }
        }
    })
}

/// Threads that connect to a port on 127.0.0.1 as fast as they can, each
/// keeping up to `keep` connections open and saying nothing; they stop
/// when dropped or [`Flood::stop`]ped.
pub struct Flood {
    stop: Arc<AtomicBool>,
    made: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Flood {
    pub fn start(port: u16, threads: usize, keep: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, made) = (stop.clone(), made.clone());
                thread::spawn(move || {
                    let mut open = std::collections::VecDeque::new();
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                            open.push_back(stream);
                            made.fetch_add(1, Ordering::Relaxed);
                        }
                        if open.len() > keep {
                            open.pop_front();
                        }
                    }
                })
            })
            .collect();
        Flood {
            stop,
            made,
            threads,
        }
    }

    /// How many connections the threads have made so far.
    pub fn made(&self) -> usize {
        self.made.load(Ordering::Relaxed)
    }

    /// Waits, for a while, until the threads have made `n` connections.
    pub fn wait_until_made(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.made() < n {
            assert!(
                Instant::now() < deadline,
                "the flood made {} of {n} connections",
                self.made()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the threads; answers how many connections they made.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
        self.made()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How long after its time is up a wait may end: the reply's way back on
/// a loaded machine, far less than the wait itself run again.
pub const WAIT_SLACK: Duration = Duration::from_secs(1);

/// Asserts that a wait for `wait`, begun at `started`, has just ended when
/// its time was up: not before, and not more than [`WAIT_SLACK`] after.
pub fn assert_ended_when_time_was_up(started: Instant, wait: Duration) {
    let waited = started.elapsed();
    assert!(waited >= wait, "gave up after {waited:?} of {wait:?}");
    assert!(
        waited < wait + WAIT_SLACK,
        "gave up only after {waited:?}, for a wait of {wait:?}"
    );
}

/// Skips what the calling test cannot do here, saying why where it is
/// seen: libtest keeps what a passing test prints with `eprintln!` to
/// itself, so this writes to standard error directly. Under `CI=true` a
/// missing precondition fails the test instead.
pub fn skip(reason: &str) {
    let test = thread::current().name().unwrap_or("a test").to_string();
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {reason} (CI=true: a precondition must hold, not be skipped)"
    );
    let _ = writeln!(io::stderr(), "skipped in {test}: {reason}");
}

/// The name of the OS user the tests run as.
pub fn user_name() -> String {
    let output = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}
