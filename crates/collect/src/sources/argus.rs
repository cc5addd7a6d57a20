//! Argus `.binetflow` CSV files (the CTU-13 format), as biflows.
//!
//! Columns are found by their header names (`StartTime`, `Dur`, `Proto`, `SrcAddr`, `Sport`,
//! `DstAddr`, `Dport`, `State`, `TotPkts`, `TotBytes`, `SrcBytes`, optional `SrcPkts` and
//! `Label`). `TotPkts` and `TotBytes` count both directions: the forward octets are `SrcBytes`
//! and the reverse octets the rest. Without a `SrcPkts` column the packets cannot be split, so
//! all of them are counted as forward packets. `StartTime` is read as UTC (Argus writes the
//! capturing host's local time without a zone). ICMP flows carry the ICMP type in `Sport`,
//! or type and code as one hex word (`0x0303`, port unreachable); `dst_port` gets
//! `type * 256 + code` either way. The `Label` column becomes a [`Label`].

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use botnest_flow::FlowRecord;

use super::lines::LineReader;
use super::tcp_flag::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};
use super::SourceError;
use super::{parse_datetime, parse_seconds, proto, Label, LabelledFlow, LineError, LineStats};

/// Columns the mapping reads.
#[derive(Debug, Clone, Copy, Default)]
struct Columns {
    start: usize,
    dur: Option<usize>,
    proto: usize,
    src: usize,
    sport: Option<usize>,
    dst: usize,
    dport: Option<usize>,
    state: Option<usize>,
    tot_pkts: Option<usize>,
    tot_bytes: Option<usize>,
    src_bytes: Option<usize>,
    src_pkts: Option<usize>,
    label: Option<usize>,
    count: usize,
}

impl Columns {
    fn from_header(header: &str) -> Result<Columns, String> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let need = |name: &str| find(name).ok_or_else(|| format!("no {name} column"));
        Ok(Columns {
            start: need("StartTime")?,
            dur: find("Dur"),
            proto: need("Proto")?,
            src: need("SrcAddr")?,
            sport: find("Sport"),
            dst: need("DstAddr")?,
            dport: find("Dport"),
            state: find("State"),
            tot_pkts: find("TotPkts"),
            tot_bytes: find("TotBytes"),
            src_bytes: find("SrcBytes"),
            src_pkts: find("SrcPkts"),
            label: find("Label"),
            count: names.len(),
        })
    }
}

/// Reads the flows of an Argus CSV file as labelled biflows.
///
/// Lines that cannot be read are counted in [`ArgusReader::stats`] and skipped; flows of
/// protocols that are not IP (ARP and the like) are counted as `not_ip`. Only I/O errors end
/// the iteration.
#[derive(Debug)]
pub struct ArgusReader<R = BufReader<File>> {
    path: PathBuf,
    lines: LineReader<R>,
    columns: Columns,
    stats: LineStats,
    failed: bool,
}

impl ArgusReader<BufReader<File>> {
    /// Opens an Argus CSV file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(BufReader::new(file), path)
    }
}

impl<R: BufRead> ArgusReader<R> {
    /// Reads an Argus CSV file from any buffered source; `name` is used in error messages.
    ///
    /// Fails when the first line is not a header naming at least `StartTime`, `Proto`,
    /// `SrcAddr` and `DstAddr`.
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let path = name.into();
        let mut lines = LineReader::new(reader);
        let not_argus = |reason: String| SourceError::NotArgus {
            path: path.clone(),
            reason,
        };
        let header = match lines.next_line() {
            Err(source) => {
                return Err(SourceError::Read {
                    path: path.clone(),
                    line: 1,
                    source,
                })
            }
            Ok(None) => return Err(not_argus("empty file".into())),
            Ok(Some(Err(_))) => return Err(not_argus("header is not text".into())),
            Ok(Some(Ok(header))) => header.trim_start_matches('\u{feff}').to_string(),
        };
        let columns = Columns::from_header(&header).map_err(not_argus)?;
        let stats = LineStats {
            lines: 1,
            headers: 1,
            ..LineStats::default()
        };
        Ok(ArgusReader {
            path,
            lines,
            columns,
            stats,
            failed: false,
        })
    }

    /// Counters of lines read, records yielded and lines skipped.
    pub fn stats(&self) -> &LineStats {
        &self.stats
    }

    fn read_record(&mut self) -> Result<Option<LabelledFlow>, SourceError> {
        loop {
            let line = match self.lines.next_line() {
                Err(source) => {
                    return Err(SourceError::Read {
                        path: self.path.clone(),
                        line: self.lines.number() + 1,
                        source,
                    })
                }
                Ok(None) => return Ok(None),
                Ok(Some(line)) => line,
            };
            self.stats.lines += 1;
            let number = self.lines.number();
            let parsed = match line {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => flow(&self.columns, &line),
                Err(error) => Err(Some(error)),
            };
            match parsed {
                Ok(record) => {
                    self.stats.records += 1;
                    return Ok(Some(record));
                }
                Err(None) => self.stats.not_ip += 1,
                Err(Some(error)) => self.stats.bad_line(number, error),
            }
        }
    }
}

impl<R: BufRead> Iterator for ArgusReader<R> {
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

/// Maps one CSV line; `Err(None)` for a flow of a protocol that is not IP.
fn flow(columns: &Columns, line: &str) -> Result<LabelledFlow, Option<LineError>> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.len() != columns.count {
        return Err(Some(LineError::FieldCount {
            expected: columns.count,
            found: fields.len(),
        }));
    }
    let at = |i: Option<usize>| {
        i.and_then(|i| fields.get(i).copied())
            .filter(|v| !v.is_empty())
    };
    let protocol = protocol(fields[columns.proto])?;
    let start_text = fields[columns.start];
    let start =
        parse_datetime(start_text).ok_or_else(|| LineError::bad("StartTime", start_text))?;
    let duration = match at(columns.dur) {
        None => 0,
        Some(text) => parse_seconds(text).ok_or_else(|| LineError::bad("Dur", text))?,
    };
    let number = |field: &'static str, i: Option<usize>| -> Result<Option<u64>, LineError> {
        at(i)
            .map(|v| v.parse().map_err(|_| LineError::bad(field, v)))
            .transpose()
    };
    let total_packets = number("TotPkts", columns.tot_pkts)?.unwrap_or(0);
    let total_bytes = number("TotBytes", columns.tot_bytes)?.unwrap_or(0);
    let src_bytes = number("SrcBytes", columns.src_bytes)?.unwrap_or(total_bytes);
    let packets = number("SrcPkts", columns.src_pkts)?.unwrap_or(total_packets);
    let mut flow = FlowRecord {
        start,
        end: start.offset_nanos(i64::try_from(duration).unwrap_or(i64::MAX)),
        src: address("SrcAddr", fields[columns.src])?,
        dst: address("DstAddr", fields[columns.dst])?,
        protocol,
        packets,
        octets: src_bytes,
        reverse_packets: total_packets.saturating_sub(packets),
        reverse_octets: total_bytes.saturating_sub(src_bytes),
        ..FlowRecord::default()
    };
    let sport = at(columns.sport)
        .map(|v| port("Sport", v))
        .transpose()?
        .unwrap_or(0);
    let dport = at(columns.dport)
        .map(|v| port("Dport", v))
        .transpose()?
        .unwrap_or(0);
    if matches!(protocol, proto::ICMP | proto::ICMPV6) {
        // A type alone is below 256; type and code together fill both bytes.
        flow.dst_port = if sport < 256 { sport << 8 } else { sport };
    } else {
        (flow.src_port, flow.dst_port) = (sport, dport);
    }
    if protocol == proto::TCP {
        (flow.tcp_flags, flow.reverse_tcp_flags) = state_flags(at(columns.state).unwrap_or(""));
    }
    let label = at(columns.label).map(|text| Label::new(text, None));
    Ok((flow, label))
}

fn address(field: &'static str, text: &str) -> Result<IpAddr, LineError> {
    text.parse().map_err(|_| LineError::bad(field, text))
}

/// A port in decimal, or in hex with a `0x` prefix.
fn port(field: &'static str, text: &str) -> Result<u16, LineError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| LineError::bad(field, text))
}

/// Argus protocol names; `Err(None)` for those that are not IP protocols.
fn protocol(text: &str) -> Result<u8, Option<LineError>> {
    let number = match text.to_ascii_lowercase().as_str() {
        "tcp" => proto::TCP,
        "udp" | "rtp" | "rtcp" | "udt" => proto::UDP,
        "icmp" => proto::ICMP,
        "ipv6-icmp" | "icmp6" | "icmpv6" => proto::ICMPV6,
        "igmp" => 2,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "pim" => 103,
        "sctp" => 132,
        "arp" | "rarp" | "llc" | "ipx/spx" | "stp" => return Err(None),
        other => other
            .parse()
            .map_err(|_| Some(LineError::bad("Proto", text)))?,
    };
    Ok(number)
}

/// Flags of each direction from an Argus TCP state: `S_RA` lists the flags seen from the
/// source and from the destination; summary states say less.
fn state_flags(state: &str) -> (u16, u16) {
    if let Some((forward, reverse)) = state.split_once('_') {
        return (letters(forward), letters(reverse));
    }
    match state.to_ascii_uppercase().as_str() {
        // Request seen without a reply.
        "REQ" | "INT" => (SYN, 0),
        // Connected: both sides took part in the handshake.
        "CON" | "EST" => (SYN | ACK, SYN | ACK),
        "FIN" | "CLO" => (SYN | ACK | FIN, SYN | ACK | FIN),
        // Ended by a reset; Argus does not say which side sent it, so it is put forward.
        "RST" => (RST, 0),
        _ => (0, 0),
    }
}

fn letters(side: &str) -> u16 {
    side.chars()
        .map(|c| match c {
            'F' => FIN,
            'S' => SYN,
            'R' => RST,
            'P' => PSH,
            'A' => ACK,
            'U' => URG,
            'E' => ECE,
            'C' => CWR,
            _ => 0,
        })
        .fold(0, |acc, f| acc | f)
}
