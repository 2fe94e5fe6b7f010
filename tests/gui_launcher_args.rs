//! The command line of examples/gui_launcher.rs, which builds only with the
//! `gui` feature: its parser, in a file of its own, checked here without
//! the GUI toolkit. Its `main` exits with 2 and prints the error for every
//! `Err`.

#[path = "../examples/gui_launcher/args.rs"]
mod args;

use args::{Parsed, USAGE, parse};

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

#[test]
fn an_unknown_option_is_an_error_with_the_usage_not_a_program() {
    let said = parse(words(&["--frob"])).unwrap_err();
    assert!(said.contains("unknown option \"--frob\""), "{said}");
    assert!(said.contains(USAGE), "{said}");
    assert!(parse(words(&["xclock", "-x"])).is_err());
}

#[test]
fn programs_options_and_help_are_read_as_given() {
    assert_eq!(
        parse(words(&["--port", "36409", "xclock", "xterm -e top"])),
        Ok(Parsed::Run {
            port: Some(36409),
            programs: words(&["xclock", "xterm -e top"]),
        })
    );
    assert_eq!(
        parse(words(&["--", "--frob"])),
        Ok(Parsed::Run {
            port: None,
            programs: words(&["--frob"]),
        })
    );
    assert_eq!(parse(words(&["xclock", "--help"])), Ok(Parsed::Help));
    for bad in [&["--port"][..], &["--port", "0"], &["--port", "x"]] {
        assert!(parse(words(bad)).unwrap_err().contains("--port"), "{bad:?}");
    }
}
