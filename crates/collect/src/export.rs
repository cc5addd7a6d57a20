//! Normalised records back to IPFIX, for the RFC 5655 files the collector writes.
//!
//! One template per combination of flow address family and exporter address family carries
//! every field of [`FlowRecord`], so `botnest decode` reads a file back into the same records.
//! Times are written as `flowStart/EndNanoseconds` (NTP format, RFC 7011 section 6.1.10), the
//! exporter as `exporterIPv4Address`/`exporterIPv6Address`, tunnel endpoints with the VMware
//! elements Open vSwitch uses.

use crate::ids::*;
use botnest_flow::{Direction, FlowRecord, Timestamp};
use botnest_wire::encode::IpfixWriter;
use botnest_wire::ie::{ElementId, REVERSE_PEN, VMWARE_PEN};
use botnest_wire::{FieldSpec, Template};
use std::net::IpAddr;

/// Largest message written: well below 65535 so a message stays one read for any reader.
const MAX_MESSAGE: usize = 60_000;
/// The first template id used; ids 256..=259 cover the four address-family combinations.
const FIRST_TEMPLATE: u16 = 256;

/// Template id for a record: bit 0 is an IPv6 flow, bit 1 an IPv6 exporter.
fn template_id(f: &FlowRecord) -> u16 {
    FIRST_TEMPLATE + u16::from(f.src.is_ipv6()) + 2 * u16::from(f.exporter.is_ipv6())
}

/// The four templates botnest writes.
pub fn templates() -> Vec<Template> {
    (0..4u16)
        .map(|i| {
            let (v6, exporter_v6) = (i & 1 != 0, i & 2 != 0);
            let addr = if v6 { 16 } else { 4 };
            let (src, dst) = if v6 {
                (SOURCE_IPV6_ADDRESS, DESTINATION_IPV6_ADDRESS)
            } else {
                (SOURCE_IPV4_ADDRESS, DESTINATION_IPV4_ADDRESS)
            };
            let (exporter, exporter_len) = if exporter_v6 {
                (EXPORTER_IPV6_ADDRESS, 16)
            } else {
                (EXPORTER_IPV4_ADDRESS, 4)
            };
            let f = FieldSpec::iana;
            let e = |pen, id, length| FieldSpec {
                element: ElementId::enterprise(pen, id),
                length,
            };
            Template {
                id: FIRST_TEMPLATE + i,
                scope_field_count: 0,
                fields: vec![
                    f(FLOW_START_NANOSECONDS, 8),
                    f(FLOW_END_NANOSECONDS, 8),
                    f(src, addr),
                    f(dst, addr),
                    f(SOURCE_TRANSPORT_PORT, 2),
                    f(DESTINATION_TRANSPORT_PORT, 2),
                    f(PROTOCOL_IDENTIFIER, 1),
                    f(TCP_CONTROL_BITS, 2),
                    f(OCTET_DELTA_COUNT, 8),
                    f(PACKET_DELTA_COUNT, 8),
                    e(REVERSE_PEN, OCTET_DELTA_COUNT, 8),
                    e(REVERSE_PEN, PACKET_DELTA_COUNT, 8),
                    e(REVERSE_PEN, TCP_CONTROL_BITS, 2),
                    f(SAMPLING_INTERVAL, 4),
                    f(FLOW_DIRECTION, 1),
                    f(DOT1Q_VLAN_ID, 2),
                    e(VMWARE_PEN, VMWARE_TUNNEL_KEY, 8),
                    e(VMWARE_PEN, VMWARE_TUNNEL_SOURCE_IPV4, 4),
                    e(VMWARE_PEN, VMWARE_TUNNEL_DESTINATION_IPV4, 4),
                    f(OBSERVATION_POINT_ID, 8),
                    f(OBSERVATION_DOMAIN_ID, 4),
                    f(exporter, exporter_len),
                    f(INGRESS_INTERFACE, 4),
                    f(EGRESS_INTERFACE, 4),
                ],
            }
        })
        .collect()
}

/// Seconds between the NTP era (1900) and the UNIX epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

fn ntp(t: Timestamp) -> [u8; 8] {
    let ns = t.as_unix_nanos();
    let secs = ns / 1_000_000_000 + NTP_UNIX_OFFSET;
    // Round the fraction up so that reading it back (which truncates) gives the same nanosecond.
    let frac = ((ns % 1_000_000_000) << 32).div_ceil(1_000_000_000);
    ((secs << 32) | frac).to_be_bytes()
}

fn ip(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

fn tunnel_v4(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        Some(IpAddr::V4(v4)) => out.extend_from_slice(&v4.octets()),
        // IPv6 tunnel endpoints have no element in this template (see the README's limits).
        _ => out.extend_from_slice(&[0; 4]),
    }
}

/// Appends one record laid out by its template.
fn record(out: &mut Vec<u8>, f: &FlowRecord) {
    out.extend_from_slice(&ntp(f.start));
    out.extend_from_slice(&ntp(f.end));
    ip(out, f.src);
    // A record whose destination family differs from its source has no faithful layout; the
    // unspecified address of the source's family stands in.
    match (f.src, f.dst) {
        (IpAddr::V4(_), IpAddr::V6(_)) => out.extend_from_slice(&[0; 4]),
        (IpAddr::V6(_), IpAddr::V4(_)) => out.extend_from_slice(&[0; 16]),
        _ => ip(out, f.dst),
    }
    out.extend_from_slice(&f.src_port.to_be_bytes());
    out.extend_from_slice(&f.dst_port.to_be_bytes());
    out.push(f.protocol);
    out.extend_from_slice(&f.tcp_flags.to_be_bytes());
    out.extend_from_slice(&f.octets.to_be_bytes());
    out.extend_from_slice(&f.packets.to_be_bytes());
    out.extend_from_slice(&f.reverse_octets.to_be_bytes());
    out.extend_from_slice(&f.reverse_packets.to_be_bytes());
    out.extend_from_slice(&f.reverse_tcp_flags.to_be_bytes());
    out.extend_from_slice(&f.sampling_interval.to_be_bytes());
    out.push(match f.direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
        Direction::Unknown => 0xff,
    });
    out.extend_from_slice(&f.vlan.to_be_bytes());
    out.extend_from_slice(&f.tunnel_key.to_be_bytes());
    tunnel_v4(out, f.tunnel_src);
    tunnel_v4(out, f.tunnel_dst);
    out.extend_from_slice(&f.observation_point.to_be_bytes());
    out.extend_from_slice(&f.observation_domain.to_be_bytes());
    ip(out, f.exporter);
    out.extend_from_slice(&f.input_interface.to_be_bytes());
    out.extend_from_slice(&f.output_interface.to_be_bytes());
}

/// Encodes records into IPFIX messages, keeping the sequence number (RFC 7011 section 3.1:
/// data records sent before each message).
#[derive(Debug, Default)]
pub struct FlowEncoder {
    sequence: u32,
}

impl FlowEncoder {
    /// A message carrying the templates, to start every file with (RFC 5655 section 8).
    pub fn template_message(&self, export_time: u32) -> Vec<u8> {
        let mut w = IpfixWriter::new(export_time, self.sequence, 0);
        for t in templates() {
            w.template(&t);
        }
        w.finish().expect("the fixed templates fit in one message")
    }

    /// Encodes records into as many messages as needed.
    pub fn encode(&mut self, flows: &[FlowRecord], export_time: u32) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        let mut writer = IpfixWriter::new(export_time, self.sequence, 0);
        let mut buf = Vec::with_capacity(128);
        for f in flows {
            buf.clear();
            record(&mut buf, f);
            if writer.len() + buf.len() + 4 > MAX_MESSAGE {
                let full =
                    std::mem::replace(&mut writer, IpfixWriter::new(export_time, self.sequence, 0));
                messages.push(full.finish().expect("messages are kept below 65535 bytes"));
            }
            writer.data_record(template_id(f), &buf);
            self.sequence = self.sequence.wrapping_add(1);
        }
        if !writer.is_empty() {
            messages.push(
                writer
                    .finish()
                    .expect("messages are kept below 65535 bytes"),
            );
        }
        messages
    }
}
