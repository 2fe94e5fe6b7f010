//! `namaste`: the lock server and its command line.

mod cli;

fn main() -> std::process::ExitCode {
    // As the OS gives them: a file name after `hold NAME --` need not be
    // UTF-8, and is passed on as it is.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    cli::main(&args)
}
