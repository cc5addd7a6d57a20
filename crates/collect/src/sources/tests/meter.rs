//! Metering raw packets into biflows.

use std::collections::VecDeque;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use botnest_flow::{FlowRecord, Timestamp};

use super::{ethernet, icmp_echo, ipv4, ipv6, pcap, tcp, udp, v4_frame};
use crate::sources::meter::{FlowMeter, MeterConfig, PacketInfo, RawCaptureReader};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn meter_capture(
    frames: &[(Duration, Vec<u8>)],
) -> (Vec<FlowRecord>, crate::sources::meter::MeterStats) {
    let mut reader = RawCaptureReader::from_reader(Cursor::new(pcap(frames)), "raw.pcap").unwrap();
    let flows = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (flows, *reader.stats())
}

fn tcp_frame(from_client: bool, flags: u8, payload: usize) -> Vec<u8> {
    let (src, dst, sport, dport) = if from_client {
        (CLIENT, SERVER, 40000, 80)
    } else {
        (SERVER, CLIENT, 80, 40000)
    };
    v4_frame(src, dst, 6, tcp(sport, dport, flags), payload)
}

#[test]
fn tcp_handshake_data_and_close_make_one_biflow() {
    let frames = [
        (ms(0), tcp_frame(true, SYN, 0)),
        (ms(10), tcp_frame(false, SYN | ACK, 0)),
        (ms(20), tcp_frame(true, ACK, 0)),
        (ms(30), tcp_frame(true, PSH | ACK, 100)),
        (ms(40), tcp_frame(false, PSH | ACK, 200)),
        (ms(50), tcp_frame(true, FIN | ACK, 0)),
        (ms(60), tcp_frame(false, FIN | ACK, 0)),
        (ms(70), tcp_frame(true, ACK, 0)),
    ];
    let (flows, stats) = meter_capture(&frames);
    assert_eq!(flows.len(), 1, "{flows:?}");
    let flow = &flows[0];
    assert_eq!((flow.src, flow.src_port), (IpAddr::V4(CLIENT), 40000));
    assert_eq!(
        (flow.dst, flow.dst_port, flow.protocol),
        (IpAddr::V4(SERVER), 80, 6)
    );
    // Forward: SYN, ACK, data, FIN, ACK, each 40 bytes of headers, plus 100 bytes of data.
    assert_eq!((flow.packets, flow.octets), (5, 5 * 40 + 100));
    assert_eq!(
        (flow.reverse_packets, flow.reverse_octets),
        (3, 3 * 40 + 200)
    );
    let all = u16::from(SYN | ACK | PSH | FIN);
    assert_eq!((flow.tcp_flags, flow.reverse_tcp_flags), (all, all));
    assert_eq!(
        flow.end.as_unix_nanos() - flow.start.as_unix_nanos(),
        70_000_000
    );
    assert_eq!((stats.frames, stats.packets, stats.flows), (8, 8, 1));
}

#[test]
fn udp_exchange_is_one_biflow_from_the_first_sender() {
    let dns = Ipv4Addr::new(10, 0, 0, 53);
    let frames = [
        (ms(0), v4_frame(CLIENT, dns, 17, udp(5353, 53, 30), 30)),
        (ms(5), v4_frame(dns, CLIENT, 17, udp(53, 5353, 60), 60)),
    ];
    let (flows, _) = meter_capture(&frames);
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    assert_eq!(
        (flow.src, flow.src_port, flow.dst_port),
        (IpAddr::V4(CLIENT), 5353, 53)
    );
    assert_eq!((flow.packets, flow.octets), (1, 20 + 8 + 30));
    assert_eq!(
        (flow.reverse_packets, flow.reverse_octets),
        (1, 20 + 8 + 60)
    );
    assert_eq!((flow.tcp_flags, flow.reverse_tcp_flags), (0, 0));
}

#[test]
fn icmp_echo_and_reply_are_one_biflow_keyed_by_the_request() {
    let frames = [
        (ms(0), v4_frame(CLIENT, SERVER, 1, icmp_echo(8, 1), 32)),
        (ms(1), v4_frame(SERVER, CLIENT, 1, icmp_echo(0, 1), 32)),
        (ms(1000), v4_frame(CLIENT, SERVER, 1, icmp_echo(8, 2), 32)),
        (ms(1001), v4_frame(SERVER, CLIENT, 1, icmp_echo(0, 2), 32)),
    ];
    let (flows, _) = meter_capture(&frames);
    assert_eq!(flows.len(), 1, "{flows:?}");
    let flow = &flows[0];
    assert_eq!(
        (flow.src, flow.dst),
        (IpAddr::V4(CLIENT), IpAddr::V4(SERVER))
    );
    assert_eq!(
        (flow.protocol, flow.src_port, flow.dst_port),
        (1, 0, 0x0800)
    );
    assert_eq!((flow.packets, flow.octets), (2, 2 * (20 + 8 + 32)));
    assert_eq!(
        (flow.reverse_packets, flow.reverse_octets),
        (2, 2 * (20 + 8 + 32))
    );
}

#[test]
fn syn_sender_is_the_initiator_even_when_the_answer_comes_first() {
    let frames = [
        (ms(0), tcp_frame(false, SYN | ACK, 0)),
        (ms(1), tcp_frame(true, ACK, 0)),
    ];
    let (flows, _) = meter_capture(&frames);
    assert_eq!(flows[0].src, IpAddr::V4(CLIENT));
    assert_eq!(flows[0].reverse_tcp_flags, u16::from(SYN | ACK));
    let late_syn = [
        (ms(0), tcp_frame(false, ACK, 0)),
        (ms(1), tcp_frame(true, SYN, 0)),
    ];
    let (flows, _) = meter_capture(&late_syn);
    assert_eq!(
        (flows[0].src, flows[0].tcp_flags),
        (IpAddr::V4(CLIENT), u16::from(SYN))
    );
    assert_eq!(flows[0].reverse_tcp_flags, u16::from(ACK));
}

#[test]
fn reset_ends_the_flow_and_a_new_syn_starts_another() {
    let frames = [
        (ms(0), tcp_frame(true, SYN, 0)),
        (ms(10), tcp_frame(false, RST | ACK, 0)),
        (ms(5000), tcp_frame(true, SYN, 0)),
        (ms(5010), tcp_frame(false, RST | ACK, 0)),
    ];
    let (flows, _) = meter_capture(&frames);
    assert_eq!(flows.len(), 2);
    for flow in &flows {
        assert_eq!(
            (flow.tcp_flags, flow.reverse_tcp_flags),
            (u16::from(SYN), u16::from(RST | ACK))
        );
    }
}

#[test]
fn ipv6_and_fragments_are_metered() {
    let (a, b): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let mut v6 = ethernet(0x86dd);
    v6.extend(ipv6(a, b, 17, 8 + 12));
    v6.extend(udp(1000, 2000, 12));
    v6.extend([0; 12]);
    // A UDP datagram of 8 + 1000 bytes in two fragments: 8 + 592 bytes, then 408 bytes.
    let mut first = ethernet(0x0800);
    first.extend(ipv4(CLIENT, SERVER, 17, 0x2000, 600)); // more fragments, offset 0
    first.extend(udp(7000, 9000, 1000));
    first.extend([0; 592]);
    let mut second = ethernet(0x0800);
    second.extend(ipv4(CLIENT, SERVER, 17, 600 / 8, 408)); // last fragment, offset 600 bytes
    second.extend([0; 408]);
    let (flows, stats) = meter_capture(&[(ms(0), v6), (ms(1), first), (ms(2), second)]);
    assert_eq!(flows.len(), 2, "{flows:?}");
    let v6 = flows.iter().find(|f| f.src.is_ipv6()).unwrap();
    assert_eq!(
        (v6.src_port, v6.dst_port, v6.octets),
        (1000, 2000, 40 + 8 + 12)
    );
    let fragmented = flows.iter().find(|f| f.src.is_ipv4()).unwrap();
    assert_eq!((fragmented.src_port, fragmented.dst_port), (7000, 9000));
    assert_eq!((fragmented.packets, fragmented.octets), (2, 620 + 428));
    assert_eq!(stats.fragments_unmatched, 0);
}

#[test]
fn frames_that_are_not_ip_are_counted() {
    let mut arp = ethernet(0x0806);
    arp.extend([0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4 request
    arp.extend([0; 20]); // addresses
    let truncated = tcp_frame(true, SYN, 0)[..30].to_vec();
    let (flows, stats) = meter_capture(&[(ms(0), arp), (ms(1), truncated)]);
    assert!(flows.is_empty());
    assert_eq!(
        (stats.frames, stats.not_ip, stats.truncated, stats.packets),
        (2, 1, 1, 0)
    );
}

// ---- Timeouts and limits, on packets fed directly. ----

fn udp_packet(secs: u64, sport: u16) -> PacketInfo {
    PacketInfo {
        time: Timestamp::from_unix_secs(1_000 + secs),
        src: IpAddr::V4(CLIENT),
        dst: IpAddr::V4(SERVER),
        protocol: 17,
        src_port: sport,
        dst_port: 53,
        tcp_flags: 0,
        octets: 60,
        vlan: 0,
    }
}

fn feed(config: MeterConfig, packets: &[PacketInfo]) -> (Vec<FlowRecord>, FlowMeter) {
    let mut meter = FlowMeter::new(config);
    let mut out = VecDeque::new();
    for packet in packets {
        meter.packet(*packet, &mut out);
    }
    meter.finish(&mut out);
    (out.into(), meter)
}

#[test]
fn idle_flows_end_after_the_idle_timeout() {
    let packets = [udp_packet(0, 1), udp_packet(59, 1), udp_packet(59 + 61, 1)];
    let (flows, _) = feed(MeterConfig::default(), &packets);
    let counts: Vec<u64> = flows.iter().map(|f| f.packets).collect();
    assert_eq!(counts, [2, 1]);
}

#[test]
fn long_flows_are_cut_at_the_active_timeout() {
    let packets: Vec<_> = (0..40).map(|i| udp_packet(i * 10, 1)).collect();
    let (flows, meter) = feed(MeterConfig::default(), &packets);
    let counts: Vec<u64> = flows.iter().map(|f| f.packets).collect();
    assert_eq!(counts, [30, 10]);
    assert_eq!(meter.stats().flows_active_timeout, 1);
}

#[test]
fn full_table_evicts_and_counts() {
    let config = MeterConfig {
        max_flows: 2,
        ..MeterConfig::default()
    };
    let packets = [udp_packet(0, 1), udp_packet(1, 2), udp_packet(2, 3)];
    let (flows, meter) = feed(config, &packets);
    assert_eq!(flows.len(), 3);
    assert_eq!(flows[0].src_port, 1, "the oldest flow goes first");
    assert_eq!(meter.stats().flows_evicted, 1);
    assert_eq!(meter.stats().max_active_flows, 2);
}

#[test]
fn flows_come_out_in_the_order_they_end() {
    let packets = [
        udp_packet(0, 1),
        udp_packet(10, 2),
        udp_packet(5, 3),
        udp_packet(200, 4),
    ];
    let (flows, _) = feed(MeterConfig::default(), &packets);
    let ports: Vec<u16> = flows.iter().map(|f| f.src_port).collect();
    assert_eq!(ports, [1, 3, 2, 4]);
}
