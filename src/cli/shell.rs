//! A command line written back as a shell would take it: each argument a
//! word of its own, quoted where it has to be, so that `status NAME` shows
//! `sleep '10 20'` (one argument) apart from `sleep 10 20` (two), and a
//! line pasted into a shell runs that command again. What a terminal
//! would act on (control characters, bytes that are not UTF-8) is written
//! as `$'...'`'s escapes, so the line stays one line of printable text.

use std::fmt::Write;

/// `args` as one line of shell words, separated by spaces.
pub fn words(args: &[Vec<u8>]) -> String {
    let mut line = String::new();
    for (at, arg) in args.iter().enumerate() {
        if at > 0 {
            line.push(' ');
        }
        line.push_str(&word(arg));
    }
    line
}

/// One argument as a shell word: bare when it has nothing a shell would
/// split or expand, else in single quotes, or in `$'...'` when it has
/// something a terminal would act on.
fn word(arg: &[u8]) -> String {
    if !arg.is_empty() && arg.iter().all(|&byte| bare(byte)) {
        // All ASCII, so this is the text as it is.
        return String::from_utf8_lossy(arg).into_owned();
    }
    match std::str::from_utf8(arg) {
        Ok(text) if !text.chars().any(needs_escape) => {
            format!("'{}'", text.replace('\'', r"'\''"))
        }
        _ => escaped_word(arg),
    }
}

/// Bytes no shell splits on or expands, where they are in a word.
fn bare(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"%+,-./:=@_".contains(&byte)
}

/// Characters that would make the line act on a terminal or break it:
/// those `escape_debug` writes as an escape, but for the quotes and the
/// backslash, which are plain text inside single quotes.
fn needs_escape(c: char) -> bool {
    !matches!(c, '\'' | '"' | '\\') && c.escape_debug().nth(1).is_some()
}

/// `arg` in `$'...'`: printable text as it is, a quote and a backslash
/// escaped, anything else as `\xHH` per byte.
fn escaped_word(arg: &[u8]) -> String {
    let mut word = String::from("$'");
    for chunk in arg.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' | '\\' => {
                    word.push('\\');
                    word.push(c);
                }
                c if needs_escape(c) => {
                    let mut bytes = [0; 4];
                    for byte in c.encode_utf8(&mut bytes).bytes() {
                        let _ = write!(word, "\\x{byte:02x}");
                    }
                }
                c => word.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(word, "\\x{byte:02x}");
        }
    }
    word.push('\'');
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&[u8]]) -> String {
        words(&args.iter().map(|arg| arg.to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn keeps_the_boundaries_of_arguments() {
        assert_eq!(line(&[b"sleep", b"10 20"]), "sleep '10 20'");
        assert_eq!(line(&[b"sleep", b"10", b"20"]), "sleep 10 20");
        assert_eq!(line(&[b"echo", b""]), "echo ''");
        assert_eq!(
            line(&[b"sh", b"-c", b"echo $HOME; ls *"]),
            "sh -c 'echo $HOME; ls *'"
        );
    }

    #[test]
    fn quotes_quotes_and_keeps_printable_text() {
        assert_eq!(line(&[b"echo", b"it's"]), r"echo 'it'\''s'");
        assert_eq!(line(&["café".as_bytes()]), "'café'");
        assert_eq!(line(&[br#"a"b\c"#]), r#"'a"b\c'"#);
    }

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(line(&[b"echo", b"a\nb"]), r"echo $'a\x0ab'");
        assert_eq!(line(&[b"\x1b[31mred's"]), r"$'\x1b[31mred\'s'");
        assert_eq!(line(&[b"\xff\\"]), r"$'\xff\\'");
    }
}
