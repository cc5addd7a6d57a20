//! Compiled templates: turning data records into [`FlowRecord`]s quickly.
//!
//! When a template arrives it is compiled once into a [`Plan`]: for every field botnest uses, the
//! byte offset (for templates without variable-length fields), the length and where the value
//! goes. Decoding a record is then a short loop over those few operations, with no lookups by
//! element id and no allocation.

use crate::ids::*;
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::ie::{ElementId, REVERSE_PEN, VMWARE_PEN};
// Unsigned integers of 1 to 8 bytes (reduced-size encoding, RFC 7011 section 6.2).
use botnest_wire::value::unsigned as uint;
use botnest_wire::{Record, Template, VARIABLE_LENGTH};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where a field's value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    SrcV4,
    DstV4,
    SrcV6,
    DstV6,
    SrcPort,
    DstPort,
    Protocol,
    TcpFlags,
    ReverseTcpFlags,
    Octets(Priority),
    Packets(Priority),
    ReverseOctets(Priority),
    ReversePackets(Priority),
    Start(TimeForm),
    End(TimeForm),
    DurationMillis,
    DurationMicros,
    SystemInitMillis,
    Direction,
    Vlan,
    TunnelKey,
    TunnelSrcV4,
    TunnelDstV4,
    Layer2Segment,
    ObservationPoint,
    Exporter,
    ObservationDomain,
    InputInterface,
    OutputInterface,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    SamplingInterval,
    SamplingPacketInterval,
    SamplingPacketSpace,
    SamplingProbability,
    SamplingSize,
    SamplingPopulation,
    SelectorId,
    TcpFlagCount(u16),
}

/// Which of several counters of the same meaning wins: delta counters over totals over the
/// initiator/responder counters of firewall exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Delta = 0,
    Total = 1,
    Post = 2,
    Initiator = 3,
}

/// How a timestamp is expressed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeForm {
    Seconds,
    Millis,
    /// NTP format (RFC 7011 section 6.1.9), microsecond precision.
    NtpMicros,
    /// NTP format (RFC 7011 section 6.1.10).
    NtpNanos,
    /// Microseconds before the message's export time (Open vSwitch).
    DeltaMicros,
    /// Milliseconds of the exporter's uptime (NetFlow v9 FIRST/LAST_SWITCHED).
    SysUptime,
}

fn target_of(element: ElementId) -> Option<Target> {
    use Target::*;
    if element.enterprise == REVERSE_PEN {
        return Some(match element.id {
            OCTET_DELTA_COUNT => ReverseOctets(Priority::Delta),
            PACKET_DELTA_COUNT => ReversePackets(Priority::Delta),
            OCTET_TOTAL_COUNT => ReverseOctets(Priority::Total),
            PACKET_TOTAL_COUNT => ReversePackets(Priority::Total),
            TCP_CONTROL_BITS => ReverseTcpFlags,
            _ => return None,
        });
    }
    if element.enterprise == VMWARE_PEN {
        return Some(match element.id {
            VMWARE_TUNNEL_KEY => TunnelKey,
            VMWARE_TUNNEL_SOURCE_IPV4 => TunnelSrcV4,
            VMWARE_TUNNEL_DESTINATION_IPV4 => TunnelDstV4,
            _ => return None,
        });
    }
    if element.enterprise != 0 {
        return None;
    }
    Some(match element.id {
        SOURCE_IPV4_ADDRESS => SrcV4,
        DESTINATION_IPV4_ADDRESS => DstV4,
        SOURCE_IPV6_ADDRESS => SrcV6,
        DESTINATION_IPV6_ADDRESS => DstV6,
        SOURCE_TRANSPORT_PORT => SrcPort,
        DESTINATION_TRANSPORT_PORT => DstPort,
        PROTOCOL_IDENTIFIER => Protocol,
        TCP_CONTROL_BITS => TcpFlags,
        OCTET_DELTA_COUNT => Octets(Priority::Delta),
        PACKET_DELTA_COUNT => Packets(Priority::Delta),
        OCTET_TOTAL_COUNT => Octets(Priority::Total),
        PACKET_TOTAL_COUNT => Packets(Priority::Total),
        POST_OCTET_DELTA_COUNT => Octets(Priority::Post),
        POST_PACKET_DELTA_COUNT => Packets(Priority::Post),
        INITIATOR_OCTETS => Octets(Priority::Initiator),
        INITIATOR_PACKETS => Packets(Priority::Initiator),
        RESPONDER_OCTETS => ReverseOctets(Priority::Initiator),
        RESPONDER_PACKETS => ReversePackets(Priority::Initiator),
        FLOW_START_SECONDS => Start(TimeForm::Seconds),
        FLOW_END_SECONDS => End(TimeForm::Seconds),
        FLOW_START_MILLISECONDS => Start(TimeForm::Millis),
        FLOW_END_MILLISECONDS => End(TimeForm::Millis),
        FLOW_START_MICROSECONDS => Start(TimeForm::NtpMicros),
        FLOW_END_MICROSECONDS => End(TimeForm::NtpMicros),
        FLOW_START_NANOSECONDS => Start(TimeForm::NtpNanos),
        FLOW_END_NANOSECONDS => End(TimeForm::NtpNanos),
        FLOW_START_DELTA_MICROSECONDS => Start(TimeForm::DeltaMicros),
        FLOW_END_DELTA_MICROSECONDS => End(TimeForm::DeltaMicros),
        FLOW_START_SYS_UP_TIME => Start(TimeForm::SysUptime),
        FLOW_END_SYS_UP_TIME => End(TimeForm::SysUptime),
        FLOW_DURATION_MILLISECONDS => DurationMillis,
        FLOW_DURATION_MICROSECONDS => DurationMicros,
        SYSTEM_INIT_TIME_MILLISECONDS => SystemInitMillis,
        FLOW_DIRECTION => Direction,
        VLAN_ID | DOT1Q_VLAN_ID => Vlan,
        LAYER2_SEGMENT_ID => Layer2Segment,
        OBSERVATION_POINT_ID => ObservationPoint,
        EXPORTER_IPV4_ADDRESS | EXPORTER_IPV6_ADDRESS => Exporter,
        OBSERVATION_DOMAIN_ID => ObservationDomain,
        INGRESS_INTERFACE => InputInterface,
        EGRESS_INTERFACE => OutputInterface,
        ICMP_TYPE_CODE_IPV4 | ICMP_TYPE_CODE_IPV6 => IcmpTypeCode,
        // Open vSwitch sends ICMP type and code as separate elements.
        ICMP_TYPE_IPV4 | ICMP_TYPE_IPV6 => IcmpType,
        ICMP_CODE_IPV4 | ICMP_CODE_IPV6 => IcmpCode,
        SAMPLING_INTERVAL | SAMPLER_RANDOM_INTERVAL => SamplingInterval,
        SAMPLING_PACKET_INTERVAL => SamplingPacketInterval,
        SAMPLING_PACKET_SPACE => SamplingPacketSpace,
        SAMPLING_PROBABILITY => SamplingProbability,
        SAMPLING_SIZE => SamplingSize,
        SAMPLING_POPULATION => SamplingPopulation,
        SELECTOR_ID | SAMPLER_ID => SelectorId,
        TCP_FIN_TOTAL_COUNT => TcpFlagCount(0x01),
        TCP_SYN_TOTAL_COUNT => TcpFlagCount(0x02),
        TCP_RST_TOTAL_COUNT => TcpFlagCount(0x04),
        TCP_PSH_TOTAL_COUNT => TcpFlagCount(0x08),
        TCP_ACK_TOTAL_COUNT => TcpFlagCount(0x10),
        TCP_URG_TOTAL_COUNT => TcpFlagCount(0x20),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
struct Op {
    /// Index of the field in the template.
    field: u16,
    /// How many variable-length fields come before this one: the segment of the record it is in.
    segment: u8,
    /// Byte offset from the start of its segment (for a template without variable-length fields,
    /// from the start of the record).
    offset: u16,
    /// Field length (meaningless for variable-length fields, which carry their own).
    len: u16,
    target: Target,
}

/// A template compiled for normalisation.
#[derive(Debug, Clone)]
pub struct Plan {
    ops: Vec<Op>,
    fixed: bool,
    /// For each variable-length field, the offset of its length prefix in its segment; `None`
    /// when the template has too many of them to track per record.
    varlen: Option<Vec<u16>>,
    /// Whether records carry addresses at all (options records and odd templates do not).
    has_addresses: bool,
    /// The straight-line form of the plan, when the template allows it: read with the record's
    /// segments when the template has variable-length fields.
    direct: Option<Direct>,
}

/// Where a value sits in a record: at a fixed offset from the start of its segment (the record
/// itself for fixed-length templates), or, for a variable-length field, the value that the
/// segment's length prefix announces.
#[derive(Debug, Clone, Copy)]
struct At {
    segment: u8,
    offset: u16,
    len: u16,
}

/// Finds the bytes of a value in one record.
trait Locate {
    fn get(&self, at: At) -> Option<&[u8]>;
}

/// A record of a template without variable-length fields: offsets are from its start.
struct Flat<'a>(&'a [u8]);

impl Locate for Flat<'_> {
    #[inline]
    fn get(&self, at: At) -> Option<&[u8]> {
        let start = usize::from(at.offset);
        self.0.get(start..start + usize::from(at.len))
    }
}

/// A record of a template with a few variable-length fields, its segments located from their
/// length prefixes.
struct Segments<'a> {
    bytes: &'a [u8],
    /// Where each segment starts; unused past the template's count.
    starts: [usize; MAX_SEGMENTS + 1],
    /// Start and length of each variable-length value.
    values: [(usize, usize); MAX_SEGMENTS],
}

impl<'a> Segments<'a> {
    /// Reads the length prefixes (RFC 7011 section 7: one byte, or 255 and two more), each at
    /// its offset in its segment. `None` when one lies past the record (which a record split
    /// from its set never does): the general path then reads it.
    #[inline]
    fn new(varlen: &[u16], b: &'a [u8]) -> Option<Segments<'a>> {
        let mut seg = Segments {
            bytes: b,
            starts: [0; MAX_SEGMENTS + 1],
            values: [(0, 0); MAX_SEGMENTS],
        };
        for (k, &off) in varlen.iter().enumerate().take(MAX_SEGMENTS) {
            let at = seg.starts[k] + usize::from(off);
            let (len, prefix) = match b.get(at) {
                Some(255) => match b.get(at + 1..at + 3) {
                    Some(l) => (usize::from(u16::from_be_bytes([l[0], l[1]])), 3),
                    None => return None,
                },
                Some(&n) => (usize::from(n), 1),
                None => return None,
            };
            seg.values[k] = (at + prefix, len);
            seg.starts[k + 1] = at + prefix + len;
        }
        Some(seg)
    }
}

impl Locate for Segments<'_> {
    #[inline]
    fn get(&self, at: At) -> Option<&[u8]> {
        let k = usize::from(at.segment);
        let (start, len) = if at.len == VARIABLE_LENGTH {
            *self.values.get(k)?
        } else {
            (
                self.starts.get(k)? + usize::from(at.offset),
                usize::from(at.len),
            )
        };
        self.bytes.get(start..start + len)
    }
}

/// A plan for the common shapes of flow templates: records that carry each value at most once
/// (or counters of several priorities where the best one is always readable), none of them
/// needing options data or another field of the record. Records are then read by straight-line
/// code, one predictable branch per value, rather than by one dispatch per template field; the
/// values come out exactly as [`store`] and [`resolve`] would give them. Fields botnest does not
/// use are never looked at: their bytes are only skipped by the segment offsets.
#[derive(Debug, Clone, Default)]
struct Direct {
    src: Option<At>,
    dst: Option<At>,
    src_port: Option<At>,
    dst_port: Option<At>,
    protocol: Option<At>,
    tcp_flags: Option<At>,
    reverse_tcp_flags: Option<At>,
    octets: Option<At>,
    packets: Option<At>,
    reverse_octets: Option<At>,
    reverse_packets: Option<At>,
    input_interface: Option<At>,
    output_interface: Option<At>,
    start: Option<(At, TimeForm)>,
    end: Option<(At, TimeForm)>,
    direction: Option<At>,
    observation_point: Option<At>,
    tunnel_key: Option<At>,
    tunnel_src: Option<At>,
    tunnel_dst: Option<At>,
    icmp_type_code: Option<At>,
    icmp_type: Option<At>,
    icmp_code: Option<At>,
    /// VLAN ids in template order (Open vSwitch sends vlanId and dot1qVlanId): the first
    /// non-zero one wins.
    vlans: Vec<At>,
    /// Open vSwitch's per-flag packet counters, each with the flag it stands for.
    flag_counts: Vec<(At, u16)>,
    /// Whether any value of [`Direct::apply_rest`] is read.
    rest: bool,
}

/// A counter's candidate fields by [`Priority`], while a template is compiled.
type Candidates = [Vec<At>; 4];

impl Direct {
    /// The direct form of a template's operations, if each is one it covers and no value is
    /// given twice (where the order of fields would matter).
    fn compile(ops: &[Op]) -> Option<Direct> {
        use Target::*;
        let mut d = Direct::default();
        let mut counters: [Candidates; 4] = Default::default();
        for op in ops {
            let at = At {
                segment: op.segment,
                offset: op.offset,
                len: op.len,
            };
            let slot = match op.target {
                SrcV4 | SrcV6 => &mut d.src,
                DstV4 | DstV6 => &mut d.dst,
                SrcPort => &mut d.src_port,
                DstPort => &mut d.dst_port,
                Protocol => &mut d.protocol,
                TcpFlags => &mut d.tcp_flags,
                ReverseTcpFlags => &mut d.reverse_tcp_flags,
                InputInterface => &mut d.input_interface,
                OutputInterface => &mut d.output_interface,
                Direction => &mut d.direction,
                ObservationPoint => &mut d.observation_point,
                TunnelKey => &mut d.tunnel_key,
                TunnelSrcV4 => &mut d.tunnel_src,
                TunnelDstV4 => &mut d.tunnel_dst,
                IcmpTypeCode => &mut d.icmp_type_code,
                IcmpType => &mut d.icmp_type,
                IcmpCode => &mut d.icmp_code,
                Octets(p) | Packets(p) | ReverseOctets(p) | ReversePackets(p) => {
                    let which = match op.target {
                        Octets(_) => 0,
                        Packets(_) => 1,
                        ReverseOctets(_) => 2,
                        _ => 3,
                    };
                    counters[which][p as usize].push(at);
                    continue;
                }
                Vlan => {
                    d.vlans.push(at);
                    continue;
                }
                TcpFlagCount(bit) => {
                    d.flag_counts.push((at, bit));
                    continue;
                }
                Start(form) if d.start.is_none() => {
                    d.start = Some((at, form));
                    continue;
                }
                End(form) if d.end.is_none() => {
                    d.end = Some((at, form));
                    continue;
                }
                _ => return None,
            };
            if slot.replace(at).is_some() {
                return None;
            }
        }
        let [octets, packets, reverse_octets, reverse_packets] = counters;
        d.octets = best_counter(&octets)?;
        d.packets = best_counter(&packets)?;
        d.reverse_octets = best_counter(&reverse_octets)?;
        d.reverse_packets = best_counter(&reverse_packets)?;
        d.rest = !d.is_basic();
        Some(d)
    }

    #[inline]
    fn apply<L: Locate>(&self, b: &L, header: HeaderTime, out: &mut FlowRecord) -> SamplingFields {
        let value = |at: Option<At>| b.get(at?);
        let uint_at = |at: Option<At>| uint(value(at)?);
        if let Some(v) = value(self.src) {
            out.src = addr(v).unwrap_or(out.src);
        }
        if let Some(v) = value(self.dst) {
            out.dst = addr(v).unwrap_or(out.dst);
        }
        if let Some(v) = value(self.src_port) {
            out.src_port = uint(v).unwrap_or(0) as u16;
        }
        if let Some(v) = value(self.dst_port) {
            out.dst_port = uint(v).unwrap_or(0) as u16;
        }
        if let Some(v) = value(self.protocol) {
            out.protocol = uint(v).unwrap_or(0) as u8;
        }
        if let Some(v) = value(self.tcp_flags) {
            out.tcp_flags |= uint(v).unwrap_or(0) as u16;
        }
        if let Some(v) = value(self.input_interface) {
            out.input_interface = uint(v).unwrap_or(0) as u32;
        }
        if let Some(v) = value(self.output_interface) {
            out.output_interface = uint(v).unwrap_or(0) as u32;
        }
        // A counter given once (or the best of several, always readable) is the one that wins
        // (see `Scratch::first`).
        out.octets = uint_at(self.octets).unwrap_or(out.octets);
        out.packets = uint_at(self.packets).unwrap_or(out.packets);
        out.reverse_octets = uint_at(self.reverse_octets).unwrap_or(out.reverse_octets);
        out.reverse_packets = uint_at(self.reverse_packets).unwrap_or(out.reverse_packets);

        // One start and one end at most, and no duration: each time is read on its own, as
        // `resolve_times` would read it.
        let time = |t: Option<(At, TimeForm)>| {
            let (at, form) = t?;
            time_of(form, b.get(at)?, header)
        };
        let (start, end) = match (time(self.start), time(self.end)) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => (a, a),
            (None, Some(b)) => (b, b),
            (None, None) => {
                let t = Timestamp::from_unix_millis(header.export_millis);
                (t, t)
            }
        };
        out.start = start;
        out.end = end;
        self.apply_rest(b, out);
        SamplingFields::default()
    }

    /// The values that flowblast-like templates lack: kept out of line so that their absence
    /// costs one branch.
    #[inline]
    fn apply_rest<L: Locate>(&self, b: &L, out: &mut FlowRecord) {
        if !self.rest {
            return;
        }
        let value = |at: Option<At>| b.get(at?);
        if let Some(v) = value(self.reverse_tcp_flags) {
            out.reverse_tcp_flags |= uint(v).unwrap_or(0) as u16;
        }
        if let Some(v) = value(self.direction) {
            out.direction = match uint(v) {
                Some(0) => botnest_flow::Direction::Ingress,
                Some(1) => botnest_flow::Direction::Egress,
                _ => botnest_flow::Direction::Unknown,
            };
        }
        if let Some(v) = value(self.observation_point) {
            out.observation_point = uint(v).unwrap_or(0);
        }
        if let Some(v) = value(self.tunnel_key) {
            out.tunnel_key = uint(v).unwrap_or(0);
        }
        if let Some(v) = value(self.tunnel_src) {
            out.tunnel_src = addr(v).filter(|a| !a.is_unspecified());
        }
        if let Some(v) = value(self.tunnel_dst) {
            out.tunnel_dst = addr(v).filter(|a| !a.is_unspecified());
        }
        for &at in &self.vlans {
            if let Some(v) = b.get(at) {
                let vlan = uint(v).unwrap_or(0) as u16 & 0x0fff;
                if out.vlan == 0 {
                    out.vlan = vlan;
                }
            }
        }
        for &(at, bit) in &self.flag_counts {
            if let Some(v) = b.get(at) {
                if uint(v).unwrap_or(0) > 0 {
                    out.tcp_flags |= bit;
                }
            }
        }
        // As `resolve`: a combined ICMP type and code, else separate ones, as the destination
        // port of ICMP flows that have none.
        let icmp = value(self.icmp_type_code)
            .and_then(uint)
            .map(|x| u64::from(x as u16))
            .or_else(|| {
                let ty = u64::from(uint(value(self.icmp_type)?)? as u8);
                let code = value(self.icmp_code)
                    .and_then(uint)
                    .map_or(0, |x| u64::from(x as u8));
                Some((ty << 8) | code)
            });
        if let Some(icmp) = icmp {
            if out.dst_port == 0 && matches!(out.protocol, 1 | 58) {
                out.dst_port = icmp as u16;
            }
        }
    }

    /// Whether the plan reads only the values of [`Direct::apply`] itself.
    fn is_basic(&self) -> bool {
        self.reverse_tcp_flags.is_none()
            && self.direction.is_none()
            && self.observation_point.is_none()
            && self.tunnel_key.is_none()
            && self.tunnel_src.is_none()
            && self.tunnel_dst.is_none()
            && self.icmp_type_code.is_none()
            && self.icmp_type.is_none()
            && self.icmp_code.is_none()
            && self.vlans.is_empty()
            && self.flag_counts.is_empty()
    }
}

/// The field that gives a counter, from its candidates by priority: none, the only one, or the
/// best-priority one when it can always be read (1 to 8 bytes, fixed), since then no other
/// can win. `None` when the choice depends on the record (the outer `Option`).
fn best_counter(by_priority: &Candidates) -> Option<Option<At>> {
    let all: usize = by_priority.iter().map(Vec::len).sum();
    let Some(best) = by_priority.iter().find(|c| !c.is_empty()) else {
        return Some(None);
    };
    if all == 1 {
        return Some(Some(best[0]));
    }
    let readable = (1..=8).contains(&best[0].len);
    (best.len() == 1 && readable).then_some(Some(best[0]))
}

/// Export-header context that records are decoded against.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderTime {
    /// Export time of the message, in ms since the epoch.
    pub export_millis: u64,
    /// Exporter uptime at export, in ms (NetFlow v9 and v5), if the format has it.
    pub sys_uptime_ms: Option<u32>,
    /// When the exporter booted, from options data, for IPFIX sysUpTime-relative times.
    pub system_init_ms: Option<u64>,
}

/// Values read from one record before they are resolved into a [`FlowRecord`]: one slot per
/// value, and a bit per slot saying whether the record set it. Clearing a record's values is
/// clearing the bits, so the scratch costs nothing per record however many slots it has.
#[derive(Debug)]
struct Scratch {
    set: u64,
    slots: [u64; slot::COUNT],
}

/// Slot numbers of [`Scratch`]. Counters take four slots each, one per [`Priority`].
mod slot {
    pub const OCTETS: usize = 0;
    pub const PACKETS: usize = 4;
    pub const REVERSE_OCTETS: usize = 8;
    pub const REVERSE_PACKETS: usize = 12;
    pub const START: usize = 16;
    pub const END: usize = 17;
    pub const START_UPTIME: usize = 18;
    pub const END_UPTIME: usize = 19;
    pub const DURATION_US: usize = 20;
    pub const SYSTEM_INIT_MS: usize = 21;
    pub const ICMP: usize = 22;
    pub const SAMPLING_PACKET_INTERVAL: usize = 23;
    pub const SAMPLING_PACKET_SPACE: usize = 24;
    /// An `f64`, kept as its bits.
    pub const SAMPLING_PROBABILITY: usize = 25;
    pub const SAMPLING_SIZE: usize = 26;
    pub const SAMPLING_POPULATION: usize = 27;
    pub const SAMPLING_INTERVAL: usize = 28;
    pub const SELECTOR: usize = 29;
    pub const LAYER2_SEGMENT: usize = 30;
    pub const ICMP_TYPE: usize = 31;
    pub const ICMP_CODE: usize = 32;
    pub const COUNT: usize = 33;
    /// Every slot that says something about sampling.
    pub const SAMPLING: u64 = 0x7f << SAMPLING_PACKET_INTERVAL;
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            set: 0,
            slots: [0; slot::COUNT],
        }
    }
}

impl Scratch {
    /// Sets a slot, or unsets it when the value was unreadable (a later field of the same
    /// meaning replaces an earlier one, readable or not).
    #[inline]
    fn put(&mut self, slot: usize, v: Option<u64>) {
        match v {
            Some(x) => {
                self.slots[slot] = x;
                self.set |= 1 << slot;
            }
            None => self.set &= !(1 << slot),
        }
    }

    #[inline]
    fn get(&self, slot: usize) -> Option<u64> {
        (self.set & (1 << slot) != 0).then(|| self.slots[slot])
    }

    /// The counter of the best priority that the record carries.
    #[inline]
    fn first(&self, base: usize) -> Option<u64> {
        let present = (self.set >> base) & 0xf;
        (present != 0).then(|| self.slots[base + present.trailing_zeros() as usize])
    }
}

/// What a record says about sampling, for the session to resolve against options data.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingFields {
    /// A 1-in-N rate carried by the record itself.
    pub interval: Option<u32>,
    /// The selector (sampler) id the record refers to.
    pub selector: Option<u64>,
}

impl Plan {
    /// Compiles a template. Fields botnest does not use cost nothing at decode time.
    pub fn compile(template: &Template) -> Plan {
        let mut ops = Vec::new();
        // Variable-length fields split a record into segments whose fields sit at fixed offsets
        // from the segment's start; only the segment starts change from record to record.
        let (mut segment, mut offset) = (0usize, 0usize);
        let mut varlen = Vec::new();
        let mut fixed = true;
        for (i, f) in template.fields.iter().enumerate() {
            if let Some(target) = target_of(f.element) {
                ops.push(Op {
                    field: i as u16,
                    segment: segment.min(usize::from(u8::MAX)) as u8,
                    offset: offset.min(usize::from(u16::MAX)) as u16,
                    len: f.length,
                    target,
                });
            }
            if f.is_variable() {
                fixed = false;
                varlen.push(offset.min(usize::from(u16::MAX)) as u16);
                segment += 1;
                offset = 0;
            } else {
                offset += usize::from(f.length);
            }
        }
        let varlen = (varlen.len() <= MAX_SEGMENTS).then_some(varlen);
        let has_addresses = ops.iter().any(|o| {
            matches!(
                o.target,
                Target::SrcV4 | Target::SrcV6 | Target::DstV4 | Target::DstV6
            )
        });
        let direct = if fixed || varlen.is_some() {
            Direct::compile(&ops)
        } else {
            None
        };
        Plan {
            ops,
            fixed,
            varlen,
            has_addresses,
            direct,
        }
    }

    /// Whether records of this template describe flows (they carry addresses).
    pub fn is_flow(&self) -> bool {
        self.has_addresses
    }

    /// Decodes one record into `out`, which the caller has filled with the context (exporter,
    /// domain) and defaults. Returns what the record says about sampling.
    pub fn apply(
        &self,
        record: &Record<'_>,
        header: HeaderTime,
        out: &mut FlowRecord,
    ) -> SamplingFields {
        if let Some(direct) = &self.direct {
            if self.fixed {
                return direct.apply(&Flat(record.bytes()), header, out);
            }
            if let Some(varlen) = &self.varlen {
                if let Some(segments) = Segments::new(varlen, record.bytes()) {
                    return direct.apply(&segments, header, out);
                }
            }
        }
        let s = &mut Scratch::default();
        if self.fixed {
            let bytes = record.bytes();
            for op in &self.ops {
                let start = usize::from(op.offset);
                if let Some(v) = bytes.get(start..start + usize::from(op.len)) {
                    store(op.target, v, s, out);
                }
            }
        } else if let Some(varlen) = &self.varlen {
            self.apply_segmented(varlen, record.bytes(), s, out);
        } else {
            let mut next = self.ops.iter().peekable();
            for (i, (_, v)) in record.fields().enumerate() {
                while let Some(op) = next.next_if(|op| usize::from(op.field) == i) {
                    store(op.target, v, s, out);
                }
                if next.peek().is_none() {
                    break;
                }
            }
        }
        resolve(s, header, out)
    }
}

impl Plan {
    /// Reads a record of a template with a few variable-length fields: their length prefixes
    /// give the segment starts, and every other value is at a fixed offset in its segment. The
    /// record was measured when it was split, so no slice below can fall outside it; `get`
    /// keeps that checked.
    fn apply_segmented(&self, varlen: &[u16], b: &[u8], s: &mut Scratch, out: &mut FlowRecord) {
        let mut starts = [0usize; MAX_SEGMENTS + 1];
        let mut values = [(0usize, 0usize); MAX_SEGMENTS];
        for (k, &off) in varlen.iter().enumerate() {
            let at = starts[k] + usize::from(off);
            // RFC 7011 section 7: one length byte, or 255 and two more.
            let (len, prefix) = match b.get(at) {
                Some(255) => match b.get(at + 1..at + 3) {
                    Some(l) => (usize::from(u16::from_be_bytes([l[0], l[1]])), 3),
                    None => return,
                },
                Some(&n) => (usize::from(n), 1),
                None => return,
            };
            values[k] = (at + prefix, len);
            starts[k + 1] = at + prefix + len;
        }
        for op in &self.ops {
            let seg = usize::from(op.segment);
            let value = if op.len == VARIABLE_LENGTH {
                let (start, len) = values[seg];
                b.get(start..start + len)
            } else {
                let start = starts[seg] + usize::from(op.offset);
                b.get(start..start + usize::from(op.len))
            };
            if let Some(v) = value {
                store(op.target, v, s, out);
            }
        }
    }
}

/// Most variable-length fields a template may have for the segmented reading; templates with
/// more (rare) are read field by field.
const MAX_SEGMENTS: usize = 8;

#[inline]
fn v4(v: &[u8]) -> Option<IpAddr> {
    let b: [u8; 4] = v.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(b)))
}

#[inline]
fn v6(v: &[u8]) -> Option<IpAddr> {
    let b: [u8; 16] = v.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(b)))
}

/// Seconds between 1900-01-01 (the NTP era) and 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Converts an NTP timestamp (RFC 7011 section 6.1.9/6.1.10) to UNIX time. RFC 7011 says the
/// microsecond form ignores the low 11 bits of the fraction.
fn ntp(v: &[u8], micros: bool) -> Option<Timestamp> {
    let raw = u64::from_be_bytes(v.try_into().ok()?);
    let secs = (raw >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let mut frac = raw & 0xffff_ffff;
    if micros {
        frac &= !0x7ff;
    }
    let nanos = (frac * 1_000_000_000) >> 32;
    Some(Timestamp(secs * 1_000_000_000 + nanos))
}

#[inline]
fn store(target: Target, v: &[u8], s: &mut Scratch, out: &mut FlowRecord) {
    use Target::*;
    match target {
        SrcV4 | SrcV6 => out.src = addr(v).unwrap_or(out.src),
        DstV4 | DstV6 => out.dst = addr(v).unwrap_or(out.dst),
        SrcPort => out.src_port = uint(v).unwrap_or(0) as u16,
        DstPort => out.dst_port = uint(v).unwrap_or(0) as u16,
        Protocol => out.protocol = uint(v).unwrap_or(0) as u8,
        TcpFlags => out.tcp_flags |= uint(v).unwrap_or(0) as u16,
        ReverseTcpFlags => out.reverse_tcp_flags |= uint(v).unwrap_or(0) as u16,
        Octets(p) => s.put(slot::OCTETS + p as usize, uint(v)),
        Packets(p) => s.put(slot::PACKETS + p as usize, uint(v)),
        ReverseOctets(p) => s.put(slot::REVERSE_OCTETS + p as usize, uint(v)),
        ReversePackets(p) => s.put(slot::REVERSE_PACKETS + p as usize, uint(v)),
        Start(form) => set_time(form, v, s, slot::START, slot::START_UPTIME),
        End(form) => set_time(form, v, s, slot::END, slot::END_UPTIME),
        DurationMillis => s.put(slot::DURATION_US, uint(v).map(|x| x.saturating_mul(1000))),
        DurationMicros => s.put(slot::DURATION_US, uint(v)),
        SystemInitMillis => s.put(slot::SYSTEM_INIT_MS, uint(v)),
        Direction => {
            out.direction = match uint(v) {
                Some(0) => botnest_flow::Direction::Ingress,
                Some(1) => botnest_flow::Direction::Egress,
                _ => botnest_flow::Direction::Unknown,
            }
        }
        Vlan => {
            let vlan = uint(v).unwrap_or(0) as u16 & 0x0fff;
            if out.vlan == 0 {
                out.vlan = vlan;
            }
        }
        TunnelKey => out.tunnel_key = uint(v).unwrap_or(0),
        TunnelSrcV4 => out.tunnel_src = addr(v).filter(|a| !a.is_unspecified()),
        TunnelDstV4 => out.tunnel_dst = addr(v).filter(|a| !a.is_unspecified()),
        Layer2Segment => s.put(slot::LAYER2_SEGMENT, uint(v)),
        ObservationPoint => out.observation_point = uint(v).unwrap_or(0),
        // An exporter that names itself (or a file that recorded who exported) wins over the
        // transport address, which may be a relay's.
        Exporter => {
            out.exporter = addr(v)
                .filter(|a| !a.is_unspecified())
                .unwrap_or(out.exporter)
        }
        ObservationDomain => {
            if let Some(d) = uint(v) {
                out.observation_domain = d as u32;
            }
        }
        InputInterface => out.input_interface = uint(v).unwrap_or(0) as u32,
        OutputInterface => out.output_interface = uint(v).unwrap_or(0) as u32,
        IcmpTypeCode => s.put(slot::ICMP, uint(v).map(|x| u64::from(x as u16))),
        IcmpType => s.put(slot::ICMP_TYPE, uint(v).map(|x| u64::from(x as u8))),
        IcmpCode => s.put(slot::ICMP_CODE, uint(v).map(|x| u64::from(x as u8))),
        SamplingInterval => s.put(slot::SAMPLING_INTERVAL, uint(v)),
        SamplingPacketInterval => s.put(slot::SAMPLING_PACKET_INTERVAL, uint(v)),
        SamplingPacketSpace => s.put(slot::SAMPLING_PACKET_SPACE, uint(v)),
        SamplingProbability => s.put(slot::SAMPLING_PROBABILITY, float(v).map(f64::to_bits)),
        SamplingSize => s.put(slot::SAMPLING_SIZE, uint(v)),
        SamplingPopulation => s.put(slot::SAMPLING_POPULATION, uint(v)),
        SelectorId => s.put(slot::SELECTOR, uint(v)),
        TcpFlagCount(bit) => {
            if uint(v).unwrap_or(0) > 0 {
                out.tcp_flags |= bit;
            }
        }
    }
}

/// Stores an absolute time, or keeps a relative one raw until the whole record has been read.
#[inline]
fn set_time(form: TimeForm, v: &[u8], s: &mut Scratch, absolute: usize, rel: usize) {
    let ns = |t: Timestamp| t.0;
    match form {
        TimeForm::Seconds => s.put(absolute, uint(v).map(|x| ns(Timestamp::from_unix_secs(x)))),
        TimeForm::Millis => s.put(
            absolute,
            uint(v).map(|x| ns(Timestamp::from_unix_millis(x))),
        ),
        TimeForm::NtpMicros => s.put(absolute, ntp(v, true).map(ns)),
        TimeForm::NtpNanos => s.put(absolute, ntp(v, false).map(ns)),
        TimeForm::DeltaMicros => s.put(rel, uint(v).map(|x| x | DELTA_TAG)),
        TimeForm::SysUptime => s.put(rel, uint(v)),
    }
}

/// A time read on its own, with no other field of the record to refer to: absolute forms
/// directly, relative ones against the message header.
#[inline]
fn time_of(form: TimeForm, v: &[u8], header: HeaderTime) -> Option<Timestamp> {
    match form {
        TimeForm::Seconds => uint(v).map(Timestamp::from_unix_secs),
        TimeForm::Millis => uint(v).map(Timestamp::from_unix_millis),
        TimeForm::NtpMicros => ntp(v, true),
        TimeForm::NtpNanos => ntp(v, false),
        TimeForm::DeltaMicros => relative(uint(v)? | DELTA_TAG, header, header.system_init_ms),
        TimeForm::SysUptime => relative(uint(v)?, header, header.system_init_ms),
    }
}

/// Marks a relative time as microseconds before export rather than uptime milliseconds.
const DELTA_TAG: u64 = 1 << 63;

fn addr(v: &[u8]) -> Option<IpAddr> {
    v4(v).or_else(|| v6(v))
}

fn float(v: &[u8]) -> Option<f64> {
    match v.len() {
        4 => Some(f64::from(f32::from_be_bytes(v.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(v.try_into().ok()?)),
        _ => None,
    }
}

/// Resolves a relative time: Open vSwitch's microseconds before export, or NetFlow's uptime
/// milliseconds. Uptime wraps every 49.7 days, so the difference to the header's uptime is taken
/// modulo 2^32 and read as signed (a flow can end just after the counter wrapped).
fn relative(raw: u64, header: HeaderTime, system_init_ms: Option<u64>) -> Option<Timestamp> {
    let export = Timestamp::from_unix_millis(header.export_millis);
    if raw & DELTA_TAG != 0 {
        let micros = raw & !DELTA_TAG;
        return Some(export.offset_nanos(-(micros.min(i64::MAX as u64 / 1000) as i64) * 1000));
    }
    if let Some(uptime) = header.sys_uptime_ms {
        let ago = uptime.wrapping_sub(raw as u32) as i32;
        return Some(export.offset_nanos(-i64::from(ago) * 1_000_000));
    }
    // IPFIX flowStart/EndSysUpTime are relative to systemInitTimeMilliseconds (RFC 7012). An
    // exporter replaying old packets (softflowd reading a capture) reports flows from before
    // its own start as uptimes wrapped below zero; a flow cannot start after the message that
    // reports it, so such a value is read as negative.
    let init = system_init_ms?;
    let t = init.saturating_add(raw);
    let export = header.export_millis;
    if raw >= 1 << 31 && t > export.saturating_add(60_000) {
        return Some(Timestamp::from_unix_millis(t.saturating_sub(1 << 32)));
    }
    Some(Timestamp::from_unix_millis(t))
}

#[inline]
fn resolve(s: &Scratch, header: HeaderTime, out: &mut FlowRecord) -> SamplingFields {
    if let Some(o) = s.first(slot::OCTETS) {
        out.octets = o;
    }
    if let Some(p) = s.first(slot::PACKETS) {
        out.packets = p;
    }
    if let Some(o) = s.first(slot::REVERSE_OCTETS) {
        out.reverse_octets = o;
    }
    if let Some(p) = s.first(slot::REVERSE_PACKETS) {
        out.reverse_packets = p;
    }
    resolve_times(s, header, out);

    let icmp = s.get(slot::ICMP).or_else(|| {
        let ty = s.get(slot::ICMP_TYPE)?;
        Some((ty << 8) | s.get(slot::ICMP_CODE).unwrap_or(0))
    });
    if let Some(icmp) = icmp {
        if out.dst_port == 0 && matches!(out.protocol, 1 | 58) {
            out.dst_port = icmp as u16;
        }
    }
    if out.tunnel_key == 0 {
        // layer2SegmentId: one byte of segment type, then the id (RFC 7133 section 4.4.1).
        if let Some(seg) = s.get(slot::LAYER2_SEGMENT) {
            out.tunnel_key = seg & 0x00ff_ffff_ffff_ffff;
        }
    }
    if s.set & slot::SAMPLING == 0 {
        return SamplingFields::default();
    }
    resolve_sampling(s)
}

fn resolve_times(s: &Scratch, header: HeaderTime, out: &mut FlowRecord) {
    let init = s.get(slot::SYSTEM_INIT_MS).or(header.system_init_ms);
    let start = s
        .get(slot::START)
        .map(Timestamp)
        .or_else(|| relative(s.get(slot::START_UPTIME)?, header, init));
    let end = s
        .get(slot::END)
        .map(Timestamp)
        .or_else(|| relative(s.get(slot::END_UPTIME)?, header, init));
    // Capped so that a hostile duration cannot wrap negative and put the end before the start.
    let dur = s
        .get(slot::DURATION_US)
        .map(|us| us.saturating_mul(1000).min(i64::MAX as u64) as i64);
    let (start, end) = match (start, end, dur) {
        (Some(a), Some(b), _) => (a, b),
        (Some(a), None, Some(d)) => (a, a.offset_nanos(d)),
        (None, Some(b), Some(d)) => (b.offset_nanos(-d), b),
        (Some(a), None, None) => (a, a),
        (None, Some(b), None) => (b, b),
        // No time at all: the flow was current when the message was exported.
        (None, None, _) => {
            let t = Timestamp::from_unix_millis(header.export_millis);
            (t, t)
        }
    };
    out.start = start;
    out.end = end;
}

fn resolve_sampling(s: &Scratch) -> SamplingFields {
    let interval = if let Some(i) = s.get(slot::SAMPLING_INTERVAL) {
        Some(i)
    } else if let Some(n) = s.get(slot::SAMPLING_PACKET_INTERVAL) {
        // RFC 5477: n packets selected, then `space` packets skipped. The values come from the
        // wire at any length up to 8 bytes, so the sum may not fit.
        let space = s.get(slot::SAMPLING_PACKET_SPACE).unwrap_or(0);
        (n > 0).then(|| n.saturating_add(space) / n)
    } else if let (Some(size), Some(population)) =
        (s.get(slot::SAMPLING_SIZE), s.get(slot::SAMPLING_POPULATION))
    {
        // RFC 5477 random n-out-of-N: `size` packets drawn from each `population`.
        (size > 0).then(|| population / size)
    } else {
        s.get(slot::SAMPLING_PROBABILITY)
            .map(f64::from_bits)
            .filter(|p| *p > 0.0 && *p <= 1.0)
            .map(|p| (1.0 / p).round() as u64)
    };
    SamplingFields {
        interval: interval
            .filter(|&i| i > 0)
            .map(|i| i.min(u64::from(u32::MAX)) as u32),
        selector: s.get(slot::SELECTOR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botnest_wire::FieldSpec;
    use proptest::strategy::Strategy;

    /// Applies a one-record template to `body`.
    fn apply(
        fields: &[FieldSpec],
        body: &[u8],
        header: HeaderTime,
    ) -> (FlowRecord, SamplingFields) {
        let template = Template {
            id: 256,
            scope_field_count: 0,
            fields: fields.to_vec(),
        };
        let record = template.records(body).next().unwrap().unwrap();
        let mut out = FlowRecord::default();
        let sampling = Plan::compile(&template).apply(&record, header, &mut out);
        (out, sampling)
    }

    fn export_at(secs: u64) -> HeaderTime {
        HeaderTime {
            export_millis: secs * 1000,
            ..HeaderTime::default()
        }
    }

    #[test]
    fn packet_interval_and_space_at_the_u64_limit_saturate() {
        let mut body = u64::MAX.to_be_bytes().to_vec(); // samplingPacketInterval
        body.extend(u64::MAX.to_be_bytes()); // samplingPacketSpace
        let fields = [
            FieldSpec::iana(SAMPLING_PACKET_INTERVAL, 8),
            FieldSpec::iana(SAMPLING_PACKET_SPACE, 8),
        ];
        let (_, s) = apply(&fields, &body, HeaderTime::default());
        assert_eq!(s.interval, Some(1));
    }

    #[test]
    fn huge_duration_does_not_end_before_the_start() {
        let mut body = 1_000u64.to_be_bytes().to_vec(); // flowStartSeconds
        body.extend(u64::MAX.to_be_bytes()); // flowDurationMilliseconds
        let fields = [
            FieldSpec::iana(FLOW_START_SECONDS, 8),
            FieldSpec::iana(FLOW_DURATION_MILLISECONDS, 8),
        ];
        let (f, _) = apply(&fields, &body, export_at(2_000));
        assert_eq!(f.start, Timestamp::from_unix_secs(1_000));
        assert!(f.end >= f.start);
    }

    #[test]
    fn delta_counters_win_over_totals_in_any_order() {
        let mut body = 900u32.to_be_bytes().to_vec(); // octetTotalCount
        body.extend(40u32.to_be_bytes()); // octetDeltaCount
        let fields = [
            FieldSpec::iana(OCTET_TOTAL_COUNT, 4),
            FieldSpec::iana(OCTET_DELTA_COUNT, 4),
        ];
        let (f, _) = apply(&fields, &body, HeaderTime::default());
        assert_eq!(f.octets, 40);
    }

    #[test]
    fn uptime_times_without_any_reference_fall_back_to_export_time() {
        // IPFIX flowStartSysUpTime with no systemInitTimeMilliseconds known.
        let body = 5_000u32.to_be_bytes();
        let fields = [FieldSpec::iana(FLOW_START_SYS_UP_TIME, 4)];
        let (f, _) = apply(&fields, &body, export_at(2_000));
        assert_eq!(
            (f.start, f.end),
            (
                Timestamp::from_unix_secs(2_000),
                Timestamp::from_unix_secs(2_000)
            )
        );
    }

    /// The flowblast / hardware-exporter IPv4 layout: 13 fixed fields, counters in 4 bytes.
    fn flowblast_fields() -> Vec<FieldSpec> {
        [
            (SOURCE_IPV4_ADDRESS, 4),
            (DESTINATION_IPV4_ADDRESS, 4),
            (SOURCE_TRANSPORT_PORT, 2),
            (DESTINATION_TRANSPORT_PORT, 2),
            (PROTOCOL_IDENTIFIER, 1),
            (TCP_CONTROL_BITS, 1),
            (5, 1), // ipClassOfService: not used
            (OCTET_DELTA_COUNT, 4),
            (PACKET_DELTA_COUNT, 4),
            (FLOW_START_MILLISECONDS, 8),
            (FLOW_END_MILLISECONDS, 8),
            (INGRESS_INTERFACE, 4),
            (EGRESS_INTERFACE, 4),
        ]
        .iter()
        .map(|&(id, len)| FieldSpec::iana(id, len))
        .collect()
    }

    #[test]
    fn common_fixed_templates_take_the_direct_path_and_repeats_do_not() {
        let t = |fields: Vec<FieldSpec>| Template {
            id: 256,
            scope_field_count: 0,
            fields,
        };
        assert!(Plan::compile(&t(flowblast_fields())).direct.is_some());
        let mut repeated = flowblast_fields();
        repeated.push(FieldSpec::iana(OCTET_DELTA_COUNT, 8));
        assert!(Plan::compile(&t(repeated)).direct.is_none());
        // A total beside a delta counter never wins, so the direct path still applies; beside
        // a delta counter that may be unreadable (variable length) it could.
        let mut totals = flowblast_fields();
        totals.push(FieldSpec::iana(OCTET_TOTAL_COUNT, 8));
        assert!(Plan::compile(&t(totals)).direct.is_some());
        let mut varlen_delta = flowblast_fields();
        varlen_delta[7] = FieldSpec::iana(OCTET_DELTA_COUNT, VARIABLE_LENGTH);
        varlen_delta.push(FieldSpec::iana(OCTET_TOTAL_COUNT, 8));
        assert!(Plan::compile(&t(varlen_delta)).direct.is_none());
        let mut sampled = flowblast_fields();
        sampled.push(FieldSpec::iana(SAMPLING_INTERVAL, 4));
        assert!(Plan::compile(&t(sampled)).direct.is_none());
    }

    /// Start and end elements of every time form, with a length each.
    const TIME_FIELDS: [(u16, u16, u16); 6] = [
        (FLOW_START_SECONDS, FLOW_END_SECONDS, 4),
        (FLOW_START_MILLISECONDS, FLOW_END_MILLISECONDS, 8),
        (FLOW_START_MICROSECONDS, FLOW_END_MICROSECONDS, 8),
        (FLOW_START_NANOSECONDS, FLOW_END_NANOSECONDS, 8),
        (
            FLOW_START_DELTA_MICROSECONDS,
            FLOW_END_DELTA_MICROSECONDS,
            4,
        ),
        (FLOW_START_SYS_UP_TIME, FLOW_END_SYS_UP_TIME, 4),
    ];

    proptest::proptest! {
        /// The direct path gives exactly what the field-by-field path gives, for any bytes,
        /// any time forms and any header context.
        #[test]
        fn direct_path_matches_the_general_path(
            body in proptest::collection::vec(proptest::num::u8::ANY, 47),
            uptime in proptest::option::of(proptest::num::u32::ANY),
            init in proptest::option::of(0u64..1 << 45),
            start_form in 0..TIME_FIELDS.len(),
            end_form in 0..TIME_FIELDS.len(),
        ) {
            let mut fields = flowblast_fields();
            let (start, _, start_len) = TIME_FIELDS[start_form];
            let (_, end, end_len) = TIME_FIELDS[end_form];
            fields[9] = FieldSpec::iana(start, start_len);
            fields[10] = FieldSpec::iana(end, end_len);
            let template = Template { id: 256, scope_field_count: 0, fields };
            let header = HeaderTime {
                export_millis: 1_750_000_000_000,
                sys_uptime_ms: uptime,
                system_init_ms: init,
            };
            let direct = Plan::compile(&template);
            proptest::prop_assert!(direct.direct.is_some());
            let mut general = direct.clone();
            general.direct = None;
            let records: Vec<_> = template.records(&body).flatten().collect();
            proptest::prop_assert_eq!(records.len(), 1);
            for record in records {
                let (mut a, mut b) = (FlowRecord::default(), FlowRecord::default());
                let sa = direct.apply(&record, header, &mut a);
                let sb = general.apply(&record, header, &mut b);
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!(sa, sb);
            }
        }
    }

    proptest::proptest! {
        /// Reading by segments gives exactly what walking every field gives, for templates
        /// mixing fixed and variable-length fields (Open vSwitch's tunnel key, interface names)
        /// and any record bytes: the straight-line segmented plan where the template allows it,
        /// the segmented field-by-field plan, and the walk over every field.
        #[test]
        fn segmented_path_matches_the_field_walk(
            layout in proptest::collection::vec((0usize..FIELD_CHOICES.len(), 0u8..4), 1..24),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            protocol in proptest::sample::select(vec![1u8, 6, 58]),
        ) {
            let fields: Vec<FieldSpec> = layout
                .iter()
                .map(|&(i, var)| {
                    let (element, len) = FIELD_CHOICES[i];
                    FieldSpec { element, length: if var == 0 { VARIABLE_LENGTH } else { len } }
                })
                .collect();
            let template = Template { id: 256, scope_field_count: 0, fields };
            let plan = Plan::compile(&template);
            let mut segmented = plan.clone();
            segmented.direct = None;
            let mut walk = segmented.clone();
            walk.varlen = None;
            let prototype = FlowRecord { protocol, ..FlowRecord::default() };
            for record in template.records(&body).flatten() {
                let (mut a, mut b, mut c) = (prototype, prototype, prototype);
                let header = export_at(1_700_000_000);
                let sa = plan.apply(&record, header, &mut a);
                let sb = segmented.apply(&record, header, &mut b);
                let sc = walk.apply(&record, header, &mut c);
                proptest::prop_assert_eq!(a, c);
                proptest::prop_assert_eq!(b, c);
                proptest::prop_assert_eq!(sa, sc);
                proptest::prop_assert_eq!(sb, sc);
            }
        }
    }

    proptest::proptest! {
        /// The same for templates the straight-line plan always takes: each element at most
        /// once, in any order, up to eight of them variable-length but not the counters (a
        /// variable-length delta counter could be unreadable and let a total win).
        #[test]
        fn straight_line_segmented_plan_matches_the_field_walk(
            picked in proptest::sample::subsequence(DIRECT_CHOICES.to_vec(), 1..DIRECT_CHOICES.len())
                .prop_shuffle(),
            var in proptest::collection::vec(0u8..3, DIRECT_CHOICES.len()),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            protocol in proptest::sample::select(vec![1u8, 6, 58]),
            init in proptest::option::of(0u64..1 << 45),
        ) {
            let mut variable = 0;
            let fields: Vec<FieldSpec> = picked
                .iter()
                .zip(&var)
                .map(|(&i, &v)| {
                    let (element, len) = FIELD_CHOICES[i];
                    let counter = matches!(
                        target_of(element),
                        Some(Target::Octets(_) | Target::Packets(_) | Target::ReverseOctets(_))
                    );
                    // Templates with more variable-length fields are read field by field.
                    let length = if v == 0 && !counter && variable < MAX_SEGMENTS {
                        variable += 1;
                        VARIABLE_LENGTH
                    } else {
                        len
                    };
                    FieldSpec { element, length }
                })
                .collect();
            let template = Template { id: 256, scope_field_count: 0, fields };
            let plan = Plan::compile(&template);
            proptest::prop_assert!(plan.direct.is_some());
            let mut walk = plan.clone();
            walk.direct = None;
            walk.varlen = None;
            let prototype = FlowRecord { protocol, ..FlowRecord::default() };
            let header = HeaderTime {
                export_millis: 1_750_000_000_000,
                sys_uptime_ms: None,
                system_init_ms: init,
            };
            for record in template.records(&body).flatten() {
                let (mut a, mut b) = (prototype, prototype);
                let sa = plan.apply(&record, header, &mut a);
                let sb = walk.apply(&record, header, &mut b);
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!(sa, sb);
            }
        }
    }

    /// Indices of [`FIELD_CHOICES`] that the straight-line plan reads.
    const DIRECT_CHOICES: [usize; 30] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        26, 29, 30, 31, 32,
    ];

    /// Elements the segmented test draws from, with their usual lengths: everything the
    /// straight-line plan reads, counters of several priorities, and fields it refuses.
    const FIELD_CHOICES: [(ElementId, u16); 33] = [
        (ElementId::iana(SOURCE_IPV4_ADDRESS), 4),
        (ElementId::iana(DESTINATION_IPV6_ADDRESS), 16),
        (ElementId::iana(SOURCE_TRANSPORT_PORT), 2),
        (ElementId::iana(DESTINATION_TRANSPORT_PORT), 2),
        (ElementId::iana(PROTOCOL_IDENTIFIER), 1),
        (ElementId::iana(TCP_CONTROL_BITS), 2),
        (ElementId::iana(OCTET_DELTA_COUNT), 8),
        (ElementId::iana(OCTET_TOTAL_COUNT), 8),
        (ElementId::iana(PACKET_DELTA_COUNT), 4),
        (ElementId::iana(PACKET_TOTAL_COUNT), 8),
        (ElementId::iana(POST_PACKET_DELTA_COUNT), 8),
        (ElementId::iana(FLOW_START_MILLISECONDS), 8),
        (ElementId::iana(FLOW_END_DELTA_MICROSECONDS), 4),
        (ElementId::iana(FLOW_DIRECTION), 1),
        (ElementId::iana(OBSERVATION_POINT_ID), 4),
        (ElementId::iana(INGRESS_INTERFACE), 4),
        (ElementId::iana(EGRESS_INTERFACE), 4),
        (ElementId::iana(INTERFACE_NAME), 16),
        (ElementId::iana(VLAN_ID), 2),
        (ElementId::iana(DOT1Q_VLAN_ID), 2),
        (ElementId::iana(TCP_SYN_TOTAL_COUNT), 8),
        (ElementId::iana(TCP_ACK_TOTAL_COUNT), 8),
        (ElementId::iana(ICMP_TYPE_IPV4), 1),
        (ElementId::iana(ICMP_CODE_IPV4), 1),
        (ElementId::iana(ICMP_TYPE_CODE_IPV6), 2),
        (ElementId::iana(SAMPLING_INTERVAL), 4),
        (ElementId::iana(PADDING_OCTETS), 3),
        (ElementId::iana(EXPORTER_IPV4_ADDRESS), 4),
        (ElementId::iana(FLOW_DURATION_MILLISECONDS), 4),
        (
            ElementId {
                enterprise: VMWARE_PEN,
                id: VMWARE_TUNNEL_KEY,
            },
            3,
        ),
        (
            ElementId {
                enterprise: VMWARE_PEN,
                id: VMWARE_TUNNEL_SOURCE_IPV4,
            },
            4,
        ),
        (
            ElementId {
                enterprise: REVERSE_PEN,
                id: TCP_CONTROL_BITS,
            },
            1,
        ),
        (
            ElementId {
                enterprise: REVERSE_PEN,
                id: OCTET_DELTA_COUNT,
            },
            8,
        ),
    ];

    #[test]
    fn ntp_before_1970_is_not_a_time() {
        assert_eq!(ntp(&[0; 8], false), None);
        assert_eq!(ntp(&[0; 4], false), None);
    }

    #[test]
    fn icmp_type_code_becomes_the_destination_port() {
        let body = [1, 0x03, 0x01]; // protocolIdentifier ICMP, icmpTypeCodeIPv4 3/1
        let fields = [
            FieldSpec::iana(PROTOCOL_IDENTIFIER, 1),
            FieldSpec::iana(ICMP_TYPE_CODE_IPV4, 2),
        ];
        let (f, _) = apply(&fields, &body, HeaderTime::default());
        assert_eq!(f.dst_port, 0x0301);
    }

    #[test]
    fn separate_icmp_type_and_code_become_the_destination_port() {
        let body = [58, 129, 0]; // protocolIdentifier ICMPv6, icmpTypeIPv6 129, icmpCodeIPv6 0
        let fields = [
            FieldSpec::iana(PROTOCOL_IDENTIFIER, 1),
            FieldSpec::iana(ICMP_TYPE_IPV6, 1),
            FieldSpec::iana(ICMP_CODE_IPV6, 1),
        ];
        let (f, _) = apply(&fields, &body, HeaderTime::default());
        assert_eq!(f.dst_port, 0x8100);
    }
}
