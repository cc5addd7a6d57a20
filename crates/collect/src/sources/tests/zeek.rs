//! Zeek conn.log reading.

use std::io::Cursor;
use std::net::IpAddr;

use botnest_flow::Timestamp;

use crate::sources::zeek::{tcp_flags, ZeekReader};
use crate::sources::{InputKind, LabelledFlow, LineError, SourceError};

const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

fn reader(text: &str) -> Result<ZeekReader<Cursor<Vec<u8>>>, SourceError> {
    ZeekReader::new(Cursor::new(text.as_bytes().to_vec()), "test.log")
}

fn read_all(text: &str) -> (Vec<LabelledFlow>, ZeekReader<Cursor<Vec<u8>>>) {
    let mut reader = reader(text).unwrap();
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (records, reader)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The standard header of a conn.log, with `extra` columns after `tunnel_parents`.
fn tsv_header(extra: &[&str]) -> String {
    let mut fields = vec![
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "service",
        "duration",
        "orig_bytes",
        "resp_bytes",
        "conn_state",
        "local_orig",
        "local_resp",
        "missed_bytes",
        "history",
        "orig_pkts",
        "orig_ip_bytes",
        "resp_pkts",
        "resp_ip_bytes",
        "tunnel_parents",
    ];
    fields.extend(extra);
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n\
         #path\tconn\n#fields\t{}\n#types\t...\n",
        fields.join("\t")
    )
}

const UNLABELLED: &str = "\
1520628556.553183\tC1\t192.168.2.16\t40000\t203.0.113.9\t23\ttcp\t-\t2.500000\t0\t0\tS0\tT\tF\t0\tS\t3\t180\t0\t0\t(empty)
1520628557.000001\tC2\t192.168.2.16\t40001\t203.0.113.9\t5888\ttcp\t-\t0.037629\t0\t0\tREJ\tT\tF\t0\tSr\t2\t104\t2\t80\t(empty)
1520628558.250000\tC3\t192.168.2.16\t40002\t203.0.113.10\t80\ttcp\thttp\t1.000000\t100\t2000\tSF\tT\tF\t0\tShADadFf\t6\t420\t5\t2260\t(empty)
1520628559.000000\tC4\t192.168.2.16\t8\t203.0.113.11\t0\ticmp\t-\t0.001000\t32\t32\tOTH\tT\tF\t0\t-\t1\t60\t1\t60\t(empty)
1520628560.000000\tC5\tfe80::1\t135\tff02::1:ff00:1\t0\ticmp\t-\t-\t-\t-\tOTH\tT\tF\t0\t-\t1\t72\t0\t0\t(empty)
1520628561.000000\tC6\t192.168.2.16\t5353\t224.0.0.251\t5353\tudp\tdns\t-\t-\t-\tS0\tT\tF\t0\tD\t1\t100\t0\t0\t(empty)
";

#[test]
fn tsv_records_map_to_biflows_in_header_order() {
    let (records, reader) = read_all(&(tsv_header(&[]) + UNLABELLED));
    assert_eq!(reader.kind(), InputKind::ZeekTsv);
    assert_eq!(records.len(), 6);
    assert!(records.iter().all(|(_, label)| label.is_none()));
    let (s0, _) = &records[0];
    assert_eq!(s0.start, Timestamp(1_520_628_556_553_183_000));
    assert_eq!(s0.end, Timestamp(1_520_628_559_053_183_000));
    assert_eq!((s0.src, s0.src_port), (ip("192.168.2.16"), 40000));
    assert_eq!((s0.dst, s0.dst_port), (ip("203.0.113.9"), 23));
    assert_eq!((s0.protocol, s0.packets, s0.octets), (6, 3, 180));
    assert_eq!((s0.reverse_packets, s0.reverse_octets), (0, 0));
    let (sf, _) = &records[2];
    assert_eq!((sf.packets, sf.octets), (6, 420));
    assert_eq!((sf.reverse_packets, sf.reverse_octets), (5, 2260));
    assert!(sf.is_biflow());
    let stats = reader.stats();
    assert_eq!((stats.records, stats.bad, stats.headers), (6, 0, 7));
}

#[test]
fn connection_outcome_is_told_by_the_flags() {
    let (records, _) = read_all(&(tsv_header(&[]) + UNLABELLED));
    let flags: Vec<(u16, u16)> = records
        .iter()
        .map(|(f, _)| (f.tcp_flags, f.reverse_tcp_flags))
        .collect();
    // S0: a SYN without answer.
    assert_eq!(flags[0], (SYN, 0));
    // REJ: the SYN answered by a reset.
    assert_eq!(flags[1].0 & SYN, SYN);
    assert_eq!(flags[1].1 & (RST | SYN), RST);
    // SF: handshake both ways, closed by FIN both ways.
    assert_eq!(flags[2].0 & (SYN | ACK | FIN), SYN | ACK | FIN);
    assert_eq!(flags[2].1 & (SYN | ACK | FIN), SYN | ACK | FIN);
    // Not TCP: no flags even where history has letters.
    assert_eq!(flags[5], (0, 0));
}

#[test]
fn history_letters_set_flags_by_case() {
    assert_eq!(tcp_flags(None, Some("ShR")), (SYN | RST, SYN | ACK));
    assert_eq!(tcp_flags(Some("RSTO"), None).0 & RST, RST);
    assert_eq!(tcp_flags(Some("RSTR"), None), (0, RST));
    assert_eq!(tcp_flags(Some("OTH"), Some("Dd")), (ACK, ACK));
}

#[test]
fn icmp_type_and_code_become_the_destination_port() {
    let (records, _) = read_all(&(tsv_header(&[]) + UNLABELLED));
    let (echo, _) = &records[3];
    assert_eq!(
        (echo.protocol, echo.src_port, echo.dst_port),
        (1, 0, 0x0800)
    );
    // Zeek calls ICMPv6 "icmp": the address family decides.
    let (nd, _) = &records[4];
    assert_eq!((nd.protocol, nd.dst_port), (58, 135 << 8));
    // Unset duration: the flow ends where it starts.
    assert_eq!(nd.end, nd.start);
}

#[test]
fn labelled_columns_are_returned_beside_the_record() {
    let lines = "\
1677024003.714845\tC1\t192.168.1.107\t65164\t66.63.168.35\t5888\ttcp\t-\t0.037629\t0\t0\tREJ\tT\tF\t0\tSr\t2\t104\t2\t80\t-\tMalicious\tFrom_malicious-To_malicious-RemcosRAT
1677024005.317605\tC2\t192.168.1.107\t64746\t162.159.136.234\t443\ttcp\t-\t1.0\t572\t11677\tOTH\tT\tF\t0\tDTadtAtT\t76\t4184\t84\t26714\t-\tBenign\tFrom_benign-To_benign-Application_discord
1677024006.0\tC3\t192.168.1.107\t49752\t77.88.55.55\t443\ttcp\t-\t1.0\t1\t0\tOTH\tT\tF\t0\tDTaT\t22\t902\t22\t1144\t-\tUnknown\t(empty)
1677024007.0\tC4\t192.168.1.107\t49753\t77.88.55.55\t443\ttcp\t-\t1.0\t1\t0\tOTH\tT\tF\t0\tDTaT\t22\t902\t22\t1144\t-\t-\t-
";
    let (records, _) = read_all(&(tsv_header(&["label", "detailedlabel"]) + lines));
    let labels: Vec<_> = records.iter().map(|(_, l)| l.clone()).collect();
    let first = labels[0].as_ref().unwrap();
    assert_eq!(first.text, "Malicious");
    assert_eq!(
        first.detail.as_deref(),
        Some("From_malicious-To_malicious-RemcosRAT")
    );
    assert!(first.malicious);
    assert!(!labels[1].as_ref().unwrap().malicious);
    let unknown = labels[2].as_ref().unwrap();
    assert_eq!(
        (unknown.text.as_str(), &unknown.detail, unknown.malicious),
        ("Unknown", &None, false)
    );
    assert_eq!(labels[3], None);
}

#[test]
fn space_joined_label_column_is_split() {
    // Some CTU files name three fields in one column, their values separated by spaces.
    let header =
        tsv_header(&[]).replace("tunnel_parents", "tunnel_parents   label   detailedlabel");
    let line = "1545403816.0\tC1\t192.168.1.195\t41040\t185.244.25.235\t80\ttcp\t-\t3.1\t0\t0\tS0\t-\t-\t0\tS\t3\t180\t0\t0\t(empty)   Malicious   PartOfAHorizontalPortScan\n";
    let (records, reader) = read_all(&(header + line));
    assert_eq!(reader.stats().bad, 0);
    let label = records[0].1.as_ref().unwrap();
    assert_eq!(label.text, "Malicious");
    assert_eq!(label.detail.as_deref(), Some("PartOfAHorizontalPortScan"));
    assert!(label.malicious);
}

#[test]
fn field_order_comes_from_the_fields_header() {
    let text = "#separator \\x2c\n#unset_field,?\n#fields,proto,id.resp_p,id.resp_h,id.orig_p,id.orig_h,ts,orig_pkts\n\
                udp,53,10.0.0.53,5000,10.0.0.1,12.5,?\n";
    let (records, _) = read_all(text);
    let (flow, _) = &records[0];
    assert_eq!((flow.src, flow.src_port), (ip("10.0.0.1"), 5000));
    assert_eq!(
        (flow.dst, flow.dst_port, flow.protocol),
        (ip("10.0.0.53"), 53, 17)
    );
    // Relative timestamps stay relative.
    assert_eq!(flow.start, Timestamp(12_500_000_000));
    assert_eq!(flow.packets, 0);
}

#[test]
fn bad_lines_are_counted_with_their_numbers_and_skipped() {
    let header = tsv_header(&[]);
    let header_lines = header.lines().count() as u64;
    let good = UNLABELLED.lines().next().unwrap();
    let text = format!(
        "{header}{good}\nshort\tline\n{}\n{}\n{good}\n",
        good.replace("192.168.2.16", "192.168.2.999"),
        good.replace("1520628556.553183", "yesterday"),
    );
    let (records, reader) = read_all(&text);
    assert_eq!(records.len(), 2);
    let stats = reader.stats();
    assert_eq!(stats.bad, 3);
    let numbers: Vec<u64> = stats.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(
        numbers,
        [header_lines + 2, header_lines + 3, header_lines + 4]
    );
    assert!(matches!(
        stats.bad_lines[0].error,
        LineError::FieldCount {
            expected: 21,
            found: 2
        }
    ));
    assert!(matches!(
        stats.bad_lines[1].error,
        LineError::BadValue {
            field: "id.orig_h",
            ..
        }
    ));
    assert!(matches!(
        stats.bad_lines[2].error,
        LineError::BadValue { field: "ts", .. }
    ));
}

#[test]
fn header_block_may_start_again() {
    let block = tsv_header(&[]) + UNLABELLED.lines().next().unwrap() + "\n#close\t2018\n";
    let (records, reader) = read_all(&(block.clone() + &block));
    assert_eq!(records.len(), 2);
    assert_eq!(reader.stats().bad, 0);
}

#[test]
fn json_lines_with_float_and_iso_timestamps() {
    let text = r#"{"ts":1520628556.553183,"uid":"C1","id.orig_h":"192.168.2.16","id.orig_p":40002,"id.resp_h":"203.0.113.10","id.resp_p":80,"proto":"tcp","duration":1.0,"conn_state":"SF","history":"ShADadFf","orig_pkts":6,"orig_ip_bytes":420,"resp_pkts":5,"resp_ip_bytes":2260,"tunnel_parents":[]}
{"ts":"2018-03-09T20:49:16.553183Z","id.orig_h":"192.168.2.16","id.orig_p":8,"id.resp_h":"203.0.113.11","id.resp_p":0,"proto":"icmp","label":"Malicious"}
not json
{"ts":"soon","id.orig_h":"192.168.2.16","id.orig_p":8,"id.resp_h":"203.0.113.11","id.resp_p":0,"proto":"icmp"}
"#;
    let (records, reader) = read_all(text);
    assert_eq!(reader.kind(), InputKind::ZeekJson);
    assert_eq!(records.len(), 2);
    let (sf, none) = &records[0];
    assert_eq!(sf.start, Timestamp(1_520_628_556_553_183_000));
    assert_eq!(sf.end, Timestamp(1_520_628_557_553_183_000));
    assert_eq!(
        (sf.packets, sf.octets, sf.reverse_packets, sf.reverse_octets),
        (6, 420, 5, 2260)
    );
    assert_eq!(sf.reverse_tcp_flags & FIN, FIN);
    assert!(none.is_none());
    let (echo, label) = &records[1];
    assert_eq!(echo.start, Timestamp(1_520_628_556_553_183_000));
    assert_eq!(echo.dst_port, 0x0800);
    assert!(label.as_ref().unwrap().malicious);
    let lines: Vec<u64> = reader.stats().bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(lines, [3, 4]);
}

#[test]
fn files_that_are_not_conn_logs_are_refused() {
    let not_zeek = reader("StartTime,Dur\n1,2\n").unwrap_err();
    assert!(
        matches!(not_zeek, SourceError::NotZeek { .. }),
        "{not_zeek}"
    );
    let empty = reader("").unwrap_err();
    assert!(matches!(empty, SourceError::NotZeek { .. }));
    let no_fields = reader("#separator \\x09\n1.0\tx\n").unwrap_err();
    assert!(no_fields.to_string().contains("#fields"), "{no_fields}");
    let dns =
        reader("#separator \\x09\n#fields\tts\tuid\tquery\n1.0\tC\texample.com\n").unwrap_err();
    assert!(dns.to_string().ends_with("no id.orig_h field"), "{dns}");
    let dns_path = "#separator \\x09\n#path\tdns\n#fields\tts\tid.orig_h\tid.resp_h\tproto\n";
    let dns_path = reader(dns_path).unwrap_err();
    assert!(dns_path.to_string().ends_with("a dns log"), "{dns_path}");
    let no_counters = reader("#separator \\x09\n#fields\tts\tid.orig_h\tid.resp_h\tproto\trtt\n");
    assert!(matches!(no_counters, Err(SourceError::NotConnLog { .. })));
    let json_dns = reader("{\"ts\":1.0,\"query\":\"example.com\"}\n").unwrap_err();
    assert!(matches!(json_dns, SourceError::NotConnLog { .. }));
}

#[test]
fn non_utf8_and_endless_lines_are_bad_lines() {
    let mut bytes = (tsv_header(&[]) + UNLABELLED.lines().next().unwrap() + "\n").into_bytes();
    bytes.extend(b"\xff\xfe\tbroken\n");
    bytes.extend(vec![b'x'; crate::sources::lines::MAX_LINE + 10]);
    bytes.push(b'\n');
    bytes.extend(UNLABELLED.lines().next().unwrap().as_bytes());
    let mut reader = ZeekReader::new(Cursor::new(bytes), "x.log").unwrap();
    let records: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), 2);
    let errors: Vec<_> = reader
        .stats()
        .bad_lines
        .iter()
        .map(|b| b.error.clone())
        .collect();
    assert!(
        matches!(errors[..], [LineError::NotUtf8, LineError::TooLong(_)]),
        "{errors:?}"
    );
}
