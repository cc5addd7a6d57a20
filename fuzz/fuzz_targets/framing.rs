//! The two ways a byte stream of IPFIX messages is framed: the TCP stream framer, fed chunks of
//! fuzzed sizes, and the RFC 5655 file reader, reading from a source that returns short reads.
//! Both frame messages by their header length, so where the chunk and read boundaries fall must
//! not change the messages, and both must find the same ones.
//!
//! The first input byte seeds the chunk and read sizes; the rest is the stream.

#![no_main]

use botnest_collect::framing::Framer;
use botnest_collect::ipfix_file::IpfixFileReader;
use botnest_wire::ipfix;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// A small xorshift generator of sizes, from 1 byte to a little over one message.
struct Sizes(u32);

impl Sizes {
    fn new(seed: u8) -> Self {
        Sizes(u32::from(seed) | 0x100)
    }

    fn next(&mut self) -> usize {
        let s = &mut self.0;
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        let r = (*s >> 8) as usize;
        match *s % 4 {
            0 => 1 + r % 4,
            1 => 1 + r % 64,
            2 => 1 + r % 1500,
            _ => 1 + r % 70_000,
        }
    }
}

/// Frames `stream` pushed in chunks; returns the messages and whether the stream broke.
fn frame(stream: &[u8], mut size: impl FnMut() -> usize) -> (Vec<Vec<u8>>, bool) {
    let mut framer = Framer::default();
    let mut messages = Vec::new();
    let mut rest = stream;
    let mut broken = false;
    while !rest.is_empty() && !broken {
        let (chunk, tail) = rest.split_at(size().min(rest.len()));
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

/// A source that hands out its bytes a few at a time, as a pipe or a slow disk may.
struct ShortReads<'a> {
    bytes: &'a [u8],
    sizes: Sizes,
}

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.sizes.next().min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fn read_file(file: &[u8], sizes: Sizes) -> Vec<Vec<u8>> {
    let source = ShortReads { bytes: file, sizes };
    let mut messages = Vec::new();
    for message in IpfixFileReader::from_reader(source, "fuzz.ipfix") {
        match message {
            Ok(message) => messages.push(message),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    messages
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = frame(stream, || usize::MAX);
    let mut sizes = Sizes::new(seed);
    let chunked = frame(stream, || sizes.next());
    assert_eq!(whole, chunked, "chunking changed the framing");
    let from_file = read_file(stream, Sizes::new(seed.wrapping_add(1)));
    assert_eq!(
        from_file, whole.0,
        "the file reader and the stream framer disagree"
    );
});
