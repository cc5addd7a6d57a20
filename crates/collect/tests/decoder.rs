//! Behaviour of the collector's `Decoder` over its public API, driven by IPFIX (RFC 7011),
//! NetFlow v9 (RFC 3954) and NetFlow v5 messages built field by field below.

use botnest_collect::{
    Counters, DecodeError, Decoder, DecoderConfig, RecordMeta, SessionKey, Sink, TemplateSnapshot,
    Transport,
};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::{ElementId, Record};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Fixture builders
// ---------------------------------------------------------------------------------------------

/// Export time of most messages: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;

fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn be64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Arrival time, in seconds after `T0`.
fn at(secs: u64) -> Timestamp {
    Timestamp::from_unix_secs(T0 + secs)
}

/// Field length meaning "variable length" (RFC 7011 section 7).
const VAR: u16 = 0xffff;

/// A field specifier: enterprise number (0 for IANA), element id, field length.
#[derive(Debug, Clone, Copy)]
struct F {
    pen: u32,
    id: u16,
    len: u16,
}

/// An IANA element.
const fn ie(id: u16, len: u16) -> F {
    F { pen: 0, id, len }
}

/// An enterprise-specific element.
const fn ent(pen: u32, id: u16, len: u16) -> F {
    F { pen, id, len }
}

/// Appends an IPFIX field specifier (RFC 7011 section 3.2).
fn push_spec(out: &mut Vec<u8>, f: &F) {
    if f.pen == 0 {
        out.extend(be16(f.id)); // E bit 0, Information Element identifier
        out.extend(be16(f.len)); // Field Length
    } else {
        out.extend(be16(0x8000 | f.id)); // E bit 1, Information Element identifier
        out.extend(be16(f.len)); // Field Length
        out.extend(be32(f.pen)); // Enterprise Number
    }
}

/// An IPFIX template record (RFC 7011 section 3.4.1).
fn ipfix_template(id: u16, fields: &[F]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(be16(id)); // Template ID
    out.extend(be16(fields.len() as u16)); // Field Count
    for f in fields {
        push_spec(&mut out, f);
    }
    out
}

/// An IPFIX options template record (RFC 7011 section 3.4.2.2); the first `scope` fields are
/// scope fields.
fn ipfix_options_template(id: u16, scope: u16, fields: &[F]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(be16(id)); // Template ID
    out.extend(be16(fields.len() as u16)); // Field Count
    out.extend(be16(scope)); // Scope Field Count
    for f in fields {
        push_spec(&mut out, f);
    }
    out
}

/// A template withdrawal (RFC 7011 section 8.1): the template id and a field count of 0. Id 2
/// in a template set (3 in an options template set) withdraws all templates of that kind.
fn ipfix_withdrawal(id: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(be16(id)); // Template ID
    out.extend(be16(0)); // Field Count 0: withdrawal
    out
}

/// An IPFIX message (RFC 7011 section 3.1) under construction.
#[derive(Debug, Clone)]
struct Ipfix {
    export_time: u32,
    sequence: u32,
    domain: u32,
    sets: Vec<u8>,
}

impl Ipfix {
    fn new(domain: u32) -> Self {
        Ipfix {
            export_time: T0 as u32,
            sequence: 0,
            domain,
            sets: Vec::new(),
        }
    }

    fn seq(mut self, sequence: u32) -> Self {
        self.sequence = sequence;
        self
    }

    fn export_time(mut self, secs: u32) -> Self {
        self.export_time = secs;
        self
    }

    /// Appends a set (RFC 7011 section 3.3.2) holding the given records back to back.
    fn set(mut self, set_id: u16, records: &[&[u8]]) -> Self {
        let body = records.concat();
        self.sets.extend(be16(set_id)); // Set ID
        self.sets.extend(be16((4 + body.len()) as u16)); // Length, header included
        self.sets.extend(body);
        self
    }

    /// Appends bytes as they are (for broken sets).
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.sets.extend_from_slice(bytes);
        self
    }

    fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(be16(10)); // Version Number
        out.extend(be16((16 + self.sets.len()) as u16)); // Length
        out.extend(be32(self.export_time)); // Export Time
        out.extend(be32(self.sequence)); // Sequence Number
        out.extend(be32(self.domain)); // Observation Domain ID
        out.extend(&self.sets);
        out
    }
}

/// A NetFlow v9 template record (RFC 3954 section 5.2): (field type, field length) pairs.
fn v9_template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(be16(id)); // Template ID
    out.extend(be16(fields.len() as u16)); // Field Count
    for &(kind, len) in fields {
        out.extend(be16(kind)); // Field Type
        out.extend(be16(len)); // Field Length
    }
    out
}

/// A NetFlow v9 options template record (RFC 3954 section 6.1), padded to 4 bytes.
fn v9_options_template(id: u16, scopes: &[(u16, u16)], options: &[(u16, u16)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(be16(id)); // Template ID
    out.extend(be16(4 * scopes.len() as u16)); // Option Scope Length, in bytes
    out.extend(be16(4 * options.len() as u16)); // Option Length, in bytes
    for &(kind, len) in scopes.iter().chain(options) {
        out.extend(be16(kind)); // Scope or Option Field Type
        out.extend(be16(len)); // Field Length
    }
    while out.len() % 4 != 0 {
        out.push(0); // Padding
    }
    out
}

/// A NetFlow v9 export packet (RFC 3954 section 5.1) under construction.
#[derive(Debug, Clone)]
struct V9 {
    sys_uptime_ms: u32,
    unix_secs: u32,
    sequence: u32,
    source_id: u32,
    count: u16,
    sets: Vec<u8>,
}

impl V9 {
    fn new(source_id: u32) -> Self {
        V9 {
            sys_uptime_ms: 3_600_000,
            unix_secs: T0 as u32,
            sequence: 0,
            source_id,
            count: 0,
            sets: Vec::new(),
        }
    }

    fn seq(mut self, sequence: u32) -> Self {
        self.sequence = sequence;
        self
    }

    fn uptime(mut self, ms: u32) -> Self {
        self.sys_uptime_ms = ms;
        self
    }

    /// Appends a FlowSet holding the given records.
    fn set(mut self, set_id: u16, records: &[&[u8]]) -> Self {
        let body = records.concat();
        self.sets.extend(be16(set_id)); // FlowSet ID
        self.sets.extend(be16((4 + body.len()) as u16)); // Length, header included
        self.sets.extend(body);
        self.count += records.len() as u16;
        self
    }

    fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(be16(9)); // Version
        out.extend(be16(self.count)); // Count of records
        out.extend(be32(self.sys_uptime_ms)); // sysUpTime
        out.extend(be32(self.unix_secs)); // UNIX Secs
        out.extend(be32(self.sequence)); // Sequence Number (packets)
        out.extend(be32(self.source_id)); // Source ID
        out.extend(&self.sets);
        out
    }
}

/// One NetFlow v5 flow record's interesting fields.
#[derive(Debug, Clone, Copy)]
struct V5Flow {
    src: [u8; 4],
    dst: [u8; 4],
    packets: u32,
    octets: u32,
    first: u32,
    last: u32,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    protocol: u8,
}

/// A NetFlow v5 packet: 24-byte header and 48-byte records.
fn v5_packet(uptime_ms: u32, flow_sequence: u32, sampling: u16, flows: &[V5Flow]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(be16(5)); // version
    out.extend(be16(flows.len() as u16)); // count
    out.extend(be32(uptime_ms)); // sys_uptime
    out.extend(be32(T0 as u32)); // unix_secs
    out.extend(be32(0)); // unix_nsecs
    out.extend(be32(flow_sequence)); // flow_sequence
    out.push(1); // engine_type
    out.push(2); // engine_id
    out.extend(be16(sampling)); // sampling mode (2 bits) and interval (14 bits)
    for f in flows {
        out.extend(f.src); // srcaddr
        out.extend(f.dst); // dstaddr
        out.extend([0, 0, 0, 0]); // nexthop
        out.extend(be16(1)); // input
        out.extend(be16(2)); // output
        out.extend(be32(f.packets)); // dPkts
        out.extend(be32(f.octets)); // dOctets
        out.extend(be32(f.first)); // First (sysUptime ms)
        out.extend(be32(f.last)); // Last (sysUptime ms)
        out.extend(be16(f.src_port)); // srcport
        out.extend(be16(f.dst_port)); // dstport
        out.push(0); // pad1
        out.push(f.tcp_flags); // tcp_flags
        out.push(f.protocol); // prot
        out.push(0); // tos
        out.extend(be16(64_500)); // src_as
        out.extend(be16(64_501)); // dst_as
        out.push(24); // src_mask
        out.push(16); // dst_mask
        out.extend([0, 0]); // pad2
    }
    out
}

fn v5_flow(src: [u8; 4], packets: u32, octets: u32) -> V5Flow {
    V5Flow {
        src,
        dst: [198, 51, 100, 7],
        packets,
        octets,
        first: 3_590_000,
        last: 3_599_000,
        src_port: 40_000,
        dst_port: 53,
        tcp_flags: 0,
        protocol: 17,
    }
}

// Common templates and records -----------------------------------------------------------------

/// flowStartMilliseconds and flowEndMilliseconds of `flow_record`.
const START_MS: u64 = T0 * 1000 - 4_750;
const END_MS: u64 = T0 * 1000 - 1_000;

/// Template fields of a typical IPv4 flow record.
const FLOW_FIELDS: [F; 10] = [
    ie(8, 4),   // sourceIPv4Address
    ie(12, 4),  // destinationIPv4Address
    ie(7, 2),   // sourceTransportPort
    ie(11, 2),  // destinationTransportPort
    ie(4, 1),   // protocolIdentifier
    ie(6, 2),   // tcpControlBits
    ie(1, 8),   // octetDeltaCount
    ie(2, 8),   // packetDeltaCount
    ie(152, 8), // flowStartMilliseconds
    ie(153, 8), // flowEndMilliseconds
];

/// A record of `FLOW_FIELDS`.
fn flow_record(src: [u8; 4], src_port: u16, octets: u64, packets: u64) -> Vec<u8> {
    [
        &src[..],           // sourceIPv4Address
        &[198, 51, 100, 7], // destinationIPv4Address
        &be16(src_port),    // sourceTransportPort
        &be16(443),         // destinationTransportPort
        &[6],               // protocolIdentifier: TCP
        &be16(0x0012),      // tcpControlBits: SYN, ACK
        &be64(octets),      // octetDeltaCount
        &be64(packets),     // packetDeltaCount
        &be64(START_MS),    // flowStartMilliseconds
        &be64(END_MS),      // flowEndMilliseconds
    ]
    .concat()
}

/// Two addresses only.
const ADDR_FIELDS: [F; 2] = [
    ie(8, 4),  // sourceIPv4Address
    ie(12, 4), // destinationIPv4Address
];

/// A record of `ADDR_FIELDS`.
fn addr_record(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    [src, dst].concat()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const COLLECTOR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4739);

fn exporter(n: u16) -> SocketAddr {
    SocketAddr::new(v4(192, 0, 2, 1), 40_000 + n)
}

fn udp(n: u16) -> SessionKey {
    SessionKey::udp(exporter(n), COLLECTOR)
}

fn tcp(n: u16) -> SessionKey {
    SessionKey {
        transport: Transport::Tcp,
        ..udp(n)
    }
}

/// A decoded record, copied out of the sink call.
#[derive(Debug, Clone)]
struct Got {
    version: u16,
    domain: u32,
    template_id: u16,
    export_time: Timestamp,
    input_name: Option<String>,
    output_name: Option<String>,
    flow: FlowRecord,
    fields: Vec<(ElementId, Vec<u8>)>,
}

impl Got {
    fn new(meta: &RecordMeta<'_>, flow: FlowRecord, raw: &Record<'_>) -> Self {
        Got {
            version: meta.version,
            domain: meta.domain,
            template_id: meta.template_id,
            export_time: meta.export_time,
            input_name: meta.input_interface_name.map(str::to_owned),
            output_name: meta.output_interface_name.map(str::to_owned),
            flow,
            fields: raw
                .fields()
                .map(|(spec, v)| (spec.element, v.to_vec()))
                .collect(),
        }
    }

    fn field(&self, element: ElementId) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(e, _)| *e == element)
            .map(|(_, v)| &v[..])
    }
}

#[derive(Debug, Default)]
struct Collect {
    flows: Vec<Got>,
    options: Vec<Got>,
}

impl Sink for Collect {
    fn flow(&mut self, meta: &RecordMeta<'_>, flow: &FlowRecord, raw: &Record<'_>) {
        self.flows.push(Got::new(meta, *flow, raw));
    }

    fn options(&mut self, meta: &RecordMeta<'_>, raw: &Record<'_>) {
        self.options
            .push(Got::new(meta, FlowRecord::default(), raw));
    }
}

/// A decoder with its sink.
#[derive(Debug, Default)]
struct Rig {
    dec: Decoder,
    out: Collect,
}

impl Rig {
    fn with(config: DecoderConfig) -> Self {
        Rig {
            dec: Decoder::new(config),
            out: Collect::default(),
        }
    }

    fn feed(&mut self, key: SessionKey, now: Timestamp, bytes: &[u8]) -> Result<(), DecodeError> {
        self.dec.decode(&key, now, bytes, &mut self.out)
    }

    fn ok(&mut self, key: SessionKey, now: Timestamp, bytes: &[u8]) {
        if let Err(e) = self.feed(key, now, bytes) {
            panic!("decoding failed: {e}");
        }
    }

    fn totals(&self) -> Counters {
        self.dec.totals()
    }

    fn reason(&self, reason: &str) -> u64 {
        self.dec
            .errors_by_reason()
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    fn flow(&self, i: usize) -> &FlowRecord {
        &self.out.flows[i].flow
    }
}

fn short_lifetime() -> DecoderConfig {
    DecoderConfig {
        template_lifetime: Duration::from_secs(60),
        pending_timeout: Duration::from_secs(10),
        ..DecoderConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// IPFIX templates, data and normalisation
// ---------------------------------------------------------------------------------------------

#[test]
fn ipfix_template_then_data_in_one_message_normalises_the_flow() {
    let mut rig = Rig::default();
    let msg = Ipfix::new(7)
        .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
        .set(256, &[&flow_record([192, 0, 2, 33], 51_000, 1_500, 3)])
        .build();
    rig.ok(udp(1), at(0), &msg);

    assert_eq!(rig.out.flows.len(), 1);
    let got = &rig.out.flows[0];
    assert_eq!(
        (got.version, got.domain, got.template_id),
        (10, 7, 256),
        "metadata"
    );
    assert_eq!(got.export_time, Timestamp::from_unix_secs(T0));
    let f = got.flow;
    assert_eq!(f.src, v4(192, 0, 2, 33));
    assert_eq!(f.dst, v4(198, 51, 100, 7));
    assert_eq!((f.src_port, f.dst_port, f.protocol), (51_000, 443, 6));
    assert_eq!(f.tcp_flags, 0x12);
    assert_eq!((f.octets, f.packets), (1_500, 3));
    assert_eq!(f.start, Timestamp::from_unix_millis(START_MS));
    assert_eq!(f.end, Timestamp::from_unix_millis(END_MS));
    assert_eq!(f.sampling_interval, 1);
    assert_eq!(f.exporter, exporter(1).ip());
    assert_eq!(f.observation_domain, 7);
    assert!(!f.is_biflow());

    let c = rig.totals();
    assert_eq!((c.messages, c.records, c.templates, c.errors), (1, 1, 1, 0));
}

#[test]
fn ipfix_template_from_an_earlier_message_decodes_later_data() {
    let mut rig = Rig::default();
    let tpl = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
        .build();
    rig.ok(udp(1), at(0), &tpl);
    assert!(rig.out.flows.is_empty());

    let data = Ipfix::new(1)
        .set(
            256,
            &[
                &flow_record([10, 0, 0, 1], 1_001, 100, 1),
                &flow_record([10, 0, 0, 2], 1_002, 200, 2),
            ],
        )
        .build();
    rig.ok(udp(1), at(5), &data);
    assert_eq!(rig.out.flows.len(), 2);
    assert_eq!(rig.flow(0).src, v4(10, 0, 0, 1));
    assert_eq!((rig.flow(1).src_port, rig.flow(1).octets), (1_002, 200));
    assert_eq!(rig.totals().records, 2);
}

#[test]
fn ipv6_addresses_are_normalised() {
    let mut rig = Rig::default();
    let fields = [
        ie(27, 16), // sourceIPv6Address
        ie(28, 16), // destinationIPv6Address
        ie(7, 2),   // sourceTransportPort
        ie(11, 2),  // destinationTransportPort
        ie(4, 1),   // protocolIdentifier
    ];
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8:ffff::2".parse().unwrap();
    let rec = [
        &src.octets()[..], // sourceIPv6Address
        &dst.octets(),     // destinationIPv6Address
        &be16(5353),       // sourceTransportPort
        &be16(5353),       // destinationTransportPort
        &[17],             // protocolIdentifier: UDP
    ]
    .concat();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &fields)])
        .set(256, &[&rec])
        .build();
    rig.ok(udp(1), at(0), &msg);
    let f = rig.flow(0);
    assert_eq!((f.src, f.dst), (IpAddr::V6(src), IpAddr::V6(dst)));
    assert_eq!((f.src_port, f.protocol), (5353, 17));
}

/// Decodes one record of `fields` (after the template) and returns the flow.
fn one_flow(fields: &[F], record: &[u8]) -> FlowRecord {
    let mut rig = Rig::default();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, fields)])
        .set(256, &[record])
        .build();
    rig.ok(udp(1), at(0), &msg);
    assert_eq!(rig.out.flows.len(), 1);
    *rig.flow(0)
}

#[test]
fn flow_times_in_seconds() {
    let f = one_flow(
        &[
            ie(150, 4), // flowStartSeconds
            ie(151, 4), // flowEndSeconds
        ],
        &[
            &be32(T0 as u32 - 60)[..], // flowStartSeconds
            &be32(T0 as u32 - 2),      // flowEndSeconds
        ]
        .concat(),
    );
    assert_eq!(f.start, Timestamp::from_unix_secs(T0 - 60));
    assert_eq!(f.end, Timestamp::from_unix_secs(T0 - 2));
}

/// Seconds between the NTP era (1900) and the UNIX epoch.
const NTP_OFFSET: u64 = 2_208_988_800;

#[test]
fn ntp_microseconds_ignore_the_low_fraction_bits_and_nanoseconds_keep_them() {
    // Both times are T0 + 0.5 s with the 11 lowest fraction bits set: RFC 7011 section 6.1.9
    // says dateTimeMicroseconds ignores them, section 6.1.10 that dateTimeNanoseconds uses them.
    let ntp = ((T0 + NTP_OFFSET) << 32) | 0x8000_07ff;
    let f = one_flow(
        &[
            ie(154, 8), // flowStartMicroseconds
            ie(157, 8), // flowEndNanoseconds
        ],
        &[
            &be64(ntp)[..], // flowStartMicroseconds: NTP seconds . fraction
            &be64(ntp),     // flowEndNanoseconds: NTP seconds . fraction
        ]
        .concat(),
    );
    let half = Timestamp::from_unix_secs(T0).offset_nanos(500_000_000);
    assert_eq!(f.start, half);
    // 0x7ff / 2^32 s = 476.6 ns
    assert_eq!(f.end, half.offset_nanos(476));
}

#[test]
fn ntp_nanoseconds_start_and_microseconds_end() {
    let start = ((T0 - 1 + NTP_OFFSET) << 32) | 0x4000_0000; // T0 - 1 s + 0.25 s
    let end = (T0 + NTP_OFFSET) << 32; // T0
    let f = one_flow(
        &[
            ie(156, 8), // flowStartNanoseconds
            ie(155, 8), // flowEndMicroseconds
        ],
        &[
            &be64(start)[..], // flowStartNanoseconds
            &be64(end),       // flowEndMicroseconds
        ]
        .concat(),
    );
    assert_eq!(f.start, Timestamp::from_unix_millis(T0 * 1000 - 750));
    assert_eq!(f.end, Timestamp::from_unix_secs(T0));
}

#[test]
fn open_vswitch_delta_microseconds_count_back_from_export_time() {
    let f = one_flow(
        &[
            ie(158, 4), // flowStartDeltaMicroseconds
            ie(159, 4), // flowEndDeltaMicroseconds
        ],
        &[
            &be32(2_500_000)[..], // flowStartDeltaMicroseconds: 2.5 s before export
            &be32(250),           // flowEndDeltaMicroseconds: 250 us before export
        ]
        .concat(),
    );
    let export = Timestamp::from_unix_secs(T0);
    assert_eq!(f.start, export.offset_nanos(-2_500_000_000));
    assert_eq!(f.end, export.offset_nanos(-250_000));
}

#[test]
fn sys_uptime_times_use_system_init_time_from_options_data() {
    let mut rig = Rig::default();
    let boot_ms = T0 * 1000 - 3_600_000; // booted an hour before T0
    let options = ipfix_options_template(
        300,
        1,
        &[
            ie(149, 4), // scope: observationDomainId
            ie(160, 8), // systemInitTimeMilliseconds
        ],
    );
    let options_rec = [
        &be32(1)[..],   // observationDomainId
        &be64(boot_ms), // systemInitTimeMilliseconds
    ]
    .concat();
    let fields = [
        ie(8, 4),  // sourceIPv4Address
        ie(22, 4), // flowStartSysUpTime
        ie(21, 4), // flowEndSysUpTime
    ];
    let rec = [
        &[10, 0, 0, 1][..], // sourceIPv4Address
        &be32(3_590_000),   // flowStartSysUpTime: 10 s before T0
        &be32(3_599_500),   // flowEndSysUpTime: 0.5 s before T0
    ]
    .concat();
    let msg = Ipfix::new(1)
        .set(3, &[&options])
        .set(300, &[&options_rec])
        .set(2, &[&ipfix_template(256, &fields)])
        .set(256, &[&rec])
        .build();
    rig.ok(udp(1), at(0), &msg);
    assert_eq!(rig.out.options.len(), 1);
    let f = rig.flow(0);
    assert_eq!(f.start, Timestamp::from_unix_millis(T0 * 1000 - 10_000));
    assert_eq!(f.end, Timestamp::from_unix_millis(T0 * 1000 - 500));
    assert_eq!(rig.totals().options_records, 1);
}

#[test]
fn flow_duration_milliseconds_gives_the_end_from_the_start() {
    let f = one_flow(
        &[
            ie(152, 8), // flowStartMilliseconds
            ie(161, 4), // flowDurationMilliseconds
        ],
        &[
            &be64(T0 * 1000 - 4_000)[..], // flowStartMilliseconds
            &be32(1_500),                 // flowDurationMilliseconds
        ]
        .concat(),
    );
    assert_eq!(f.start, Timestamp::from_unix_millis(T0 * 1000 - 4_000));
    assert_eq!(f.end, Timestamp::from_unix_millis(T0 * 1000 - 2_500));
}

#[test]
fn reduced_size_counters_are_read_at_their_length() {
    // RFC 7011 section 6.2: octetDeltaCount (unsigned64) sent in 4 bytes, packets in 2.
    let f = one_flow(
        &[
            ie(8, 4), // sourceIPv4Address
            ie(1, 4), // octetDeltaCount, reduced to 4 bytes
            ie(2, 2), // packetDeltaCount, reduced to 2 bytes
        ],
        &[
            &[10, 0, 0, 1][..],   // sourceIPv4Address
            &be32(3_000_000_000), // octetDeltaCount
            &be16(40_000),        // packetDeltaCount
        ]
        .concat(),
    );
    assert_eq!((f.octets, f.packets), (3_000_000_000, 40_000));
}

#[test]
fn variable_length_fields_do_not_shift_the_fields_after_them() {
    let mut rig = Rig::default();
    let fields = [
        ie(8, 4),    // sourceIPv4Address
        ie(82, VAR), // interfaceName, variable length
        ie(7, 2),    // sourceTransportPort
        ie(1, 4),    // octetDeltaCount
    ];
    let short = [
        &[10, 0, 0, 1][..], // sourceIPv4Address
        &[4],               // length prefix: 4 bytes
        b"eth0",            // interfaceName
        &be16(1_234),       // sourceTransportPort
        &be32(100),         // octetDeltaCount
    ]
    .concat();
    let long = [
        &[10, 0, 0, 2][..], // sourceIPv4Address
        &[255, 0, 3],       // length prefix: 255, then 3 in two bytes (RFC 7011 section 7)
        b"wan",             // interfaceName
        &be16(80),          // sourceTransportPort
        &be32(200),         // octetDeltaCount
    ]
    .concat();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &fields)])
        .set(256, &[&short, &long])
        .build();
    rig.ok(udp(1), at(0), &msg);
    assert_eq!(rig.out.flows.len(), 2);
    assert_eq!(
        (rig.flow(0).src, rig.flow(0).src_port, rig.flow(0).octets),
        (v4(10, 0, 0, 1), 1_234, 100)
    );
    assert_eq!(
        (rig.flow(1).src, rig.flow(1).src_port, rig.flow(1).octets),
        (v4(10, 0, 0, 2), 80, 200)
    );
    assert_eq!(
        rig.out.flows[0].field(ElementId::iana(82)),
        Some(&b"eth0"[..])
    );
    assert_eq!(
        rig.out.flows[1].field(ElementId::iana(82)),
        Some(&b"wan"[..])
    );
}

#[test]
fn enterprise_fields_are_raw_fields_but_not_normalised() {
    let mut rig = Rig::default();
    let fields = [
        ie(8, 4),          // sourceIPv4Address
        ent(12_345, 8, 4), // enterprise 12345 element 8: not sourceIPv4Address
        ent(9, 12_235, 2), // enterprise 9 element 12235
        ent(12_345, 1, 8), // enterprise 12345 element 1: not octetDeltaCount
    ];
    let rec = [
        &[10, 0, 0, 1][..], // sourceIPv4Address
        &[203, 0, 113, 9],  // 12345/8
        &[0, 7],            // 9/12235
        &be64(999),         // 12345/1
    ]
    .concat();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &fields)])
        .set(256, &[&rec])
        .build();
    rig.ok(udp(1), at(0), &msg);
    let got = &rig.out.flows[0];
    assert_eq!(got.flow.src, v4(10, 0, 0, 1));
    assert_eq!(got.flow.octets, 0);
    assert_eq!(
        got.field(ElementId::enterprise(12_345, 8)),
        Some(&[203, 0, 113, 9][..])
    );
    assert_eq!(
        got.field(ElementId::enterprise(9, 12_235)),
        Some(&[0, 7][..])
    );
    assert_eq!(got.fields.len(), 4);
}

#[test]
fn biflow_reverse_counters_land_in_reverse_fields() {
    // RFC 5103: reverse elements are the IANA ids under enterprise 29305.
    let f = one_flow(
        &[
            ie(8, 4),          // sourceIPv4Address
            ie(12, 4),         // destinationIPv4Address
            ie(1, 8),          // octetDeltaCount
            ie(2, 8),          // packetDeltaCount
            ent(29_305, 1, 8), // reverseOctetDeltaCount
            ent(29_305, 2, 8), // reversePacketDeltaCount
        ],
        &[
            &[10, 0, 0, 1][..], // sourceIPv4Address
            &[10, 0, 0, 2],     // destinationIPv4Address
            &be64(600),         // octetDeltaCount
            &be64(6),           // packetDeltaCount
            &be64(90_000),      // reverseOctetDeltaCount
            &be64(70),          // reversePacketDeltaCount
        ]
        .concat(),
    );
    assert_eq!((f.octets, f.packets), (600, 6));
    assert_eq!((f.reverse_octets, f.reverse_packets), (90_000, 70));
    assert!(f.is_biflow());
}

// ---------------------------------------------------------------------------------------------
// Template scoping, withdrawal, redefinition
// ---------------------------------------------------------------------------------------------

/// Template 256 laid out as octets then packets, 4 bytes each.
const COUNTER_FIELDS: [F; 2] = [
    ie(1, 4), // octetDeltaCount
    ie(2, 4), // packetDeltaCount
];

#[test]
fn templates_are_scoped_per_transport_session() {
    let mut rig = Rig::default();
    // Same template id, different layouts, from two ports of one exporter.
    rig.ok(
        udp(1),
        at(0),
        &Ipfix::new(1)
            .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
            .build(),
    );
    rig.ok(
        udp(2),
        at(0),
        &Ipfix::new(1)
            .set(2, &[&ipfix_template(256, &COUNTER_FIELDS)])
            .build(),
    );
    let data = Ipfix::new(1)
        .set(256, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .build();
    rig.ok(udp(1), at(1), &data);
    rig.ok(udp(2), at(1), &data);
    // A third session has no template at all: the data is held, not decoded.
    rig.ok(udp(3), at(1), &data);
    // The same addresses over TCP are another session too.
    rig.ok(tcp(1), at(1), &data);

    assert_eq!(rig.out.flows.len(), 2);
    let a = rig.flow(0);
    assert_eq!(
        (a.src, a.dst, a.octets),
        (v4(10, 0, 0, 1), v4(10, 0, 0, 2), 0)
    );
    let b = rig.flow(1);
    assert_eq!(b.src, v4(0, 0, 0, 0));
    assert_eq!((b.octets, b.packets), (0x0a00_0001, 0x0a00_0002));
    assert_eq!(rig.totals().pending_sets, 2);
}

#[test]
fn templates_are_scoped_per_observation_domain() {
    let mut rig = Rig::default();
    let tpl1 = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .build();
    let tpl2 = Ipfix::new(2)
        .set(2, &[&ipfix_template(256, &COUNTER_FIELDS)])
        .build();
    rig.ok(udp(1), at(0), &tpl1);
    rig.ok(udp(1), at(0), &tpl2);
    let rec = addr_record([10, 0, 0, 1], [10, 0, 0, 2]);
    rig.ok(udp(1), at(1), &Ipfix::new(2).set(256, &[&rec]).build());
    rig.ok(udp(1), at(1), &Ipfix::new(1).set(256, &[&rec]).build());
    rig.ok(udp(1), at(1), &Ipfix::new(3).set(256, &[&rec]).build());

    assert_eq!(rig.out.flows.len(), 2);
    assert_eq!(rig.out.flows[0].domain, 2);
    assert_eq!(rig.flow(0).octets, 0x0a00_0001);
    assert_eq!(rig.flow(0).src, v4(0, 0, 0, 0));
    assert_eq!(rig.out.flows[1].domain, 1);
    assert_eq!(rig.flow(1).src, v4(10, 0, 0, 1));
    assert_eq!(rig.flow(1).octets, 0);
    let per = rig.dec.per_exporter();
    let domains: Vec<u32> = per.iter().map(|(_, d, _)| *d).collect();
    assert_eq!(domains, vec![1, 2, 3]);
    assert_eq!(per[2].2.pending_sets, 1);
}

/// Options template 257: scope observationDomainId, samplingInterval.
fn sampling_options_template() -> Vec<u8> {
    ipfix_options_template(
        257,
        1,
        &[
            ie(149, 4), // scope: observationDomainId
            ie(34, 4),  // samplingInterval
        ],
    )
}

/// A record of `sampling_options_template`.
fn sampling_options_record(domain: u32, interval: u32) -> Vec<u8> {
    [
        &be32(domain)[..], // observationDomainId
        &be32(interval),   // samplingInterval
    ]
    .concat()
}

/// Template 256 (addresses) and options template 257 (sampling), one message.
fn both_templates() -> Vec<u8> {
    Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(3, &[&sampling_options_template()])
        .build()
}

/// Data for 256 and options data for 257, one message.
fn data_for_both() -> Vec<u8> {
    Ipfix::new(1)
        .set(256, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .set(257, &[&sampling_options_record(1, 10)])
        .build()
}

#[test]
fn withdrawn_template_no_longer_decodes() {
    let mut rig = Rig::default();
    rig.ok(udp(1), at(0), &both_templates());
    rig.ok(
        udp(1),
        at(1),
        &Ipfix::new(1).set(2, &[&ipfix_withdrawal(256)]).build(),
    );
    assert_eq!(rig.dec.state_size().1, 1);
    rig.ok(udp(1), at(2), &data_for_both());
    assert!(rig.out.flows.is_empty());
    assert_eq!(rig.out.options.len(), 1);
    let c = rig.totals();
    assert_eq!((c.template_withdrawals, c.pending_sets), (1, 1));
}

#[test]
fn withdraw_all_with_id_2_keeps_options_templates() {
    let mut rig = Rig::default();
    rig.ok(udp(1), at(0), &both_templates());
    rig.ok(
        udp(1),
        at(1),
        &Ipfix::new(1).set(2, &[&ipfix_withdrawal(2)]).build(),
    );
    rig.ok(udp(1), at(2), &data_for_both());
    assert!(rig.out.flows.is_empty(), "data templates withdrawn");
    assert_eq!(rig.out.options.len(), 1, "options template kept");
}

#[test]
fn withdraw_all_with_id_3_withdraws_only_options_templates() {
    let mut rig = Rig::default();
    rig.ok(udp(1), at(0), &both_templates());
    rig.ok(
        udp(1),
        at(1),
        &Ipfix::new(1).set(3, &[&ipfix_withdrawal(3)]).build(),
    );
    rig.ok(udp(1), at(2), &data_for_both());
    assert_eq!(rig.out.flows.len(), 1, "data template kept");
    assert!(rig.out.options.is_empty(), "options templates withdrawn");
}

#[test]
fn withdraw_all_leaves_other_domains_alone() {
    let mut rig = Rig::default();
    rig.ok(udp(1), at(0), &both_templates());
    let other = Ipfix::new(2)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .build();
    rig.ok(udp(1), at(0), &other);
    rig.ok(
        udp(1),
        at(1),
        &Ipfix::new(1).set(2, &[&ipfix_withdrawal(2)]).build(),
    );
    let rec = addr_record([10, 0, 0, 1], [10, 0, 0, 2]);
    rig.ok(udp(1), at(2), &Ipfix::new(2).set(256, &[&rec]).build());
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.out.flows[0].domain, 2);
}

#[test]
fn redefined_template_replaces_the_old_layout() {
    let mut rig = Rig::default();
    let rec = addr_record([10, 0, 0, 1], [10, 0, 0, 2]);
    let first = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(256, &[&rec])
        .build();
    rig.ok(udp(1), at(0), &first);
    // Same id, source and destination swapped.
    let swapped = [
        ie(12, 4), // destinationIPv4Address
        ie(8, 4),  // sourceIPv4Address
    ];
    let second = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &swapped)])
        .build();
    rig.ok(udp(1), at(1), &second);
    rig.ok(udp(1), at(2), &Ipfix::new(1).set(256, &[&rec]).build());
    assert_eq!(rig.out.flows.len(), 2);
    assert_eq!(rig.flow(0).src, v4(10, 0, 0, 1));
    assert_eq!(rig.flow(1).src, v4(10, 0, 0, 2));
    assert_eq!(rig.flow(1).dst, v4(10, 0, 0, 1));
    assert_eq!(rig.dec.state_size().1, 1);
}

// ---------------------------------------------------------------------------------------------
// Template lifetime
// ---------------------------------------------------------------------------------------------

fn addr_template_msg() -> Vec<u8> {
    Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .build()
}

fn addr_data_msg() -> Vec<u8> {
    Ipfix::new(1)
        .set(256, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .build()
}

#[test]
fn udp_template_within_its_lifetime_decodes() {
    let mut rig = Rig::with(short_lifetime());
    rig.ok(udp(1), at(0), &addr_template_msg());
    rig.ok(udp(1), at(60), &addr_data_msg());
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.totals().templates_expired, 0);
}

#[test]
fn udp_template_past_its_lifetime_is_not_used_and_counts_as_expired() {
    let mut rig = Rig::with(short_lifetime());
    rig.ok(udp(1), at(0), &addr_template_msg());
    rig.ok(udp(1), at(61), &addr_data_msg());
    assert!(rig.out.flows.is_empty());
    assert_eq!(rig.totals().templates_expired, 1);
    assert_eq!(rig.dec.state_size().1, 0, "the stale template is dropped");
}

#[test]
fn udp_template_refresh_extends_its_lifetime() {
    let mut rig = Rig::with(short_lifetime());
    rig.ok(udp(1), at(0), &addr_template_msg());
    rig.ok(udp(1), at(50), &addr_template_msg());
    rig.ok(udp(1), at(100), &addr_data_msg());
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.totals().templates, 2);
}

#[test]
fn tcp_templates_do_not_expire() {
    let mut rig = Rig::with(short_lifetime());
    rig.ok(tcp(1), at(0), &addr_template_msg());
    rig.ok(tcp(1), at(10 * 86_400), &addr_data_msg());
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.totals().templates_expired, 0);
}

// ---------------------------------------------------------------------------------------------
// Data before its template
// ---------------------------------------------------------------------------------------------

#[test]
fn data_before_its_template_is_decoded_when_the_template_arrives() {
    let mut rig = Rig::with(short_lifetime());
    let early = Ipfix::new(1)
        .export_time(T0 as u32 - 2)
        .set(
            256,
            &[
                &flow_record([10, 0, 0, 1], 1_001, 100, 1),
                &flow_record([10, 0, 0, 2], 1_002, 200, 2),
            ],
        )
        .build();
    let later = Ipfix::new(1)
        .export_time(T0 as u32 - 1)
        .set(256, &[&flow_record([10, 0, 0, 3], 1_003, 300, 3)])
        .build();
    rig.ok(udp(1), at(0), &early);
    rig.ok(udp(1), at(1), &later);
    assert!(rig.out.flows.is_empty());
    assert_eq!(rig.totals().pending_sets, 2);
    assert!(rig.dec.state_size().2 > 0);

    let tpl = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
        .build();
    rig.ok(udp(1), at(2), &tpl);
    assert_eq!(rig.out.flows.len(), 3);
    let got: Vec<_> = rig
        .out
        .flows
        .iter()
        .map(|g| (g.flow.src, g.flow.src_port, g.flow.octets, g.flow.packets))
        .collect();
    assert_eq!(
        got,
        vec![
            (v4(10, 0, 0, 1), 1_001, 100, 1),
            (v4(10, 0, 0, 2), 1_002, 200, 2),
            (v4(10, 0, 0, 3), 1_003, 300, 3),
        ]
    );
    // Held records keep the export time of the message that carried them.
    assert_eq!(
        rig.out.flows[0].export_time,
        Timestamp::from_unix_secs(T0 - 2)
    );
    assert_eq!(
        rig.out.flows[2].export_time,
        Timestamp::from_unix_secs(T0 - 1)
    );
    let c = rig.totals();
    assert_eq!((c.records, c.pending_dropped), (3, 0));
    assert_eq!(rig.dec.state_size().2, 0);
}

#[test]
fn held_data_past_the_pending_timeout_is_dropped() {
    let mut rig = Rig::with(short_lifetime());
    rig.ok(udp(1), at(0), &addr_data_msg());
    rig.ok(udp(1), at(11), &addr_template_msg());
    assert!(rig.out.flows.is_empty());
    let c = rig.totals();
    assert_eq!((c.pending_sets, c.pending_dropped), (1, 1));
    assert_eq!(rig.dec.state_size().2, 0);
}

#[test]
fn held_data_within_the_pending_timeout_is_kept() {
    let mut rig = Rig::with(short_lifetime());
    rig.ok(udp(1), at(0), &addr_data_msg());
    rig.ok(udp(1), at(10), &addr_template_msg());
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.totals().pending_dropped, 0);
}

#[test]
fn held_data_is_bounded_and_the_oldest_is_dropped_first() {
    let max = 1_000;
    let mut rig = Rig::with(DecoderConfig {
        max_pending_bytes: max,
        ..DecoderConfig::default()
    });
    // Ten data sets of 25 records (200 bytes) each; they cannot all be held.
    for i in 0..10u8 {
        let recs: Vec<Vec<u8>> = (0..25u8)
            .map(|j| addr_record([10, 0, i, j], [10, 1, i, j]))
            .collect();
        let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
        rig.ok(udp(1), at(0), &Ipfix::new(1).set(256, &refs).build());
        assert!(rig.dec.state_size().2 <= max);
    }
    let c = rig.totals();
    assert_eq!(c.pending_sets, 10);
    assert!(c.pending_dropped >= 5, "dropped {}", c.pending_dropped);

    rig.ok(udp(1), at(1), &addr_template_msg());
    let kept = (c.pending_sets - c.pending_dropped) as usize;
    assert_eq!(rig.out.flows.len(), kept * 25);
    // The newest set survived, the oldest did not.
    assert_eq!(rig.out.flows.last().unwrap().flow.src, v4(10, 0, 9, 24));
    assert!(rig.out.flows.iter().all(|g| g.flow.src != v4(10, 0, 0, 0)));
}

#[test]
fn empty_data_sets_for_unknown_templates_count_against_the_pending_bound() {
    let max = 4_096;
    let mut rig = Rig::with(DecoderConfig {
        max_pending_bytes: max,
        ..DecoderConfig::default()
    });
    // One message of 16,000 empty data sets (4-byte set headers) for unknown templates: each
    // held set costs memory, so the bound must stop them piling up.
    let mut msg = Ipfix::new(1);
    for i in 0..16_000u16 {
        msg = msg.set(300 + i % 1000, &[]);
    }
    rig.ok(udp(1), at(0), &msg.build());
    let c = rig.totals();
    assert_eq!(c.pending_sets, 16_000);
    assert!(c.pending_dropped > 0);
    assert!(rig.dec.state_size().2 <= max);
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers
// ---------------------------------------------------------------------------------------------

#[test]
fn ipfix_sequence_gap_counts_lost_records() {
    let mut rig = Rig::default();
    let first = Ipfix::new(1)
        .seq(100)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(
            256,
            &[
                &addr_record([10, 0, 0, 1], [10, 0, 0, 9]),
                &addr_record([10, 0, 0, 2], [10, 0, 0, 9]),
            ],
        )
        .build();
    // Expected 102; records 102..=104 never arrived.
    let second = Ipfix::new(1)
        .seq(105)
        .set(256, &[&addr_record([10, 0, 0, 3], [10, 0, 0, 9])])
        .build();
    let third = Ipfix::new(1)
        .seq(106)
        .set(256, &[&addr_record([10, 0, 0, 4], [10, 0, 0, 9])])
        .build();
    rig.ok(udp(1), at(0), &first);
    rig.ok(udp(1), at(1), &second);
    rig.ok(udp(1), at(2), &third);
    let c = rig.totals();
    assert_eq!((c.lost_records, c.lost_packets, c.out_of_order), (3, 0, 0));
}

#[test]
fn ipfix_sequence_numbers_count_options_records_too() {
    let mut rig = Rig::default();
    let first = Ipfix::new(1)
        .seq(0)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(3, &[&sampling_options_template()])
        .set(256, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 9])])
        .set(257, &[&sampling_options_record(1, 10)])
        .build();
    let second = Ipfix::new(1)
        .seq(2)
        .set(256, &[&addr_record([10, 0, 0, 2], [10, 0, 0, 9])])
        .build();
    rig.ok(udp(1), at(0), &first);
    rig.ok(udp(1), at(1), &second);
    assert_eq!(rig.totals().lost_records, 0);
}

/// Template 256 of NetFlow v9: addresses.
fn v9_addr_template() -> Vec<u8> {
    v9_template(
        256,
        &[
            (8, 4),  // IPV4_SRC_ADDR
            (12, 4), // IPV4_DST_ADDR
        ],
    )
}

#[test]
fn v9_sequence_gap_counts_lost_packets() {
    let mut rig = Rig::default();
    for seq in [10, 11, 14, 15] {
        let pkt = V9::new(1)
            .seq(seq)
            .set(0, &[&v9_addr_template()])
            .set(
                256,
                &[
                    &addr_record([10, 0, 0, 1], [10, 0, 0, 9]),
                    &addr_record([10, 0, 0, 2], [10, 0, 0, 9]),
                ],
            )
            .build();
        rig.ok(udp(1), at(u64::from(seq)), &pkt);
    }
    let c = rig.totals();
    assert_eq!(rig.out.flows.len(), 8);
    assert_eq!((c.lost_packets, c.lost_records), (2, 0));
}

#[test]
fn v5_sequence_gap_counts_lost_flows() {
    let mut rig = Rig::default();
    let flows = [v5_flow([10, 0, 0, 1], 1, 60), v5_flow([10, 0, 0, 2], 1, 60)];
    rig.ok(udp(1), at(0), &v5_packet(3_600_000, 0, 0, &flows));
    // Expected 2; flows 2..=4 never arrived.
    rig.ok(udp(1), at(1), &v5_packet(3_601_000, 5, 0, &flows[..1]));
    rig.ok(udp(1), at(2), &v5_packet(3_602_000, 6, 0, &flows));
    let c = rig.totals();
    assert_eq!(rig.out.flows.len(), 5);
    assert_eq!((c.lost_records, c.lost_packets), (3, 0));
}

#[test]
fn softflowd_inclusive_sequence_numbers_lose_nothing() {
    // softflowd numbers a message with the records sent *including* its own.
    let mut rig = Rig::default();
    let rec = |n: u8| addr_record([10, 0, 0, n], [10, 0, 0, 9]);
    let first = Ipfix::new(1)
        .seq(2)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(256, &[&rec(1), &rec(2)])
        .build();
    let second = Ipfix::new(1).seq(3).set(256, &[&rec(3)]).build();
    let third = Ipfix::new(1)
        .seq(6)
        .set(256, &[&rec(4), &rec(5), &rec(6)])
        .build();
    rig.ok(udp(1), at(0), &first);
    rig.ok(udp(1), at(1), &second);
    rig.ok(udp(1), at(2), &third);
    let c = rig.totals();
    assert_eq!(rig.out.flows.len(), 6);
    assert_eq!(
        (c.lost_records, c.out_of_order, c.sequence_resets),
        (0, 0, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Options data: sampling and interface names
// ---------------------------------------------------------------------------------------------

#[test]
fn sampling_interval_from_options_applies_to_later_records() {
    let mut rig = Rig::default();
    let before = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
        .set(256, &[&flow_record([10, 0, 0, 1], 1, 1_000, 3)])
        .build();
    rig.ok(udp(1), at(0), &before);
    let after = Ipfix::new(1)
        .set(3, &[&sampling_options_template()])
        .set(257, &[&sampling_options_record(1, 100)])
        .set(256, &[&flow_record([10, 0, 0, 2], 2, 1_000, 3)])
        .build();
    rig.ok(udp(1), at(1), &after);
    assert_eq!(rig.out.flows.len(), 2);
    assert_eq!(rig.flow(0).sampling_interval, 1);
    let f = rig.flow(1);
    assert_eq!(f.sampling_interval, 100);
    assert_eq!((f.packets, f.scaled_packets()), (3, 300));
    assert_eq!(f.scaled_octets(), 100_000);
    // Options data of one domain does not sample another.
    let other = Ipfix::new(2)
        .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
        .set(256, &[&flow_record([10, 0, 0, 3], 3, 1_000, 3)])
        .build();
    rig.ok(udp(1), at(2), &other);
    assert_eq!(rig.flow(2).sampling_interval, 1);
}

#[test]
fn selector_scoped_sampling_applies_to_records_naming_each_selector() {
    let mut rig = Rig::default();
    // RFC 5476/5477: per-selector systematic count-based sampling.
    let options = ipfix_options_template(
        258,
        1,
        &[
            ie(302, 8), // scope: selectorId
            ie(305, 4), // samplingPacketInterval: packets selected
            ie(306, 4), // samplingPacketSpace: packets skipped after them
        ],
    );
    let selector = |id: u64, interval: u32, space: u32| {
        [
            &be64(id)[..],   // selectorId
            &be32(interval), // samplingPacketInterval
            &be32(space),    // samplingPacketSpace
        ]
        .concat()
    };
    let fields = [
        ie(8, 4),   // sourceIPv4Address
        ie(302, 8), // selectorId
        ie(2, 4),   // packetDeltaCount
    ];
    let rec = |src: u8, id: u64| {
        [
            &[10, 0, 0, src][..], // sourceIPv4Address
            &be64(id),            // selectorId
            &be32(5),             // packetDeltaCount
        ]
        .concat()
    };
    let msg = Ipfix::new(1)
        .set(3, &[&options])
        .set(258, &[&selector(1, 1, 9), &selector(2, 2, 198)])
        .set(2, &[&ipfix_template(259, &fields)])
        .set(259, &[&rec(1, 1), &rec(2, 2), &rec(3, 3)])
        .build();
    rig.ok(udp(1), at(0), &msg);
    assert_eq!(rig.out.options.len(), 2);
    let got: Vec<_> = rig
        .out
        .flows
        .iter()
        .map(|g| (g.flow.sampling_interval, g.flow.scaled_packets()))
        .collect();
    // 1 of every 10, 2 of every 200, and an unknown selector: unsampled.
    assert_eq!(got, vec![(10, 50), (100, 500), (1, 5)]);
}

#[test]
fn sampling_packet_interval_and_space_in_the_record_itself() {
    let f = one_flow(
        &[
            ie(8, 4),   // sourceIPv4Address
            ie(305, 4), // samplingPacketInterval
            ie(306, 4), // samplingPacketSpace
        ],
        &[
            &[10, 0, 0, 1][..], // sourceIPv4Address
            &be32(1),           // samplingPacketInterval
            &be32(63),          // samplingPacketSpace
        ]
        .concat(),
    );
    assert_eq!(f.sampling_interval, 64);
}

#[test]
fn sampling_fields_at_the_limits_of_their_length_do_not_panic() {
    // Nothing stops an exporter sending 8-byte values where the type is 4 bytes.
    let f = one_flow(
        &[
            ie(8, 4),   // sourceIPv4Address
            ie(305, 8), // samplingPacketInterval, 8 bytes
            ie(306, 8), // samplingPacketSpace, 8 bytes
        ],
        &[
            &[10, 0, 0, 1][..], // sourceIPv4Address
            &be64(u64::MAX),    // samplingPacketInterval
            &be64(u64::MAX),    // samplingPacketSpace
        ]
        .concat(),
    );
    assert!(f.sampling_interval >= 1);
}

#[test]
fn v9_sampler_options_apply_to_records_naming_the_sampler() {
    let mut rig = Rig::default();
    let options = v9_options_template(
        300,
        &[
            (1, 4), // scope: System
        ],
        &[
            (34, 4), // SAMPLING_INTERVAL
            (48, 1), // FLOW_SAMPLER_ID
        ],
    );
    let sampler = |interval: u32, id: u8| {
        [
            &be32(0)[..],    // System scope value
            &be32(interval), // SAMPLING_INTERVAL
            &[id],           // FLOW_SAMPLER_ID
        ]
        .concat()
    };
    let template = v9_template(
        256,
        &[
            (8, 4),  // IPV4_SRC_ADDR
            (2, 4),  // IN_PKTS
            (48, 1), // FLOW_SAMPLER_ID
        ],
    );
    let rec = |src: u8, id: u8| {
        [
            &[10, 0, 0, src][..], // IPV4_SRC_ADDR
            &be32(2),             // IN_PKTS
            &[id],                // FLOW_SAMPLER_ID
        ]
        .concat()
    };
    let pkt = V9::new(1)
        .set(1, &[&options])
        .set(300, &[&sampler(50, 1), &sampler(1_000, 2)])
        .set(0, &[&template])
        .set(256, &[&rec(1, 1), &rec(2, 2)])
        .build();
    rig.ok(udp(1), at(0), &pkt);
    assert_eq!(rig.out.options.len(), 2);
    assert_eq!(rig.out.flows.len(), 2);
    assert_eq!(rig.flow(0).sampling_interval, 50);
    assert_eq!(rig.flow(0).scaled_packets(), 100);
    assert_eq!(rig.flow(1).sampling_interval, 1_000);
    assert_eq!(rig.out.flows[0].version, 9);
}

#[test]
fn v5_header_sampling_applies_to_its_records() {
    let mut rig = Rig::default();
    // Mode 01 (packet interval), interval 100.
    let pkt = v5_packet(
        3_600_000,
        0,
        0x4000 | 100,
        &[v5_flow([10, 0, 0, 1], 3, 180)],
    );
    rig.ok(udp(1), at(0), &pkt);
    let f = rig.flow(0);
    assert_eq!(f.sampling_interval, 100);
    assert_eq!((f.scaled_packets(), f.scaled_octets()), (300, 18_000));
}

#[test]
fn v5_records_are_normalised() {
    let mut rig = Rig::default();
    let flow = V5Flow {
        tcp_flags: 0x1b,
        protocol: 6,
        dst_port: 443,
        ..v5_flow([10, 0, 0, 1], 3, 180)
    };
    rig.ok(udp(1), at(0), &v5_packet(3_600_000, 0, 0, &[flow]));
    let got = &rig.out.flows[0];
    assert_eq!((got.version, got.template_id), (5, 0));
    assert_eq!(got.domain, 0x0102, "engine type 1, engine id 2");
    let f = got.flow;
    assert_eq!((f.src, f.dst), (v4(10, 0, 0, 1), v4(198, 51, 100, 7)));
    assert_eq!((f.src_port, f.dst_port, f.protocol), (40_000, 443, 6));
    assert_eq!((f.tcp_flags, f.packets, f.octets), (0x1b, 3, 180));
    assert_eq!((f.input_interface, f.output_interface), (1, 2));
    // First/Last at 10 s and 1 s before the header's uptime.
    assert_eq!(f.start, Timestamp::from_unix_secs(T0 - 10));
    assert_eq!(f.end, Timestamp::from_unix_secs(T0 - 1));
}

#[test]
fn interface_names_from_options_reach_the_record_metadata() {
    let mut rig = Rig::default();
    let options = ipfix_options_template(
        260,
        1,
        &[
            ie(10, 4),   // scope: ingressInterface
            ie(82, VAR), // interfaceName
        ],
    );
    let name = |index: u32, text: &[u8]| {
        [
            &be32(index)[..],    // ingressInterface
            &[text.len() as u8], // length prefix
            text,                // interfaceName
        ]
        .concat()
    };
    let fields = [
        ie(8, 4),  // sourceIPv4Address
        ie(10, 4), // ingressInterface
        ie(14, 4), // egressInterface
    ];
    let rec = |input: u32, output: u32| {
        [
            &[10, 0, 0, 1][..], // sourceIPv4Address
            &be32(input),       // ingressInterface
            &be32(output),      // egressInterface
        ]
        .concat()
    };
    let msg = Ipfix::new(1)
        .set(3, &[&options])
        .set(260, &[&name(3, b"eth0"), &name(7, b"wan0")])
        .set(2, &[&ipfix_template(256, &fields)])
        .set(256, &[&rec(3, 7), &rec(9, 3)])
        .build();
    rig.ok(udp(1), at(0), &msg);
    let a = &rig.out.flows[0];
    assert_eq!(a.input_name.as_deref(), Some("eth0"));
    assert_eq!(a.output_name.as_deref(), Some("wan0"));
    assert_eq!((a.flow.input_interface, a.flow.output_interface), (3, 7));
    let b = &rig.out.flows[1];
    assert_eq!(b.input_name, None);
    assert_eq!(b.output_name.as_deref(), Some("eth0"));
}

#[test]
fn interface_names_are_stored_at_a_bounded_length() {
    let mut rig = Rig::default();
    let options = ipfix_options_template(
        260,
        1,
        &[
            ie(10, 4),   // scope: ingressInterface
            ie(82, VAR), // interfaceName
        ],
    );
    let long = vec![b'x'; 5_000];
    let name = [
        &be32(3)[..], // ingressInterface
        &[255],       // length prefix: 255, then the length in two bytes
        &be16(5_000), // 5000 bytes
        &long,        // interfaceName
    ]
    .concat();
    let data = [
        &[10, 0, 0, 1][..], // sourceIPv4Address
        &be32(3),           // ingressInterface
    ]
    .concat();
    let msg = Ipfix::new(1)
        .set(3, &[&options])
        .set(260, &[&name])
        .set(
            2,
            &[&ipfix_template(
                256,
                &[
                    ie(8, 4),  // sourceIPv4Address
                    ie(10, 4), // ingressInterface
                ],
            )],
        )
        .set(256, &[&data])
        .build();
    rig.ok(udp(1), at(0), &msg);
    let stored = rig.out.flows[0].input_name.as_deref().unwrap();
    assert_eq!(stored, "x".repeat(255));

    // Two-byte characters: the cut falls inside the 128th, which is left out whole.
    let accents = "\u{e9}".repeat(200);
    let name = [
        &be32(3)[..],       // ingressInterface
        &[255],             // length prefix: 255, then the length in two bytes
        &be16(400),         // 400 bytes
        accents.as_bytes(), // interfaceName
    ]
    .concat();
    let msg = Ipfix::new(1).set(260, &[&name]).set(256, &[&data]).build();
    rig.ok(udp(1), at(1), &msg);
    let stored = rig.out.flows[1].input_name.as_deref().unwrap();
    assert_eq!(stored, "\u{e9}".repeat(127));
}

// ---------------------------------------------------------------------------------------------
// NetFlow v9 times
// ---------------------------------------------------------------------------------------------

/// v9 template 256 with FIRST_SWITCHED and LAST_SWITCHED.
fn v9_time_template() -> Vec<u8> {
    v9_template(
        256,
        &[
            (8, 4),  // IPV4_SRC_ADDR
            (22, 4), // FIRST_SWITCHED
            (21, 4), // LAST_SWITCHED
        ],
    )
}

fn v9_time_record(first: u32, last: u32) -> Vec<u8> {
    [
        &[10, 0, 0, 1][..], // IPV4_SRC_ADDR
        &be32(first),       // FIRST_SWITCHED (sysUptime ms)
        &be32(last),        // LAST_SWITCHED (sysUptime ms)
    ]
    .concat()
}

#[test]
fn v9_first_and_last_switched_are_relative_to_sys_uptime() {
    let mut rig = Rig::default();
    let pkt = V9::new(1)
        .uptime(100_000)
        .set(0, &[&v9_time_template()])
        .set(256, &[&v9_time_record(40_000, 90_000)])
        .build();
    rig.ok(udp(1), at(0), &pkt);
    let f = rig.flow(0);
    assert_eq!(f.start, Timestamp::from_unix_secs(T0 - 60));
    assert_eq!(f.end, Timestamp::from_unix_secs(T0 - 10));
}

#[test]
fn v9_times_across_the_uptime_wrap_around() {
    let mut rig = Rig::default();
    // The exporter's uptime counter wrapped 5 s ago; the flow started 5 s before that and
    // ended 4 s before export.
    let pkt = V9::new(1)
        .uptime(5_000)
        .set(0, &[&v9_time_template()])
        .set(256, &[&v9_time_record(u32::MAX - 4_999, 1_000)])
        .build();
    rig.ok(udp(1), at(0), &pkt);
    let f = rig.flow(0);
    assert_eq!(f.start, Timestamp::from_unix_secs(T0 - 10));
    assert_eq!(f.end, Timestamp::from_unix_secs(T0 - 4));
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

#[test]
fn template_limit_refuses_new_ids_but_refreshes_still_work() {
    let mut rig = Rig::with(DecoderConfig {
        max_templates_per_session: 2,
        ..DecoderConfig::default()
    });
    let two = Ipfix::new(1)
        .set(
            2,
            &[
                &ipfix_template(256, &ADDR_FIELDS),
                &ipfix_template(257, &COUNTER_FIELDS),
            ],
        )
        .build();
    rig.ok(udp(1), at(0), &two);
    let third = Ipfix::new(1)
        .set(2, &[&ipfix_template(258, &ADDR_FIELDS)])
        .build();
    assert_eq!(
        rig.feed(udp(1), at(1), &third),
        Err(DecodeError::TemplateLimit { template_id: 258 })
    );
    assert_eq!(rig.reason("template_limit"), 1);
    assert_eq!(rig.dec.state_size().1, 2);

    // A refresh of 256 and a redefinition of 257 are not new ids.
    let refresh = Ipfix::new(1)
        .set(
            2,
            &[
                &ipfix_template(256, &ADDR_FIELDS),
                &ipfix_template(257, &ADDR_FIELDS),
            ],
        )
        .build();
    rig.ok(udp(1), at(2), &refresh);
    let rec = addr_record([10, 0, 0, 1], [10, 0, 0, 2]);
    let data = Ipfix::new(1)
        .set(256, &[&rec])
        .set(257, &[&rec])
        .set(258, &[&rec])
        .build();
    rig.ok(udp(1), at(3), &data);
    assert_eq!(rig.out.flows.len(), 2);
    assert!(rig.out.flows.iter().all(|g| g.flow.src == v4(10, 0, 0, 1)));
    assert_eq!(rig.totals().pending_sets, 1, "data of 258 is held");
}

#[test]
fn expired_udp_templates_do_not_count_against_the_template_limit() {
    let mut rig = Rig::with(DecoderConfig {
        max_templates_per_session: 2,
        ..short_lifetime()
    });
    let define = |id| {
        Ipfix::new(1)
            .set(2, &[&ipfix_template(id, &ADDR_FIELDS)])
            .build()
    };
    rig.ok(udp(1), at(0), &define(256));
    rig.ok(udp(1), at(0), &define(257));
    // The exporter restarted with new template ids; the old ones were never refreshed.
    rig.ok(udp(1), at(100), &define(300));
    rig.ok(udp(1), at(100), &define(301));
    assert_eq!(rig.reason("template_limit"), 0);
    assert_eq!(rig.dec.state_size().1, 2);
    assert_eq!(rig.totals().templates_expired, 2);
    let rec = addr_record([10, 0, 0, 1], [10, 0, 0, 2]);
    let data = Ipfix::new(1).set(300, &[&rec]).set(301, &[&rec]).build();
    rig.ok(udp(1), at(101), &data);
    assert_eq!(rig.out.flows.len(), 2);
}

#[test]
fn session_limit_refuses_new_exporters_unless_one_is_idle() {
    let mut rig = Rig::with(DecoderConfig {
        max_sessions: 2,
        ..short_lifetime()
    });
    let msg = addr_template_msg();
    rig.ok(udp(1), at(0), &msg);
    rig.ok(udp(2), at(0), &msg);
    rig.ok(udp(2), at(30), &msg);
    assert_eq!(
        rig.feed(udp(3), at(30), &msg),
        Err(DecodeError::SessionLimit)
    );
    assert_eq!(rig.reason("session_limit"), 1);
    assert_eq!(rig.dec.state_size().0, 2);

    // Exporter 1 has now been idle longer than the template lifetime; exporter 2 has not.
    rig.ok(udp(3), at(61), &msg);
    assert_eq!(rig.dec.state_size().0, 2);
    let sessions: Vec<SessionKey> = rig.dec.per_exporter().iter().map(|(k, _, _)| *k).collect();
    assert_eq!(sessions, vec![udp(2), udp(3)]);
    // The evicted session's counts stay in the totals; the refused message is counted too.
    assert_eq!(rig.totals().messages, 5);
    assert_eq!(rig.totals().templates, 4);
}

#[test]
fn domain_limit_refuses_new_domains_per_session() {
    let mut rig = Rig::with(DecoderConfig {
        max_domains_per_session: 2,
        ..DecoderConfig::default()
    });
    let tpl = |domain| {
        Ipfix::new(domain)
            .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
            .build()
    };
    rig.ok(udp(1), at(0), &tpl(1));
    rig.ok(udp(1), at(0), &tpl(2));
    assert_eq!(
        rig.feed(udp(1), at(0), &tpl(3)),
        Err(DecodeError::DomainLimit)
    );
    assert_eq!(rig.reason("domain_limit"), 1);
    rig.ok(udp(1), at(1), &tpl(1));
    // Another session has its own domains.
    rig.ok(udp(2), at(1), &tpl(3));
    assert_eq!(rig.dec.state_size().1, 3);
}

#[test]
fn datagrams_of_unknown_versions_take_no_session_slot() {
    let mut rig = Rig::with(DecoderConfig {
        max_sessions: 1,
        ..DecoderConfig::default()
    });
    // Someone else's protocol sent to the collector's port.
    let junk = [0x16, 0x03, 0x01, 0x00, 0x2a, 0x01, 0x00];
    assert_eq!(
        rig.feed(udp(9), at(0), &junk),
        Err(DecodeError::UnknownVersion(0x1603))
    );
    assert_eq!(rig.dec.state_size().0, 0);
    rig.ok(udp(1), at(1), &addr_template_msg());
    assert_eq!(rig.reason("unknown_version"), 1);
    assert_eq!(rig.totals().errors, 1);
}

/// A small deterministic generator (xorshift64*), so the garbage is the same on every run.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Limits small enough that hostile input reaches them quickly.
fn tight() -> DecoderConfig {
    DecoderConfig {
        template_lifetime: Duration::from_secs(60),
        pending_timeout: Duration::from_secs(10),
        max_pending_bytes: 4_096,
        max_templates_per_session: 8,
        max_domains_per_session: 4,
        max_sessions: 16,
        max_interfaces_per_domain: 16,
        ..DecoderConfig::default()
    }
}

fn assert_bounded(dec: &Decoder, c: &DecoderConfig) {
    let (sessions, templates, pending) = dec.state_size();
    assert!(sessions <= c.max_sessions, "{sessions} sessions");
    assert!(
        templates <= sessions * c.max_templates_per_session,
        "{templates} templates"
    );
    assert!(
        pending <= sessions * c.max_pending_bytes,
        "{pending} pending bytes"
    );
}

#[test]
fn random_garbage_from_many_spoofed_exporters_keeps_state_bounded() {
    let config = DecoderConfig {
        max_sessions: 64,
        ..tight()
    };
    let mut dec = Decoder::new(config.clone());
    let mut sink = Collect::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut refused = 0u64;
    for i in 0..10_000u64 {
        let len = rng.below(300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the datagrams carry a real version number, so the parsers behind it run too.
        if len >= 4 && rng.below(2) == 0 {
            let version = [5u16, 9, 10][rng.below(3) as usize];
            bytes[..2].copy_from_slice(&be16(version));
            if version == 10 {
                bytes[2..4].copy_from_slice(&be16(len as u16));
            }
        }
        let ip = Ipv4Addr::from(0xc633_6400 | (rng.next() as u32 & 0xff)); // 198.51.100.x
        let key = SessionKey::udp(SocketAddr::new(ip.into(), rng.next() as u16), COLLECTOR);
        if dec.decode(&key, at(i / 100), &bytes, &mut sink).is_err() {
            refused += 1;
        }
        assert_bounded(&dec, &config);
    }
    assert!(refused > 9_000, "{refused} of 10000 refused");
    let counted: u64 = dec.errors_by_reason().values().sum();
    assert!(counted >= refused, "{counted} errors counted");
    assert!(dec.totals().errors >= refused);
    assert!(dec.errors_by_reason().contains_key("unknown_version"));
    assert!(dec.errors_by_reason().contains_key("session_limit"));
}

// ---------------------------------------------------------------------------------------------
// Snapshot and restore
// ---------------------------------------------------------------------------------------------

/// A decoder that has seen template 256 from UDP exporter 1 (domain 5) and TCP exporter 2.
fn decoder_with_templates() -> Decoder {
    let mut dec = Decoder::new(short_lifetime());
    let mut sink = Collect::default();
    let tpl = Ipfix::new(5)
        .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
        .build();
    dec.decode(&udp(1), at(0), &tpl, &mut sink).unwrap();
    dec.decode(&tcp(2), at(0), &tpl, &mut sink).unwrap();
    dec
}

#[test]
fn snapshot_round_trips_through_json_and_keeps_only_udp_templates() {
    let snap = decoder_with_templates().snapshot();
    assert_eq!(snap.templates.len(), 1);
    assert_eq!(snap.templates[0].session, udp(1));
    assert_eq!(snap.templates[0].domain, 5);
    assert_eq!(snap.templates[0].refreshed, at(0));
    let json = serde_json::to_string(&snap).unwrap();
    let back: TemplateSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
}

#[test]
fn restored_templates_decode_data_without_a_new_template() {
    let json = serde_json::to_string(&decoder_with_templates().snapshot()).unwrap();
    let snap: TemplateSnapshot = serde_json::from_str(&json).unwrap();

    // Arrival times here stand for time passing, not for a clock that disagrees with the
    // exporter's: records keep their times as exported.
    let mut config = short_lifetime();
    config.clock.correct = false;
    let mut rig = Rig::with(config);
    assert_eq!(rig.dec.restore(&snap, at(30)), 1);
    let data = Ipfix::new(5)
        .set(256, &[&flow_record([10, 0, 0, 7], 7_000, 700, 7)])
        .build();
    rig.ok(udp(1), at(31), &data);
    assert_eq!(rig.out.flows.len(), 1);
    let f = rig.flow(0);
    assert_eq!(
        (f.src, f.src_port, f.octets, f.packets),
        (v4(10, 0, 0, 7), 7_000, 700, 7)
    );
    assert_eq!(f.start, Timestamp::from_unix_millis(START_MS));
    // The restored template still expires a lifetime after it was last received.
    rig.ok(udp(1), at(61), &data);
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.totals().templates_expired, 1);
}

#[test]
fn expired_templates_are_not_restored() {
    let snap = decoder_with_templates().snapshot();
    let mut rig = Rig::with(short_lifetime());
    assert_eq!(rig.dec.restore(&snap, at(61)), 0);
    assert_eq!(rig.dec.state_size().1, 0);
    let data = Ipfix::new(5)
        .set(256, &[&flow_record([10, 0, 0, 7], 7_000, 700, 7)])
        .build();
    rig.ok(udp(1), at(62), &data);
    assert!(rig.out.flows.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Broken messages
// ---------------------------------------------------------------------------------------------

#[test]
fn truncated_message_is_counted_as_truncated() {
    let mut rig = Rig::default();
    let mut msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .build();
    msg.truncate(msg.len() - 3); // the header still claims the full length
    assert!(matches!(
        rig.feed(udp(1), at(0), &msg),
        Err(DecodeError::Wire(botnest_wire::Error::Truncated { .. }))
    ));
    assert_eq!(rig.reason("truncated"), 1);
    assert_eq!(rig.dec.state_size().1, 0);
    // Shorter than a message header.
    assert!(rig.feed(udp(1), at(0), &msg[..10]).is_err());
    assert_eq!(rig.reason("truncated"), 2);
    assert_eq!(rig.totals().errors, 2);
}

#[test]
fn message_length_shorter_than_its_header_is_a_bad_length() {
    let mut rig = Rig::default();
    let mut msg = addr_template_msg();
    msg[2..4].copy_from_slice(&be16(12)); // Length: 12, less than the 16-byte header
    assert!(rig.feed(udp(1), at(0), &msg).is_err());
    assert_eq!(rig.reason("bad_length"), 1);
}

#[test]
fn set_length_past_the_message_is_counted_and_earlier_sets_still_decode() {
    let mut rig = Rig::default();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(256, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .raw(&[
            1, 0, // Set ID 256
            0, 200, // Length: 200, past the end of the message
            10, 0, 0, 3, // the only bytes there
        ])
        .build();
    assert!(matches!(
        rig.feed(udp(1), at(0), &msg),
        Err(DecodeError::Wire(botnest_wire::Error::Truncated {
            what: "set",
            ..
        }))
    ));
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.reason("truncated"), 1);
    assert_eq!(rig.totals().errors, 1);
}

#[test]
fn reserved_set_id_is_counted_and_the_next_set_decodes() {
    let mut rig = Rig::default();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &ADDR_FIELDS)])
        .set(7, &[&[0, 0, 0, 0]]) // set id 7 is reserved
        .set(256, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .build();
    assert!(rig.feed(udp(1), at(0), &msg).is_err());
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.reason("reserved_set_id"), 1);
}

#[test]
fn ipfix_template_without_bytes_is_refused_and_the_next_template_defines() {
    let mut rig = Rig::default();
    let empty = ipfix_template(
        256,
        &[
            ie(8, 0), // sourceIPv4Address with length 0: no record can be carried
        ],
    );
    let msg = Ipfix::new(1)
        .set(2, &[&empty, &ipfix_template(257, &ADDR_FIELDS)])
        .set(257, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .build();
    assert!(matches!(
        rig.feed(udp(1), at(0), &msg),
        Err(DecodeError::Wire(botnest_wire::Error::EmptyTemplate {
            template_id: 256,
            ..
        }))
    ));
    assert_eq!(rig.reason("empty_template"), 1);
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.dec.state_size().1, 1);
}

#[test]
fn v9_zero_field_template_is_refused_and_the_next_template_defines() {
    let mut rig = Rig::default();
    let pkt = V9::new(1)
        .set(0, &[&v9_template(256, &[]), &v9_addr_template_as(257)])
        .set(257, &[&addr_record([10, 0, 0, 1], [10, 0, 0, 2])])
        .build();
    assert!(rig.feed(udp(1), at(0), &pkt).is_err());
    assert_eq!(rig.reason("empty_template"), 1);
    assert_eq!(rig.out.flows.len(), 1);
}

fn v9_addr_template_as(id: u16) -> Vec<u8> {
    v9_template(
        id,
        &[
            (8, 4),  // IPV4_SRC_ADDR
            (12, 4), // IPV4_DST_ADDR
        ],
    )
}

#[test]
fn unknown_version_is_counted() {
    let mut rig = Rig::default();
    let mut msg = addr_template_msg();
    msg[..2].copy_from_slice(&be16(7));
    assert_eq!(
        rig.feed(udp(1), at(0), &msg),
        Err(DecodeError::UnknownVersion(7))
    );
    assert_eq!(
        rig.feed(udp(1), at(0), &[0]),
        Err(DecodeError::UnknownVersion(0))
    );
    assert_eq!(rig.reason("unknown_version"), 2);
    assert_eq!(rig.totals().errors, 2);
}

#[test]
fn variable_length_record_past_its_set_is_an_overrun_after_the_good_records() {
    let mut rig = Rig::default();
    let fields = [
        ie(8, 4),    // sourceIPv4Address
        ie(82, VAR), // interfaceName
    ];
    let good = [
        &[10, 0, 0, 1][..], // sourceIPv4Address
        &[2],               // length prefix
        b"e0",              // interfaceName
    ]
    .concat();
    let bad = [
        &[10, 0, 0, 2][..], // sourceIPv4Address
        &[40],              // length prefix: 40 bytes, 2 there
        b"e1",              // interfaceName, cut short
    ]
    .concat();
    let msg = Ipfix::new(1)
        .set(2, &[&ipfix_template(256, &fields)])
        .set(256, &[&good, &bad])
        .build();
    assert!(matches!(
        rig.feed(udp(1), at(0), &msg),
        Err(DecodeError::RecordOverrun {
            template_id: 256,
            offset: 7
        })
    ));
    assert_eq!(rig.out.flows.len(), 1);
    assert_eq!(rig.reason("record_overrun"), 1);
}

#[test]
fn truncated_v5_and_v9_packets_are_counted() {
    let mut rig = Rig::default();
    let v5 = v5_packet(3_600_000, 0, 0, &[v5_flow([10, 0, 0, 1], 1, 60)]);
    assert!(rig.feed(udp(1), at(0), &v5[..v5.len() - 1]).is_err());
    let v9 = V9::new(1).set(0, &[&v9_addr_template()]).build();
    assert!(rig.feed(udp(1), at(0), &v9[..12]).is_err());
    assert_eq!(rig.reason("truncated"), 2);
    assert!(rig.out.flows.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Valid messages of each format to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let options = Ipfix::new(1)
        .set(3, &[&sampling_options_template()])
        .set(257, &[&sampling_options_record(1, 10)])
        .set(
            2,
            &[&ipfix_template(
                258,
                &[
                    ie(8, 4),    // sourceIPv4Address
                    ie(82, VAR), // interfaceName
                    ie(305, 4),  // samplingPacketInterval
                    ie(306, 4),  // samplingPacketSpace
                ],
            )],
        )
        .set(
            258,
            &[&[
                &[10, 0, 0, 1][..], // sourceIPv4Address
                &[3],               // length prefix
                b"eth",             // interfaceName
                &be32(1),           // samplingPacketInterval
                &be32(9),           // samplingPacketSpace
            ]
            .concat()],
        )
        .build();
    vec![
        Ipfix::new(1)
            .set(2, &[&ipfix_template(256, &FLOW_FIELDS)])
            .set(256, &[&flow_record([10, 0, 0, 1], 1, 100, 1)])
            .build(),
        options,
        Ipfix::new(1).set(2, &[&ipfix_withdrawal(2)]).build(),
        V9::new(1)
            .set(0, &[&v9_time_template()])
            .set(256, &[&v9_time_record(1, 2)])
            .build(),
        v5_packet(1, 0, 0x4064, &[v5_flow([10, 0, 0, 1], 1, 60)]),
    ]
}

/// A version to force onto arbitrary bytes, if any.
fn version() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![Just(None), Just(Some(5)), Just(Some(9)), Just(Some(10))]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_state_stays_bounded(
        datagrams in prop::collection::vec(
            (0u16..24, version(), prop::collection::vec(any::<u8>(), 0..400), 0u64..120),
            1..24,
        )
    ) {
        let config = tight();
        let mut dec = Decoder::new(config.clone());
        let mut sink = Collect::default();
        for (port, version, mut bytes, secs) in datagrams {
            if let (Some(v), true) = (version, bytes.len() >= 4) {
                bytes[..2].copy_from_slice(&be16(v));
                if v == 10 {
                    let len = bytes.len() as u16;
                    bytes[2..4].copy_from_slice(&be16(len));
                }
            }
            let key = if port % 5 == 0 { tcp(port) } else { udp(port) };
            let _ = dec.decode(&key, at(secs), &bytes, &mut sink);
            assert_bounded(&dec, &config);
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic_and_state_stays_bounded(
        edits in prop::collection::vec(
            (
                0usize..5,
                prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
                any::<Option<prop::sample::Index>>(),
                0u16..20,
            ),
            1..32,
        )
    ) {
        let config = tight();
        let seeds = seeds();
        let mut dec = Decoder::new(config.clone());
        let mut sink = Collect::default();
        for (i, (seed, flips, cut, port)) in edits.into_iter().enumerate() {
            let mut bytes = seeds[seed].clone();
            for (at_byte, value) in flips {
                let n = at_byte.index(bytes.len());
                bytes[n] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            let _ = dec.decode(&udp(port), at(i as u64), &bytes, &mut sink);
            assert_bounded(&dec, &config);
        }
    }
}
