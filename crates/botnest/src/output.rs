//! Printing records: a readable table, or one JSON object per record.

use botnest_collect::clock::ClockState;
use botnest_collect::{Counters, RecordMeta, Sink};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::ie::{display_name, lookup};
use botnest_wire::value::{self, Value};
use botnest_wire::{DataType, Record};
use std::fmt::Write as _;
use std::io::Write;

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One aligned line per flow.
    Table,
    /// One JSON object per record (information-element names as keys), then a summary.
    Json,
    /// Nothing per record (counters only).
    None,
}

/// A sink that formats records into text and hands the text to a writer.
pub struct Printer<W: Write> {
    format: Format,
    out: W,
    line: String,
    /// Whether the writer failed (a closed pipe): printing stops, decoding goes on.
    failed: bool,
}

impl<W: Write> std::fmt::Debug for Printer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(format: Format, out: W) -> Self {
        let mut p = Printer {
            format,
            out,
            line: String::new(),
            failed: false,
        };
        if format == Format::Table {
            p.line = table_header();
            p.emit();
        }
        p
    }

    /// A printer that prints no table header (for output assembled from several printers).
    pub fn without_header(format: Format, out: W) -> Self {
        Printer {
            format,
            out,
            line: String::new(),
            failed: false,
        }
    }

    fn emit(&mut self) {
        self.line.push('\n');
        if !self.failed && self.out.write_all(self.line.as_bytes()).is_err() {
            self.failed = true;
        }
        self.line.clear();
    }

    /// Takes what was written so far, for a printer writing into memory.
    pub fn take_output(&mut self) -> W
    where
        W: Default,
    {
        std::mem::take(&mut self.out)
    }

    /// Flushes the writer.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// Prints the closing summary (JSON: one `{"summary": ...}` line; table: a short block),
    /// with the exporters whose clocks disagree with the arrival times (`clocks`).
    pub fn summary(
        &mut self,
        totals: &Counters,
        errors: &std::collections::BTreeMap<&'static str, u64>,
        clocks: &[(botnest_collect::SessionKey, ClockState)],
    ) {
        match self.format {
            Format::Json => {
                let summary = serde_json::json!({ "summary": {
                    "messages": totals.messages,
                    "records": totals.records,
                    "options_records": totals.options_records,
                    "templates": totals.templates,
                    "errors": totals.errors,
                    "lost_records": totals.lost_records,
                    "lost_packets": totals.lost_packets,
                    "clock_corrected": totals.clock_corrected,
                    "errors_by_reason": errors,
                    "clocks": clocks_json(clocks),
                }});
                self.line = summary.to_string();
                self.emit();
            }
            Format::Table | Format::None => {
                let _ = write!(
                    self.line,
                    "-- {} messages, {} records, {} options records, {} templates, {} errors, \
                     {} records lost, {} packets lost",
                    totals.messages,
                    totals.records,
                    totals.options_records,
                    totals.templates,
                    totals.errors,
                    totals.lost_records,
                    totals.lost_packets
                );
                for (reason, n) in errors {
                    let _ = write!(self.line, "\n--   {n} x {reason}");
                }
                if totals.clock_corrected > 0 {
                    let _ = write!(
                        self.line,
                        "\n-- {} records with exporter clocks corrected",
                        totals.clock_corrected
                    );
                }
                for (k, c) in clocks.iter().filter(|(_, c)| clock_is_off(c)) {
                    let _ = write!(
                        self.line,
                        "\n-- exporter {} clock offset {:+.3} s (arrival minus export time), \
                         records shifted by {:+.3} s",
                        k.exporter,
                        c.offset_ms as f64 / 1000.0,
                        c.correction_ms as f64 / 1000.0
                    );
                }
                self.emit();
            }
        }
        self.flush();
    }
}

impl<W: Write> Sink for Printer<W> {
    fn flow(&mut self, meta: &RecordMeta<'_>, flow: &FlowRecord, raw: &Record<'_>) {
        match self.format {
            Format::Json => {
                json_record(&mut self.line, meta, raw, false);
                self.line.pop();
                self.line.push_str(",\"flow\":");
                self.line
                    .push_str(&serde_json::to_string(flow).unwrap_or_default());
                if let Some(name) = meta.input_interface_name {
                    self.line.push_str(",\"input_interface_name\":");
                    self.line
                        .push_str(&serde_json::to_string(name).unwrap_or_default());
                }
                if let Some(name) = meta.output_interface_name {
                    self.line.push_str(",\"output_interface_name\":");
                    self.line
                        .push_str(&serde_json::to_string(name).unwrap_or_default());
                }
                self.line.push('}');
            }
            Format::Table => table_row(&mut self.line, flow),
            Format::None => return,
        }
        self.emit();
    }

    fn options(&mut self, meta: &RecordMeta<'_>, raw: &Record<'_>) {
        match self.format {
            Format::Json => json_record(&mut self.line, meta, raw, true),
            Format::Table => {
                let _ = write!(
                    self.line,
                    "options {} domain {} template {}:",
                    meta.session.exporter, meta.domain, meta.template_id
                );
                for (spec, bytes) in raw.fields() {
                    let name = display_name(spec.element);
                    let _ = write!(self.line, " {}={}", name, typed(spec.element, bytes));
                }
            }
            Format::None => return,
        }
        self.emit();
    }
}

fn typed(element: botnest_wire::ElementId, bytes: &[u8]) -> Value<'_> {
    let ty = lookup(element).map_or(DataType::OctetArray, |d| d.data_type);
    value::decode(ty, bytes)
}

/// Writes one record as a JSON object: metadata, then every field by element name. A repeated
/// element becomes an array of its values, in record order.
fn json_record(out: &mut String, meta: &RecordMeta<'_>, raw: &Record<'_>, options: bool) {
    let _ = write!(
        out,
        "{{\"version\":{},\"exporter\":\"{}\",\"domain\":{},\"template\":{}",
        meta.version, meta.session.exporter, meta.domain, meta.template_id
    );
    if options {
        out.push_str(",\"options\":true");
    }
    let fields: Vec<_> = raw.fields().collect();
    let mut done = vec![false; fields.len()];
    for i in 0..fields.len() {
        if done[i] {
            continue;
        }
        let element = fields[i].0.element;
        let same: Vec<usize> = (i..fields.len())
            .filter(|&j| fields[j].0.element == element)
            .collect();
        out.push(',');
        // Element names are ASCII letters, digits and '/': nothing to escape.
        let _ = write!(out, "\"{}\":", display_name(element));
        if same.len() > 1 {
            out.push('[');
        }
        for (k, &j) in same.iter().enumerate() {
            done[j] = true;
            if k > 0 {
                out.push(',');
            }
            typed(element, fields[j].1).write_json(out);
        }
        if same.len() > 1 {
            out.push(']');
        }
    }
    out.push('}');
}

fn table_header() -> String {
    format!(
        "{:<23} {:>9} {:<5} {:>41} {:<41} {:>9} {:>11} {:<6} {}",
        "start",
        "duration",
        "proto",
        "source",
        "destination",
        "packets",
        "bytes",
        "flags",
        "exporter/domain"
    )
}

fn table_row(out: &mut String, f: &FlowRecord) {
    let duration_ms = f
        .end
        .as_unix_millis()
        .saturating_sub(f.start.as_unix_millis());
    let _ = write!(
        out,
        "{:<23} {:>8.3}s {:<5} {:>41} {:<41} {:>9} {:>11} {:<6} {}/{}",
        rfc3339_millis(f.start),
        duration_ms as f64 / 1000.0,
        protocol_name(f.protocol),
        format!("{}:{}", bracket(f.src), f.src_port),
        format!("{}:{}", bracket(f.dst), f.dst_port),
        f.scaled_packets(),
        f.scaled_octets(),
        tcp_flags(f.tcp_flags),
        f.exporter,
        f.observation_domain
    );
}

fn bracket(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

fn rfc3339_millis(t: Timestamp) -> String {
    let mut s = String::new();
    value::Value::DateTimeNanos(t.as_unix_millis() * 1_000_000).write_json(&mut s);
    s.trim_matches('"').to_owned()
}

fn protocol_name(p: u8) -> std::borrow::Cow<'static, str> {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        58 => "ICMP6".into(),
        132 => "SCTP".into(),
        n => n.to_string().into(),
    }
}

/// TCP flags as letters, `.` for unset: C E U A P R S F.
fn tcp_flags(flags: u16) -> String {
    const LETTERS: [(u16, char); 8] = [
        (0x80, 'C'),
        (0x40, 'E'),
        (0x20, 'U'),
        (0x10, 'A'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x02, 'S'),
        (0x01, 'F'),
    ];
    LETTERS
        .iter()
        .map(|&(bit, c)| if flags & bit != 0 { c } else { '.' })
        .collect()
}

/// Whether an exporter's clock is worth reporting: more than a second off the arrival times,
/// or its records shifted.
fn clock_is_off(c: &ClockState) -> bool {
    c.offset_ms.abs() > 1000 || c.correction_ms != 0
}

/// Exporters whose clocks are off, as JSON: `[{"exporter", "offset_ms", "correction_ms"}]`.
pub fn clocks_json(clocks: &[(botnest_collect::SessionKey, ClockState)]) -> serde_json::Value {
    clocks
        .iter()
        .filter(|(_, c)| clock_is_off(c))
        .map(|(k, c)| {
            serde_json::json!({
                "exporter": k.exporter.to_string(),
                "offset_ms": c.offset_ms,
                "correction_ms": c.correction_ms,
            })
        })
        .collect()
}
