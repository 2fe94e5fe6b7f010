//! LINE and WAIT shared or with slots: their count on the wire.

use super::*;

#[test]
fn shared_and_slotted_requests_carry_their_count_after_a_wait_and_ask_for_the_token() {
    let bytes = in_mode(line(), Mode::Slots(3)).encode();
    assert_eq!(bytes.len(), SHARED_LEN);
    assert_eq!(bytes[0], CMD_LINE_SHARED);
    assert_eq!(&bytes[1..WAIT_LEN], &line().encode()[1..]);
    assert_eq!(&bytes[WAIT_LEN..], &3u32.to_be_bytes());
    let bytes = in_mode(wait(), Mode::Shared).encode();
    assert_eq!((bytes[0], &bytes[WAIT_LEN..]), (CMD_WAIT_SHARED, &[0u8; 4][..]));
}

#[cfg(feature = "server")]
#[test]
fn shared_and_slotted_requests_decode_as_they_were_sent() {
    for request in [
        in_mode(line(), Mode::Shared),
        in_mode(wait(), Mode::Shared),
        in_mode(line(), Mode::Slots(1)),
        in_mode(wait(), Mode::Slots(u32::MAX)),
    ] {
        assert_eq!(Decoder::new().feed(&request.encode()), Ok(Some(request)));
    }
}
