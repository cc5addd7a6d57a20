//! Link, IP and transport decoding of captured frames into datagrams.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use botnest_flow::Timestamp;
use bytes::Bytes;
use etherparse::err::packet::SliceError;
use etherparse::{
    EtherType, IpNumber, Ipv4Slice, Ipv6ExtensionSlice, Ipv6Slice, LaxSlicedPacket, NetSlice,
    SlicedPacket, TcpSlice, UdpSlice,
};

use super::defrag::{Defragmenter, FragKey, Fragment};
use super::source::{Frame, LinkType};
use super::tcp::{Segment, TcpReassembler};
use super::{CaptureLimits, CaptureStats, Datagram, Transport};

/// Length of the Linux cooked capture v1 header; its last field is the protocol type.
const SLL_HEADER_LEN: usize = 16;
/// Length of the Linux cooked capture v2 header; its first field is the protocol type.
const SLL2_HEADER_LEN: usize = 20;
/// Length of the address family word in front of BSD loopback frames.
const NULL_HEADER_LEN: usize = 4;

/// Why a frame yields nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    UnsupportedLink,
    NotIp,
    NotUdpTcp,
    Truncated,
    Malformed,
}

/// Decoding state shared by all frames of one capture.
#[derive(Debug)]
pub(super) struct Decoder {
    pub stats: CaptureStats,
    defrag: Defragmenter,
    tcp: TcpReassembler,
}

/// Addresses and payload of one IP packet (or reassembled datagram).
struct IpPayload<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: IpNumber,
    data: &'a [u8],
}

impl Decoder {
    pub fn new(limits: CaptureLimits) -> Self {
        Decoder {
            stats: CaptureStats::default(),
            defrag: Defragmenter::new(limits),
            tcp: TcpReassembler::new(limits),
        }
    }

    /// Decodes one frame, appending what it completes to `out`.
    pub fn frame(&mut self, frame: Frame<'_>, out: &mut VecDeque<Datagram>) {
        self.stats.frames += 1;
        if let Err(skip) = self.decode(frame, out) {
            self.count(skip);
        }
    }

    /// Releases what is still held at the end of the capture.
    pub fn finish(&mut self, out: &mut VecDeque<Datagram>) {
        self.defrag.finish(&mut self.stats);
        self.tcp.finish(&mut self.stats, out);
    }

    fn count(&mut self, skip: Skip) {
        let counter = match skip {
            Skip::UnsupportedLink => &mut self.stats.unsupported_link,
            Skip::NotIp => &mut self.stats.not_ip,
            Skip::NotUdpTcp => &mut self.stats.not_udp_tcp,
            Skip::Truncated => &mut self.stats.truncated,
            Skip::Malformed => &mut self.stats.malformed,
        };
        *counter += 1;
    }

    fn decode(&mut self, frame: Frame<'_>, out: &mut VecDeque<Datagram>) -> Result<(), Skip> {
        let sliced = slice_link(frame.link, frame.data)?;
        match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => self.ipv4(frame.time, ip, out),
            Some(NetSlice::Ipv6(ip)) => self.ipv6(frame.time, ip, out),
            Some(NetSlice::Arp(_)) | None => Err(Skip::NotIp),
        }
    }

    fn ipv4(
        &mut self,
        time: Timestamp,
        ip: &Ipv4Slice<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<(), Skip> {
        let header = ip.header();
        let payload = ip.payload();
        let packet = IpPayload {
            src: header.source_addr().into(),
            dst: header.destination_addr().into(),
            protocol: payload.ip_number,
            data: payload.payload,
        };
        if !payload.fragmented {
            return self.transport(time, packet, out);
        }
        let fragment = Fragment {
            offset: header.fragments_offset(),
            more: header.more_fragments(),
            data: payload.payload,
        };
        let key = FragKey::new(&packet, u32::from(header.identification()));
        self.reassembled(time, key, fragment, packet, out)
    }

    fn ipv6(
        &mut self,
        time: Timestamp,
        ip: &Ipv6Slice<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<(), Skip> {
        let header = ip.header();
        let payload = ip.payload();
        let packet = IpPayload {
            src: header.source_addr().into(),
            dst: header.destination_addr().into(),
            protocol: payload.ip_number,
            data: payload.payload,
        };
        if !payload.fragmented {
            return self.transport(time, packet, out);
        }
        // RFC 8200 section 4.5: the fragment header carries offset, M flag and identification.
        let frag = ip
            .extensions()
            .clone()
            .into_iter()
            .find_map(|ext| match ext {
                Ipv6ExtensionSlice::Fragment(f) => Some(f),
                _ => None,
            });
        let Some(frag) = frag else {
            return Err(Skip::Malformed);
        };
        let fragment = Fragment {
            offset: frag.fragment_offset(),
            more: frag.more_fragments(),
            data: payload.payload,
        };
        let key = FragKey::new(&packet, frag.identification());
        self.reassembled(time, key, fragment, packet, out)
    }

    /// Feeds a fragment; decodes the transport once the datagram is whole.
    fn reassembled(
        &mut self,
        time: Timestamp,
        key: FragKey,
        fragment: Fragment<'_>,
        packet: IpPayload<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<(), Skip> {
        let Some(whole) = self.defrag.add(time, key, fragment, &mut self.stats) else {
            return Ok(());
        };
        let packet = IpPayload {
            data: &whole,
            ..packet
        };
        self.transport(time, packet, out)
    }

    fn transport(
        &mut self,
        time: Timestamp,
        packet: IpPayload<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<(), Skip> {
        match packet.protocol {
            IpNumber::UDP => self.udp(time, packet, out),
            IpNumber::TCP => self.tcp(time, packet, out),
            _ => Err(Skip::NotUdpTcp),
        }
    }

    fn udp(
        &mut self,
        time: Timestamp,
        packet: IpPayload<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<(), Skip> {
        let udp = UdpSlice::from_slice(packet.data).map_err(|_| Skip::Truncated)?;
        self.stats.udp_datagrams += 1;
        out.push_back(Datagram {
            time,
            transport: Transport::Udp,
            src: SocketAddr::new(packet.src, udp.source_port()),
            dst: SocketAddr::new(packet.dst, udp.destination_port()),
            payload: Bytes::copy_from_slice(udp.payload()),
            gap: false,
        });
        Ok(())
    }

    fn tcp(
        &mut self,
        time: Timestamp,
        packet: IpPayload<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<(), Skip> {
        let tcp = TcpSlice::from_slice(packet.data).map_err(|e| match e {
            etherparse::err::tcp::HeaderSliceError::Len(_) => Skip::Truncated,
            etherparse::err::tcp::HeaderSliceError::Content(_) => Skip::Malformed,
        })?;
        let segment = Segment {
            time,
            src: SocketAddr::new(packet.src, tcp.source_port()),
            dst: SocketAddr::new(packet.dst, tcp.destination_port()),
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            payload: tcp.payload(),
        };
        self.tcp.segment(segment, &mut self.stats, out);
        Ok(())
    }
}

impl FragKey {
    fn new(packet: &IpPayload<'_>, id: u32) -> Self {
        FragKey {
            src: packet.src,
            dst: packet.dst,
            id,
            protocol: packet.protocol.0,
        }
    }
}

/// Parses the link layer and everything the link says is above it.
fn slice_link(link: LinkType, data: &[u8]) -> Result<SlicedPacket<'_>, Skip> {
    let sliced = match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(data),
        LinkType::LinuxSll => SlicedPacket::from_linux_sll(data),
        LinkType::LinuxSll2 => {
            let protocol = data.get(..2).ok_or(Skip::Truncated)?;
            let rest = data.get(SLL2_HEADER_LEN..).ok_or(Skip::Truncated)?;
            let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
            SlicedPacket::from_ether_type(ether_type, rest)
        }
        LinkType::RawIp => SlicedPacket::from_ip(data),
        // The address family's byte order depends on the capturing host; the IP version
        // nibble that follows says the same thing reliably.
        LinkType::Null | LinkType::Loop => {
            SlicedPacket::from_ip(data.get(NULL_HEADER_LEN..).ok_or(Skip::Truncated)?)
        }
        LinkType::Other(_) => return Err(Skip::UnsupportedLink),
    };
    sliced.map_err(|e| match e {
        SliceError::Len(_) => Skip::Truncated,
        _ => Skip::Malformed,
    })
}

/// Parses the link layer and what is above it, accepting IP packets cut short by the capture's
/// snapshot length: the IP header's length fields still say how long the packet was.
pub(super) fn slice_link_lax(link: LinkType, data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    let ip = |data| {
        LaxSlicedPacket::from_ip(data).map_err(|e| match e {
            etherparse::err::ip::LaxHeaderSliceError::Len(_) => Skip::Truncated,
            etherparse::err::ip::LaxHeaderSliceError::Content(_) => Skip::Malformed,
        })
    };
    let cooked = |type_at: usize, header_len: usize| {
        let protocol = data.get(type_at..type_at + 2).ok_or(Skip::Truncated)?;
        let rest = data.get(header_len..).ok_or(Skip::Truncated)?;
        let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
        Ok(LaxSlicedPacket::from_ether_type(ether_type, rest))
    };
    match link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Truncated),
        LinkType::LinuxSll => cooked(SLL_HEADER_LEN - 2, SLL_HEADER_LEN),
        LinkType::LinuxSll2 => cooked(0, SLL2_HEADER_LEN),
        LinkType::RawIp => ip(data),
        LinkType::Null | LinkType::Loop => {
            ip(data.get(NULL_HEADER_LEN..).ok_or(Skip::Truncated)?)
        }
        LinkType::Other(_) => Err(Skip::UnsupportedLink),
    }
}
