//! Stream framer over an IPFIX byte stream cut into chunks of fuzzed sizes, checked against
//! framing the whole stream at once: where the chunk boundaries fall must not change the
//! messages.
//!
//! The first input byte seeds the chunk sizes; the rest is the stream.

#![no_main]

use botnest_collect::framing::Framer;
use botnest_wire::ipfix;
use libfuzzer_sys::fuzz_target;

/// Frames `stream` pushed in chunks; returns the messages and whether the stream broke.
fn frame(stream: &[u8], mut sizes: impl FnMut() -> usize) -> (Vec<Vec<u8>>, bool) {
    let mut framer = Framer::default();
    let mut messages = Vec::new();
    let mut rest = stream;
    let mut broken = false;
    while !rest.is_empty() && !broken {
        let (chunk, tail) = rest.split_at(sizes().min(rest.len()));
        rest = tail;
        framer.push(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    assert!(message.len() >= ipfix::HEADER_LEN);
                    let length = u16::from_be_bytes([message[2], message[3]]);
                    assert_eq!(usize::from(length), message.len());
                    messages.push(message.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    assert!(framer.is_broken());
                    broken = true;
                    break;
                }
            }
        }
    }
    (messages, broken)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    // A small xorshift generator: chunk sizes from 1 byte to a little over one message.
    let mut state = u32::from(seed) | 0x100;
    let random = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        match state % 4 {
            0 => 1 + (state >> 8) as usize % 4,
            1 => 1 + (state >> 8) as usize % 64,
            2 => 1 + (state >> 8) as usize % 1500,
            _ => 1 + (state >> 8) as usize % 70_000,
        }
    };
    let whole = frame(stream, || usize::MAX);
    let chunked = frame(stream, random);
    assert_eq!(whole, chunked, "chunking changed the framing");
});
