//! Compiled templates: turning data records into [`FlowRecord`]s quickly.
//!
//! When a template arrives it is compiled once into a [`Plan`]: for every field botnest uses, the
//! byte offset (for templates without variable-length fields), the length and where the value
//! goes. Decoding a record is then a short loop over those few operations, with no lookups by
//! element id and no allocation.

use crate::ids::*;
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::ie::{ElementId, REVERSE_PEN, VMWARE_PEN};
use botnest_wire::{Record, Template};
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
    /// Byte offset in the record, for templates without variable-length fields.
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
    /// Whether records carry addresses at all (options records and odd templates do not).
    has_addresses: bool,
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

/// Values read from one record before they are resolved into a [`FlowRecord`].
#[derive(Debug, Default)]
struct Scratch {
    octets: [Option<u64>; 4],
    packets: [Option<u64>; 4],
    reverse_octets: [Option<u64>; 4],
    reverse_packets: [Option<u64>; 4],
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    start_uptime: Option<u64>,
    end_uptime: Option<u64>,
    duration_us: Option<u64>,
    system_init_ms: Option<u64>,
    icmp: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    sampling_packet_interval: Option<u64>,
    sampling_packet_space: Option<u64>,
    sampling_probability: Option<f64>,
    sampling_size: Option<u64>,
    sampling_population: Option<u64>,
    sampling_interval: Option<u64>,
    selector: Option<u64>,
    layer2_segment: Option<u64>,
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
        let mut offset = 0usize;
        let mut fixed = true;
        for (i, f) in template.fields.iter().enumerate() {
            if let Some(target) = target_of(f.element) {
                ops.push(Op {
                    field: i as u16,
                    offset: offset.min(usize::from(u16::MAX)) as u16,
                    len: f.length,
                    target,
                });
            }
            if f.is_variable() {
                fixed = false;
            }
            offset += usize::from(f.length);
        }
        let has_addresses = ops.iter().any(|o| {
            matches!(
                o.target,
                Target::SrcV4 | Target::SrcV6 | Target::DstV4 | Target::DstV6
            )
        });
        Plan {
            ops,
            fixed,
            has_addresses,
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
        let mut s = Scratch::default();
        if self.fixed {
            let bytes = record.bytes();
            for op in &self.ops {
                let start = usize::from(op.offset);
                if let Some(v) = bytes.get(start..start + usize::from(op.len)) {
                    store(op.target, v, &mut s, out);
                }
            }
        } else {
            let mut next = self.ops.iter().peekable();
            for (i, (_, v)) in record.fields().enumerate() {
                while let Some(op) = next.next_if(|op| usize::from(op.field) == i) {
                    store(op.target, v, &mut s, out);
                }
                if next.peek().is_none() {
                    break;
                }
            }
        }
        resolve(&s, header, out)
    }
}

#[inline]
fn uint(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

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
        Octets(p) => s.octets[p as usize] = uint(v),
        Packets(p) => s.packets[p as usize] = uint(v),
        ReverseOctets(p) => s.reverse_octets[p as usize] = uint(v),
        ReversePackets(p) => s.reverse_packets[p as usize] = uint(v),
        Start(form) => set_time(form, v, &mut s.start, &mut s.start_uptime),
        End(form) => set_time(form, v, &mut s.end, &mut s.end_uptime),
        DurationMillis => s.duration_us = uint(v).map(|x| x.saturating_mul(1000)),
        DurationMicros => s.duration_us = uint(v),
        SystemInitMillis => s.system_init_ms = uint(v),
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
        Layer2Segment => s.layer2_segment = uint(v),
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
        IcmpTypeCode => s.icmp = uint(v).map(|x| x as u16),
        IcmpType => s.icmp_type = uint(v).map(|x| x as u8),
        IcmpCode => s.icmp_code = uint(v).map(|x| x as u8),
        SamplingInterval => s.sampling_interval = uint(v),
        SamplingPacketInterval => s.sampling_packet_interval = uint(v),
        SamplingPacketSpace => s.sampling_packet_space = uint(v),
        SamplingProbability => s.sampling_probability = float(v),
        SamplingSize => s.sampling_size = uint(v),
        SamplingPopulation => s.sampling_population = uint(v),
        SelectorId => s.selector = uint(v),
        TcpFlagCount(bit) => {
            if uint(v).unwrap_or(0) > 0 {
                out.tcp_flags |= bit;
            }
        }
    }
}

/// Stores an absolute time, or keeps a relative one raw until the whole record has been read.
fn set_time(form: TimeForm, v: &[u8], absolute: &mut Option<Timestamp>, rel: &mut Option<u64>) {
    match form {
        TimeForm::Seconds => *absolute = uint(v).map(Timestamp::from_unix_secs),
        TimeForm::Millis => *absolute = uint(v).map(Timestamp::from_unix_millis),
        TimeForm::NtpMicros => *absolute = ntp(v, true),
        TimeForm::NtpNanos => *absolute = ntp(v, false),
        TimeForm::DeltaMicros => *rel = uint(v).map(|x| x | DELTA_TAG),
        TimeForm::SysUptime => *rel = uint(v),
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

fn first(values: &[Option<u64>; 4]) -> Option<u64> {
    values.iter().flatten().next().copied()
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

fn resolve(s: &Scratch, header: HeaderTime, out: &mut FlowRecord) -> SamplingFields {
    if let Some(o) = first(&s.octets) {
        out.octets = o;
    }
    if let Some(p) = first(&s.packets) {
        out.packets = p;
    }
    if let Some(o) = first(&s.reverse_octets) {
        out.reverse_octets = o;
    }
    if let Some(p) = first(&s.reverse_packets) {
        out.reverse_packets = p;
    }

    let init = s.system_init_ms.or(header.system_init_ms);
    let start = s.start.or_else(|| relative(s.start_uptime?, header, init));
    let end = s.end.or_else(|| relative(s.end_uptime?, header, init));
    // Capped so that a hostile duration cannot wrap negative and put the end before the start.
    let dur = s
        .duration_us
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

    // Type and code in separate elements (icmpTypeIPv4 and icmpCodeIPv4, or the IPv6 pair, as
    // Open vSwitch exports them) mean the same as the combined icmpTypeCode elements.
    let split = s
        .icmp_type
        .map(|t| u16::from_be_bytes([t, s.icmp_code.unwrap_or(0)]));
    if let Some(icmp) = s.icmp.or(split) {
        if out.dst_port == 0 && matches!(out.protocol, 1 | 58) {
            out.dst_port = icmp;
        }
    }
    if out.tunnel_key == 0 {
        // layer2SegmentId: one byte of segment type, then the id (RFC 7133 section 4.4.1).
        if let Some(seg) = s.layer2_segment {
            out.tunnel_key = seg & 0x00ff_ffff_ffff_ffff;
        }
    }

    let interval = if let Some(i) = s.sampling_interval {
        Some(i)
    } else if let Some(n) = s.sampling_packet_interval {
        // RFC 5477: n packets selected, then `space` packets skipped. The values come from the
        // wire at any length up to 8 bytes, so the sum may not fit.
        let space = s.sampling_packet_space.unwrap_or(0);
        (n > 0).then(|| n.saturating_add(space) / n)
    } else if let (Some(size), Some(population)) = (s.sampling_size, s.sampling_population) {
        // RFC 5477 random n-out-of-N: `size` packets drawn from each `population`.
        (size > 0).then(|| population / size)
    } else {
        s.sampling_probability
            .filter(|p| *p > 0.0 && *p <= 1.0)
            .map(|p| (1.0 / p).round() as u64)
    };
    SamplingFields {
        interval: interval
            .filter(|&i| i > 0)
            .map(|i| i.min(u64::from(u32::MAX)) as u32),
        selector: s.selector,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botnest_wire::FieldSpec;

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
