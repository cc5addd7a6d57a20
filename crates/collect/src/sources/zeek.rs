//! Zeek `conn.log` files, TSV or JSON lines, as biflows.
//!
//! Each conn record is one connection seen from both sides: the originator (`id.orig_h`) is the
//! record's source, `orig_*` counters are the forward direction and `resp_*` the reverse one.
//! Octets are IP-level (`orig_ip_bytes`), as IPFIX counts them; where they are missing the
//! payload counts (`orig_bytes`) stand in. TCP flags per direction are derived from
//! `conn_state` and `history`, so a refused or unanswered connection can be told from one that
//! completed. Timestamps are taken as written: relative ones (starting near 0) stay relative.
//!
//! TSV files are read by their headers: `#separator`, `#unset_field`, `#empty_field` and
//! `#fields`, which gives the column order; a header block may start again mid-file. Labelled
//! dataset files carry `label` and `detailedlabel` columns (some join `tunnel_parents`, `label`
//! and `detailedlabel` into one column separated by spaces); they are returned beside each
//! record as a [`Label`].

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use botnest_flow::{FlowRecord, Timestamp};
use serde_json::{Map, Value};

use super::lines::LineReader;
use super::tcp_flag::{ACK, FIN, RST, SYN};
use super::{parse_datetime, parse_seconds, proto, Label, LabelledFlow, LineError, LineStats};
use super::{InputKind, SourceError};

/// Fields of a conn record that the mapping uses, by position in [`Values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Ts,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    Duration,
    ConnState,
    History,
    OrigPkts,
    OrigIpBytes,
    OrigBytes,
    RespPkts,
    RespIpBytes,
    RespBytes,
    Label,
    DetailedLabel,
}

/// Zeek field names of [`Field`], in the same order.
const NAMES: [&str; 17] = [
    "ts",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "duration",
    "conn_state",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "orig_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "resp_bytes",
    "label",
    "detailedlabel",
];
const FIELDS: [Field; 17] = [
    Field::Ts,
    Field::OrigH,
    Field::OrigP,
    Field::RespH,
    Field::RespP,
    Field::Proto,
    Field::Duration,
    Field::ConnState,
    Field::History,
    Field::OrigPkts,
    Field::OrigIpBytes,
    Field::OrigBytes,
    Field::RespPkts,
    Field::RespIpBytes,
    Field::RespBytes,
    Field::Label,
    Field::DetailedLabel,
];
/// Fields without which a log is not a conn log.
const REQUIRED: [Field; 4] = [Field::Ts, Field::OrigH, Field::RespH, Field::Proto];
/// Fields of which a conn log has at least one (other logs, like dns.log, have the ones above).
const CONN_ONLY: [Field; 5] = [
    Field::ConnState,
    Field::Duration,
    Field::OrigPkts,
    Field::OrigIpBytes,
    Field::OrigBytes,
];

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        NAMES.iter().position(|n| *n == name).map(|i| FIELDS[i])
    }
    fn name(self) -> &'static str {
        NAMES[self as usize]
    }
}

/// The set values of one record's fields; unset and empty fields are `None`.
type Values<'a> = [Option<Cow<'a, str>>; 17];

/// What the TSV headers say.
#[derive(Debug, Clone)]
struct TsvHeader {
    separator: String,
    unset: String,
    empty: String,
    /// Per column, the fields it holds (several for a space-joined column).
    columns: Vec<Vec<Option<Field>>>,
}

impl Default for TsvHeader {
    fn default() -> Self {
        TsvHeader {
            separator: "\t".to_string(),
            unset: "-".to_string(),
            empty: "(empty)".to_string(),
            columns: Vec::new(),
        }
    }
}

#[derive(Debug)]
enum Format {
    Tsv(TsvHeader),
    Json,
}

/// Reads the conn records of a Zeek log as labelled biflows.
///
/// Lines that cannot be read are counted in [`ZeekReader::stats`] and skipped; only I/O
/// errors end the iteration.
#[derive(Debug)]
pub struct ZeekReader<R = BufReader<File>> {
    path: PathBuf,
    lines: LineReader<R>,
    format: Format,
    /// A data line read while recognising the file, handled first.
    pending: Option<(u64, String)>,
    stats: LineStats,
    failed: bool,
}

impl ZeekReader<BufReader<File>> {
    /// Opens a Zeek conn log, TSV or JSON.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(BufReader::new(file), path)
    }
}

impl<R: BufRead> ZeekReader<R> {
    /// Reads a Zeek log from any buffered source; `name` is used in error messages.
    ///
    /// Fails when the content is neither a Zeek TSV log with a `#fields` header nor JSON
    /// lines, or when the fields are not those of a conn log.
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let mut this = ZeekReader {
            path: name.into(),
            lines: LineReader::new(reader),
            format: Format::Json,
            pending: None,
            stats: LineStats::default(),
            failed: false,
        };
        this.recognise()?;
        Ok(this)
    }

    /// TSV or JSON, as recognised.
    pub fn kind(&self) -> InputKind {
        match self.format {
            Format::Tsv(_) => InputKind::ZeekTsv,
            Format::Json => InputKind::ZeekJson,
        }
    }

    /// Counters of lines read, records yielded and lines skipped.
    pub fn stats(&self) -> &LineStats {
        &self.stats
    }

    fn not_zeek(&self, reason: impl Into<String>) -> SourceError {
        SourceError::NotZeek {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn read_error(&self, source: std::io::Error) -> SourceError {
        SourceError::Read {
            path: self.path.clone(),
            line: self.lines.number() + 1,
            source,
        }
    }

    /// Reads the first line to tell TSV from JSON, and the TSV header block up to `#fields`.
    fn recognise(&mut self) -> Result<(), SourceError> {
        let first = loop {
            let next = self.lines.next_line();
            match next.map_err(|e| self.read_error(e))? {
                None => return Err(self.not_zeek("empty file")),
                Some(Ok(line)) if line.trim().is_empty() => self.stats.lines += 1,
                Some(Ok(line)) => break line,
                Some(Err(_)) => return Err(self.not_zeek("first line is not text")),
            }
        };
        self.stats.lines += 1;
        if first.trim_start().starts_with('{') {
            let number = self.lines.number();
            self.check_json_fields(&first)?;
            self.pending = Some((number, first));
            return Ok(());
        }
        let Some(separator) = first.strip_prefix("#separator ") else {
            return Err(self.not_zeek("no #separator header"));
        };
        let mut header = TsvHeader {
            separator: unescape(separator),
            ..TsvHeader::default()
        };
        self.stats.headers += 1;
        self.read_header_block(&mut header)?;
        self.format = Format::Tsv(header);
        Ok(())
    }

    /// Reads header lines until `#fields` has been seen and the next line is data.
    fn read_header_block(&mut self, header: &mut TsvHeader) -> Result<(), SourceError> {
        loop {
            let next = self.lines.next_line();
            let line = match next.map_err(|e| self.read_error(e))? {
                None if header.columns.is_empty() => return Err(self.not_zeek("no #fields header")),
                None => return Ok(()),
                Some(Err(_)) => return Err(self.not_zeek("header is not text")),
                Some(Ok(line)) => line,
            };
            self.stats.lines += 1;
            if !line.starts_with('#') {
                if header.columns.is_empty() {
                    return Err(self.not_zeek("data before #fields header"));
                }
                self.pending = Some((self.lines.number(), line));
                return Ok(());
            }
            self.stats.headers += 1;
            self.header_line(&line, header)?;
        }
    }

    /// Applies one `#name<sep>value...` header line.
    fn header_line(&self, line: &str, header: &mut TsvHeader) -> Result<(), SourceError> {
        if let Some(separator) = line.strip_prefix("#separator ") {
            header.separator = unescape(separator);
            return Ok(());
        }
        let mut parts = line.split(header.separator.as_str());
        let name = parts.next().unwrap_or_default();
        match name {
            "#unset_field" => header.unset = parts.next().unwrap_or("-").to_string(),
            "#empty_field" => header.empty = parts.next().unwrap_or("(empty)").to_string(),
            // Zeek names the log stream; conn_long and similar keep the conn fields.
            "#path" => match parts.next() {
                Some(path) if !path.starts_with("conn") => {
                    return Err(SourceError::NotConnLog {
                        path: self.path.clone(),
                        reason: format!("a {path} log"),
                    })
                }
                _ => {}
            },
            "#fields" => {
                header.columns = parts
                    .map(|column| column.split_whitespace().map(Field::from_name).collect())
                    .collect();
                self.check_fields(header.columns.iter().flatten().flatten().copied())?;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_fields(
        &self,
        present: impl Iterator<Item = Field> + Clone,
    ) -> Result<(), SourceError> {
        let not_conn = |reason: String| SourceError::NotConnLog {
            path: self.path.clone(),
            reason,
        };
        for field in REQUIRED {
            if !present.clone().any(|f| f == field) {
                return Err(not_conn(format!("no {} field", field.name())));
            }
        }
        if !present.clone().any(|f| CONN_ONLY.contains(&f)) {
            return Err(not_conn("no connection state or counters".into()));
        }
        Ok(())
    }

    fn check_json_fields(&self, line: &str) -> Result<(), SourceError> {
        let object: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| self.not_zeek(format!("first line is not a json object: {e}")))?;
        self.check_fields(
            object
                .keys()
                .filter_map(|k| Field::from_name(k))
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    fn next_raw(&mut self) -> Result<Option<Result<String, LineError>>, SourceError> {
        let next = self.lines.next_line();
        next.map_err(|e| self.read_error(e))
    }

    /// Reads lines until a record, the end, or an I/O error.
    fn read_record(&mut self) -> Result<Option<LabelledFlow>, SourceError> {
        loop {
            let (number, line) = match self.pending.take() {
                Some(pending) => pending,
                None => match self.next_raw()? {
                    None => return Ok(None),
                    Some(Err(error)) => {
                        self.stats.lines += 1;
                        self.stats.bad_line(self.lines.number(), error);
                        continue;
                    }
                    Some(Ok(line)) => {
                        self.stats.lines += 1;
                        (self.lines.number(), line)
                    }
                },
            };
            if let Some(record) = self.line(number, &line)? {
                return Ok(Some(record));
            }
        }
    }

    /// Handles one line: a record, a header, or something skipped.
    fn line(&mut self, number: u64, line: &str) -> Result<Option<LabelledFlow>, SourceError> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let parsed = match &mut self.format {
            Format::Json => json_values(line).and_then(|v| conn_record(&v)),
            Format::Tsv(header) if line.starts_with('#') => {
                let mut header = std::mem::take(header);
                self.stats.headers += 1;
                let applied = self.header_line(line, &mut header);
                self.format = Format::Tsv(header);
                applied?;
                return Ok(None);
            }
            Format::Tsv(header) => tsv_values(header, line).and_then(|v| conn_record(&v)),
        };
        match parsed {
            Ok(record) => {
                self.stats.records += 1;
                Ok(Some(record))
            }
            Err(error) => {
                self.stats.bad_line(number, error);
                Ok(None)
            }
        }
    }
}

impl<R: BufRead> Iterator for ZeekReader<R> {
    type Item = Result<LabelledFlow, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self.read_record();
        self.failed = result.is_err();
        result.transpose()
    }
}

/// Decodes `\xHH` escapes of the `#separator` header.
fn unescape(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (
            bytes[i],
            bytes.get(i + 1),
            hex.and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'\\', Some(b'x'), Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a TSV line by the header's columns.
fn tsv_values<'a>(header: &TsvHeader, line: &'a str) -> Result<Values<'a>, LineError> {
    let mut values: Values<'a> = Default::default();
    let found = line.split(header.separator.as_str()).count();
    if found != header.columns.len() {
        return Err(LineError::FieldCount {
            expected: header.columns.len(),
            found,
        });
    }
    for (text, fields) in line.split(header.separator.as_str()).zip(&header.columns) {
        let parts = if fields.len() > 1 {
            split_joined(text, fields.len())
        } else {
            vec![text]
        };
        for (part, field) in parts.into_iter().zip(fields) {
            let set = part != header.unset && part != header.empty && !part.is_empty();
            if let (Some(field), true) = (field, set) {
                values[*field as usize] = Some(Cow::Borrowed(part));
            }
        }
    }
    Ok(values)
}

/// Splits a space-joined column into at most `n` values; the last keeps any inner spaces.
fn split_joined(text: &str, n: usize) -> Vec<&str> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = text.trim();
    while parts.len() + 1 < n && !rest.is_empty() {
        let (part, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        parts.push(part);
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}

/// Reads the fields of a JSON line; numbers are kept as their text.
fn json_values(line: &str) -> Result<Values<'static>, LineError> {
    let object: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let mut values: Values<'static> = Default::default();
    for (key, value) in object {
        let Some(field) = Field::from_name(&key) else {
            continue;
        };
        values[field as usize] = match value {
            Value::String(s) if s.is_empty() || s == "-" => None,
            Value::String(s) => Some(Cow::Owned(s)),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            _ => None,
        };
    }
    Ok(values)
}

fn get<'v>(values: &'v Values<'_>, field: Field) -> Option<&'v str> {
    values[field as usize].as_deref()
}

fn required<'v>(values: &'v Values<'_>, field: Field) -> Result<&'v str, LineError> {
    get(values, field).ok_or(LineError::Missing(field.name()))
}

/// Reads an optional unsigned field; unset means 0.
fn count(values: &Values<'_>, field: Field) -> Result<Option<u64>, LineError> {
    get(values, field)
        .map(|v| v.parse().map_err(|_| LineError::bad(field.name(), v)))
        .transpose()
}

fn address(values: &Values<'_>, field: Field) -> Result<IpAddr, LineError> {
    let text = required(values, field)?;
    text.parse().map_err(|_| LineError::bad(field.name(), text))
}

fn port(values: &Values<'_>, field: Field) -> Result<u16, LineError> {
    Ok(match get(values, field) {
        None => 0,
        Some(text) => text
            .parse()
            .map_err(|_| LineError::bad(field.name(), text))?,
    })
}

/// `ts` as epoch seconds (possibly relative) or an ISO 8601 UTC string.
fn start_time(values: &Values<'_>) -> Result<Timestamp, LineError> {
    let text = required(values, Field::Ts)?;
    parse_seconds(text)
        .map(Timestamp)
        .or_else(|| parse_datetime(text))
        .ok_or_else(|| LineError::bad("ts", text))
}

/// Maps one conn record to a biflow and its label.
fn conn_record(values: &Values<'_>) -> Result<LabelledFlow, LineError> {
    let start = start_time(values)?;
    let duration = match get(values, Field::Duration) {
        None => 0,
        Some(text) => parse_seconds(text).ok_or_else(|| LineError::bad("duration", text))?,
    };
    let src = address(values, Field::OrigH)?;
    let dst = address(values, Field::RespH)?;
    let protocol = protocol(required(values, Field::Proto)?, src)?;
    let (orig_p, resp_p) = (port(values, Field::OrigP)?, port(values, Field::RespP)?);
    let mut flow = FlowRecord {
        start,
        end: start.offset_nanos(i64::try_from(duration).unwrap_or(i64::MAX)),
        src,
        dst,
        protocol,
        packets: count(values, Field::OrigPkts)?.unwrap_or(0),
        octets: octets(values, Field::OrigIpBytes, Field::OrigBytes)?,
        reverse_packets: count(values, Field::RespPkts)?.unwrap_or(0),
        reverse_octets: octets(values, Field::RespIpBytes, Field::RespBytes)?,
        ..FlowRecord::default()
    };
    if matches!(protocol, proto::ICMP | proto::ICMPV6) {
        // Zeek writes the ICMP type as the originator port and the code as the responder port.
        flow.dst_port = (orig_p & 0xff) << 8 | (resp_p & 0xff);
    } else {
        (flow.src_port, flow.dst_port) = (orig_p, resp_p);
    }
    if protocol == proto::TCP {
        let (forward, reverse) =
            tcp_flags(get(values, Field::ConnState), get(values, Field::History));
        (flow.tcp_flags, flow.reverse_tcp_flags) = (forward, reverse);
    }
    Ok((flow, label(values)))
}

/// IP-level octets, or payload octets where the log has no IP-level count.
fn octets(values: &Values<'_>, ip: Field, payload: Field) -> Result<u64, LineError> {
    match count(values, ip)? {
        Some(n) => Ok(n),
        None => Ok(count(values, payload)?.unwrap_or(0)),
    }
}

/// Zeek's transport names; "icmp" covers ICMPv6 too, told apart by the address family.
fn protocol(text: &str, src: IpAddr) -> Result<u8, LineError> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(proto::TCP),
        "udp" => Ok(proto::UDP),
        "icmp" if src.is_ipv6() => Ok(proto::ICMPV6),
        "icmp" | "icmp4" => Ok(proto::ICMP),
        "icmp6" | "icmpv6" => Ok(proto::ICMPV6),
        other => other.parse().map_err(|_| LineError::bad("proto", text)),
    }
}

fn label(values: &Values<'_>) -> Option<Label> {
    let text = get(values, Field::Label)?;
    let detail = get(values, Field::DetailedLabel).map(str::to_string);
    Some(Label::new(text, detail))
}

/// TCP flags of each direction implied by Zeek's `conn_state` and `history`.
pub fn tcp_flags(conn_state: Option<&str>, history: Option<&str>) -> (u16, u16) {
    let (mut forward, mut reverse) = state_flags(conn_state.unwrap_or(""));
    for letter in history.unwrap_or("").chars() {
        let flags = history_flags(letter.to_ascii_uppercase());
        if letter.is_ascii_uppercase() {
            forward |= flags;
        } else {
            reverse |= flags;
        }
    }
    (forward, reverse)
}

/// Flags implied by a connection state (Zeek conn.log `conn_state` documentation).
fn state_flags(state: &str) -> (u16, u16) {
    const HANDSHAKE: u16 = SYN | ACK;
    match state {
        // Attempt seen, no reply.
        "S0" => (SYN, 0),
        // Established, not terminated.
        "S1" => (HANDSHAKE, HANDSHAKE),
        // Established and closed normally.
        "SF" => (HANDSHAKE | FIN, HANDSHAKE | FIN),
        // Attempt rejected: the responder answered the SYN with a reset.
        "REJ" => (SYN, RST | ACK),
        // Established; only the originator closed.
        "S2" => (HANDSHAKE | FIN, HANDSHAKE),
        // Established; only the responder closed.
        "S3" => (HANDSHAKE, HANDSHAKE | FIN),
        // Established, the originator aborted.
        "RSTO" => (HANDSHAKE | RST, HANDSHAKE),
        // The responder sent a reset.
        "RSTR" => (0, RST),
        // The originator sent a SYN then a reset, no SYN-ACK seen.
        "RSTOS0" => (SYN | RST, 0),
        // The responder sent a SYN-ACK then a reset, no SYN seen.
        "RSTRH" => (0, HANDSHAKE | RST),
        // The originator sent a SYN then a FIN, no SYN-ACK seen.
        "SH" => (SYN | FIN, 0),
        // The responder sent a SYN-ACK then a FIN, no SYN seen.
        "SHR" => (0, HANDSHAKE | FIN),
        _ => (0, 0),
    }
}

/// Flags implied by one (upper-cased) `history` letter.
fn history_flags(letter: char) -> u16 {
    match letter {
        'S' => SYN,
        'H' => SYN | ACK,
        // Pure ACKs, payload and retransmitted payload all travel with ACK set.
        'A' | 'D' | 'T' => ACK,
        'F' => FIN,
        'R' => RST,
        // A packet with both SYN and RST.
        'I' => SYN | RST,
        _ => 0,
    }
}
