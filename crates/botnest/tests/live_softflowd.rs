//! softflowd 1.1 as a live exporter: the test writes a capture of known traffic, softflowd
//! reads it (`-r`) and exports IPFIX, IPFIX biflows, NetFlow v9 and v5 to a `botnest collect`
//! on loopback, and every record botnest prints must describe the traffic that was written.

#[allow(dead_code)]
mod live_common;

use botnest_flow::FlowRecord;
use live_common::{flows, prerequisites, wait_bounded, Collector};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Capture time of the first packet: 2023-11-14T22:13:20Z. All packet times are whole
/// milliseconds after it and the last one falls on a whole second: softflowd `-a` takes the
/// last packet's time as the export time, and the NetFlow v9 header carries whole seconds only
/// (RFC 3954 §5.1 "UNIX Secs"), so with these times every exported time is exact to the
/// millisecond in all versions.
const T0_SECS: u64 = 1_700_000_000;

/// Exported times are milliseconds since the exporter's start (sysUpTime); one millisecond of
/// truncation is allowed on either end.
const TIME_SLACK_NS: u64 = 1_000_000;

/// TCP flag bits (RFC 9293 §3.1).
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// What the transport layer of one packet carries; payloads are zero bytes of the given size.
#[derive(Debug, Clone, Copy)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        payload: usize,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: usize,
    },
    /// ICMP or ICMPv6 (by the address family) echo message of the given type and code.
    Icmp { ty: u8, code: u8, payload: usize },
}

/// One direction of a flow as the traffic defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    packets: u64,
    /// IP bytes: IP header, transport header and payload (what softflowd counts).
    octets: u64,
    tcp_flags: u16,
    first_ns: u64,
    last_ns: u64,
}

type Key = (IpAddr, IpAddr, u16, u16, u8);

/// The capture being written and, per direction, what an exporter must report for it.
#[derive(Debug, Default)]
struct Traffic {
    frames: Vec<(Duration, Vec<u8>)>,
    expected: BTreeMap<Key, Expected>,
}

impl Traffic {
    /// Appends one packet sent `at_ms` after T0 and accounts for it in its direction's flow.
    fn packet(&mut self, at_ms: u64, src: IpAddr, dst: IpAddr, l4: L4) {
        let (protocol, transport) = transport(src, dst, l4);
        let ip = ip_packet(src, dst, protocol, &transport);
        let at = Duration::from_secs(T0_SECS) + Duration::from_millis(at_ms);
        let ns = u64::try_from(at.as_nanos()).unwrap();
        let (src_port, dst_port, flags) = match l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
                ..
            } => (sport, dport, flags),
            L4::Udp { sport, dport, .. } => (sport, dport, 0),
            // The normalised record puts ICMP type and code into the destination port.
            L4::Icmp { ty, code, .. } => (0, u16::from_be_bytes([ty, code]), 0),
        };
        let e = self
            .expected
            .entry((src, dst, src_port, dst_port, protocol))
            .or_insert(Expected {
                src,
                dst,
                src_port,
                dst_port,
                protocol,
                packets: 0,
                octets: 0,
                tcp_flags: 0,
                first_ns: ns,
                last_ns: ns,
            });
        e.packets += 1;
        e.octets += ip.len() as u64;
        e.tcp_flags |= u16::from(flags);
        e.last_ns = ns;
        self.frames.push((at, ethernet(src, &ip)));
    }

    /// A TCP conversation from `c` to `s`: handshake, `up` client segments, `down` server
    /// segments, each acknowledged, then FIN from both sides. Starts at `t` ms, 1 ms per packet.
    fn tcp_session(
        &mut self,
        t: u64,
        c: (IpAddr, u16),
        s: (IpAddr, u16),
        up: &[usize],
        down: &[usize],
    ) {
        let mut at = t;
        let mut send = |tr: &mut Traffic, from_client: bool, flags: u8, payload: usize| {
            let (a, b) = if from_client { (c, s) } else { (s, c) };
            let l4 = L4::Tcp {
                sport: a.1,
                dport: b.1,
                flags,
                payload,
            };
            tr.packet(at, a.0, b.0, l4);
            at += 1;
        };
        send(self, true, SYN, 0);
        send(self, false, SYN | ACK, 0);
        send(self, true, ACK, 0);
        for &n in up {
            send(self, true, PSH | ACK, n);
            send(self, false, ACK, 0);
        }
        for &n in down {
            send(self, false, PSH | ACK, n);
            send(self, true, ACK, 0);
        }
        send(self, true, FIN | ACK, 0);
        send(self, false, FIN | ACK, 0);
        send(self, true, ACK, 0);
    }

    fn write(&self, path: &Path) {
        let file = std::fs::File::create(path).expect("create capture");
        let mut w = PcapWriter::new(file).expect("pcap header");
        for (at, frame) in &self.frames {
            let len = u32::try_from(frame.len()).unwrap();
            w.write_packet(&PcapPacket::new(*at, len, frame))
                .expect("write packet");
        }
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, last))
}

/// The traffic of every test: in each conversation the initiator has the lower address.
fn traffic() -> Traffic {
    let mut t = Traffic::default();
    // TCP over IPv4 with data both ways.
    t.tcp_session(0, (v4(1), 40001), (v4(2), 80), &[1000, 1000, 1000], &[500]);
    // TCP over IPv6.
    t.tcp_session(100, (v6(1), 40002), (v6(2), 8080), &[1200, 1200], &[]);
    // A SYN answered by RST|ACK (closed port).
    t.packet(200, v4(1), v4(2), tcp(40003, 81, SYN));
    t.packet(201, v4(2), v4(1), tcp(81, 40003, RST | ACK));
    // UDP over IPv4: three queries, one answer.
    for at in [300, 400, 500] {
        t.packet(at, v4(1), v4(2), udp(40004, 53, 100));
    }
    t.packet(510, v4(2), v4(1), udp(53, 40004, 200));
    // UDP over IPv6, unanswered.
    for at in [600, 700] {
        t.packet(at, v6(1), v6(2), udp(40005, 5000, 50));
    }
    // ICMPv6 echo request (128) and reply (129), twice.
    for at in [1000, 1500] {
        t.packet(at, v6(1), v6(2), icmp(128, 56));
        t.packet(at + 1, v6(2), v6(1), icmp(129, 56));
    }
    // ICMP echo request (8) and reply (0), three times; the last reply is the last packet.
    for at in [2000, 2500, 2999] {
        t.packet(at, v4(1), v4(2), icmp(8, 56));
        t.packet(at + 1, v4(2), v4(1), icmp(0, 56));
    }
    t
}

fn tcp(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::Tcp {
        sport,
        dport,
        flags,
        payload: 0,
    }
}

fn udp(sport: u16, dport: u16, payload: usize) -> L4 {
    L4::Udp {
        sport,
        dport,
        payload,
    }
}

fn icmp(ty: u8, payload: usize) -> L4 {
    L4::Icmp {
        ty,
        code: 0,
        payload,
    }
}

/// The transport header and payload, checksummed; returns the IP protocol number with it.
fn transport(src: IpAddr, dst: IpAddr, l4: L4) -> (u8, Vec<u8>) {
    let (protocol, mut seg, checksum_at) = match l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
            payload,
        } => {
            let mut h = Vec::with_capacity(20 + payload);
            h.extend_from_slice(&sport.to_be_bytes());
            h.extend_from_slice(&dport.to_be_bytes());
            h.extend_from_slice(&1000u32.to_be_bytes()); // sequence number
            h.extend_from_slice(&2000u32.to_be_bytes()); // acknowledgment number
            h.push(5 << 4); // data offset: 5 words, no options
            h.push(flags);
            h.extend_from_slice(&65535u16.to_be_bytes()); // window
            h.extend_from_slice(&[0, 0]); // checksum, filled below
            h.extend_from_slice(&[0, 0]); // urgent pointer
            h.resize(20 + payload, 0);
            (TCP, h, 16)
        }
        L4::Udp {
            sport,
            dport,
            payload,
        } => {
            let mut h = Vec::with_capacity(8 + payload);
            h.extend_from_slice(&sport.to_be_bytes());
            h.extend_from_slice(&dport.to_be_bytes());
            h.extend_from_slice(&u16::try_from(8 + payload).unwrap().to_be_bytes()); // length
            h.extend_from_slice(&[0, 0]); // checksum, filled below
            h.resize(8 + payload, 0);
            (UDP, h, 6)
        }
        L4::Icmp { ty, code, payload } => {
            let mut h = vec![ty, code, 0, 0]; // type, code, checksum (filled below)
            h.extend_from_slice(&0x4242u16.to_be_bytes()); // echo identifier
            h.extend_from_slice(&1u16.to_be_bytes()); // echo sequence number
            h.resize(8 + payload, 0);
            let protocol = if src.is_ipv4() { ICMP } else { ICMPV6 };
            (protocol, h, 2)
        }
    };
    // ICMPv4 is checksummed alone (RFC 792); TCP, UDP and ICMPv6 over a pseudo-header
    // (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1).
    let mut sum = if protocol == ICMP {
        0
    } else {
        pseudo_header_sum(src, dst, protocol, seg.len())
    };
    sum += ones_sum(&seg);
    let checksum = fold(sum).to_be_bytes();
    seg[checksum_at..checksum_at + 2].copy_from_slice(&checksum);
    (protocol, seg)
}

fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u32 {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, protocol]);
            p.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, protocol]);
        }
        _ => unreachable!("one address family per packet"),
    }
    ones_sum(&p)
}

fn ones_sum(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IP packet around a transport segment.
fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, seg: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + seg.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.push(0x45); // version 4, header length 5 words
            p.push(0); // DSCP/ECN
            p.extend_from_slice(&u16::try_from(20 + seg.len()).unwrap().to_be_bytes());
            p.extend_from_slice(&1u16.to_be_bytes()); // identification
            p.extend_from_slice(&0x4000u16.to_be_bytes()); // don't fragment, offset 0
            p.push(64); // TTL
            p.push(protocol);
            p.extend_from_slice(&[0, 0]); // header checksum, filled below
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let checksum = fold(ones_sum(&p)).to_be_bytes();
            p[10..12].copy_from_slice(&checksum);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&0x6000_0000u32.to_be_bytes()); // version 6, class 0, label 0
            p.extend_from_slice(&u16::try_from(seg.len()).unwrap().to_be_bytes()); // payload
            p.push(protocol); // next header
            p.push(64); // hop limit
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => unreachable!("one address family per packet"),
    }
    p.extend_from_slice(seg);
    p
}

/// The Ethernet frame around an IP packet; each host has a MAC of its own.
fn ethernet(src: IpAddr, ip: &[u8]) -> Vec<u8> {
    let (me, peer, ethertype) = match src {
        IpAddr::V4(a) => (a.octets()[3], 3 - a.octets()[3], 0x0800u16),
        IpAddr::V6(a) => (a.octets()[15], 3 - a.octets()[15], 0x86ddu16),
    };
    let mut f = vec![0x02, 0, 0, 0, 0, peer]; // destination: locally administered MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, me]); // source
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs softflowd over `capture` towards a collector on `port`, in the foreground, and waits
/// for it to finish: with `-r` it flushes every flow at the end of the file and exits.
fn run_softflowd(dir: &Path, capture: &Path, port: u16, args: &[&str]) {
    let mut child = Command::new("softflowd")
        .arg("-r")
        .arg(capture)
        .args(["-n", &format!("127.0.0.1:{port}")])
        // -d: stay in the foreground; -a: take time from the capture, not the clock.
        .args(["-d", "-a"])
        // softflowd 1.1.0 reading a file blocks in accept() on its control socket before
        // reading any packet; without the socket it runs through.
        .args(["-c", "none"])
        .arg("-p")
        .arg(dir.join("softflowd.pid"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("softflowd starts");
    assert!(
        wait_bounded(&mut child, live_common::WAIT),
        "softflowd {args:?} exits cleanly after the end of the capture"
    );
}

/// Writes the capture, lets softflowd export it with `args`, and returns what botnest printed
/// once `want` flow records arrived, after checking its summary reports no decode errors.
fn export(args: &[&str], want: usize) -> Vec<String> {
    let dir = live_common::temp_dir("botnest-live-softflowd");
    let capture = dir.path().join("traffic.pcap");
    traffic().write(&capture);
    let port = free_udp_port();
    let listen = format!("udp://127.0.0.1:{port}");
    let mut collector = Collector::start(&[], &["--listen", &listen]);
    run_softflowd(dir.path(), &capture, port, args);
    collector.wait_for(|r| r.len() >= want);
    let log = collector.log();
    let lines = collector.stop();
    let summary = live_common::summary(&lines);
    assert_eq!(
        summary["errors"], 0,
        "no decode errors: {summary}; log:\n{log}"
    );
    assert_eq!(summary["records"], want as u64, "{summary}");
    lines
}

/// Compares the records with the expected directions, one record per direction.
fn assert_unidirectional(records: &[FlowRecord], traffic: &Traffic) {
    let expected: Vec<&Expected> = traffic.expected.values().collect();
    assert_eq!(
        records.len(),
        expected.len(),
        "one record per direction: {records:#?}"
    );
    for e in expected {
        let r = only(records, key(e));
        let what = format!("{e:?} vs {r:?}");
        assert_eq!(r.packets, e.packets, "packets of {what}");
        assert_eq!(r.octets, e.octets, "octets of {what}");
        assert_eq!(r.tcp_flags, e.tcp_flags, "TCP flags of {what}");
        assert_eq!((r.reverse_packets, r.reverse_octets), (0, 0), "{what}");
        assert_times(r, traffic.conversation_times(e));
    }
}

/// The one record with this key.
fn only(records: &[FlowRecord], k: Key) -> &FlowRecord {
    let matching: Vec<_> = records
        .iter()
        .filter(|r| (r.src, r.dst, r.src_port, r.dst_port, r.protocol) == k)
        .collect();
    assert_eq!(matching.len(), 1, "one record for {k:?}: {records:#?}");
    matching[0]
}

fn key(e: &Expected) -> Key {
    (e.src, e.dst, e.src_port, e.dst_port, e.protocol)
}

fn reversed(k: Key) -> Key {
    (k.1, k.0, k.3, k.2, k.4)
}

fn assert_times(r: &FlowRecord, (first_ns, last_ns): (u64, u64)) {
    let (start, end) = (r.start.as_unix_nanos(), r.end.as_unix_nanos());
    assert!(
        start.abs_diff(first_ns) <= TIME_SLACK_NS && end.abs_diff(last_ns) <= TIME_SLACK_NS,
        "times of {r:?}: start {start} end {end}, packets at {first_ns}..{last_ns}"
    );
}

impl Traffic {
    /// First and last packet of the conversation `e` belongs to. softflowd keeps one flow
    /// entry per conversation (addresses and ports, either way round; ICMP type and code count
    /// as ports, so an echo request and its reply are two conversations) and exports its times
    /// for both directions.
    fn conversation_times(&self, e: &Expected) -> (u64, u64) {
        match self.expected.get(&reversed(key(e))) {
            Some(r) => (e.first_ns.min(r.first_ns), e.last_ns.max(r.last_ns)),
            None => (e.first_ns, e.last_ns),
        }
    }
}

#[test]
fn softflowd_ipfix_records_match_the_traffic() {
    if !prerequisites("live_softflowd", &["softflowd"]) {
        return;
    }
    let traffic = traffic();
    let lines = export(&["-v", "10"], traffic.expected.len());
    assert_unidirectional(&flows(&lines), &traffic);
}

#[test]
fn softflowd_netflow9_records_match_the_traffic() {
    if !prerequisites("live_softflowd", &["softflowd"]) {
        return;
    }
    let traffic = traffic();
    let lines = export(&["-v", "9"], traffic.expected.len());
    assert_unidirectional(&flows(&lines), &traffic);
}

#[test]
fn softflowd_netflow5_records_match_the_ipv4_traffic() {
    if !prerequisites("live_softflowd", &["softflowd"]) {
        return;
    }
    // NetFlow v5 has IPv4 addresses only; softflowd leaves IPv6 flows out of it.
    let mut traffic = traffic();
    traffic.expected.retain(|_, e| e.src.is_ipv4());
    let lines = export(&["-v", "5"], traffic.expected.len());
    assert_unidirectional(&flows(&lines), &traffic);
}

#[test]
fn softflowd_ipfix_biflows_match_the_conversations() {
    if !prerequisites("live_softflowd", &["softflowd"]) {
        return;
    }
    let traffic = traffic();
    let expected = expected_biflows(&traffic);
    let lines = export(&["-v", "10", "-b"], expected.len());
    let flows = flows(&lines);
    assert_eq!(flows.len(), expected.len(), "{flows:#?}");
    for b in &expected {
        let r = only(&flows, b.key);
        let what = format!("{b:?} vs {r:?}");
        assert_eq!((r.packets, r.octets), b.forward, "forward counts of {what}");
        assert_eq!(
            (r.reverse_packets, r.reverse_octets),
            b.reverse,
            "reverse counts of {what}"
        );
        assert_eq!(r.tcp_flags, b.flags, "forward TCP flags of {what}");
        assert_eq!(
            r.reverse_tcp_flags, b.reverse_flags,
            "reverse TCP flags of {what}"
        );
        assert_times(r, b.times);
    }
}

/// One RFC 5103 biflow as softflowd must report it.
#[derive(Debug)]
struct Biflow {
    key: Key,
    forward: (u64, u64),
    reverse: (u64, u64),
    flags: u16,
    reverse_flags: u16,
    times: (u64, u64),
}

/// softflowd orders the two sides of a biflow by address, the lower one forward; in this
/// traffic that is always the initiator. An ICMP reply is a conversation of its own (type and
/// code are its ports), sent by the higher address: its biflow has an empty forward side, and
/// softflowd exports the type and code of that empty side, 0.
fn expected_biflows(traffic: &Traffic) -> Vec<Biflow> {
    let mut out = Vec::new();
    for e in traffic.expected.values() {
        let reverse = traffic.expected.get(&reversed(key(e)));
        let counts = |d: Option<&Expected>| d.map_or((0, 0), |d| (d.packets, d.octets));
        let times = traffic.conversation_times(e);
        if e.src < e.dst {
            out.push(Biflow {
                key: key(e),
                forward: (e.packets, e.octets),
                reverse: counts(reverse),
                flags: e.tcp_flags,
                reverse_flags: reverse.map_or(0, |r| r.tcp_flags),
                times,
            });
        } else if reverse.is_none() {
            assert!(
                matches!(e.protocol, ICMP | ICMPV6),
                "only ICMP replies: {e:?}"
            );
            out.push(Biflow {
                key: (e.dst, e.src, 0, 0, e.protocol),
                forward: (0, 0),
                reverse: (e.packets, e.octets),
                flags: 0,
                reverse_flags: 0,
                times,
            });
        }
    }
    out
}
