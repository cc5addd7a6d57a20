//! Telling input formats apart by their content.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use botnest_wire::{ipfix, netflow5, netflow9};
use serde::Serialize;

use super::SourceError;
use crate::capture::{CaptureReader, Datagram, Transport};

/// Bytes read from the start of a file to recognise it.
const HEAD_LEN: usize = 4096;
/// Transport payloads of a capture examined for export messages.
const PAYLOADS_EXAMINED: usize = 200;
/// Frames read at most while looking for those payloads.
const FRAMES_EXAMINED: u64 = 10_000;
/// Fixed sizes of a NetFlow v5 packet (header, record).
const V5_HEADER_LEN: usize = 24;
const V5_RECORD_LEN: usize = 48;

/// The kinds of input botnest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A pcap/pcapng capture of IPFIX or NetFlow export traffic.
    ExportCapture,
    /// A pcap/pcapng capture of ordinary traffic, to be metered into flows.
    RawCapture,
    /// An RFC 5655 IPFIX file.
    IpfixFile,
    /// A Zeek conn.log in its TSV form.
    ZeekTsv,
    /// A Zeek conn.log as JSON lines.
    ZeekJson,
    /// An Argus binetflow CSV file.
    Argus,
}

/// Decides the kind of the file at `path` from its content.
pub fn sniff(path: impl AsRef<Path>) -> Result<InputKind, SourceError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    sniff_reader(file, path)
}

/// Decides the kind of input from any byte source; `name` is used in error messages.
///
/// A capture is an export capture when most of its first 200 UDP/TCP payloads are whole IPFIX
/// messages, NetFlow v9 packets whose first FlowSet parses, or NetFlow v5 packets exactly
/// `24 + 48 * count` bytes long; otherwise it is raw traffic.
pub fn sniff_reader<R: Read>(
    mut reader: R,
    name: impl Into<PathBuf>,
) -> Result<InputKind, SourceError> {
    let path = name.into();
    let mut head = Vec::with_capacity(HEAD_LEN);
    (&mut reader)
        .take(HEAD_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|source| SourceError::Read {
            path: path.clone(),
            line: 1,
            source,
        })?;
    if is_capture(&head) {
        let reader = CaptureReader::from_reader(Cursor::new(head).chain(reader), path)?;
        return Ok(capture_kind(reader));
    }
    text_kind(&head).ok_or(SourceError::Unrecognised { path })
}

fn is_capture(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    head.get(..4).is_some_and(|m| MAGICS.iter().any(|k| k == m))
}

/// Counts export-looking payloads among the first ones of the capture.
fn capture_kind<R: Read>(mut reader: CaptureReader<R>) -> InputKind {
    let (mut examined, mut export) = (0usize, 0usize);
    while examined < PAYLOADS_EXAMINED && reader.stats().frames < FRAMES_EXAMINED {
        let Some(Ok(datagram)) = reader.next() else {
            break;
        };
        if datagram.payload.is_empty() {
            continue;
        }
        examined += 1;
        export += usize::from(is_export(&datagram));
    }
    if examined > 0 && export * 2 > examined {
        InputKind::ExportCapture
    } else {
        InputKind::RawCapture
    }
}

/// Whether a payload is an export message: version and a consistent length or count.
fn is_export(datagram: &Datagram) -> bool {
    let payload = &datagram.payload[..];
    let version = payload.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]]));
    match (version, datagram.transport) {
        // A TCP chunk may start or end mid-message: only the header can be checked.
        (Some(10), Transport::Tcp) => {
            ipfix::Header::parse(payload).is_ok_and(|h| usize::from(h.length) >= 16)
        }
        // RFC 7011 section 10.3.3: one message per UDP datagram.
        (Some(10), Transport::Udp) => ipfix::Message::parse(payload)
            .is_ok_and(|m| m.len() == payload.len() && m.sets().all(|s| s.is_ok())),
        (Some(9), _) => netflow9::Packet::parse(payload)
            .is_ok_and(|p| p.sets().next().is_some_and(|s| s.is_ok())),
        (Some(5), _) => netflow5::Packet::parse(payload).is_ok_and(|p| {
            payload.len() == V5_HEADER_LEN + V5_RECORD_LEN * usize::from(p.header().count)
        }),
        _ => false,
    }
}

/// Recognises the text formats and RFC 5655 files from the first bytes.
fn text_kind(head: &[u8]) -> Option<InputKind> {
    // RFC 7011 section 3.1: an IPFIX message starts with version 10.
    if head.starts_with(&[0x00, 0x0a]) && ipfix::Header::parse(head).is_ok() {
        return Some(InputKind::IpfixFile);
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &text[start..];
    if text.starts_with(b"#separator") {
        return Some(InputKind::ZeekTsv);
    }
    if text.starts_with(b"{") {
        return Some(InputKind::ZeekJson);
    }
    let first_line = text.split(|&b| b == b'\n').next()?;
    let first_line = String::from_utf8_lossy(first_line);
    let columns: Vec<&str> = first_line.split(',').map(str::trim).collect();
    let has = |name: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(name));
    (has("StartTime") && has("SrcAddr")).then_some(InputKind::Argus)
}
