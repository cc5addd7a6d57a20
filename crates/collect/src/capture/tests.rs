//! Captures built in memory, frame by frame, then read back.

use super::*;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

const EXPORTER_V4: [u8; 4] = [192, 0, 2, 1];
const COLLECTOR_V4: [u8; 4] = [198, 51, 100, 7];
const IPFIX_PORT: u16 = 4739;

// ---- Frame builders: each returns the bytes of one header, fields in wire order. ----

/// Ethernet II header.
fn ethernet(ether_type: u16) -> Vec<u8> {
    let mut h = vec![0x02, 0, 0, 0, 0, 0x02]; // destination MAC
    h.extend([0x02, 0, 0, 0, 0, 0x01]); // source MAC
    h.extend(ether_type.to_be_bytes()); // EtherType of what follows
    h
}

/// One 802.1Q / 802.1ad tag after the MACs: TCI then the inner EtherType.
fn vlan_tag(vid: u16, inner_type: u16) -> Vec<u8> {
    let mut h = vid.to_be_bytes().to_vec(); // PCP 0, DEI 0, VLAN id
    h.extend(inner_type.to_be_bytes()); // EtherType of what follows
    h
}

/// IPv4 header without options; `frag` is the flags and fragment offset word.
fn ipv4(protocol: u8, id: u16, frag: u16, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x45, 0x00]; // version 4, IHL 5 words; DSCP/ECN 0
    h.extend(((20 + payload_len) as u16).to_be_bytes()); // total length
    h.extend(id.to_be_bytes()); // identification
    h.extend(frag.to_be_bytes()); // flags (0x2000 = more fragments) and offset in 8-byte units
    h.extend([64, protocol]); // TTL, protocol
    h.extend([0, 0]); // header checksum, filled below
    h.extend(EXPORTER_V4); // source address
    h.extend(COLLECTOR_V4); // destination address
    let sum = ones_complement_sum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn exporter_v6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}

fn collector_v6() -> Ipv6Addr {
    "2001:db8::7".parse().unwrap()
}

/// IPv6 fixed header.
fn ipv6(next_header: u8, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0]; // version 6, traffic class 0, flow label 0
    h.extend((payload_len as u16).to_be_bytes()); // payload length
    h.extend([next_header, 64]); // next header, hop limit
    h.extend(exporter_v6().octets()); // source address
    h.extend(collector_v6().octets()); // destination address
    h
}

/// IPv6 fragment extension header (RFC 8200 section 4.5).
fn ipv6_fragment(next_header: u8, offset_units: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next_header, 0]; // next header, reserved
    h.extend(((offset_units << 3) | u16::from(more)).to_be_bytes()); // offset, res, M flag
    h.extend(id.to_be_bytes()); // identification
    h
}

/// UDP header and payload; checksum 0 (not computed, allowed for IPv4).
fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = src_port.to_be_bytes().to_vec(); // source port
    h.extend(dst_port.to_be_bytes()); // destination port
    h.extend(((8 + payload.len()) as u16).to_be_bytes()); // length
    h.extend([0, 0]); // checksum
    h.extend(payload);
    h
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;

/// TCP header without options, and payload.
fn tcp(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = 40000u16.to_be_bytes().to_vec(); // source port
    h.extend(IPFIX_PORT.to_be_bytes()); // destination port
    h.extend(seq.to_be_bytes()); // sequence number
    h.extend(0u32.to_be_bytes()); // acknowledgment number
    h.extend([0x50, flags]); // data offset 5 words; flags
    h.extend(65535u16.to_be_bytes()); // window
    h.extend([0, 0, 0, 0]); // checksum, urgent pointer
    h.extend(payload);
    h
}

/// A whole Ethernet/IPv4/UDP frame from the exporter to the collector.
fn eth_ipv4_udp(payload: &[u8]) -> Vec<u8> {
    let udp = udp(50000, IPFIX_PORT, payload);
    [ethernet(0x0800), ipv4(17, 1, 0, udp.len()), udp].concat()
}

fn eth_ipv4_tcp(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let tcp = tcp(seq, flags, payload);
    [ethernet(0x0800), ipv4(6, 1, 0x4000, tcp.len()), tcp].concat()
}

/// A fake export payload: an IPFIX-like version word then a marker byte.
fn payload(marker: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0x00, 0x0a];
    p.resize(len, marker);
    p
}

// ---- Capture writers. ----

/// A little-endian microsecond pcap with one frame per second from t=1000 s.
fn pcap(link: DataLink, frames: &[Vec<u8>]) -> Vec<u8> {
    pcap_with(link, Endianness::Little, TsResolution::MicroSecond, frames)
}

fn pcap_with(
    link: DataLink,
    endianness: Endianness,
    ts_resolution: TsResolution,
    frames: &[Vec<u8>],
) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        endianness,
        ts_resolution,
        ..Default::default()
    };
    let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let time = Duration::new(1000 + i as u64, 500_000_000);
        writer
            .write_packet(&PcapPacket::new(time, frame.len() as u32, frame))
            .unwrap();
    }
    writer.into_writer()
}

/// A pcapng with one interface of timestamp resolution 10^-`tsresol` s.
fn pcapng(link: DataLink, endianness: Endianness, tsresol: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
    let idb = InterfaceDescriptionBlock {
        linktype: link,
        snaplen: 65535,
        options: vec![InterfaceDescriptionOption::IfTsResol(tsresol)],
    };
    writer.write_pcapng_block(idb).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        // pcap-file writes the timestamp's nanosecond count as the raw unit count.
        let units = (2000 + i as u64) * 10u64.pow(u32::from(tsresol));
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(units),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(frame),
            options: vec![],
        };
        writer.write_pcapng_block(epb).unwrap();
    }
    writer.into_inner()
}

fn read_all(bytes: Vec<u8>) -> (Vec<Datagram>, CaptureStats) {
    let mut reader = CaptureReader::from_reader(std::io::Cursor::new(bytes), "test.pcap").unwrap();
    let datagrams = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (datagrams, *reader.stats())
}

fn v4(addr: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::from(addr).into(), port)
}

// ---- Link types. ----

#[test]
fn ethernet_udp_datagram_is_yielded_with_addresses_and_time() {
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &[eth_ipv4_udp(&payload(1, 20))]));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].transport, Transport::Udp);
    assert_eq!(out[0].src, v4(EXPORTER_V4, 50000));
    assert_eq!(out[0].dst, v4(COLLECTOR_V4, IPFIX_PORT));
    assert_eq!(&out[0].payload[..], &payload(1, 20)[..]);
    assert_eq!(out[0].time, Timestamp(1_000_500_000_000));
    assert!(!out[0].gap);
    assert_eq!(stats.udp_datagrams, 1);
}

#[test]
fn vlan_and_qinq_tagged_frames_are_decoded() {
    let udp = udp(50000, IPFIX_PORT, &payload(2, 12));
    let ip = ipv4(17, 1, 0, udp.len());
    // 802.1Q: one tag.
    let single = [
        ethernet(0x8100),
        vlan_tag(10, 0x0800),
        ip.clone(),
        udp.clone(),
    ]
    .concat();
    // 802.1ad outer tag, 802.1Q inner tag.
    let double = [
        ethernet(0x88a8),
        vlan_tag(100, 0x8100),
        vlan_tag(10, 0x0800),
        ip,
        udp,
    ]
    .concat();
    let (out, _) = read_all(pcap(DataLink::ETHERNET, &[single, double]));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|d| d.payload[..] == payload(2, 12)[..]));
}

#[test]
fn linux_cooked_sll_frame_is_decoded() {
    let udp = udp(50000, IPFIX_PORT, &payload(3, 10));
    let mut sll = vec![0, 0]; // packet type: to us
    sll.extend(1u16.to_be_bytes()); // ARPHRD_ETHER
    sll.extend(6u16.to_be_bytes()); // link-layer address length
    sll.extend([2, 0, 0, 0, 0, 1, 0, 0]); // address, padded to 8 bytes
    sll.extend(0x0800u16.to_be_bytes()); // protocol: IPv4
    let frame = [sll, ipv4(17, 1, 0, udp.len()), udp].concat();
    let (out, _) = read_all(pcap(DataLink::LINUX_SLL, &[frame]));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].payload[..], &payload(3, 10)[..]);
}

#[test]
fn linux_cooked_sll2_frame_in_nanosecond_pcapng_is_decoded() {
    let udp = udp(50000, IPFIX_PORT, &payload(4, 10));
    let mut sll2 = 0x0800u16.to_be_bytes().to_vec(); // protocol: IPv4
    sll2.extend([0, 0]); // reserved
    sll2.extend(3u32.to_be_bytes()); // interface index
    sll2.extend(1u16.to_be_bytes()); // ARPHRD_ETHER
    sll2.extend([0, 6]); // packet type, address length
    sll2.extend([2, 0, 0, 0, 0, 1, 0, 0]); // address, padded to 8 bytes
    let frame = [sll2, ipv4(17, 1, 0, udp.len()), udp].concat();
    let (out, _) = read_all(pcapng(
        DataLink::LINUX_SLL2,
        Endianness::Little,
        9,
        &[frame],
    ));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].payload[..], &payload(4, 10)[..]);
    assert_eq!(out[0].time, Timestamp::from_unix_secs(2000));
}

#[test]
fn ipv6_udp_in_big_endian_microsecond_pcapng_is_decoded() {
    let udp = udp(50000, IPFIX_PORT, &payload(5, 30));
    let frame = [ethernet(0x86dd), ipv6(17, udp.len()), udp].concat();
    let (out, _) = read_all(pcapng(DataLink::ETHERNET, Endianness::Big, 6, &[frame]));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].src, SocketAddr::new(exporter_v6().into(), 50000));
    assert_eq!(
        out[0].dst,
        SocketAddr::new(collector_v6().into(), IPFIX_PORT)
    );
    assert_eq!(out[0].time, Timestamp::from_unix_secs(2000));
}

#[test]
fn raw_ip_and_bsd_loopback_frames_are_decoded() {
    let udp = udp(50000, IPFIX_PORT, &payload(6, 10));
    let raw = [ipv4(17, 1, 0, udp.len()), udp.clone()].concat();
    let null = [2u32.to_le_bytes().to_vec(), raw.clone()].concat(); // AF_INET, host order
    let (out_raw, _) = read_all(pcap(DataLink::RAW, std::slice::from_ref(&raw)));
    let (out_null, _) = read_all(pcap(DataLink::NULL, &[null]));
    assert_eq!(out_raw.len(), 1);
    assert_eq!(out_null.len(), 1);
}

#[test]
fn big_endian_nanosecond_pcap_keeps_nanoseconds() {
    let bytes = pcap_with(
        DataLink::ETHERNET,
        Endianness::Big,
        TsResolution::NanoSecond,
        &[eth_ipv4_udp(&payload(7, 8))],
    );
    let (out, _) = read_all(bytes);
    assert_eq!(out[0].time, Timestamp(1_000_500_000_000));
}

#[test]
fn frames_that_are_not_udp_or_tcp_are_counted_and_skipped() {
    let mut arp = ethernet(0x0806);
    arp.extend([0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4 ARP request
    arp.extend([
        2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 198, 51, 100, 7,
    ]);
    let icmp = [
        ethernet(0x0800),
        ipv4(1, 1, 0, 8),
        vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0],
    ]
    .concat();
    let cut = eth_ipv4_udp(&payload(8, 40))[..30].to_vec(); // cut inside the IPv4 header
    let good = eth_ipv4_udp(&payload(8, 8));
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &[arp, icmp, cut, good]));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (
            stats.frames,
            stats.not_ip,
            stats.not_udp_tcp,
            stats.truncated
        ),
        (4, 1, 1, 1)
    );
}

#[test]
fn unknown_link_type_is_counted_not_fatal() {
    let (out, stats) = read_all(pcap(DataLink::IEEE802_11, &[vec![0; 40]]));
    assert!(out.is_empty());
    assert_eq!(stats.unsupported_link, 1);
}

// ---- Fragments. ----

/// An IPv4/UDP datagram split in three fragments: offsets 0, 16 and 32 bytes.
fn ipv4_fragments(id: u16, data: &[u8]) -> Vec<Vec<u8>> {
    let udp = udp(50000, IPFIX_PORT, data);
    assert!(udp.len() > 32);
    let parts = [&udp[..16], &udp[16..32], &udp[32..]];
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let more = if i < 2 { 0x2000 } else { 0 };
            let frag = more | (i as u16 * 2); // offset in 8-byte units
            [
                ethernet(0x0800),
                ipv4(17, id, frag, part.len()),
                part.to_vec(),
            ]
            .concat()
        })
        .collect()
}

#[test]
fn ipv4_fragments_out_of_order_are_reassembled() {
    let data = payload(9, 50);
    let f = ipv4_fragments(77, &data);
    let frames = [f[2].clone(), f[0].clone(), f[1].clone()];
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &frames));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].payload[..], &data[..]);
    assert_eq!(out[0].src, v4(EXPORTER_V4, 50000));
    assert_eq!(
        out[0].time,
        Timestamp(1_002_500_000_000),
        "time of the completing fragment"
    );
    assert_eq!(stats.fragments_reassembled, 1);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let data = payload(10, 40);
    let udp = udp(50000, IPFIX_PORT, &data);
    let (first, second) = udp.split_at(24);
    let frame = |offset_units, more, part: &[u8]| {
        let frag = ipv6_fragment(17, offset_units, more, 0xabcd);
        [
            ethernet(0x86dd),
            ipv6(44, frag.len() + part.len()),
            frag,
            part.to_vec(),
        ]
        .concat()
    };
    let frames = [frame(3, false, second), frame(0, true, first)];
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &frames));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].payload[..], &data[..]);
    assert_eq!(stats.fragments_reassembled, 1);
}

#[test]
fn fragments_older_than_the_timeout_are_dropped_and_counted() {
    let f = ipv4_fragments(5, &payload(11, 50));
    // Frames are one capture second apart: the last fragment comes 2 s after the first.
    let limits = CaptureLimits {
        fragment_timeout_nanos: 1_500_000_000,
        ..Default::default()
    };
    let bytes = pcap(DataLink::ETHERNET, &f);
    let mut reader = CaptureReader::from_reader(std::io::Cursor::new(bytes), "t")
        .unwrap()
        .with_limits(limits);
    assert_eq!(reader.by_ref().count(), 0);
    assert_eq!(reader.stats().fragments_expired, 1);
    assert_eq!(
        reader.stats().fragments_incomplete,
        1,
        "the late fragments start anew"
    );
}

#[test]
fn pending_datagram_limit_evicts_the_oldest() {
    let a = ipv4_fragments(1, &payload(12, 50));
    let b = ipv4_fragments(2, &payload(13, 50));
    let limits = CaptureLimits {
        max_fragment_datagrams: 1,
        ..Default::default()
    };
    let frames = [a[0].clone(), b[0].clone(), b[1].clone(), b[2].clone()];
    let bytes = pcap(DataLink::ETHERNET, &frames);
    let mut reader = CaptureReader::from_reader(std::io::Cursor::new(bytes), "t")
        .unwrap()
        .with_limits(limits);
    let out: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].payload[..], &payload(13, 50)[..]);
    assert_eq!(reader.stats().fragments_evicted, 1);
}

// ---- TCP. ----

fn tcp_payloads(out: &[Datagram]) -> Vec<u8> {
    out.iter().flat_map(|d| d.payload.iter().copied()).collect()
}

#[test]
fn tcp_segments_out_of_order_and_retransmitted_come_out_in_stream_order() {
    let isn: u32 = 0xffff_fff0; // the stream wraps the 32-bit sequence space
    let (a, b, c) = (payload(1, 16), payload(2, 16), payload(3, 16));
    let seq = |n: u32| isn.wrapping_add(1 + n);
    let frames = [
        eth_ipv4_tcp(isn, SYN, &[]),
        eth_ipv4_tcp(seq(32), PSH_ACK, &c), // ahead: buffered
        eth_ipv4_tcp(seq(0), PSH_ACK, &a),  // in order: a, nothing more yet
        eth_ipv4_tcp(seq(0), PSH_ACK, &a),  // retransmission of a
        eth_ipv4_tcp(seq(8), PSH_ACK, &[a[8..].to_vec(), b.clone()].concat()), // overlaps a
        eth_ipv4_tcp(seq(48), FIN_ACK, &[]),
    ];
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &frames));
    assert!(out.iter().all(|d| d.transport == Transport::Tcp && !d.gap));
    assert_eq!(tcp_payloads(&out), [a, b, c].concat());
    assert_eq!(out[0].src, v4(EXPORTER_V4, 40000));
    assert_eq!(stats.tcp_retransmissions, 1);
    assert_eq!(stats.tcp_gaps, 0);
}

#[test]
fn tcp_stream_without_syn_starts_at_first_segment_with_gap_flag() {
    let frames = [
        eth_ipv4_tcp(5000, ACK, &payload(1, 10)),
        eth_ipv4_tcp(5010, ACK, &payload(2, 10)),
        eth_ipv4_tcp(4990, ACK, &payload(3, 10)), // before the start: already passed
    ];
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &frames));
    assert_eq!(out.len(), 2);
    assert!(out[0].gap && !out[1].gap);
    assert_eq!(
        tcp_payloads(&out),
        [payload(1, 10), payload(2, 10)].concat()
    );
    assert_eq!(stats.tcp_retransmissions, 1);
}

#[test]
fn tcp_bytes_behind_a_missing_segment_are_released_at_end_with_gap_flag() {
    let frames = [
        eth_ipv4_tcp(99, SYN, &[]),
        eth_ipv4_tcp(100, PSH_ACK, &payload(1, 10)),
        // bytes 10..20 never captured
        eth_ipv4_tcp(120, PSH_ACK, &payload(3, 10)),
    ];
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &frames));
    assert_eq!(out.len(), 2);
    assert!(!out[0].gap && out[1].gap);
    assert_eq!(&out[1].payload[..], &payload(3, 10)[..]);
    assert_eq!(stats.tcp_gaps, 1);
}

#[test]
fn tcp_buffer_limit_skips_the_gap_without_waiting_for_the_end() {
    let limits = CaptureLimits {
        max_tcp_stream_buffer: 15,
        ..Default::default()
    };
    let frames = [
        eth_ipv4_tcp(99, SYN, &[]),
        eth_ipv4_tcp(110, PSH_ACK, &payload(1, 10)), // ahead of the missing first 10 bytes
        eth_ipv4_tcp(120, PSH_ACK, &payload(2, 10)), // 20 bytes held: over the limit
    ];
    let bytes = pcap(DataLink::ETHERNET, &frames);
    let mut reader = CaptureReader::from_reader(std::io::Cursor::new(bytes), "t")
        .unwrap()
        .with_limits(limits);
    let first = reader.next().unwrap().unwrap();
    assert!(first.gap);
    assert_eq!(reader.stats().tcp_gaps, 1);
    assert_eq!(
        reader.stats().frames,
        3,
        "released before the end of the capture"
    );
}

// ---- File errors. ----

#[test]
fn truncated_capture_yields_good_frames_then_an_error_with_offset() {
    let frames = [eth_ipv4_udp(&payload(1, 8)), eth_ipv4_udp(&payload(2, 8))];
    let mut bytes = pcap(DataLink::ETHERNET, &frames);
    bytes.truncate(bytes.len() - 5);
    let reader = CaptureReader::from_reader(std::io::Cursor::new(bytes), "cut.pcap").unwrap();
    let results: Vec<_> = reader.collect();
    assert_eq!(results.len(), 2);
    assert_eq!(
        &results[0].as_ref().unwrap().payload[..],
        &payload(1, 8)[..]
    );
    let first_len = 16 + frames[0].len() as u64;
    match &results[1] {
        Err(CaptureError::Truncated { offset, .. }) => assert_eq!(*offset, 24 + first_len),
        other => panic!("expected a truncation error, got {other:?}"),
    }
    let message = results[1].as_ref().unwrap_err().to_string();
    assert!(message.starts_with("cut.pcap: truncated"), "{message}");
}

#[test]
fn file_that_is_not_a_capture_is_refused() {
    let err = CaptureReader::from_reader(&b"\x00\x0a\x00\x10not a capture"[..], "x.bin");
    assert!(matches!(err, Err(CaptureError::UnknownFormat { .. })));
    let empty = CaptureReader::from_reader(&b""[..], "empty.pcap");
    assert!(matches!(
        empty,
        Err(CaptureError::Truncated { offset: 0, .. })
    ));
}

// ---- Shared fixture captures. ----

fn shared_fixtures() -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("BOTNEST_SHARED").map(std::path::PathBuf::from);
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    [from_env, Some(beside)]
        .into_iter()
        .flatten()
        .map(|shared| shared.join("fixtures"))
        .find(|dir| dir.is_dir())
}

fn captures_under(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            captures_under(&path, found);
        } else if path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng")
        {
            found.push(path);
        }
    }
}

#[test]
fn every_shared_fixture_capture_reads_without_error() {
    let Some(dir) = shared_fixtures() else {
        println!("skipped: no shared fixtures (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let mut files = Vec::new();
    captures_under(&dir, &mut files);
    assert!(!files.is_empty(), "no captures under {}", dir.display());
    for file in files {
        let mut reader = CaptureReader::open(&file).unwrap();
        let datagrams: Vec<Datagram> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        let count = datagrams.len();
        assert!(
            count > 0,
            "{}: no UDP or TCP payload ({:?})",
            file.display(),
            reader.stats()
        );
    }
}

#[test]
fn truncated_pcapng_reports_the_offset_of_the_cut_block() {
    let first = eth_ipv4_udp(&payload(1, 8));
    let one = pcapng(
        DataLink::ETHERNET,
        Endianness::Little,
        6,
        std::slice::from_ref(&first),
    );
    let mut two = pcapng(
        DataLink::ETHERNET,
        Endianness::Little,
        6,
        &[first, eth_ipv4_udp(&[])],
    );
    two.truncate(two.len() - 5);
    let reader = CaptureReader::from_reader(std::io::Cursor::new(two), "cut.pcapng").unwrap();
    let results: Vec<_> = reader.collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    match &results[1] {
        Err(CaptureError::Truncated { offset, .. }) => assert_eq!(*offset, one.len() as u64),
        other => panic!("expected a truncation error, got {other:?}"),
    }
}

#[test]
fn retransmitted_syn_does_not_restart_the_stream() {
    let frames = [
        eth_ipv4_tcp(99, SYN, &[]),
        eth_ipv4_tcp(100, PSH_ACK, &payload(1, 10)),
        eth_ipv4_tcp(99, SYN, &[]),
        eth_ipv4_tcp(100, PSH_ACK, &payload(1, 10)),
        eth_ipv4_tcp(110, PSH_ACK, &payload(2, 10)),
    ];
    let (out, stats) = read_all(pcap(DataLink::ETHERNET, &frames));
    assert_eq!(
        tcp_payloads(&out),
        [payload(1, 10), payload(2, 10)].concat()
    );
    assert_eq!(stats.tcp_retransmissions, 1);
}
