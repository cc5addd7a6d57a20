//! A flow meter: raw packets into biflows, as an IPFIX metering process would export them.
//!
//! Both directions of a conversation share one flow: the key is the protocol, VLAN and the two
//! address/port endpoints in a fixed order. The initiator (the record's source) is whoever sent
//! the first packet, except that a TCP SYN sender or an ICMP request sender is always the
//! initiator, even when the capture saw the answer first. ICMP flows key on the request type
//! (echo replies join their echo requests) and carry `type * 256 + code` in `dst_port`.
//!
//! A flow ends when (RFC 5470 section 5.1.1 lists these reasons):
//! - TCP: both sides have sent FIN, or either side RST, and `close_linger` has passed (so the
//!   last ACK still counts);
//! - nothing was seen for `idle_timeout` (capture time);
//! - it has lasted `active_timeout`: it is exported, and later packets start a new flow;
//! - the table is full: the flow nearest its expiry is exported early (counted);
//! - the capture ends.
//!
//! Records come out in the order the flows end. Octets are IP-level (header included, as
//! octetDeltaCount), from the IP header's length, so captures cut by a snapshot length still
//! count full packets. Of a fragmented datagram only the first fragment has ports; later
//! fragments join its flow through a small bounded table, or count without ports when the
//! first fragment was not seen.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use botnest_flow::{FlowRecord, Timestamp};
use etherparse::{IpNumber, LaxNetSlice, LaxSlicedPacket};
use serde::Serialize;

use super::proto;
use super::tcp_flag::{ACK, FIN, RST, SYN};
use crate::capture::{CaptureError, FrameReader, FrameSkip};

/// When flows end and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterConfig {
    /// A flow without packets for this long (capture time) ends.
    pub idle_timeout: Duration,
    /// A flow that has lasted this long is exported; later packets start a new flow.
    pub active_timeout: Duration,
    /// Time a closed TCP flow (FIN both ways, or RST) waits for stragglers.
    pub close_linger: Duration,
    /// Most flows held at once.
    pub max_flows: usize,
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            idle_timeout: Duration::from_secs(60),
            active_timeout: Duration::from_secs(300),
            close_linger: Duration::from_secs(1),
            max_flows: 65_536,
        }
    }
}

/// Counters of the meter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MeterStats {
    /// Frames read.
    pub frames: u64,
    /// IP packets counted into flows.
    pub packets: u64,
    /// Frames of a link type that is not decoded.
    pub unsupported_link: u64,
    /// Frames that carry no IP packet (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames too short for their headers.
    pub truncated: u64,
    /// Frames with invalid headers.
    pub malformed: u64,
    /// Non-first fragments whose first fragment was not seen, counted without ports.
    pub fragments_unmatched: u64,
    /// Flows exported.
    pub flows: u64,
    /// Flows exported early because the table was full.
    pub flows_evicted: u64,
    /// Flows exported because they reached the active timeout.
    pub flows_active_timeout: u64,
    /// Most flows held at once.
    pub max_active_flows: u64,
}

/// The fields of one IP packet the meter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Capture time.
    pub time: Timestamp,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (the upper layer after IPv6 extension headers).
    pub protocol: u8,
    /// Source port; 0 for protocols without ports.
    pub src_port: u16,
    /// Destination port; for ICMP, type * 256 + code.
    pub dst_port: u16,
    /// TCP flags; 0 for other protocols.
    pub tcp_flags: u16,
    /// IP packet length, header included.
    pub octets: u64,
    /// Outermost VLAN id, 0 when untagged.
    pub vlan: u16,
}

/// One side of a conversation.
type Endpoint = (IpAddr, u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    protocol: u8,
    vlan: u16,
    lo: Endpoint,
    hi: Endpoint,
    /// ICMP request type and code; 0 for other protocols.
    icmp: u16,
}

#[derive(Debug, Clone, Copy, Default)]
struct Side {
    packets: u64,
    octets: u64,
    flags: u16,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    initiator: Endpoint,
    responder: Endpoint,
    start: Timestamp,
    last: Timestamp,
    forward: Side,
    reverse: Side,
    /// A pure SYN has decided the initiator.
    syn_seen: bool,
    /// When and under which id the flow sits in the expiry queue.
    deadline: (Timestamp, u64),
}

impl Flow {
    fn closed(&self) -> bool {
        let flags = self.forward.flags | self.reverse.flags;
        flags & RST != 0 || self.forward.flags & self.reverse.flags & FIN != 0
    }

    fn swap(&mut self) {
        std::mem::swap(&mut self.initiator, &mut self.responder);
        std::mem::swap(&mut self.forward, &mut self.reverse);
    }
}

/// Most first-fragment port pairs remembered for the fragments that follow them.
const MAX_FRAGMENTS: usize = 4096;

/// Source, destination, protocol and identification of a fragmented datagram.
type FragKey = (IpAddr, IpAddr, u8, u32);

/// Turns packets into biflows.
#[derive(Debug)]
pub struct FlowMeter {
    config: MeterConfig,
    flows: HashMap<Key, Flow>,
    /// Flows by the capture time at which they end, then by creation order.
    expiry: BTreeMap<(Timestamp, u64), Key>,
    next_id: u64,
    now: Timestamp,
    fragments: HashMap<FragKey, (u16, u16)>,
    fragment_order: VecDeque<FragKey>,
    stats: MeterStats,
}

impl FlowMeter {
    /// A meter with the given timeouts and table size.
    pub fn new(config: MeterConfig) -> Self {
        FlowMeter {
            config,
            flows: HashMap::new(),
            expiry: BTreeMap::new(),
            next_id: 0,
            now: Timestamp::default(),
            fragments: HashMap::new(),
            fragment_order: VecDeque::new(),
            stats: MeterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &MeterStats {
        &self.stats
    }

    /// Flows currently held.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Counts one packet, appending the flows that ended before it to `out`.
    pub fn packet(&mut self, packet: PacketInfo, out: &mut VecDeque<FlowRecord>) {
        self.now = self.now.max(packet.time);
        self.expire(self.now, out);
        self.stats.packets += 1;
        let key = key(&packet);
        let from = (packet.src, packet.src_port);
        let mut flow = match self.flows.remove(&key) {
            Some(flow) => flow,
            None => {
                self.make_room(out);
                self.new_flow(&packet, from)
            }
        };
        self.expiry.remove(&flow.deadline);
        count(&mut flow, &packet, from);
        flow.deadline = (self.deadline(&flow), flow.deadline.1);
        self.expiry.insert(flow.deadline, key);
        self.flows.insert(key, flow);
        self.stats.max_active_flows = self.stats.max_active_flows.max(self.flows.len() as u64);
    }

    /// Ends every flow still held (at the end of the capture), in expiry order.
    pub fn finish(&mut self, out: &mut VecDeque<FlowRecord>) {
        while let Some((_, key)) = self.expiry.pop_first() {
            self.export(key, out);
        }
    }

    fn new_flow(&mut self, packet: &PacketInfo, from: Endpoint) -> Flow {
        let to = (packet.dst, packet.dst_port);
        self.next_id += 1;
        let mut flow = Flow {
            initiator: from,
            responder: to,
            start: packet.time,
            last: packet.time,
            forward: Side::default(),
            reverse: Side::default(),
            syn_seen: false,
            deadline: (packet.time, self.next_id),
        };
        let answer_first = match packet.protocol {
            proto::TCP => packet.tcp_flags & (SYN | ACK) == SYN | ACK,
            proto::ICMP | proto::ICMPV6 => icmp_request(packet.protocol, packet.dst_port).1,
            _ => false,
        };
        if answer_first {
            flow.swap();
        }
        flow
    }

    /// The capture time at which the flow ends unless more packets come.
    fn deadline(&self, flow: &Flow) -> Timestamp {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let idle = flow.last.offset_nanos(nanos(self.config.idle_timeout));
        let active = flow.start.offset_nanos(nanos(self.config.active_timeout));
        let mut deadline = idle.min(active);
        if flow.closed() {
            deadline = deadline.min(flow.last.offset_nanos(nanos(self.config.close_linger)));
        }
        deadline
    }

    /// Exports the flows whose deadline has passed.
    fn expire(&mut self, now: Timestamp, out: &mut VecDeque<FlowRecord>) {
        while let Some(entry) = self.expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            if let Some(flow) = self.flows.get(&key) {
                let active = flow.start.offset_nanos(
                    i64::try_from(self.config.active_timeout.as_nanos()).unwrap_or(i64::MAX),
                );
                if active <= now && flow.deadline.0 == active {
                    self.stats.flows_active_timeout += 1;
                }
            }
            self.export(key, out);
        }
    }

    /// Exports the flow nearest its expiry when the table is full.
    fn make_room(&mut self, out: &mut VecDeque<FlowRecord>) {
        while self.flows.len() >= self.config.max_flows.max(1) {
            let Some((_, key)) = self.expiry.pop_first() else {
                return;
            };
            self.stats.flows_evicted += 1;
            self.export(key, out);
        }
    }

    fn export(&mut self, key: Key, out: &mut VecDeque<FlowRecord>) {
        let Some(flow) = self.flows.remove(&key) else {
            return;
        };
        self.stats.flows += 1;
        out.push_back(record(&key, &flow));
    }

    /// Ports of a fragment: the first fragment's are remembered for the ones that follow.
    fn fragment_ports(&mut self, key: FragKey, first: Option<(u16, u16)>) -> (u16, u16) {
        if let Some(ports) = first {
            if self.fragment_order.len() >= MAX_FRAGMENTS {
                if let Some(old) = self.fragment_order.pop_front() {
                    self.fragments.remove(&old);
                }
            }
            if self.fragments.insert(key, ports).is_none() {
                self.fragment_order.push_back(key);
            }
            return ports;
        }
        match self.fragments.get(&key) {
            Some(ports) => *ports,
            None => {
                self.stats.fragments_unmatched += 1;
                (0, 0)
            }
        }
    }
}

/// The ICMP request type of a type/code word, and whether the word is an answer.
fn icmp_request(protocol: u8, type_code: u16) -> (u16, bool) {
    let (kind, code) = ((type_code >> 8) as u8, type_code & 0xff);
    // RFC 792 echo/timestamp/information/mask pairs; RFC 4443 echo for ICMPv6.
    let request: Option<u8> = match (protocol, kind) {
        (proto::ICMP, 0) => Some(8),
        (proto::ICMP, 14) => Some(13),
        (proto::ICMP, 16) => Some(15),
        (proto::ICMP, 18) => Some(17),
        (proto::ICMPV6, 129) => Some(128),
        _ => None,
    };
    match request {
        Some(request) => (u16::from(request) << 8 | code, true),
        None => (type_code, false),
    }
}

fn key(packet: &PacketInfo) -> Key {
    let icmp = matches!(packet.protocol, proto::ICMP | proto::ICMPV6);
    let (a, b) = if icmp {
        ((packet.src, 0), (packet.dst, 0))
    } else {
        ((packet.src, packet.src_port), (packet.dst, packet.dst_port))
    };
    Key {
        protocol: packet.protocol,
        vlan: packet.vlan,
        lo: a.min(b),
        hi: a.max(b),
        icmp: if icmp {
            icmp_request(packet.protocol, packet.dst_port).0
        } else {
            0
        },
    }
}

/// Adds a packet to its flow's side.
fn count(flow: &mut Flow, packet: &PacketInfo, from: Endpoint) {
    let pure_syn = packet.protocol == proto::TCP && packet.tcp_flags & (SYN | ACK) == SYN;
    let icmp = matches!(packet.protocol, proto::ICMP | proto::ICMPV6);
    let forward = |flow: &Flow| {
        if icmp {
            flow.initiator.0 == from.0
        } else {
            flow.initiator == from
        }
    };
    // A SYN from the side taken for the responder means the capture saw the answer first.
    if pure_syn && !flow.syn_seen && !forward(flow) {
        flow.swap();
    }
    flow.syn_seen |= pure_syn;
    let side = if forward(flow) {
        &mut flow.forward
    } else {
        &mut flow.reverse
    };
    side.packets += 1;
    side.octets += packet.octets;
    side.flags |= packet.tcp_flags;
    flow.start = flow.start.min(packet.time);
    flow.last = flow.last.max(packet.time);
}

fn record(key: &Key, flow: &Flow) -> FlowRecord {
    let icmp = matches!(key.protocol, proto::ICMP | proto::ICMPV6);
    FlowRecord {
        start: flow.start,
        end: flow.last,
        src: flow.initiator.0,
        dst: flow.responder.0,
        src_port: if icmp { 0 } else { flow.initiator.1 },
        dst_port: if icmp { key.icmp } else { flow.responder.1 },
        protocol: key.protocol,
        tcp_flags: flow.forward.flags,
        reverse_tcp_flags: flow.reverse.flags,
        octets: flow.forward.octets,
        packets: flow.forward.packets,
        reverse_octets: flow.reverse.octets,
        reverse_packets: flow.reverse.packets,
        vlan: key.vlan,
        ..FlowRecord::default()
    }
}

/// Where a packet's transport header is, for reading its ports.
struct Transport<'a> {
    protocol: u8,
    /// Transport bytes; `None` for a later fragment, which has no transport header.
    header: Option<&'a [u8]>,
    fragment: Option<FragKey>,
}

/// Reads the fields the meter needs from a parsed frame.
fn packet_info(
    meter: &mut FlowMeter,
    time: Timestamp,
    sliced: &LaxSlicedPacket<'_>,
) -> Result<PacketInfo, FrameSkip> {
    let vlan = sliced.vlan_ids().first().map_or(0, |v| v.value());
    let (src, dst, octets, transport) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let header = ip.header();
            let payload = ip.payload();
            let fragment = payload.fragmented.then(|| {
                let key = (
                    IpAddr::from(header.source_addr()),
                    IpAddr::from(header.destination_addr()),
                    payload.ip_number.0,
                    u32::from(header.identification()),
                );
                (key, header.fragments_offset().value() == 0)
            });
            let transport = transport(payload.ip_number, payload.payload, fragment);
            let src = header.source_addr().into();
            let dst = header.destination_addr().into();
            (src, dst, u64::from(header.total_len()), transport)
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let header = ip.header();
            let payload = ip.payload();
            let src = IpAddr::from(header.source_addr());
            let dst = IpAddr::from(header.destination_addr());
            // RFC 8200 section 4.5: identification and offset sit in the fragment header.
            let fragment = ip
                .extensions()
                .clone()
                .into_iter()
                .find_map(|ext| match ext {
                    etherparse::Ipv6ExtensionSlice::Fragment(f) => Some((
                        (src, dst, payload.ip_number.0, f.identification()),
                        f.fragment_offset().value() == 0,
                    )),
                    _ => None,
                });
            let fragment = fragment.filter(|_| payload.fragmented);
            let transport = transport(payload.ip_number, payload.payload, fragment);
            // The fixed header is not part of the payload length (RFC 8200 section 3).
            (src, dst, u64::from(header.payload_length()) + 40, transport)
        }
        Some(LaxNetSlice::Arp(_)) => return Err(FrameSkip::NotIp),
        // No IP layer: either none was announced, or its header could not be read.
        None => {
            return Err(match &sliced.stop_err {
                None => FrameSkip::NotIp,
                Some((etherparse::err::packet::SliceError::Len(_), _)) => FrameSkip::Truncated,
                Some(_) => FrameSkip::Malformed,
            })
        }
    };
    let (src_port, dst_port, tcp_flags) = match transport.header {
        Some(bytes) => ports(transport.protocol, bytes)?,
        None => (0, 0, 0),
    };
    let (src_port, dst_port) = match transport.fragment {
        Some(key) => {
            let first = transport.header.map(|_| (src_port, dst_port));
            meter.fragment_ports(key, first)
        }
        None => (src_port, dst_port),
    };
    Ok(PacketInfo {
        time,
        src,
        dst,
        protocol: transport.protocol,
        src_port,
        dst_port,
        tcp_flags,
        octets,
        vlan,
    })
}

fn transport(
    protocol: IpNumber,
    payload: &[u8],
    fragment: Option<(FragKey, bool)>,
) -> Transport<'_> {
    Transport {
        protocol: protocol.0,
        header: match fragment {
            Some((_, false)) => None,
            _ => Some(payload),
        },
        fragment: fragment.map(|(key, _)| key),
    }
}

/// Ports (ICMP type and code) and TCP flags from the start of a transport header.
fn ports(protocol: u8, bytes: &[u8]) -> Result<(u16, u16, u16), FrameSkip> {
    let word = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or(FrameSkip::Truncated)
    };
    match protocol {
        proto::TCP => {
            let tcp = etherparse::TcpHeaderSlice::from_slice(bytes).map_err(|e| match e {
                etherparse::err::tcp::HeaderSliceError::Len(_) => FrameSkip::Truncated,
                etherparse::err::tcp::HeaderSliceError::Content(_) => FrameSkip::Malformed,
            })?;
            // RFC 9293 section 3.1: the flag bits follow the data offset; NS (RFC 3540) is
            // the lowest bit of the byte before.
            let flags = u16::from_be_bytes([bytes[12], bytes[13]]) & 0x01ff;
            Ok((tcp.source_port(), tcp.destination_port(), flags))
        }
        proto::UDP | 132 | 136 => Ok((word(0)?, word(2)?, 0)),
        proto::ICMP | proto::ICMPV6 => Ok((0, word(0)?, 0)),
        _ => Ok((0, 0, 0)),
    }
}

/// Meters a raw pcap or pcapng capture into biflows.
#[derive(Debug)]
pub struct RawCaptureReader<R: Read = File> {
    frames: FrameReader<R>,
    meter: FlowMeter,
    ready: VecDeque<FlowRecord>,
    error: Option<CaptureError>,
    done: bool,
}

impl RawCaptureReader<File> {
    /// Opens a capture file with the default [`MeterConfig`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        Ok(Self::with_frames(FrameReader::open(path)?))
    }
}

impl<R: Read> RawCaptureReader<R> {
    /// Reads a capture from any byte source; `name` is used in error messages.
    pub fn from_reader(
        reader: R,
        name: impl Into<std::path::PathBuf>,
    ) -> Result<Self, CaptureError> {
        Ok(Self::with_frames(FrameReader::from_reader(reader, name)?))
    }

    fn with_frames(frames: FrameReader<R>) -> Self {
        RawCaptureReader {
            frames,
            meter: FlowMeter::new(MeterConfig::default()),
            ready: VecDeque::new(),
            error: None,
            done: false,
        }
    }

    /// Replaces the meter's configuration; call before iterating.
    pub fn with_config(mut self, config: MeterConfig) -> Self {
        self.meter = FlowMeter::new(config);
        self
    }

    /// Counters of frames read and flows made so far.
    pub fn stats(&self) -> &MeterStats {
        self.meter.stats()
    }

    /// Reads frames until a flow ends or the capture does.
    fn fill(&mut self) {
        let RawCaptureReader {
            frames,
            meter,
            ready,
            ..
        } = self;
        let read = frames.next_frame(&mut |time, sliced| {
            meter.stats.frames += 1;
            match sliced.and_then(|s| packet_info(meter, time, &s)) {
                Ok(packet) => meter.packet(packet, ready),
                Err(skip) => {
                    let stats = &mut meter.stats;
                    *match skip {
                        FrameSkip::UnsupportedLink => &mut stats.unsupported_link,
                        FrameSkip::NotIp | FrameSkip::NotUdpTcp => &mut stats.not_ip,
                        FrameSkip::Truncated => &mut stats.truncated,
                        FrameSkip::Malformed => &mut stats.malformed,
                    } += 1;
                }
            }
        });
        match read {
            Ok(true) => {}
            Ok(false) => self.finish(None),
            Err(error) => self.finish(Some(error)),
        }
    }

    /// Ends the capture: flows still held are exported before the error, if any.
    fn finish(&mut self, error: Option<CaptureError>) {
        self.meter.finish(&mut self.ready);
        self.error = error;
        self.done = true;
    }
}

impl<R: Read> Iterator for RawCaptureReader<R> {
    type Item = Result<FlowRecord, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(flow) = self.ready.pop_front() {
                return Some(Ok(flow));
            }
            if self.done {
                return self.error.take().map(Err);
            }
            self.fill();
        }
    }
}
