//! Bounded line reading shared by the text formats.

use std::io::{self, BufRead, Read};

use super::LineError;

/// Longest line kept; longer lines are skipped as bad, so memory stays bounded.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// Reads lines with their 1-based numbers, without trusting the input to be UTF-8 or short.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    number: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(reader: R) -> Self {
        LineReader {
            reader,
            buf: Vec::new(),
            number: 0,
        }
    }

    /// Number of the line last returned.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The next line without its line ending, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Result<String, LineError>>> {
        self.buf.clear();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.len() > MAX_LINE && self.buf.last() != Some(&b'\n') {
            self.skip_rest()?;
            return Ok(Some(Err(LineError::TooLong(MAX_LINE))));
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Some(
            std::str::from_utf8(&self.buf)
                .map(str::to_string)
                .map_err(|_| LineError::NotUtf8),
        ))
    }

    /// Discards the rest of an over-long line, in bounded steps.
    fn skip_rest(&mut self) -> io::Result<()> {
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.reader.consume(at + 1);
                    return Ok(());
                }
                None => {
                    let len = chunk.len();
                    self.reader.consume(len);
                }
            }
        }
    }
}
