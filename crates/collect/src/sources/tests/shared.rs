//! The shared labelled datasets, read end to end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::shared_dir;
use crate::sources::meter::RawCaptureReader;
use crate::sources::zeek::ZeekReader;
use crate::sources::{sniff, InputKind, LabelledFlow, SourceError};

fn labelled_dir() -> Option<PathBuf> {
    let dir = shared_dir()?.join("data/labelled");
    dir.is_dir().then_some(dir)
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for path in std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()) {
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn data_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

fn read_conn(path: &Path) -> Vec<LabelledFlow> {
    let mut reader = ZeekReader::open(path).unwrap();
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(
        reader.stats().bad,
        0,
        "{}: {:?}",
        path.display(),
        reader.stats().bad_lines
    );
    records
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn every_labelled_file_reads_as_its_kind() {
    let Some(dir) = labelled_dir() else {
        println!("skipped: no shared labelled data (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    files.sort();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match sniff(path) {
            Ok(InputKind::ZeekTsv) if name.starts_with("conn.log") => {
                let records = read_conn(path);
                assert_eq!(records.len(), data_lines(path), "{}", path.display());
                println!("{}: {} conn records", path.display(), records.len());
            }
            Ok(InputKind::ZeekTsv) => {
                let err = ZeekReader::open(path).unwrap_err();
                assert!(matches!(err, SourceError::NotConnLog { .. }), "{err}");
                println!("{}: refused: {err}", path.display());
            }
            Ok(InputKind::RawCapture) => {
                let flows = RawCaptureReader::open(path)
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                assert!(!flows.is_empty());
                println!("{}: {} metered flows", path.display(), flows.len());
            }
            Ok(kind) => panic!("{}: unexpected {kind:?}", path.display()),
            Err(SourceError::Unrecognised { .. }) => {
                assert!(!name.contains(".log") && !name.ends_with("pcap"), "{name}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn label_counts(records: &[LabelledFlow]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, label) in records {
        let text = label.as_ref().map_or("-".to_string(), |l| l.text.clone());
        *counts.entry(text).or_insert(0) += 1;
    }
    counts
}

#[test]
fn remcos_reconnect_loop_is_malicious_and_refused() {
    let Some(dir) = labelled_dir() else {
        println!("skipped: no shared labelled data (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let records = read_conn(&dir.join("ctu-sme11-remcos/conn.log.labeled"));
    let counts = label_counts(&records);
    assert_eq!(
        (counts["Malicious"], counts["Benign"], counts["Unknown"]),
        (719, 44, 3)
    );
    let c2: Vec<_> = records
        .iter()
        .filter(|(f, _)| f.dst == ip("66.63.168.35") && f.dst_port == 5888)
        .collect();
    assert_eq!(c2.len(), 719);
    assert!(c2
        .iter()
        .all(|(f, l)| f.src == ip("192.168.1.107") && l.as_ref().unwrap().malicious));
    // REJ: the SYN was answered by a reset, with no SYN-ACK.
    let refused = c2
        .iter()
        .filter(|(f, _)| f.tcp_flags & 0x02 != 0 && f.reverse_tcp_flags & 0x06 == 0x04)
        .count();
    assert_eq!(refused, 718);
    for benign in ["192.168.1.132", "192.168.1.135"] {
        assert!(records
            .iter()
            .filter(|(f, _)| f.src == ip(benign))
            .all(|(_, l)| !l.as_ref().unwrap().malicious));
    }
}

#[test]
fn benign_ubuntu_host_has_no_malicious_flow() {
    let Some(dir) = labelled_dir() else {
        println!("skipped: no shared labelled data (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let records = read_conn(&dir.join("ctu-sme11-ubuntu-benign/conn.log.labeled"));
    assert_eq!(records.len(), 7124);
    let counts = label_counts(&records);
    assert_eq!((counts["Benign"], counts["Unknown"]), (6796, 328));
    assert!(records.iter().all(|(_, l)| !l.as_ref().unwrap().malicious));
}

#[test]
fn simda_log_keeps_relative_times_and_has_no_labels() {
    let Some(dir) = labelled_dir() else {
        println!("skipped: no shared labelled data (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let records = read_conn(&dir.join("ctu-simda-355-1/conn.log"));
    assert_eq!(records.len(), 992);
    assert!(records.iter().all(|(_, l)| l.is_none()));
    let first = records.iter().map(|(f, _)| f.start).min().unwrap();
    assert!(first.as_unix_nanos() > 11_000_000_000 && first.as_unix_nanos() < 12_000_000_000);
    let bot_v6 = ip("fd77:48a1:c0bb:0:b96c:506d:6c7f:e8be");
    assert!(records.iter().any(|(f, _)| f.src == bot_v6));
}

#[test]
fn hide_and_seek_capture_meters_close_to_zeek() {
    let Some(dir) = labelled_dir() else {
        println!("skipped: no shared labelled data (set BOTNEST_SHARED or place ../shared)");
        return;
    };
    let folder = dir.join("iot-hide-and-seek");
    let zeek = read_conn(&folder.join("conn.log.labeled"));
    let counts = label_counts(&zeek);
    assert_eq!(
        (counts["Malicious"], counts["Benign"], counts["Background"]),
        (322, 51, 1)
    );
    let bot = ip("192.168.2.16");
    assert!(zeek
        .iter()
        .any(|(f, l)| f.src == bot && l.as_ref().unwrap().malicious));
    let mut reader = RawCaptureReader::open(folder.join("hide-and-seek-short.pcap")).unwrap();
    let flows = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    let stats = reader.stats();
    println!(
        "metered {} flows, zeek has {} conn records; {stats:?}",
        flows.len(),
        zeek.len()
    );
    assert_eq!(stats.frames, 2000);
    // Zeek splits and joins a few conversations differently (its own timeouts, ARP aside);
    // the counts agree within a quarter.
    let (metered, zeek_count) = (flows.len() as f64, zeek.len() as f64);
    assert!(
        (metered - zeek_count).abs() <= zeek_count * 0.25,
        "{metered} vs {zeek_count}"
    );
    let packets: u64 = flows.iter().map(|f| f.packets + f.reverse_packets).sum();
    assert_eq!(packets, stats.packets);
    // The scanner's telnet attempts: SYNs from the bot to port 23.
    let telnet = flows
        .iter()
        .filter(|f| f.src == bot && f.dst_port == 23 && f.tcp_flags & 0x02 != 0)
        .count();
    assert!(telnet > 50, "{telnet} telnet attempts");
}
