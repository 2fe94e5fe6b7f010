use std::time::Duration;

use super::*;

fn book() -> Request {
    Request::Book {
        uid: Uid::from_name("uid"),
        handshake: Handshake::from_bytes([0x68; UID_LEN]),
        port: 0xbeef,
    }
}

fn check_out() -> Request {
    Request::CheckOut {
        uid: Uid::from_name("uid"),
        handshake: Handshake::from_bytes([0x68; UID_LEN]),
    }
}

#[test]
fn encoding_is_the_0_6_0_layout() {
    let bytes = book().encode();
    assert_eq!(bytes.len(), 131);
    assert_eq!(bytes[0], 0x00);
    assert_eq!(&bytes[1..65], Uid::from_name("uid").as_bytes());
    assert_eq!(&bytes[65..129], &[0x68; UID_LEN]);
    assert_eq!(&bytes[129..], &[0xbe, 0xef]);
    let bytes = check_out().encode();
    assert_eq!(bytes.len(), 129);
    assert_eq!(bytes[0], 0x01);
    assert_eq!(&bytes[1..], &book().encode()[1..129]);
}

fn notify(len: usize) -> Request {
    Request::Notify {
        uid: Uid::from_name("uid"),
        message: (0..len).map(|i| i as u8).collect(),
    }
}

fn wait() -> Request {
    Request::Wait {
        uid: Uid::from_name("uid"),
        handshake: Handshake::from_bytes([0x68; UID_LEN]),
        port: 0xbeef,
        wait: Duration::from_millis(0x0102_0304),
        line: false,
        token: false,
        mode: Mode::Exclusive,
    }
}

fn line() -> Request {
    Request::Wait {
        uid: Uid::from_name("uid"),
        handshake: Handshake::from_bytes([0x68; UID_LEN]),
        port: 0xbeef,
        wait: Duration::from_millis(0x0102_0304),
        line: true,
        token: false,
        mode: Mode::Exclusive,
    }
}

/// `request`, a LINE or a WAIT, asking for its token too.
fn with_token(request: Request) -> Request {
    match request {
        Request::Wait {
            uid,
            handshake,
            port,
            wait,
            line,
            mode,
            ..
        } => Request::Wait {
            uid,
            handshake,
            port,
            wait,
            line,
            token: true,
            mode,
        },
        other => other,
    }
}

fn attach() -> Request {
    Request::Attach {
        uid: Uid::from_name("uid"),
        handshake: Handshake::from_bytes([0x68; UID_LEN]),
    }
}

fn query() -> Request {
    Request::Query {
        uid: Uid::from_name("uid"),
    }
}

fn all() -> [Request; 13] {
    [
        book(),
        Request::List,
        check_out(),
        Request::Status,
        notify(0),
        notify(300),
        notify(MAX_MESSAGE_LEN),
        wait(),
        query(),
        line(),
        attach(),
        with_token(line()),
        with_token(wait()),
    ]
}

#[test]
fn our_extensions_have_their_own_layout() {
    assert_eq!(Request::Status.encode(), [0x02]);
    let bytes = notify(3).encode();
    assert_eq!(bytes[0], 0x03);
    assert_eq!(&bytes[1..65], Uid::from_name("uid").as_bytes());
    assert_eq!(&bytes[65..], &[0, 0, 0, 3, 0, 1, 2]);
    let bytes = wait().encode();
    assert_eq!(bytes.len(), 135);
    assert_eq!(bytes[0], 0x04);
    assert_eq!(&bytes[1..131], &book().encode()[1..]);
    assert_eq!(&bytes[131..], &[1, 2, 3, 4]);
    let bytes = query().encode();
    assert_eq!(bytes.len(), 65);
    assert_eq!(bytes[0], 0x05);
    assert_eq!(&bytes[1..], Uid::from_name("uid").as_bytes());
    let bytes = line().encode();
    assert_eq!(bytes[0], 0x06);
    assert_eq!(&bytes[1..], &wait().encode()[1..]);
    let bytes = attach().encode();
    assert_eq!(bytes[0], 0x07);
    assert_eq!(&bytes[1..], &check_out().encode()[1..]);
    assert_eq!(Request::List.encode(), [0x09]);
    assert_eq!(name_prefix(b"ab"), Some(vec![0x08, 2, b'a', b'b']));
    assert_eq!(name_prefix(&[b'x'; MAX_NAME_LEN]).map(|p| p.len()), Some(257));
    assert_eq!(name_prefix(&[b'x'; MAX_NAME_LEN + 1]), None);
    assert_eq!(name_prefix(b""), None);
    let bytes = with_token(line()).encode();
    assert_eq!(bytes[0], 0x0a);
    assert_eq!(&bytes[1..], &wait().encode()[1..]);
    let bytes = with_token(wait()).encode();
    assert_eq!(bytes[0], 0x0b);
    assert_eq!(&bytes[1..], &wait().encode()[1..]);
}

#[cfg(feature = "server")]
#[test]
fn the_header_before_a_message_is_the_senders_user_then_its_length() {
    assert_eq!(
        message_header(0x0102_0304, &[7; 300]),
        [1, 2, 3, 4, 0, 0, 1, 44]
    );
}

#[cfg(feature = "server")]
#[test]
fn a_wait_longer_than_the_field_holds_is_sent_as_the_longest() {
    let long = Request::Wait {
        uid: Uid::from_name("uid"),
        handshake: Handshake::from_bytes([0x68; UID_LEN]),
        port: 1,
        wait: Duration::from_secs(u64::MAX),
        line: false,
        token: false,
        mode: Mode::Exclusive,
    };
    assert_eq!(&long.encode()[131..], &[0xff; 4]);
    let Ok(Some(Request::Wait { wait, .. })) = Decoder::new().feed(&long.encode()) else {
        panic!("not a wait");
    };
    assert_eq!(wait, MAX_WAIT);
}

#[cfg(feature = "server")]
#[test]
fn decodes_whole_requests() {
    for request in all() {
        assert_eq!(Decoder::new().feed(&request.encode()), Ok(Some(request)));
    }
}

#[cfg(feature = "server")]
#[test]
fn decodes_one_byte_at_a_time() {
    for request in [
        book(),
        check_out(),
        Request::Status,
        notify(0),
        notify(300),
        wait(),
        query(),
        line(),
        attach(),
        with_token(line()),
        with_token(wait()),
    ] {
        let bytes = request.encode();
        let mut decoder = Decoder::new();
        let (last, head) = bytes.split_last().unwrap();
        for byte in head {
            assert_eq!(decoder.feed(std::slice::from_ref(byte)), Ok(None));
        }
        assert_eq!(decoder.feed(&[*last]), Ok(Some(request)));
    }
}

#[cfg(feature = "server")]
#[test]
fn ignores_bytes_after_the_request() {
    for request in all() {
        let mut bytes = request.encode();
        bytes.extend_from_slice(&[0xff; 300]);
        assert_eq!(Decoder::new().feed(&bytes), Ok(Some(request)));
    }
}

#[cfg(feature = "server")]
#[test]
fn rejects_a_message_announced_too_long_before_it_arrives() {
    let mut bytes = notify(0).encode();
    bytes[65..69].copy_from_slice(&(MAX_MESSAGE_LEN as u32 + 1).to_be_bytes());
    assert_eq!(
        Decoder::new().feed(&bytes),
        Err(DecodeError::MessageTooLong(MAX_MESSAGE_LEN + 1))
    );
    bytes[65..69].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        Decoder::new().feed(&bytes),
        Err(DecodeError::MessageTooLong(u32::MAX as usize))
    );
}

#[cfg(feature = "server")]
#[test]
fn a_message_grows_only_as_its_bytes_arrive() {
    let bytes = notify(MAX_MESSAGE_LEN).encode();
    let mut decoder = Decoder::new();
    assert_eq!(decoder.feed(&bytes[..NOTIFY_HEADER_LEN + 10]), Ok(None));
    assert!(decoder.message.capacity() < 1024);
}

#[test]
fn display_never_shows_the_handshake() {
    let handshake = Uid::from_name("handshake").to_string();
    for request in [book(), check_out(), wait(), line(), attach()] {
        let shown = request.to_string();
        assert!(!shown.contains(&handshake[..16]), "{shown}");
        assert!(
            shown.contains(&Uid::from_name("uid").to_string()[..16]),
            "{shown}"
        );
    }
    assert!(book().to_string().contains("port 48879"));
    assert!(wait().to_string().contains("port 48879"));
    assert!(
        line()
            .to_string()
            .contains("on a line (responder port 48879)")
    );
}

#[cfg(feature = "server")]
#[test]
fn empty_input_needs_more() {
    let mut decoder = Decoder::new();
    assert_eq!(decoder.feed(&[]), Ok(None));
    assert_eq!(decoder.feed(&[CMD_BOOK]), Ok(None));
    assert_eq!(decoder.feed(&[]), Ok(None));
}

#[cfg(feature = "server")]
#[test]
fn rejects_unknown_commands_at_once() {
    let ours = [
        CMD_NAME,
        CMD_LIST,
        CMD_LINE_TOKEN,
        CMD_WAIT_TOKEN,
        CMD_LINE_SHARED,
        CMD_WAIT_SHARED,
    ];
    for command in (0x08..=0xff).filter(|command| !ours.contains(command)) {
        assert_eq!(
            Decoder::new().feed(&[command]),
            Err(DecodeError::UnknownCommand(command))
        );
    }
}

#[cfg(feature = "server")]
#[test]
fn rejects_handshake_equal_to_uid() {
    let same = Uid::from_name("same");
    let same_secret = Handshake::from_bytes(*same.as_bytes());
    for request in [
        Request::Book {
            uid: same,
            handshake: same_secret,
            port: 1,
        },
        Request::CheckOut {
            uid: same,
            handshake: same_secret,
        },
        Request::Wait {
            uid: same,
            handshake: same_secret,
            port: 1,
            wait: Duration::ZERO,
            line: true,
            token: true,
            mode: Mode::Exclusive,
        },
        Request::Attach {
            uid: same,
            handshake: same_secret,
        },
    ] {
        assert_eq!(
            Decoder::new().feed(&request.encode()),
            Err(DecodeError::HandshakeIsUid)
        );
    }
}

#[cfg(feature = "server")]
#[test]
fn a_name_before_a_booking_request_arrives_with_it_one_byte_at_a_time() {
    let name = b"a name\n\"\xff".to_vec();
    let shared = |request, mode| match request {
        Request::Wait { .. } => in_mode(request, mode),
        other => other,
    };
    for request in [
        book(),
        wait(),
        line(),
        with_token(line()),
        with_token(wait()),
        shared(line(), Mode::Shared),
        shared(wait(), Mode::Slots(3)),
    ] {
        let bytes = [name_prefix(&name).unwrap(), request.encode()].concat();
        let mut decoder = Decoder::new();
        let (last, start) = bytes.split_last().unwrap();
        for byte in start {
            assert_eq!(decoder.feed(&[*byte]), Ok(None));
        }
        assert_eq!(decoder.feed(&[*last]), Ok(Some(request)));
        assert_eq!(decoder.take_name().as_deref(), Some(&name[..]));
        assert_eq!(decoder.take_name(), None, "taken once");
        let mut whole = Decoder::new();
        assert!(whole.feed(&bytes).unwrap().is_some());
        assert_eq!(whole.take_name().as_deref(), Some(&name[..]));
    }
    let mut unnamed = Decoder::new();
    assert_eq!(unnamed.feed(&book().encode()), Ok(Some(book())));
    assert_eq!(unnamed.take_name(), None);
}

#[cfg(feature = "server")]
#[test]
fn a_name_goes_only_before_a_booking_request_and_is_never_empty() {
    for request in [check_out(), Request::Status, Request::List, query(), attach(), notify(1)] {
        let bytes = [name_prefix(b"n").unwrap(), request.encode()].concat();
        assert_eq!(
            Decoder::new().feed(&bytes),
            Err(DecodeError::NameBefore(request.encode()[0])),
            "{request}"
        );
    }
    assert_eq!(Decoder::new().feed(&[CMD_NAME, 0]), Err(DecodeError::EmptyName));
    let twice = [name_prefix(b"n").unwrap(), name_prefix(b"n").unwrap()].concat();
    assert_eq!(Decoder::new().feed(&twice), Err(DecodeError::UnknownCommand(CMD_NAME)));
}

/// `request`, a LINE or a WAIT, asking to hold its lock in `mode`.
fn in_mode(request: Request, mode: Mode) -> Request {
    match request {
        Request::Wait {
            uid,
            handshake,
            port,
            wait,
            line,
            ..
        } => Request::Wait {
            uid,
            handshake,
            port,
            wait,
            line,
            token: mode != Mode::Exclusive,
            mode,
        },
        other => other,
    }
}

mod shared;
