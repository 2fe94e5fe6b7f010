//! The request decoder against arbitrary bytes, arriving in arbitrary
//! pieces: it never panics, decodes the same whatever the pieces, and what
//! it decodes re-encodes to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use namaste::wire::{Decoder, Request};

fuzz_target!(|data: &[u8]| {
    let Some((&piece, bytes)) = data.split_first() else {
        return;
    };
    let whole = Decoder::new().feed(bytes);
    let piece = usize::from(piece % 16) + 1;
    let mut decoder = Decoder::new();
    let mut pieced = Ok(None);
    for chunk in bytes.chunks(piece) {
        pieced = decoder.feed(chunk);
        if !matches!(pieced, Ok(None)) {
            break;
        }
    }
    assert_eq!(whole, pieced);
    if let Ok(Some(request)) = whole {
        let encoded = request.encode();
        assert_eq!(&bytes[..encoded.len()], &encoded[..]);
        assert_eq!(Decoder::new().feed(&encoded), Ok(Some(request.clone())));
        if let Request::Notify { message, .. } = &request {
            assert!(message.len() <= namaste::wire::MAX_MESSAGE_LEN);
        }
    }
});
