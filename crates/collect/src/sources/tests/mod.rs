//! Tests of the flow sources, with inputs written in the tests and, where present, the shared
//! labelled datasets.

mod argus;
mod meter;
mod shared;
mod sniff;
mod zeek;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

/// The shared folder beside the project, if present.
fn shared_dir() -> Option<PathBuf> {
    let from_env = std::env::var_os("BOTNEST_SHARED").map(PathBuf::from);
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    [from_env, Some(beside)]
        .into_iter()
        .flatten()
        .find(|dir| dir.join("data").is_dir())
}

// ---- Frame builders: each returns the bytes of one header, fields in wire order. ----

/// Ethernet II header carrying IPv4 (0x0800) or IPv6 (0x86dd).
fn ethernet(ether_type: u16) -> Vec<u8> {
    let mut h = vec![0x02, 0, 0, 0, 0, 0x02]; // destination MAC
    h.extend([0x02, 0, 0, 0, 0, 0x01]); // source MAC
    h.extend(ether_type.to_be_bytes()); // EtherType
    h
}

/// IPv4 header without options; checksums are left 0 (the meter does not check them).
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, frag: u16, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x45, 0x00]; // version 4, IHL 5 words; DSCP/ECN 0
    h.extend(((20 + payload_len) as u16).to_be_bytes()); // total length
    h.extend(0x1234u16.to_be_bytes()); // identification
    h.extend(frag.to_be_bytes()); // flags (0x2000 = more fragments), offset in 8-byte units
    h.extend([64, protocol]); // TTL, protocol
    h.extend([0, 0]); // header checksum
    h.extend(src.octets()); // source address
    h.extend(dst.octets()); // destination address
    h
}

/// IPv6 fixed header.
fn ipv6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, next: u8, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0]; // version 6, traffic class 0, flow label 0
    h.extend((payload_len as u16).to_be_bytes()); // payload length
    h.extend([next, 64]); // next header, hop limit
    h.extend(src.octets()); // source address
    h.extend(dst.octets()); // destination address
    h
}

/// TCP header without options.
fn tcp(src_port: u16, dst_port: u16, flags: u8) -> Vec<u8> {
    let mut h = src_port.to_be_bytes().to_vec(); // source port
    h.extend(dst_port.to_be_bytes()); // destination port
    h.extend(1000u32.to_be_bytes()); // sequence number
    h.extend(2000u32.to_be_bytes()); // acknowledgement number
    h.extend([0x50, flags]); // data offset 5 words; flags (FIN 1, SYN 2, RST 4, PSH 8, ACK 16)
    h.extend(65535u16.to_be_bytes()); // window
    h.extend([0, 0, 0, 0]); // checksum, urgent pointer
    h
}

/// UDP header.
fn udp(src_port: u16, dst_port: u16, payload_len: usize) -> Vec<u8> {
    let mut h = src_port.to_be_bytes().to_vec(); // source port
    h.extend(dst_port.to_be_bytes()); // destination port
    h.extend(((8 + payload_len) as u16).to_be_bytes()); // length
    h.extend([0, 0]); // checksum
    h
}

/// ICMP echo header (RFC 792): type, code, checksum, identifier, sequence.
fn icmp_echo(kind: u8, sequence: u16) -> Vec<u8> {
    let mut h = vec![kind, 0, 0, 0]; // type, code 0, checksum
    h.extend(0x4242u16.to_be_bytes()); // identifier
    h.extend(sequence.to_be_bytes()); // sequence number
    h
}

/// One IPv4 frame: Ethernet, IPv4 and a transport header followed by `payload_len` zeros.
fn v4_frame(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    transport: Vec<u8>,
    payload_len: usize,
) -> Vec<u8> {
    let mut frame = ethernet(0x0800);
    frame.extend(ipv4(src, dst, protocol, 0, transport.len() + payload_len));
    frame.extend(transport);
    frame.extend(vec![0; payload_len]);
    frame
}

/// A microsecond pcap of Ethernet frames at the given offsets from 2020-01-01.
fn pcap(frames: &[(Duration, Vec<u8>)]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (offset, data) in frames {
        let time = Duration::from_secs(1_577_836_800) + *offset;
        let packet = PcapPacket::new(time, data.len() as u32, data);
        writer.write_packet(&packet).unwrap();
    }
    writer.into_writer()
}

mod robustness {
    //! Arbitrary input never panics the readers.

    use std::io::Cursor;
    use std::time::Duration;

    use proptest::prelude::*;

    use crate::sources::argus::ArgusReader;
    use crate::sources::meter::RawCaptureReader;
    use crate::sources::zeek::ZeekReader;

    const ZEEK_HEADER: &str = "#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state\thistory\torig_pkts\tlabel   detailedlabel\n";
    const ARGUS_HEADER: &str = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,TotPkts,TotBytes,SrcBytes,Label\n";

    proptest! {
        #[test]
        fn zeek_lines_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            // A data line ends the header block, so what follows is read as records; header
            // lines among them may still end the reading with an error, never a panic.
            let mut bytes = ZEEK_HEADER.as_bytes().to_vec();
            bytes.extend(b"1.0\t10.0.0.1\t1\t10.0.0.2\t2\tudp\tS0\t-\t1\t-\n");
            bytes.extend(body);
            let reader = ZeekReader::new(Cursor::new(bytes), "p.log").unwrap();
            let records = reader.filter_map(Result::ok).count();
            prop_assert!(records >= 1);
        }

        #[test]
        fn argus_lines_never_panic(body in "[0-9a-z/:.,_ x-]{0,300}") {
            let text = format!("{ARGUS_HEADER}{body}\n");
            let reader = ArgusReader::new(Cursor::new(text.into_bytes()), "p.csv").unwrap();
            for item in reader {
                prop_assert!(item.is_ok());
            }
        }

        #[test]
        fn arbitrary_frames_never_panic_the_meter(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..20)
        ) {
            let frames: Vec<_> = frames
                .into_iter()
                .enumerate()
                .map(|(i, mut f)| {
                    // Mostly IPv4 behind Ethernet, so the deeper layers are reached.
                    let mut frame = super::ethernet(0x0800);
                    if let Some(first) = f.first_mut() {
                        *first = 0x45;
                    }
                    frame.extend(f);
                    (Duration::from_secs(i as u64), frame)
                })
                .collect();
            let reader = RawCaptureReader::from_reader(Cursor::new(super::pcap(&frames)), "p").unwrap();
            for item in reader {
                prop_assert!(item.is_ok());
            }
        }
    }
}
