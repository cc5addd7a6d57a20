//! Realistic export messages for the decode benchmarks, built field by field.
//!
//! Shared by the wire benchmarks (splitting only) and the collector benchmarks (the whole
//! decode and normalisation path), so both measure the same bytes. Each case is one template
//! message (none for v5) and one data message of the size exporters send.

#![allow(dead_code)]

/// Export time of every message: 2025-06-15T15:06:40Z.
pub const EXPORT_SECS: u32 = 1_750_000_000;
/// Exporter boot time, for NetFlow's uptime-relative fields.
pub const BOOT_SECS: u32 = EXPORT_SECS - 86_400;

/// One benchmark case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short name for the report.
    pub name: &'static str,
    /// The message defining the templates (empty for NetFlow v5).
    pub templates: Vec<u8>,
    /// One data message.
    pub data: Vec<u8>,
    /// Flow records in `data`.
    pub records: u64,
    /// Byte offset of the header's sequence number in `data`.
    pub sequence_at: usize,
    /// How much the sequence number grows per message (records, or 1 for v9 packets).
    pub sequence_step: u32,
}

impl Case {
    /// Advances the data message's sequence number, so a decoder sees a gap-free stream.
    pub fn next_sequence(&self, data: &mut [u8]) {
        let at = self.sequence_at;
        let seq = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        let next = seq.wrapping_add(self.sequence_step);
        data[at..at + 4].copy_from_slice(&next.to_be_bytes());
    }
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    vec![
        ipfix_flowblast(),
        ipfix_ovs(),
        ipfix_varlen_x4(),
        netflow9_flowblast(),
        netflow5(),
    ]
}

/// Variable length (RFC 7011 section 7).
const VARLEN: u16 = 0xffff;
/// VMware's enterprise number, used by Open vSwitch for its tunnel elements.
const VMWARE: u32 = 6876;

/// A field: enterprise (0 for IANA), element id, length.
type Field = (u32, u16, u16);

/// The IPv4 template of flowblast and most hardware exporters: 13 fields, counters in
/// reduced-size 4-byte encoding, 47 bytes per record.
const IPFIX_V4: &[Field] = &[
    (0, 8, 4),   // sourceIPv4Address
    (0, 12, 4),  // destinationIPv4Address
    (0, 7, 2),   // sourceTransportPort
    (0, 11, 2),  // destinationTransportPort
    (0, 4, 1),   // protocolIdentifier
    (0, 6, 1),   // tcpControlBits (reduced size)
    (0, 5, 1),   // ipClassOfService
    (0, 1, 4),   // octetDeltaCount (reduced size)
    (0, 2, 4),   // packetDeltaCount (reduced size)
    (0, 152, 8), // flowStartMilliseconds
    (0, 153, 8), // flowEndMilliseconds
    (0, 10, 4),  // ingressInterface
    (0, 14, 4),  // egressInterface
];

/// The same with IPv6 addresses: 71 bytes per record.
const IPFIX_V6: &[Field] = &[
    (0, 27, 16), // sourceIPv6Address
    (0, 28, 16), // destinationIPv6Address
    (0, 7, 2),
    (0, 11, 2),
    (0, 4, 1),
    (0, 6, 1),
    (0, 5, 1),
    (0, 1, 4),
    (0, 2, 4),
    (0, 152, 8),
    (0, 153, 8),
    (0, 10, 4),
    (0, 14, 4),
];

/// NetFlow v9 IPv4 template of flowblast: as IPFIX, with FIRST/LAST_SWITCHED in uptime ms.
const V9_V4: &[Field] = &[
    (0, 8, 4),  // IPV4_SRC_ADDR
    (0, 12, 4), // IPV4_DST_ADDR
    (0, 7, 2),  // L4_SRC_PORT
    (0, 11, 2), // L4_DST_PORT
    (0, 4, 1),  // PROTOCOL
    (0, 6, 1),  // TCP_FLAGS
    (0, 5, 1),  // SRC_TOS
    (0, 1, 4),  // IN_BYTES
    (0, 2, 4),  // IN_PKTS
    (0, 22, 4), // FIRST_SWITCHED
    (0, 21, 4), // LAST_SWITCHED
    (0, 10, 4), // INPUT_SNMP
    (0, 14, 4), // OUTPUT_SNMP
];

/// The template Open vSwitch 3.1 sends for egress-sampled TCP over IPv4 from a tunnel port (as
/// in `../shared/fixtures/gen/ovs/`, template 283 there): 63 fields, five of them
/// variable-length (the ingress and egress interface names and descriptions, VMware's
/// tunnelKey), times as flowStart/EndDeltaMicroseconds, every counter in 8 bytes.
const OVS_V4_TCP_TUNNEL: &[Field] = &[
    (0, 138, 4),           // observationPointId
    (0, 61, 1),            // flowDirection
    (0, 56, 6),            // sourceMacAddress
    (0, 80, 6),            // destinationMacAddress
    (0, 256, 2),           // ethernetType
    (0, 240, 1),           // ethernetHeaderLength
    (0, 10, 4),            // ingressInterface
    (0, 368, 4),           // ingressInterfaceType
    (0, 82, VARLEN),       // interfaceName
    (0, 83, VARLEN),       // interfaceDescription
    (0, 14, 4),            // egressInterface
    (0, 369, 4),           // egressInterfaceType
    (0, 82, VARLEN),       // interfaceName
    (0, 83, VARLEN),       // interfaceDescription
    (0, 60, 1),            // ipVersion
    (0, 192, 1),           // ipTTL
    (0, 4, 1),             // protocolIdentifier
    (0, 195, 1),           // ipDiffServCodePoint
    (0, 196, 1),           // ipPrecedence
    (0, 5, 1),             // ipClassOfService
    (0, 8, 4),             // sourceIPv4Address
    (0, 12, 4),            // destinationIPv4Address
    (0, 7, 2),             // sourceTransportPort
    (0, 11, 2),            // destinationTransportPort
    (VMWARE, 893, 4),      // tunnelSourceIPv4Address
    (VMWARE, 894, 4),      // tunnelDestinationIPv4Address
    (VMWARE, 895, 1),      // tunnelProtocolIdentifier
    (VMWARE, 896, 2),      // tunnelSourceTransportPort
    (VMWARE, 897, 2),      // tunnelDestinationTransportPort
    (VMWARE, 891, 1),      // tunnelType
    (VMWARE, 892, VARLEN), // tunnelKey
    (0, 158, 4),           // flowStartDeltaMicroseconds
    (0, 159, 4),           // flowEndDeltaMicroseconds
    (0, 133, 8),           // droppedPacketDeltaCount
    (0, 135, 8),           // droppedPacketTotalCount
    (0, 2, 8),             // packetDeltaCount
    (0, 86, 8),            // packetTotalCount
    (0, 354, 8),           // ingressUnicastPacketTotalCount
    (0, 355, 8),           // ingressMulticastPacketTotalCount
    (0, 356, 8),           // ingressBroadcastPacketTotalCount
    (0, 357, 8),           // egressUnicastPacketTotalCount
    (0, 358, 8),           // egressBroadcastPacketTotalCount
    (0, 19, 8),            // postMCastPacketDeltaCount
    (0, 174, 8),           // postMCastPacketTotalCount
    (0, 352, 8),           // layer2OctetDeltaCount
    (0, 353, 8),           // layer2OctetTotalCount
    (0, 136, 1),           // flowEndReason
    (0, 132, 8),           // droppedOctetDeltaCount
    (0, 134, 8),           // droppedOctetTotalCount
    (0, 1, 8),             // octetDeltaCount
    (0, 85, 8),            // octetTotalCount
    (0, 198, 8),           // octetDeltaSumOfSquares
    (0, 199, 8),           // octetTotalSumOfSquares
    (0, 25, 8),            // minimumIpTotalLength
    (0, 26, 8),            // maximumIpTotalLength
    (0, 20, 8),            // postMCastOctetDeltaCount
    (0, 175, 8),           // postMCastOctetTotalCount
    (0, 222, 8),           // tcpAckTotalCount
    (0, 219, 8),           // tcpFinTotalCount
    (0, 221, 8),           // tcpPshTotalCount
    (0, 220, 8),           // tcpRstTotalCount
    (0, 218, 8),           // tcpSynTotalCount
    (0, 223, 8),           // tcpUrgTotalCount
];

/// A small deterministic generator, so every run benchmarks the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn put(buf: &mut Vec<u8>, v: u64, len: usize) {
    buf.extend_from_slice(&v.to_be_bytes()[8 - len..]);
}

fn set_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// A plausible value for one field of one record.
fn value(rng: &mut Lcg, (pen, id, len): Field, buf: &mut Vec<u8>) {
    let export_ms = u64::from(EXPORT_SECS) * 1000;
    let uptime_ms = u64::from(EXPORT_SECS - BOOT_SECS) * 1000;
    match (pen, id, len) {
        (0, 8 | 12, 4) => put(buf, 0x0a00_0000 | rng.below(1 << 24), 4),
        (0, 27 | 28, 16) => {
            put(buf, 0x2001_0db8_0000_0000, 8);
            put(buf, rng.next() << 16 | rng.below(1 << 16), 8);
        }
        (0, 7, _) => put(buf, 1024 + rng.below(60_000), 2),
        (0, 11, _) => put(buf, [443, 80, 53, 123, 22][rng.below(5) as usize], 2),
        (0, 4, _) => put(buf, [6, 17, 6, 6, 1][rng.below(5) as usize], 1),
        (0, 6, l) => put(buf, rng.below(0x40), usize::from(l)),
        (0, 152, _) => put(buf, export_ms - 30_000 - rng.below(30_000), 8),
        (0, 153, _) => put(buf, export_ms - rng.below(30_000), 8),
        (0, 22, _) => put(buf, uptime_ms - 30_000 - rng.below(30_000), 4),
        (0, 21, _) => put(buf, uptime_ms - rng.below(30_000), 4),
        (0, 158, _) => put(buf, 30_000_000 + rng.below(30_000_000), 4),
        (0, 159, _) => put(buf, rng.below(30_000_000), 4),
        (0, 1 | 85 | 352 | 353, l) => put(buf, 40 + rng.below(1_000_000), usize::from(l)),
        (0, 2 | 86, l) => put(buf, 1 + rng.below(1000), usize::from(l)),
        (0, 10 | 14, _) => put(buf, 1 + rng.below(16), 4),
        (0, 82, VARLEN) => {
            // A KVM guest's tap port as OpenStack names it.
            let name = format!("tap{:08x}-{:02x}", rng.next() as u32, rng.below(256));
            buf.push(name.len() as u8);
            buf.extend_from_slice(name.as_bytes());
        }
        // Open vSwitch sends the netdev's `if_descr` status, empty for tap and internal ports.
        (0, 83, VARLEN) => buf.push(0),
        (0, 60, 1) => put(buf, 4, 1),
        (VMWARE, 892, VARLEN) => {
            // A VXLAN network identifier in a 3-byte tunnelKey.
            buf.push(3);
            put(buf, rng.below(1 << 24), 3);
        }
        (VMWARE, 893 | 894, 4) => put(buf, 0xc0a8_0000 | rng.below(1 << 16), 4),
        (VMWARE, 896 | 897, 2) => put(buf, 4789, 2),
        (_, _, l) => put(buf, rng.below(256), usize::from(l)),
    }
}

fn records(rng: &mut Lcg, fields: &[Field], n: usize, buf: &mut Vec<u8>) {
    for _ in 0..n {
        for &f in fields {
            value(rng, f, buf);
        }
    }
}

/// An IPFIX message header (RFC 7011 section 3.1); its length is set by [`ipfix_finish`].
fn ipfix_header(buf: &mut Vec<u8>, sequence: u32, domain: u32) {
    put(buf, 10, 2); // version
    put(buf, 0, 2); // length, set at the end
    put(buf, u64::from(EXPORT_SECS), 4); // export time
    put(buf, u64::from(sequence), 4); // sequence number: data records sent before
    put(buf, u64::from(domain), 4); // observation domain
}

fn ipfix_finish(buf: &mut [u8]) {
    let len = buf.len() as u16;
    set_u16(buf, 2, len);
}

/// A set header followed by `body`, with the set length filled in.
fn set(buf: &mut Vec<u8>, id: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    put(buf, u64::from(id), 2);
    put(buf, 0, 2);
    body(buf);
    let len = (buf.len() - start) as u16;
    set_u16(buf, start + 2, len);
}

/// An IPFIX template record (RFC 7011 section 3.4.1), enterprise bit set for PEN fields.
fn ipfix_template(buf: &mut Vec<u8>, id: u16, fields: &[Field]) {
    put(buf, u64::from(id), 2);
    put(buf, fields.len() as u64, 2);
    for &(pen, ie, len) in fields {
        let enterprise_bit = if pen == 0 { 0 } else { 0x8000 };
        put(buf, u64::from(ie | enterprise_bit), 2);
        put(buf, u64::from(len), 2);
        if pen != 0 {
            put(buf, u64::from(pen), 4);
        }
    }
}

/// flowblast-like IPFIX: 25 IPv4 and 3 IPv6 records in one 1,412-byte message.
pub fn ipfix_flowblast() -> Case {
    let mut t = Vec::new();
    ipfix_header(&mut t, 0, 1);
    set(&mut t, 2, |b| {
        ipfix_template(b, 256, IPFIX_V4);
        ipfix_template(b, 257, IPFIX_V6);
    });
    ipfix_finish(&mut t);

    let mut rng = Lcg(1);
    let mut d = Vec::new();
    ipfix_header(&mut d, 0, 1);
    set(&mut d, 256, |b| records(&mut rng, IPFIX_V4, 25, b));
    set(&mut d, 257, |b| records(&mut rng, IPFIX_V6, 3, b));
    ipfix_finish(&mut d);
    Case {
        name: "ipfix_flowblast",
        templates: t,
        data: d,
        records: 28,
        sequence_at: 8,
        sequence_step: 28,
    }
}

/// Open vSwitch IPFIX as it is sent: one data record per message ("Send an IPFIX message with
/// a single data record" in its exporter), so every record pays for a message header, a set
/// header and the session and template lookups; 365 bytes with the values below.
pub fn ipfix_ovs() -> Case {
    let mut t = Vec::new();
    ipfix_header(&mut t, 0, 123);
    set(&mut t, 2, |b| ipfix_template(b, 283, OVS_V4_TCP_TUNNEL));
    ipfix_finish(&mut t);

    let mut rng = Lcg(2);
    let mut d = Vec::new();
    ipfix_header(&mut d, 0, 123);
    set(&mut d, 283, |b| records(&mut rng, OVS_V4_TCP_TUNNEL, 1, b));
    ipfix_finish(&mut d);
    Case {
        name: "ipfix_ovs",
        templates: t,
        data: d,
        records: 1,
        sequence_at: 8,
        sequence_step: 1,
    }
}

/// The same template with four records per message, as an exporter that fills its messages
/// would send them: what the records cost once per-message work is shared (1,400 bytes).
pub fn ipfix_varlen_x4() -> Case {
    let mut case = ipfix_ovs();
    let mut rng = Lcg(2);
    let mut d = Vec::new();
    ipfix_header(&mut d, 0, 123);
    set(&mut d, 283, |b| records(&mut rng, OVS_V4_TCP_TUNNEL, 4, b));
    ipfix_finish(&mut d);
    case.name = "ipfix_varlen_x4";
    case.data = d;
    case.records = 4;
    case.sequence_step = 4;
    case
}

/// A NetFlow v9 header (RFC 3954 section 5.1); count and sequence as given.
fn v9_header(buf: &mut Vec<u8>, count: u16, sequence: u32) {
    put(buf, 9, 2); // version
    put(buf, u64::from(count), 2); // records (template and data) in the packet
    put(buf, u64::from(EXPORT_SECS - BOOT_SECS) * 1000, 4); // sysUptime
    put(buf, u64::from(EXPORT_SECS), 4); // unix_secs
    put(buf, u64::from(sequence), 4); // package sequence
    put(buf, 1, 4); // source id
}

/// flowblast-like NetFlow v9: 30 IPv4 records (39 bytes each) in one 1,196-byte packet.
pub fn netflow9_flowblast() -> Case {
    let mut t = Vec::new();
    v9_header(&mut t, 1, 0);
    set(&mut t, 0, |b| {
        put(b, 256, 2); // template id
        put(b, V9_V4.len() as u64, 2); // field count
        for &(_, ie, len) in V9_V4 {
            put(b, u64::from(ie), 2);
            put(b, u64::from(len), 2);
        }
    });

    let mut rng = Lcg(3);
    let mut d = Vec::new();
    v9_header(&mut d, 30, 1);
    set(&mut d, 256, |b| {
        records(&mut rng, V9_V4, 30, b);
        // RFC 3954 section 5.3: FlowSets are padded to 32 bits.
        while b.len() % 4 != 0 {
            b.push(0);
        }
    });
    Case {
        name: "netflow9_flowblast",
        templates: t,
        data: d,
        records: 30,
        sequence_at: 12,
        sequence_step: 1,
    }
}

/// NetFlow v5: a full packet of 30 records (1,464 bytes).
pub fn netflow5() -> Case {
    let uptime_ms = u64::from(EXPORT_SECS - BOOT_SECS) * 1000;
    let mut rng = Lcg(4);
    let mut d = Vec::new();
    put(&mut d, 5, 2); // version
    put(&mut d, 30, 2); // count
    put(&mut d, uptime_ms, 4); // sysUptime
    put(&mut d, u64::from(EXPORT_SECS), 4); // unix_secs
    put(&mut d, 0, 4); // unix_nsecs
    put(&mut d, 0, 4); // flow_sequence
    put(&mut d, 0, 1); // engine_type
    put(&mut d, 1, 1); // engine_id
    put(&mut d, 0, 2); // sampling_interval: unsampled
    for _ in 0..30 {
        put(&mut d, 0x0a00_0000 | rng.below(1 << 24), 4); // srcaddr
        put(&mut d, 0x0a00_0000 | rng.below(1 << 24), 4); // dstaddr
        put(&mut d, 0, 4); // nexthop
        put(&mut d, 1 + rng.below(16), 2); // input
        put(&mut d, 1 + rng.below(16), 2); // output
        put(&mut d, 1 + rng.below(1000), 4); // dPkts
        put(&mut d, 40 + rng.below(1_000_000), 4); // dOctets
        put(&mut d, uptime_ms - 30_000 - rng.below(30_000), 4); // first
        put(&mut d, uptime_ms - rng.below(30_000), 4); // last
        put(&mut d, 1024 + rng.below(60_000), 2); // srcport
        put(&mut d, 443, 2); // dstport
        put(&mut d, 0, 1); // pad1
        put(&mut d, rng.below(0x40), 1); // tcp_flags
        put(&mut d, 6, 1); // prot
        put(&mut d, 0, 1); // tos
        put(&mut d, 0, 2); // src_as
        put(&mut d, 0, 2); // dst_as
        put(&mut d, 24, 1); // src_mask
        put(&mut d, 24, 1); // dst_mask
        put(&mut d, 0, 2); // pad2
    }
    Case {
        name: "netflow5",
        templates: Vec::new(),
        data: d,
        records: 30,
        sequence_at: 16,
        sequence_step: 30,
    }
}

/// Criterion measurement of the benchmark thread's own CPU time. This machine is shared, so
/// wall time would also count the time other processes held the core; CPU time gives records
/// per second per core however busy the machine is.
pub mod cpu {
    use criterion::measurement::{Measurement, ValueFormatter};
    use criterion::Throughput;
    use nix::time::{clock_gettime, ClockId};

    /// CPU time of the calling thread, in nanoseconds.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ThreadCpu;

    fn now_ns() -> u64 {
        let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    }

    impl Measurement for ThreadCpu {
        type Intermediate = u64;
        type Value = u64;

        fn start(&self) -> u64 {
            now_ns()
        }

        fn end(&self, start: u64) -> u64 {
            now_ns().saturating_sub(start)
        }

        fn add(&self, a: &u64, b: &u64) -> u64 {
            a + b
        }

        fn zero(&self) -> u64 {
            0
        }

        fn to_f64(&self, v: &u64) -> f64 {
            *v as f64
        }

        fn formatter(&self) -> &dyn ValueFormatter {
            &Nanos
        }
    }

    /// Shows CPU times in ns and throughputs in million elements (or MB) per CPU second.
    struct Nanos;

    impl ValueFormatter for Nanos {
        fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
            "ns cpu"
        }

        fn scale_throughputs(
            &self,
            _typical: f64,
            t: &Throughput,
            values: &mut [f64],
        ) -> &'static str {
            let (per, unit) = match *t {
                Throughput::Elements(n) => (n, "Melem/cpu-s"),
                Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n, "MB/cpu-s"),
            };
            for v in values {
                *v = per as f64 * 1e3 / *v;
            }
            unit
        }

        fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
            "ns"
        }
    }
}
