//! Recognising input kinds by content.

use std::io::Cursor;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::{ethernet, ipv4, pcap, shared_dir, udp};
use crate::sources::{sniff, sniff_reader, InputKind, SourceError};

fn kind(bytes: Vec<u8>) -> Result<InputKind, SourceError> {
    sniff_reader(Cursor::new(bytes), "input")
}

/// An IPFIX message header with no sets (RFC 7011 section 3.1).
fn ipfix_header() -> Vec<u8> {
    let mut m = 10u16.to_be_bytes().to_vec(); // version 10
    m.extend(16u16.to_be_bytes()); // length: the header alone
    m.extend(1_577_836_800u32.to_be_bytes()); // export time
    m.extend(0u32.to_be_bytes()); // sequence number
    m.extend(1u32.to_be_bytes()); // observation domain
    m
}

/// A NetFlow v5 packet of `count` records, `extra` bytes longer than the count says.
fn netflow5(count: u16, extra: usize) -> Vec<u8> {
    let mut p = 5u16.to_be_bytes().to_vec(); // version 5
    p.extend(count.to_be_bytes()); // record count
    p.extend([0; 20]); // uptime, secs, nsecs, sequence, engine, sampling
    p.extend(vec![0; 48 * usize::from(count) + extra]); // records
    p
}

/// A capture of UDP datagrams carrying `payload` from an exporter to a collector.
fn udp_capture(payloads: &[Vec<u8>]) -> Vec<u8> {
    let (exporter, collector) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7));
    let frames: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut frame = ethernet(0x0800);
            frame.extend(ipv4(exporter, collector, 17, 0, 8 + payload.len()));
            frame.extend(udp(50000, 4739, payload.len()));
            frame.extend(payload);
            (Duration::from_millis(i as u64), frame)
        })
        .collect();
    pcap(&frames)
}

#[test]
fn text_formats_are_told_by_their_first_bytes() {
    let zeek = b"#separator \\x09\n#fields\tts\n".to_vec();
    assert_eq!(kind(zeek).unwrap(), InputKind::ZeekTsv);
    assert_eq!(
        kind(b"{\"ts\":1.0}\n".to_vec()).unwrap(),
        InputKind::ZeekJson
    );
    let argus = b"StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr\n".to_vec();
    assert_eq!(kind(argus).unwrap(), InputKind::Argus);
    assert_eq!(kind(ipfix_header()).unwrap(), InputKind::IpfixFile);
    let other = kind(b"hello, world\n".to_vec()).unwrap_err();
    assert!(matches!(other, SourceError::Unrecognised { .. }), "{other}");
    assert!(matches!(
        kind(Vec::new()),
        Err(SourceError::Unrecognised { .. })
    ));
}

#[test]
fn captures_of_export_messages_are_export_captures() {
    let ipfix = udp_capture(&vec![ipfix_header(); 5]);
    assert_eq!(kind(ipfix).unwrap(), InputKind::ExportCapture);
    let v5 = udp_capture(&vec![netflow5(2, 0); 5]);
    assert_eq!(kind(v5).unwrap(), InputKind::ExportCapture);
}

#[test]
fn captures_whose_payloads_only_start_like_export_are_raw() {
    // Version 5 but a length that disagrees with the count: not NetFlow.
    let v5_wrong_length = udp_capture(&vec![netflow5(2, 7); 5]);
    assert_eq!(kind(v5_wrong_length).unwrap(), InputKind::RawCapture);
    // Version 10 with a length longer than the datagram.
    let mut long = ipfix_header();
    long[2..4].copy_from_slice(&400u16.to_be_bytes());
    assert_eq!(
        kind(udp_capture(&vec![long; 5])).unwrap(),
        InputKind::RawCapture
    );
    // Mostly other traffic.
    let mut mixed = vec![b"GET / HTTP/1.1\r\n".to_vec(); 4];
    mixed.push(ipfix_header());
    assert_eq!(kind(udp_capture(&mixed)).unwrap(), InputKind::RawCapture);
}

#[test]
fn shared_captures_are_told_apart() {
    let Some(shared) = shared_dir() else {
        println!("skipped: no shared data (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let softflowd = shared.join("fixtures/gen/softflowd");
    let mut exports: Vec<_> = std::fs::read_dir(&softflowd)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    exports.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
    assert!(
        !exports.is_empty(),
        "no captures under {}",
        softflowd.display()
    );
    for path in &exports {
        assert_eq!(
            sniff(path).unwrap(),
            InputKind::ExportCapture,
            "{}",
            path.display()
        );
    }
    let labelled = shared.join("data/labelled");
    let raw = labelled.join("iot-hide-and-seek/hide-and-seek-short.pcap");
    assert_eq!(sniff(&raw).unwrap(), InputKind::RawCapture);
    let zeek = labelled.join("ctu-sme11-remcos/conn.log.labeled");
    assert_eq!(sniff(&zeek).unwrap(), InputKind::ZeekTsv);
    println!(
        "{} export captures and the raw capture recognised",
        exports.len()
    );
}
