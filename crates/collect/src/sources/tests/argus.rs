//! Argus binetflow CSV reading.

use std::io::Cursor;
use std::net::IpAddr;

use botnest_flow::Timestamp;

use crate::sources::argus::ArgusReader;
use crate::sources::{LineError, SourceError};

const HEADER: &str =
    "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label\n";

const LINES: &str = "\
2011/08/10 09:46:53.047277,3550.182373,udp,212.50.71.179,39678,  <->,147.32.84.229,13363,CON,0,0,12,875,413,flow=Background-UDP-Established
2011/08/10 09:46:59.607825,1.026539,tcp,147.32.84.165,1577,   ->,94.44.127.113,6881,S_RA,0,0,4,276,156,flow=From-Botnet-V42-TCP-Attempt
2011/08/10 09:47:00.000000,0.000000,icmp,147.32.84.229,0x0303,   ->,147.32.84.165,0x9d31,URP,0,,1,590,590,flow=Background
2011/08/10 09:47:01.500000,0.000100,icmp,147.32.84.165,0x0008,  <->,147.32.80.9,0x2c0e,ECO,0,0,2,196,98,flow=From-Normal-V42-ICMP
2011/08/10 09:47:02.000000,0.000000,arp,147.32.84.1,,   who,147.32.84.2,,INT,,,1,60,60,flow=Background
not,a,flow
2011/08/10 09:47:03.000000,0.5,tcp,147.32.84.300,1,   ->,147.32.84.2,80,S_,0,0,1,60,60,flow=Background
2011/08/10 09:47:04.000000,0.5,tcp,147.32.84.165,1026,   ->,147.32.84.2,80,FSPA_FSPA,0,0,10,3000,1000,
";

fn read(
    text: &str,
) -> (
    Vec<crate::sources::LabelledFlow>,
    ArgusReader<Cursor<Vec<u8>>>,
) {
    let mut reader =
        ArgusReader::new(Cursor::new(text.as_bytes().to_vec()), "x.binetflow").unwrap();
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (records, reader)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn flows_are_split_into_directions_by_source_bytes() {
    let (records, _) = read(&(HEADER.to_string() + LINES));
    let (udp, _) = &records[0];
    assert_eq!(udp.start, Timestamp(1_312_969_613_047_277_000));
    assert_eq!(udp.end, Timestamp(1_312_973_163_229_650_000));
    assert_eq!(
        (udp.src, udp.src_port, udp.dst, udp.dst_port),
        (ip("212.50.71.179"), 39678, ip("147.32.84.229"), 13363)
    );
    assert_eq!(udp.protocol, 17);
    // No SrcPkts column: all packets forward; octets split by SrcBytes.
    assert_eq!((udp.packets, udp.reverse_packets), (12, 0));
    assert_eq!((udp.octets, udp.reverse_octets), (413, 462));
}

#[test]
fn tcp_state_gives_flags_per_direction() {
    let (records, _) = read(&(HEADER.to_string() + LINES));
    let (attempt, _) = &records[1];
    assert_eq!(
        (attempt.tcp_flags, attempt.reverse_tcp_flags),
        (0x02, 0x04 | 0x10)
    );
    let (full, label) = records.last().unwrap();
    assert_eq!((full.tcp_flags, full.reverse_tcp_flags), (0x1b, 0x1b));
    assert!(label.is_none());
}

#[test]
fn icmp_hex_ports_give_type_and_code() {
    let (records, _) = read(&(HEADER.to_string() + LINES));
    let (unreachable, _) = &records[2];
    assert_eq!(
        (
            unreachable.protocol,
            unreachable.src_port,
            unreachable.dst_port
        ),
        (1, 0, 0x0303)
    );
    let (echo, _) = &records[3];
    assert_eq!(echo.dst_port, 0x0800);
}

#[test]
fn labels_follow_the_botnet_rule() {
    let (records, _) = read(&(HEADER.to_string() + LINES));
    let labels: Vec<_> = records.iter().map(|(_, l)| l.clone()).collect();
    assert!(!labels[0].as_ref().unwrap().malicious);
    let botnet = labels[1].as_ref().unwrap();
    assert_eq!(botnet.text, "flow=From-Botnet-V42-TCP-Attempt");
    assert!(botnet.malicious);
    assert!(
        !labels[3].as_ref().unwrap().malicious,
        "Normal is not malicious"
    );
}

#[test]
fn bad_lines_and_non_ip_flows_are_counted_and_skipped() {
    let (records, reader) = read(&(HEADER.to_string() + LINES));
    assert_eq!(records.len(), 5);
    let stats = reader.stats();
    assert_eq!(
        (stats.lines, stats.headers, stats.not_ip, stats.bad),
        (9, 1, 1, 2)
    );
    assert_eq!(stats.bad_lines[0].line, 7);
    assert!(matches!(
        stats.bad_lines[0].error,
        LineError::FieldCount {
            expected: 15,
            found: 3
        }
    ));
    assert_eq!(stats.bad_lines[1].line, 8);
    assert!(matches!(
        stats.bad_lines[1].error,
        LineError::BadValue {
            field: "SrcAddr",
            ..
        }
    ));
}

#[test]
fn columns_are_found_by_name_and_src_pkts_splits_packets() {
    let text = "Label,SrcPkts,TotPkts,DstAddr,SrcAddr,Proto,StartTime,TotBytes,SrcBytes\n\
                Normal,3,5,10.0.0.2,10.0.0.1,udp,2011/08/10 09:46:53,500,200\n";
    let (records, _) = read(text);
    let (flow, _) = &records[0];
    assert_eq!((flow.packets, flow.reverse_packets), (3, 2));
    assert_eq!((flow.octets, flow.reverse_octets), (200, 300));
    assert_eq!((flow.src_port, flow.dst_port), (0, 0));
}

#[test]
fn files_without_the_header_are_refused() {
    let err = ArgusReader::new(Cursor::new(b"1,2,3\n".to_vec()), "x.csv").unwrap_err();
    assert!(matches!(err, SourceError::NotArgus { .. }), "{err}");
    assert!(err.to_string().contains("StartTime"), "{err}");
}
