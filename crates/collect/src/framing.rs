//! Framing IPFIX messages out of a byte stream (TCP, RFC 7011 section 10.4, and files).

use botnest_wire::ipfix;

/// Collects stream bytes and yields whole IPFIX messages, using each header's length.
///
/// Memory is bounded by one message (at most 65535 bytes) plus one read. A header that is not
/// IPFIX, or claims fewer bytes than a header, breaks the stream: there is no way to find the
/// next message boundary, so the connection must be dropped.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    broken: bool,
}

/// The stream cannot be framed any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream is not IPFIX: version {version}, length {length}")]
pub struct BrokenStream {
    /// The version field found where a message should start.
    pub version: u16,
    /// The length field found there.
    pub length: u16,
}

impl Framer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 65_536 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether no partial message is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Whether the stream was found not to be IPFIX.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The next whole message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, BrokenStream> {
        if self.broken {
            return Ok(None);
        }
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let version = u16::from_be_bytes([rest[0], rest[1]]);
        let length = u16::from_be_bytes([rest[2], rest[3]]);
        if version != ipfix::VERSION || usize::from(length) < ipfix::HEADER_LEN {
            self.broken = true;
            return Err(BrokenStream { version, length });
        }
        let len = usize::from(length);
        if rest.len() < len {
            return Ok(None);
        }
        let at = self.start;
        self.start += len;
        Ok(Some(&self.buf[at..at + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: u16, fill: u8) -> Vec<u8> {
        let mut m = vec![0, 10];
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(usize::from(len), fill);
        m
    }

    #[test]
    fn messages_split_across_reads_are_joined() {
        let mut f = Framer::default();
        let mut stream = msg(20, 1);
        stream.extend(msg(16, 2));
        f.push(&stream[..7]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&stream[7..30]);
        assert_eq!(f.next_message().unwrap().unwrap().len(), 20);
        assert_eq!(f.next_message(), Ok(None));
        assert!(!f.is_empty());
        f.push(&stream[30..]);
        assert_eq!(f.next_message().unwrap().unwrap(), &msg(16, 2)[..]);
        assert!(f.is_empty());
    }

    #[test]
    fn garbage_breaks_the_stream() {
        let mut f = Framer::default();
        f.push(b"GET / HTTP/1.1\r\n");
        assert!(f.next_message().is_err());
        assert!(f.is_broken());
        let mut f = Framer::default();
        f.push(&[0, 10, 0, 3]);
        assert_eq!(
            f.next_message(),
            Err(BrokenStream {
                version: 10,
                length: 3
            })
        );
    }
}
