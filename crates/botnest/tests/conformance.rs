//! Conformance against the shared capture corpus (`../shared/fixtures` beside the checkout).
//!
//! Two checks run over every capture that `INDEX.json` lists:
//!
//! - `summary_counts_match_the_index`: `botnest decode --format json FILE` must not crash and its
//!   summary line must agree with the counts an independent template-aware walker recorded in the
//!   index (messages, data records, options data records, template records).
//! - `core_fields_match_tshark`: every data and options record we print must match, as a multiset
//!   per capture, what tshark decodes from the same capture for a core set of fields (addresses,
//!   ports, protocol, counters, TCP flags, flow start and end times).
//!
//! Captures that are known to be read differently by the index or by tshark are listed in
//! [`INDEX_DEVIATIONS`] and [`TSHARK_DEVIATIONS`], each with its reason; nothing else is loosened.
//! The index's own "problems" (a zero-filled packet tail that reads as a set of length 0 in
//! `nf9_paloalto_81.pcap`, a truncated sFlow datagram) need no entry: the counts agree as they are.
//!
//! The corpus is found at `$BOTNEST_SHARED/fixtures` or else `../shared/fixtures` beside the
//! checkout; without it both checks print a note and pass. Without tshark the field check fails
//! under CI (`CI=true`) and is skipped elsewhere. `BOTNEST_SKIP_CONFORMANCE=1` skips both (the
//! quick mode of `scripts/test.sh`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Captures whose summary is expected to differ from the index, with the counts we expect instead.
const INDEX_DEVIATIONS: &[IndexDeviation] = &[
    IndexDeviation {
        file: "akvorado/data+templates.pcap",
        records: Some(21),
        reason: HELD_DATA,
        ..INDEX_AS_IS
    },
    IndexDeviation {
        file: "akvorado/paired/cisco-nf9-mixed.pcap",
        records: Some(21),
        reason: HELD_DATA,
        ..INDEX_AS_IS
    },
];

/// Captures that tshark reads differently, and how the comparison allows for it. Nothing is
/// allowed for a capture that is not listed.
const TSHARK_DEVIATIONS: &[TsharkDeviation] = &[
    TsharkDeviation {
        file: "akvorado/data+templates.pcap",
        two_pass: true,
        reason: HELD_DATA,
        ..TSHARK_AS_IS
    },
    TsharkDeviation {
        file: "akvorado/paired/cisco-nf9-mixed.pcap",
        two_pass: true,
        reason: HELD_DATA,
        ..TSHARK_AS_IS
    },
    TsharkDeviation {
        file: "akvorado/paired/ipfixprobe.pcap",
        time_unit_ns: 1_000,
        reason: MICROSECONDS,
        ..TSHARK_AS_IS
    },
    TsharkDeviation {
        file: "gen/softflowd/softflowd-netns-ipfix-micro-ether.pcap",
        time_unit_ns: 1_000,
        reason: MICROSECONDS,
        ..TSHARK_AS_IS
    },
    TsharkDeviation {
        file: "logstash-codec-netflow/ipfix_barracuda.pcap",
        skip_frames: &[4],
        ours_unmatched: 2,
        reason: "frame 3 redefines template 256 (28 fields, some variable-length) without \
                 withdrawing it, which RFC 7011 section 8.1 allows over UDP; tshark keeps decoding \
                 frame 4 with the 16-field definition of frame 1 and shows 3 garbled records, \
                 where the new definition gives 2",
        ..TSHARK_AS_IS
    },
];

const HELD_DATA: &str = "a v9 message from 102.102.144.1 carries a data set (template 257, \
    11 records) before the template set that defines it; botnest holds data whose template has \
    not arrived and decodes it when the template comes, while the index (and tshark in one pass) \
    counts only records whose template was already known; in two passes tshark knows every \
    template from the start and decodes those records too";

const MICROSECONDS: &str = "dateTimeMicroseconds carries microseconds in an NTP fraction \
    (RFC 7011 section 6.1.9); tshark turns the fraction into nanoseconds by truncation and shows \
    .526084999 where the exporter meant .526084, so instants compare to the microsecond";

/// An index entry taken as it is.
const INDEX_AS_IS: IndexDeviation = IndexDeviation {
    file: "",
    messages: None,
    records: None,
    options_records: None,
    templates: None,
    reason: "",
};

/// tshark's reading taken as it is.
const TSHARK_AS_IS: TsharkDeviation = TsharkDeviation {
    file: "",
    two_pass: false,
    skip_frames: &[],
    ours_unmatched: 0,
    time_unit_ns: 1,
    reason: "",
};

/// Core fields compared with tshark: tshark field name, the elements it shows (the first names
/// the comparison key; tshark shows several elements under one field name), and how its value
/// is read. Reverse (RFC 5103) values, which tshark marks "(Reverse Type ...)" in their display
/// name, compare with the `reverse...` element of the same name.
const FIELD_MAP: &[(&str, &[&str], Kind)] = &[
    ("cflow.srcaddr", &["sourceIPv4Address"], Kind::Address),
    ("cflow.dstaddr", &["destinationIPv4Address"], Kind::Address),
    ("cflow.srcaddrv6", &["sourceIPv6Address"], Kind::Address),
    (
        "cflow.dstaddrv6",
        &["destinationIPv6Address"],
        Kind::Address,
    ),
    // tshark shows elements 7, 180 and 182 (and 11, 181, 183) as one port field.
    (
        "cflow.srcport",
        &["sourceTransportPort", "udpSourcePort", "tcpSourcePort"],
        Kind::Number,
    ),
    (
        "cflow.dstport",
        &[
            "destinationTransportPort",
            "udpDestinationPort",
            "tcpDestinationPort",
        ],
        Kind::Number,
    ),
    ("cflow.protocol", &["protocolIdentifier"], Kind::Number),
    ("cflow.octets", &["octetDeltaCount"], Kind::Number),
    ("cflow.packets", &["packetDeltaCount"], Kind::Number),
    ("cflow.tcpflags", &["tcpControlBits"], Kind::Number),
    // Times relative to the exporter's boot (NetFlow v5/v9 First/Last, IPFIX 22/21).
    ("cflow.timestart", &["flowStartSysUpTime"], Kind::Uptime),
    ("cflow.timeend", &["flowEndSysUpTime"], Kind::Uptime),
    // Absolute times: tshark shows any of flowStart{Seconds,Milliseconds,Microseconds,
    // Nanoseconds} and flowStartDeltaMicroseconds (made absolute with the export time) this way.
    ("cflow.abstimestart", &[FLOW_START], Kind::Instant),
    ("cflow.abstimeend", &[FLOW_END], Kind::Instant),
];

/// Comparison key of the absolute flow start time, whichever element carried it.
const FLOW_START: &str = "flowStart (absolute)";
/// Comparison key of the absolute flow end time, whichever element carried it.
const FLOW_END: &str = "flowEnd (absolute)";
/// Our elements that carry an absolute start time as a date-time string.
const START_INSTANTS: &[&str] = &[
    "flowStartSeconds",
    "flowStartMilliseconds",
    "flowStartMicroseconds",
    "flowStartNanoseconds",
];
/// Our elements that carry an absolute end time as a date-time string.
const END_INSTANTS: &[&str] = &[
    "flowEndSeconds",
    "flowEndMilliseconds",
    "flowEndMicroseconds",
    "flowEndNanoseconds",
];

/// At most this many differing records are described per capture.
const MAX_REPORTED: usize = 8;

/// An expected difference between our summary and the index for one capture.
#[derive(Debug)]
struct IndexDeviation {
    file: &'static str,
    messages: Option<u64>,
    records: Option<u64>,
    options_records: Option<u64>,
    templates: Option<u64>,
    reason: &'static str,
}

/// An expected difference between our records and tshark's for one capture.
#[derive(Debug)]
struct TsharkDeviation {
    file: &'static str,
    /// Run tshark in two passes (`-2`), so that it knows templates that come later.
    two_pass: bool,
    /// tshark's records from these frames are left out...
    skip_frames: &'static [u32],
    /// ...and exactly this many of ours are then expected to have no partner.
    ours_unmatched: usize,
    /// Instants compare truncated to this many nanoseconds.
    time_unit_ns: u64,
    reason: &'static str,
}

/// How a tshark value is turned into the comparison form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// IPv4 or IPv6 address, compared in canonical text form.
    Address,
    /// Unsigned integer, decimal or `0x` hexadecimal in tshark.
    Number,
    /// Time since the exporter booted: seconds in tshark, milliseconds in ours.
    Uptime,
    /// UTC date and time, compared in nanoseconds since the epoch.
    Instant,
}

/// One capture listed in the index.
#[derive(Debug)]
struct Capture {
    file: String,
    versions: BTreeMap<String, u64>,
    template_records: u64,
    options_template_records: u64,
    data_records: u64,
    options_data_records: u64,
}

/// A record reduced to the compared fields: field name to its values (sorted, so repeated
/// elements compare without regard to order).
type Fields = BTreeMap<String, Vec<String>>;

/// A record and where it came from, for messages.
#[derive(Debug)]
struct Found {
    origin: String,
    fields: Fields,
}

/// What `botnest decode` printed for one capture.
#[derive(Debug)]
struct Decoded {
    records: Vec<Value>,
    summary: Value,
}

#[test]
fn summary_counts_match_the_index() {
    let Some((dir, captures)) = corpus() else {
        return;
    };
    let results = for_each_capture(&captures, |c| check_summary(&dir, c));
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    report(
        "summary counts against INDEX.json",
        captures.len(),
        &failures,
    );
}

#[test]
fn core_fields_match_tshark() {
    let Some((dir, captures)) = corpus() else {
        return;
    };
    if !tshark_present() {
        assert!(
            !in_ci(),
            "conformance: tshark not found; CI must have it (scripts/test.sh installs it)"
        );
        println!("conformance: tshark not found, field comparison skipped");
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for result in for_each_capture(&captures, |c| check_fields(&dir, c)) {
        match result {
            Ok(n) => compared += n,
            Err(e) => failures.push(e),
        }
    }
    println!("conformance: {compared} records compared with tshark");
    report("core fields against tshark", captures.len(), &failures);
}

/// Runs `check` on every capture, a few at a time (most of the time goes to starting tshark and
/// botnest), and returns the results in index order with failures prefixed by the file name.
fn for_each_capture<T: Send>(
    captures: &[Capture],
    check: impl Fn(&Capture) -> Result<T, String> + Sync,
) -> Vec<Result<T, String>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(capture) = captures.get(i) else {
                    break;
                };
                let result = check(capture).map_err(|e| format!("{}: {e}", capture.file));
                results
                    .lock()
                    .expect("no worker panics holding the lock")
                    .push((i, result));
            });
        }
    });
    let mut results = results.into_inner().expect("no worker panicked");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Panics with every failure, one capture per paragraph.
fn report(what: &str, total: usize, failures: &[String]) {
    if failures.is_empty() {
        println!("conformance: {what}: {total} captures ok");
        return;
    }
    panic!(
        "conformance: {what}: {} of {total} captures differ\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The fixture folder and its index, or `None` (with a note) when the suite must not run.
fn corpus() -> Option<(PathBuf, Vec<Capture>)> {
    if std::env::var("BOTNEST_SKIP_CONFORMANCE").is_ok_and(|v| v == "1") {
        println!("conformance: BOTNEST_SKIP_CONFORMANCE=1, skipped");
        return None;
    }
    let dir = match std::env::var_os("BOTNEST_SHARED") {
        Some(shared) => PathBuf::from(shared).join("fixtures"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    };
    let index = dir.join("INDEX.json");
    if !index.is_file() {
        println!("conformance: ../shared/fixtures not found, skipped");
        return None;
    }
    let text = std::fs::read_to_string(&index).expect("INDEX.json is readable");
    let entries: Vec<Value> = serde_json::from_str(&text).expect("INDEX.json is a JSON array");
    let captures = entries.iter().map(capture).collect();
    Some((dir, captures))
}

fn capture(entry: &Value) -> Capture {
    let count = |key: &str| {
        entry[key]
            .as_u64()
            .unwrap_or_else(|| panic!("INDEX.json: {key}"))
    };
    let versions = entry["versions"].as_object().expect("INDEX.json: versions");
    Capture {
        file: entry["file"].as_str().expect("INDEX.json: file").to_owned(),
        versions: versions
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect(),
        template_records: count("template_records"),
        options_template_records: count("options_template_records"),
        data_records: count("data_records"),
        options_data_records: count("options_data_records"),
    }
}

/// NetFlow v5, v9 and IPFIX messages in the capture: the index counts messages per version, and
/// sFlow is not ours to decode.
fn flow_messages(capture: &Capture) -> u64 {
    ["v5", "v9", "ipfix"]
        .iter()
        .filter_map(|v| capture.versions.get(*v))
        .sum()
}

// ---- botnest decode -------------------------------------------------------------------------

fn decode(path: &Path) -> Result<Decoded, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_botnest"))
        .args(["decode", "--format", "json"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run botnest: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("panicked") || out.status.code().is_none_or(|c| c == 101) {
        return Err(format!(
            "botnest decode crashed ({}):\n{}",
            out.status,
            tail(&stderr)
        ));
    }
    let stdout = String::from_utf8(out.stdout).map_err(|_| "output is not UTF-8".to_owned())?;
    let mut records = Vec::new();
    let mut summary = None;
    for (n, line) in stdout.lines().enumerate() {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("output line {} is not JSON ({e}): {line}", n + 1))?;
        if summary.is_some() {
            return Err(format!("output line {} follows the summary: {line}", n + 1));
        }
        match value.get("summary") {
            Some(s) => summary = Some(s.clone()),
            None => records.push(value),
        }
    }
    let summary = summary.ok_or_else(|| {
        format!(
            "no summary line (exit {}); stderr:\n{}",
            out.status,
            tail(&stderr)
        )
    })?;
    Ok(Decoded { records, summary })
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

// ---- summary against the index --------------------------------------------------------------

fn check_summary(dir: &Path, capture: &Capture) -> Result<(), String> {
    let decoded = decode(&dir.join(&capture.file))?;
    let deviation = INDEX_DEVIATIONS.iter().find(|d| d.file == capture.file);
    let messages = flow_messages(capture);
    let expected = [
        ("messages", messages, deviation.and_then(|d| d.messages)),
        (
            "records",
            capture.data_records,
            deviation.and_then(|d| d.records),
        ),
        (
            "options_records",
            capture.options_data_records,
            deviation.and_then(|d| d.options_records),
        ),
        (
            "templates",
            capture.template_records + capture.options_template_records,
            deviation.and_then(|d| d.templates),
        ),
    ];
    let mut wrong = String::new();
    for (key, index, instead) in expected {
        let want = instead.unwrap_or(index);
        let got = decoded.summary[key].as_u64();
        if got != Some(want) {
            let got = got.map_or("nothing".to_owned(), |n| n.to_string());
            let _ = write!(wrong, "\n  summary.{key}: ours {got}, expected {want}");
            if instead.is_some() {
                let _ = write!(wrong, " (index {index}, deviation listed)");
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        let why = deviation.map_or(String::new(), |d| {
            format!("\n  listed deviation: {}", d.reason)
        });
        Err(format!("summary differs from INDEX.json:{wrong}{why}"))
    }
}

// ---- field values against tshark ------------------------------------------------------------

fn check_fields(dir: &Path, capture: &Capture) -> Result<usize, String> {
    let path = dir.join(&capture.file);
    let deviation = TSHARK_DEVIATIONS.iter().find(|d| d.file == capture.file);
    let deviation = deviation.unwrap_or(&TSHARK_AS_IS);
    let decoded = decode(&path)?;
    if flow_messages(capture) == 0 {
        // sFlow only: nothing for tshark's flow-export dissector to find, and nothing for us.
        return match decoded.records.first() {
            None => Ok(0),
            Some(r) => Err(format!(
                "no NetFlow or IPFIX in the capture, yet we print {r}"
            )),
        };
    }
    let mut ours: Vec<Found> = decoded
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| our_record(i, r))
        .collect::<Result<_, _>>()?;
    let mut theirs: Vec<Found> = tshark_records(&path, deviation.two_pass)?
        .into_iter()
        .filter(|(frame, _)| !deviation.skip_frames.contains(frame))
        .map(|(_, found)| found)
        .collect();
    for found in ours.iter_mut().chain(theirs.iter_mut()) {
        coarsen_instants(&mut found.fields, deviation.time_unit_ns);
    }
    let compared = ours.len();
    let (only_ours, only_theirs) = unmatched(ours, theirs);
    if only_theirs.is_empty() && only_ours.len() == deviation.ours_unmatched {
        return Ok(compared);
    }
    let mut msg = format!(
        "{} of our records have no equal in tshark's, {} of tshark's none in ours",
        only_ours.len(),
        only_theirs.len()
    );
    if !deviation.file.is_empty() {
        let _ = write!(
            msg,
            " (listed deviation: {} of ours expected unmatched, tshark frames {:?} left out, \
             two passes {}, instants to {} ns: {})",
            deviation.ours_unmatched,
            deviation.skip_frames,
            deviation.two_pass,
            deviation.time_unit_ns,
            deviation.reason
        );
    }
    describe(&mut msg, &only_ours, &only_theirs);
    Err(msg)
}

/// Truncates the absolute times of a record to a multiple of `unit` nanoseconds.
fn coarsen_instants(fields: &mut Fields, unit: u64) {
    if unit <= 1 {
        return;
    }
    for key in [FLOW_START, FLOW_END] {
        let Some(values) = fields.get_mut(key) else {
            continue;
        };
        for value in values.iter_mut() {
            if let Ok(ns) = value.parse::<i128>() {
                *value = (ns - ns.rem_euclid(i128::from(unit))).to_string();
            }
        }
        values.sort();
    }
}

/// Removes the records the two sides share (as multisets) and returns what is left of each.
fn unmatched(ours: Vec<Found>, theirs: Vec<Found>) -> (Vec<Found>, Vec<Found>) {
    let mut pool: BTreeMap<Fields, Vec<Found>> = BTreeMap::new();
    for found in theirs {
        pool.entry(found.fields.clone()).or_default().push(found);
    }
    let mut only_ours = Vec::new();
    for found in ours {
        match pool.get_mut(&found.fields).and_then(Vec::pop) {
            Some(_) => {}
            None => only_ours.push(found),
        }
    }
    let only_theirs = pool.into_values().flatten().collect();
    (only_ours, only_theirs)
}

/// Describes unmatched records, pairing each of ours with tshark's most similar one.
fn describe(msg: &mut String, only_ours: &[Found], only_theirs: &[Found]) {
    let mut left: Vec<&Found> = only_theirs.iter().collect();
    let shown_ours = only_ours.len().min(MAX_REPORTED);
    for found in &only_ours[..shown_ours] {
        let best = (0..left.len()).max_by_key(|&i| similarity(&found.fields, &left[i].fields));
        let Some(i) = best else {
            let _ = write!(msg, "\n  ours {}: {:?}", found.origin, found.fields);
            continue;
        };
        let theirs = left.remove(i);
        let _ = write!(
            msg,
            "\n  ours {} vs tshark {}:",
            found.origin, theirs.origin
        );
        field_differences(msg, &found.fields, &theirs.fields);
    }
    let shown_left = left.len().min(MAX_REPORTED.saturating_sub(shown_ours));
    for theirs in &left[..shown_left] {
        let _ = write!(msg, "\n  tshark {}: {:?}", theirs.origin, theirs.fields);
    }
    let hidden_ours = only_ours.len() - shown_ours;
    let hidden_theirs = left.len() - shown_left;
    if hidden_ours + hidden_theirs > 0 {
        let _ = write!(
            msg,
            "\n  ({hidden_ours} more of ours and {hidden_theirs} more of tshark's not shown)"
        );
    }
}

fn similarity(a: &Fields, b: &Fields) -> usize {
    a.iter().filter(|(k, v)| b.get(*k) == Some(v)).count()
}

fn field_differences(msg: &mut String, ours: &Fields, theirs: &Fields) {
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for key in keys {
        let (a, b) = (ours.get(key), theirs.get(key));
        if a != b {
            let show = |v: Option<&Vec<String>>| v.map_or("(absent)".to_owned(), |v| v.join(","));
            let _ = write!(msg, "\n    {key}: ours {} vs tshark {}", show(a), show(b));
        }
    }
}

// ---- our records ----------------------------------------------------------------------------

/// Reduces one of our JSON records to the compared fields.
fn our_record(index: usize, record: &Value) -> Result<Found, String> {
    let origin = format!(
        "record {} (exporter {}, domain {}, template {})",
        index + 1,
        record["exporter"],
        record["domain"],
        record["template"]
    );
    let mut fields = Fields::new();
    for &(_, names, kind) in FIELD_MAP {
        for reverse in [false, true] {
            let key = if reverse {
                reverse_name(names[0])
            } else {
                names[0].to_owned()
            };
            let values = match (key.as_str(), reverse) {
                (FLOW_START, false) => our_instants(
                    record,
                    START_INSTANTS,
                    "flowStartDeltaMicroseconds",
                    "start",
                ),
                (FLOW_END, false) => {
                    our_instants(record, END_INSTANTS, "flowEndDeltaMicroseconds", "end")
                }
                _ => names.iter().try_fold(Vec::new(), |mut all, name| {
                    let name = if reverse {
                        reverse_name(name)
                    } else {
                        (*name).to_owned()
                    };
                    all.extend(our_values(record, &name, kind)?);
                    Ok(all)
                }),
            }
            .map_err(|e: String| format!("{origin}: {key}: {e}"))?;
            if !values.is_empty() {
                fields.insert(key, sorted(values));
            }
        }
    }
    Ok(Found { origin, fields })
}

/// Values of one element of our record (several when the element repeats).
fn our_values(record: &Value, name: &str, kind: Kind) -> Result<Vec<String>, String> {
    let items: Vec<&Value> = match record.get(name) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(value) => vec![value],
    };
    items
        .into_iter()
        .map(|v| {
            match kind {
                Kind::Address => v.as_str().and_then(canonical_address),
                // System uptime in milliseconds, compared in nanoseconds like tshark's seconds.
                Kind::Uptime => v
                    .as_u64()
                    .map(|ms| (u128::from(ms) * 1_000_000).to_string()),
                Kind::Number => v.as_u64().map(|n| n.to_string()),
                Kind::Instant => v.as_str().and_then(rfc3339_nanos).map(|ns| ns.to_string()),
            }
            .ok_or_else(|| format!("unexpected value {v}"))
        })
        .collect()
}

/// Absolute start or end times of our record: every date-time element that carries one, and the
/// normalised time when the record carries a delta relative to the export time instead.
fn our_instants(
    record: &Value,
    names: &[&str],
    delta: &str,
    flow_key: &str,
) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    for name in names {
        values.extend(our_values(record, name, Kind::Instant)?);
    }
    if record.get(delta).is_some() {
        let ns = record["flow"][flow_key]
            .as_u64()
            .ok_or_else(|| format!("{delta} present but flow.{flow_key} is not a number"))?;
        values.push(ns.to_string());
    }
    Ok(values)
}

/// `octetDeltaCount` -> `reverseOctetDeltaCount` (RFC 5103 section 6.1 naming).
fn reverse_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_default();
    format!("reverse{first}{}", chars.as_str())
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

// ---- tshark's records -----------------------------------------------------------------------

fn tshark_present() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tshark(args: &[String]) -> Result<String, String> {
    let out = Command::new("tshark")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .map_err(|e| format!("cannot run tshark: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "tshark {args:?} failed ({}):\n{}",
            out.status,
            tail(&stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| "tshark output is not UTF-8".to_owned())
}

/// UDP destination ports of the capture whose payload starts like a NetFlow v5, v9 or IPFIX
/// message (version 5, 9 or 10), for tshark's decode-as: several captures use ports that tshark
/// does not associate with flow export.
fn export_ports(path: &Path) -> Result<Vec<String>, String> {
    let args = [
        "-r",
        &path.to_string_lossy(),
        "-Y",
        "udp && !icmp && !icmpv6",
        "-T",
        "fields",
        "-e",
        "udp.dstport",
        "-e",
        "udp.payload",
    ]
    .map(str::to_owned);
    let text = tshark(&args)?;
    let mut ports = Vec::new();
    for line in text.lines() {
        let (port, payload) = line.split_once('\t').unwrap_or((line, ""));
        // A tunnelled packet lists the outer header's value first.
        let port = port.split(',').next().unwrap_or_default();
        let payload: String = payload
            .split(',')
            .next()
            .unwrap_or_default()
            .replace(':', "");
        let version = payload.get(..4).unwrap_or_default();
        if matches!(version, "0005" | "0009" | "000a") && !ports.iter().any(|p| p == port) {
            ports.push(port.to_owned());
        }
    }
    Ok(ports)
}

/// Every data and options record tshark decodes from NetFlow v5, v9 and IPFIX messages in the
/// capture, with the frame it came from. PDML rather than JSON: tshark's JSON names a reverse
/// (RFC 5103) value exactly like the forward one, where PDML's display name tells them apart.
fn tshark_records(path: &Path, two_pass: bool) -> Result<Vec<(u32, Found)>, String> {
    let mut args: Vec<String> = [
        "-r",
        &path.to_string_lossy(),
        "-o",
        "cflow.max_template_fields:0",
    ]
    .map(str::to_owned)
    .to_vec();
    if two_pass {
        args.push("-2".to_owned());
    }
    for port in export_ports(path)? {
        args.push("-d".to_owned());
        args.push(format!("udp.port=={port},cflow"));
    }
    // Only the cflow layer in full (the frame number comes with "geninfo" anyway): a third of the
    // whole PDML, which matters for the captures of a thousand records.
    args.extend(["-T", "pdml", "-J", "cflow"].map(str::to_owned));
    let pdml = tshark(&args)?;
    let doc = roxmltree::Document::parse(&pdml).map_err(|e| format!("tshark PDML: {e}"))?;
    let mut records = Vec::new();
    for packet in doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("packet"))
    {
        let frame = packet
            .descendants()
            .find(|n| n.attribute("name") == Some("num"))
            .and_then(|n| n.attribute("show")?.parse().ok())
            .unwrap_or(0);
        let protos = packet
            .children()
            .filter(|n| n.attribute("name") == Some("cflow"));
        for (pdu, proto) in protos.enumerate() {
            let version = proto
                .children()
                .find(|n| n.attribute("name") == Some("cflow.version"))
                .and_then(|n| n.attribute("show"));
            if !matches!(version, Some("5" | "9" | "10")) {
                continue;
            }
            for record in proto.descendants().filter(is_record) {
                let origin = format!("frame {frame} message {} {}", pdu + 1, record_path(record));
                let fields = tshark_fields(record).map_err(|e| format!("{origin}: {e}"))?;
                records.push((frame, Found { origin, fields }));
            }
        }
    }
    Ok(records)
}

/// A data or options record: "Flow N" inside a set, or "pdu N/M" in a NetFlow v5 message.
fn is_record(node: &roxmltree::Node) -> bool {
    node.attribute("name") == Some("")
        && node.attribute("show").is_some_and(|s| {
            s.strip_prefix("Flow ")
                .is_some_and(|n| n.parse::<u32>().is_ok())
                || s.starts_with("pdu ")
        })
}

/// "Set 7 [id=1024] (2 flows) / Flow 2", for messages.
fn record_path(record: roxmltree::Node) -> String {
    let set = record
        .parent()
        .and_then(|p| p.attribute("show"))
        .unwrap_or("");
    let show = record.attribute("show").unwrap_or("");
    if set.is_empty() {
        show.to_owned()
    } else {
        format!("{set} / {show}")
    }
}

/// The compared fields of one tshark record. Time fields sit one level down, under
/// `cflow.timedelta`; nothing else is looked for below the record's own fields.
fn tshark_fields(record: roxmltree::Node) -> Result<Fields, String> {
    let mut fields = Fields::new();
    for node in record.children().filter(|n| n.is_element()) {
        add_tshark_field(&mut fields, node)?;
        if node.attribute("name") == Some("cflow.timedelta") {
            for child in node.children().filter(|n| n.is_element()) {
                add_tshark_field(&mut fields, child)?;
            }
        }
    }
    for values in fields.values_mut() {
        values.sort();
    }
    Ok(fields)
}

fn add_tshark_field(fields: &mut Fields, node: roxmltree::Node) -> Result<(), String> {
    let Some(name) = node.attribute("name") else {
        return Ok(());
    };
    let Some(&(_, names, kind)) = FIELD_MAP.iter().find(|(t, _, _)| *t == name) else {
        return Ok(());
    };
    let show = node.attribute("show").unwrap_or("");
    let reverse = node
        .attribute("showname")
        .is_some_and(|s| s.contains("(Reverse Type"));
    let value = match kind {
        Kind::Address => canonical_address(show),
        Kind::Number => parse_number(show).map(|n| n.to_string()),
        Kind::Uptime => decimal_seconds_nanos(show).map(|ns| ns.to_string()),
        Kind::Instant => tshark_time_nanos(show).map(|ns| ns.to_string()),
    }
    .ok_or_else(|| format!("{name}: cannot read tshark value {show:?}"))?;
    let key = if reverse {
        reverse_name(names[0])
    } else {
        names[0].to_owned()
    };
    fields.entry(key).or_default().push(value);
    Ok(())
}

// ---- value forms ----------------------------------------------------------------------------

fn canonical_address(text: &str) -> Option<String> {
    text.parse::<IpAddr>().ok().map(|a| a.to_string())
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// "4294063.517000000" (seconds) -> nanoseconds.
fn decimal_seconds_nanos(text: &str) -> Option<u128> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_ns: u128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(secs.parse::<u128>().ok()? * 1_000_000_000 + frac_ns)
}

/// tshark's absolute time, "Dec  3, 2026 18:19:24.060470999 UTC" -> nanoseconds since the epoch.
fn tshark_time_nanos(text: &str) -> Option<i128> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [month, day, year, time, "UTC"] = parts[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let day: u32 = day.strip_suffix(',')?.parse().ok()?;
    civil_nanos(year.parse().ok()?, month, day, time)
}

/// RFC 3339 UTC date-time, "2026-12-03T18:19:24.060470999Z" -> nanoseconds since the epoch.
fn rfc3339_nanos(text: &str) -> Option<i128> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-');
    let year = ymd.next()?.parse().ok()?;
    let month = ymd.next()?.parse().ok()?;
    let day = ymd.next()?.parse().ok()?;
    civil_nanos(year, month, day, time)
}

/// A UTC calendar date and "HH:MM:SS[.fraction]" -> nanoseconds since the epoch.
fn civil_nanos(year: i64, month: u32, day: u32, time: &str) -> Option<i128> {
    let mut hms = time.splitn(3, ':');
    let hours: i128 = hms.next()?.parse().ok()?;
    let minutes: i128 = hms.next()?.parse().ok()?;
    let seconds = decimal_seconds_nanos(hms.next()?)? as i128;
    let days = i128::from(days_from_civil(year, month, day));
    Some(((days * 24 + hours) * 60 + minutes) * 60_000_000_000 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days-from-civil).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[test]
fn time_forms_read_as_the_same_instant() {
    let tshark = tshark_time_nanos("Dec  3, 2026 18:19:24.060470999 UTC");
    let ours = rfc3339_nanos("2026-12-03T18:19:24.060470999Z");
    assert_eq!(tshark, ours);
    assert_eq!(rfc3339_nanos("1970-01-01T00:00:01Z"), Some(1_000_000_000));
    assert_eq!(
        rfc3339_nanos("2000-03-01T00:00:00.5Z"),
        Some(951_868_800_500_000_000)
    );
    assert_eq!(
        decimal_seconds_nanos("4294063.517000000"),
        Some(4_294_063_517_000_000)
    );
    assert_eq!(parse_number("0x1b"), Some(27));
    assert_eq!(reverse_name("octetDeltaCount"), "reverseOctetDeltaCount");
}
