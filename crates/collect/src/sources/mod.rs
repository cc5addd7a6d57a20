//! Flow sources besides live export traffic: the formats public botnet datasets come in.
//!
//! Every reader yields [`FlowRecord`]s with both directions of a conversation in one record
//! (`reverse_*` counters, as RFC 5103 biflows), so offline analysis sees the same type as the
//! collector:
//! - [`zeek::ZeekReader`]: Zeek `conn.log`, TSV or JSON lines, with optional dataset labels;
//! - [`argus::ArgusReader`]: Argus `.binetflow` CSV (CTU-13), with optional labels;
//! - [`meter::RawCaptureReader`]: raw packet captures, metered into biflows.
//!
//! [`sniff`] tells these apart from captures of export traffic and RFC 5655 IPFIX files by
//! content, not by file name.
//!
//! ```no_run
//! use botnest_collect::sources::{sniff, zeek::ZeekReader, InputKind};
//!
//! if sniff("conn.log")? == InputKind::ZeekTsv {
//!     let mut reader = ZeekReader::open("conn.log")?;
//!     for item in reader.by_ref() {
//!         let (flow, label) = item?;
//!         println!("{} -> {} {:?}", flow.src, flow.dst, label.map(|l| l.malicious));
//!     }
//!     println!("{:?}", reader.stats());
//! }
//! # Ok::<(), botnest_collect::sources::SourceError>(())
//! ```

pub mod argus;
mod lines;
pub mod meter;
mod sniff;
pub mod zeek;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use botnest_flow::{FlowRecord, Timestamp};
use serde::Serialize;

use crate::capture::CaptureError;

pub use sniff::{sniff, sniff_reader, InputKind};

/// A flow with the dataset's label for it, when the file carries labels.
pub type LabelledFlow = (FlowRecord, Option<Label>);

/// A dataset's ground-truth label of one flow; never part of [`FlowRecord`].
///
/// `malicious` follows one rule for every format: the main label text contains "botnet" or
/// "malicious", ignoring case. So Zeek `Malicious` and Argus `flow=From-Botnet-V42-...` are
/// malicious; `Benign`, `Background`, `Normal`, `Unknown` and `flow=To-Background-...` are not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Label {
    /// The main label as written (Zeek `label`, Argus `Label`).
    pub text: String,
    /// The detailed label (Zeek `detailedlabel`), when present and set.
    pub detail: Option<String>,
    /// Whether the label marks the flow as malicious (see the type's rule).
    pub malicious: bool,
}

impl Label {
    /// Builds a label from its text, deciding `malicious` by the documented rule.
    pub fn new(text: impl Into<String>, detail: Option<String>) -> Self {
        let text = text.into();
        let lower = text.to_ascii_lowercase();
        let malicious = lower.contains("botnet") || lower.contains("malicious");
        Label {
            text,
            detail,
            malicious,
        }
    }
}

/// Most bad lines remembered with their line numbers; all are counted.
pub const MAX_BAD_LINES: usize = 100;

/// What was wrong with one line of a text source; the line is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum LineError {
    /// A field every record needs is absent or unset.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field's value cannot be read.
    #[error("bad {field} {value:?}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value (cut to 64 bytes).
        value: String,
    },
    /// A TSV or CSV line has a different number of fields than its header.
    #[error("expected {expected} fields, found {found}")]
    FieldCount {
        /// Fields the header names.
        expected: usize,
        /// Fields on the line.
        found: usize,
    },
    /// A JSON line does not parse as an object.
    #[error("bad json: {0}")]
    Json(String),
    /// The line is not UTF-8.
    #[error("not utf-8")]
    NotUtf8,
    /// The line exceeds the length limit.
    #[error("longer than {0} bytes")]
    TooLong(usize),
}

impl LineError {
    fn bad(field: &'static str, value: &str) -> Self {
        let mut end = value.len().min(64);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        LineError::BadValue {
            field,
            value: value[..end].to_string(),
        }
    }
}

/// One skipped line and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line: u64,
    /// The problem.
    pub error: LineError,
}

/// Counters of a line-oriented source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LineStats {
    /// Lines read, headers and blank lines included.
    pub lines: u64,
    /// Header and comment lines (`#...`, the CSV header).
    pub headers: u64,
    /// Records yielded.
    pub records: u64,
    /// Flows of protocols that are not IP (ARP and the like), skipped without error.
    pub not_ip: u64,
    /// Lines skipped because they could not be read.
    pub bad: u64,
    /// The first [`MAX_BAD_LINES`] bad lines.
    pub bad_lines: Vec<BadLine>,
}

impl LineStats {
    fn bad_line(&mut self, line: u64, error: LineError) {
        self.bad += 1;
        if self.bad_lines.len() < MAX_BAD_LINES {
            self.bad_lines.push(BadLine { line, error });
        }
    }
}

/// Errors that end reading a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("{}: read error at line {line}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The line being read.
        line: u64,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a Zeek log.
    #[error("{}: not a zeek log: {reason}", path.display())]
    NotZeek {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// The file is a Zeek log, but not a conn log.
    #[error("{}: not a zeek conn log: {reason}", path.display())]
    NotConnLog {
        /// The file.
        path: PathBuf,
        /// Which required field is missing, or which log it is instead.
        reason: String,
    },
    /// The file is not an Argus CSV flow file.
    #[error("{}: not an argus flow file: {reason}", path.display())]
    NotArgus {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// The content matches none of the known input formats.
    #[error("{}: unrecognised input format", path.display())]
    Unrecognised {
        /// The file.
        path: PathBuf,
    },
    /// The packet capture failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// TCP header flag bits (RFC 9293 section 3.1) as FlowRecord::tcp_flags holds them.
pub(crate) mod tcp_flag {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
    pub const URG: u16 = 0x20;
    pub const ECE: u16 = 0x40;
    pub const CWR: u16 = 0x80;
}

/// IP protocol numbers the text formats name.
pub(crate) mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// Reads decimal seconds ("1520628556.553183", "13.18", "1e3") as nanoseconds, exactly for
/// plain decimals.
pub(crate) fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.contains(['e', 'E']) {
        let secs: f64 = text.parse().ok()?;
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1e9) as u64);
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u64;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    whole.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Reads a date and time without zone ("2011/08/10 09:46:53.047277", "2018-03-09T20:49:16Z")
/// as UTC.
pub(crate) fn parse_datetime(text: &str) -> Option<Timestamp> {
    let normalised = text.trim().replace('/', "-");
    let time = humantime::parse_rfc3339_weak(&normalised).ok()?;
    let nanos = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(Timestamp(u64::try_from(nanos).ok()?))
}
