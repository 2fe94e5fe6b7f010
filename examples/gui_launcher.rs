//! A single-instance desktop launcher built on Namaste: one window, and a
//! second launch hands its command line to the first and exits.
//!
//! ```text
//! cargo run --release --features gui --example gui_launcher -- [--port N] [--] [PROGRAM ...]
//! ```
//!
//! Each PROGRAM is a command line ("xclock", "xterm -e top"). The window
//! lists them with a Launch button each; a program runs under a booking of
//! its own name, so it cannot be launched twice, whether from this window,
//! another launcher, or `namaste hold --per-user`. Ids are per user: two
//! users each get a launcher of their own. The program inherits that booking
//! (its line, as a flock descriptor is inherited): it stands until the
//! program, and whatever it left running, has exited, even if the launcher
//! is closed or killed first. Launched again while one runs, the launcher hands its
//! PROGRAMs to the running window, which comes to the front and launches
//! those on its own list; any other is only shown, marked as handed over,
//! with a Launch button the person must press: any local process can hand
//! a command line over, and none is run straight from a message.

use std::io::Write;
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

#[path = "gui_launcher/args.rs"]
mod args;

use args::{Parsed, USAGE};
use eframe::egui;
use namaste::Uid;
use namaste::client::{Booking, Client, Error, LineState, Notified};

/// The name every launcher books: two launchers, one window.
const LAUNCHER: &str = "namaste.example.gui-launcher";
/// Programs offered when none are given, if they exist on this machine.
const CANDIDATES: &[&str] = &[
    "x-terminal-emulator",
    "xterm",
    "gnome-terminal",
    "konsole",
    "gedit",
    "mousepad",
    "kate",
    "xclock",
];

fn main() -> ExitCode {
    let (client, programs) = match args::parse(std::env::args().skip(1).collect()) {
        Ok(Parsed::Run { port, programs }) => match port {
            Some(port) => (Client::new().with_port(port), programs),
            None => (Client::new(), programs),
        },
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("gui_launcher: {message}");
            return ExitCode::from(2);
        }
    };
    let me = id_of(LAUNCHER);
    // Once more if the running instance quit between our book and notify.
    for _ in 0..2 {
        match client.book(me) {
            Ok(booking) => return show_window(client, booking, programs),
            Err(Error::Held) => match hand_over(&client, me, &programs) {
                Ok(Notified::Delivered) => {
                    println!("already running; handed over to it");
                    return ExitCode::SUCCESS;
                }
                Ok(Notified::NoHolder) => continue,
                Ok(Notified::Declined) => {
                    eprintln!("gui_launcher: another launcher runs but did not take the hand-over");
                    return ExitCode::FAILURE;
                }
                // Per-user ids keep other users' launchers off our id, so
                // this is a server that cannot tell users apart, or a
                // process of another user squatting our id.
                Ok(Notified::OtherUser | Notified::UserUnknown) => {
                    eprintln!(
                        "gui_launcher: the running launcher is not this user's (or the server cannot tell); not handed over"
                    );
                    return ExitCode::FAILURE;
                }
                // An answer this build does not know: no hand-over either.
                Ok(other) => {
                    eprintln!(
                        "gui_launcher: the running launcher did not take the hand-over ({other:?})"
                    );
                    return ExitCode::FAILURE;
                }
                Err(e) => return fail(&e),
            },
            Err(e) => return fail(&e),
        }
    }
    eprintln!("gui_launcher: the running launcher keeps coming and going; try again");
    ExitCode::FAILURE
}

/// The id of `name` for the user running the launcher: another user's
/// launcher, and the programs it starts, are no concern of ours (the same
/// id as `namaste hold --per-user NAME`).
fn id_of(name: &str) -> Uid {
    Uid::per_user_for_me(name.as_bytes())
}

fn fail(error: &Error) -> ExitCode {
    // Says plainly when no server runs, and how to start one.
    eprintln!("gui_launcher: {error}");
    ExitCode::FAILURE
}

/// Sends our PROGRAMs, one per line, to the running launcher.
fn hand_over(client: &Client, me: Uid, programs: &[String]) -> Result<Notified, Error> {
    client.notify(me, programs.join("\n").as_bytes())
}

fn show_window(client: Client, booking: Booking, programs: Vec<String>) -> ExitCode {
    let programs = if programs.is_empty() {
        CANDIDATES
            .iter()
            .filter(|name| on_path(name))
            .map(|name| name.to_string())
            .collect()
    } else {
        programs
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Namaste launcher")
            .with_inner_size([420.0, 320.0]),
        ..Default::default()
    };
    let launcher = Launcher {
        client,
        booking,
        programs: programs
            .into_iter()
            .map(|command| Program::new(command, false))
            .collect(),
        received: Vec::new(),
    };
    match eframe::run_native(
        "Namaste launcher",
        options,
        Box::new(|_| Ok(Box::new(launcher))),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gui_launcher: cannot open a window: {e}");
            ExitCode::FAILURE
        }
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

struct Launcher {
    client: Client,
    /// Our own booking: it makes this the one launcher, and hand-overs
    /// arrive through it.
    booking: Booking,
    programs: Vec<Program>,
    received: Vec<String>,
}

/// A program of the list, and its run if it runs.
struct Program {
    command: String,
    /// Not on the launcher's own list, but handed over by another launch:
    /// shown, and started only when the person presses its button. Any
    /// local process can hand a command line over.
    handed_over: bool,
    running: Option<(Child, Booking)>,
    note: Option<String>,
}

impl Program {
    fn new(command: String, handed_over: bool) -> Program {
        Program {
            command,
            handed_over,
            running: None,
            note: None,
        }
    }

    /// Starts the program under a booking of its own name.
    fn launch(&mut self, client: &Client) {
        if self.running.is_some() {
            self.note = Some(format!("{} is already running", self.command));
            return;
        }
        self.note = match client.book(id_of(&self.command)) {
            Ok(booking) => {
                let mut words = self.command.split_whitespace();
                let mut command = Command::new(words.next().unwrap_or_default());
                command.args(words);
                // The program and its children keep the booking, so it
                // outlives this launcher however the launcher ends.
                let started = booking
                    .share_with(&mut command)
                    .map_err(|e| e.to_string())
                    .and_then(|command| command.spawn().map_err(|e| e.to_string()));
                match started {
                    Ok(child) => {
                        self.running = Some((child, booking));
                        None
                    }
                    Err(e) => Some(format!("cannot start {}: {e}", self.command)),
                }
            }
            Err(Error::Held) => Some(format!(
                "{} is already running elsewhere; not launched again",
                self.command
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(note) = &self.note {
            say(note);
        }
    }

    /// Notices the program's exit, and lets its booking go.
    fn reap(&mut self) {
        if let Some((child, _)) = &mut self.running
            && !matches!(child.try_wait(), Ok(None))
            && let Some((_, booking)) = self.running.take()
        {
            say(&format!("{} exited", self.command));
            let_go(booking, true);
        }
    }
}

/// A launcher that closes leaves the programs still running their
/// bookings: a second copy cannot start until the first has exited.
impl Drop for Program {
    fn drop(&mut self) {
        if let Some((mut child, booking)) = self.running.take() {
            let exited = !matches!(child.try_wait(), Ok(None));
            let_go(booking, exited);
        }
    }
}

/// Lets a program's booking go. On a line, it is left to whatever of the
/// program still has the line: a program that forked and exited keeps its
/// lock in the processes it left running, and the line's close frees it
/// when the last of them exits. Without a line (an older server), it is
/// left while the program runs, and checked out once it has exited.
fn let_go(booking: Booking, exited: bool) {
    if !exited || booking.line_state() == LineState::Open {
        booking.leave_to_children();
    }
}

/// One line on standard output, for whoever watches the launcher.
fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

impl eframe::App for Launcher {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let mut handed_over = false;
        while let Ok(message) = self.booking.messages().try_recv() {
            let text = String::from_utf8_lossy(&message.bytes).into_owned();
            say(&format!(
                "hand-over received from OS user {}: {text:?}",
                message.sender
            ));
            for command in text.lines().filter(|line| !line.trim().is_empty()) {
                match self.programs.iter().position(|p| p.command == command) {
                    Some(index) if !self.programs[index].handed_over => {
                        self.programs[index].launch(&self.client);
                    }
                    // Never run a command line straight from a message.
                    Some(_) => {}
                    None => {
                        say(&format!(
                            "not on the list, not started: {command:?}; its Launch button starts it"
                        ));
                        self.programs.push(Program::new(command.to_string(), true));
                    }
                }
            }
            self.received.push(text);
            handed_over = true;
        }
        if handed_over {
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
        }
        for program in &mut self.programs {
            program.reap();
        }
        // Hand-overs and exits arrive without input events; look again soon.
        ctx.request_repaint_after(Duration::from_millis(200));
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("Namaste launcher");
            ui.label("One window, however often it is started.");
            ui.separator();
            if self.programs.is_empty() {
                ui.label("No programs: pass some on the command line.");
            }
            for program in &mut self.programs {
                ui.horizontal(|ui| {
                    ui.monospace(&program.command);
                    if program.handed_over {
                        ui.label("(handed over; not on the list)");
                    }
                    if program.running.is_some() {
                        ui.label("running");
                    } else if ui.button("Launch").clicked() {
                        program.launch(&self.client);
                    }
                });
                if let Some(note) = &program.note {
                    ui.colored_label(egui::Color32::from_rgb(200, 80, 60), note);
                }
            }
            if !self.received.is_empty() {
                ui.separator();
                ui.label("Handed over by later launches:");
                for text in &self.received {
                    ui.monospace(text.replace('\n', "  "));
                }
            }
        });
    }
}
