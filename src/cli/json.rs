//! The `--json` output of `status` and `list`: one JSON document, written
//! by hand. Values are rendered to JSON text as they are made; unknown
//! values are `null`.
//!
//! Names are arbitrary bytes. A string is their UTF-8 with every invalid
//! sequence replaced by U+FFFD (as `String::from_utf8_lossy` replaces
//! them), `"`, `\` and every character plain output escapes (controls,
//! bidi overrides, separators) escaped as `\uXXXX`; where the bytes matter
//! (a lock's name) a second field gives them exactly, in hex.

use std::fmt::Write;

/// `bytes` as a JSON string.
pub fn string(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() + 2);
    text.push('"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            // What plain output escapes, so that a terminal shown the
            // document acts on nothing in it either (C1 controls, bidi
            // overrides, line separators).
            c if c != '\'' && c.escape_debug().nth(1).is_some() => {
                let mut units = [0; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(text, "\\u{unit:04x}");
                }
            }
            c => text.push(c),
        }
    }
    text.push('"');
    text
}

/// `bytes` as a JSON string of hex digits.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::from('"');
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text.push('"');
    text
}

/// A number, or `null` when unknown.
pub fn number(value: Option<u64>) -> String {
    value.map_or_else(|| "null".into(), |value| value.to_string())
}

/// A JSON value, or `null` when unknown.
pub fn or_null(value: Option<String>) -> String {
    value.unwrap_or_else(|| "null".into())
}

/// An object of `fields`, each a key and a value already in JSON.
pub fn object(fields: &[(&str, String)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", string(key.as_bytes())))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// An array of `values`, each already in JSON.
pub fn array(values: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", values.into_iter().collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_controls_and_replaces_invalid_utf8() {
        assert_eq!(
            string(b"a\"b\\c\nd\x01\x7f"),
            r#""a\"b\\c\u000ad\u0001\u007f""#
        );
        assert_eq!(string(b"\xff\xfeok \xc3\xa9"), "\"\u{fffd}\u{fffd}ok é\"");
        assert_eq!(
            string("\u{9b}\u{202e}\u{2028}'".as_bytes()),
            r#""\u009b\u202e\u2028'""#
        );
        assert_eq!(hex(b"\xff\x00"), "\"ff00\"");
    }

    #[test]
    fn builds_objects_arrays_and_nulls() {
        let value = object(&[
            ("a", number(Some(1))),
            ("b", number(None)),
            ("c", array([or_null(None), string(b"x")])),
        ]);
        assert_eq!(value, r#"{"a":1,"b":null,"c":[null,"x"]}"#);
    }
}
