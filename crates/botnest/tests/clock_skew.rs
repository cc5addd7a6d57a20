//! Exporters whose clocks disagree with the collector's: records are shifted into the
//! collector's clock by `analyze` and `run`, shown as exported by `decode` and `collect` unless
//! asked, and the offsets are reported. Offline the arrival time is the capture timestamp (a
//! capture written here, of IPFIX built with the wire encoder); live it is the socket clock.

use botnest_wire::encode::{record, IpfixWriter};
use botnest_wire::{FieldSpec, Template};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_botnest");
/// Capture time of the first message: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

fn template() -> Template {
    let f = FieldSpec::iana;
    Template {
        id: 300,
        scope_field_count: 0,
        fields: vec![
            f(8, 4),   // sourceIPv4Address
            f(12, 4),  // destinationIPv4Address
            f(7, 2),   // sourceTransportPort
            f(11, 2),  // destinationTransportPort
            f(4, 1),   // protocolIdentifier
            f(1, 8),   // octetDeltaCount
            f(2, 8),   // packetDeltaCount
            f(152, 8), // flowStartMilliseconds
            f(153, 8), // flowEndMilliseconds
        ],
    }
}

/// One IPFIX message sent at `export` (the exporter's clock, seconds) with `n` flows from
/// 10.0.0.`host` to as many servers, each started 5 s and ended 1 s before.
fn message(export: i64, sequence: u32, host: u8, n: u8) -> Vec<u8> {
    let t = template();
    let ms = |s: i64| ((s * 1000) as u64).to_be_bytes();
    let mut w = IpfixWriter::new(export as u32, sequence, 1);
    w.template(&t);
    for server in 1..=n {
        let rec = record(
            &t,
            &[
                &[10, 0, 0, host],
                &[192, 0, 2, server],
                &40000u16.to_be_bytes(),
                &443u16.to_be_bytes(),
                &[6],
                &900u64.to_be_bytes(),
                &6u64.to_be_bytes(),
                &ms(export - 5),
                &ms(export - 1),
            ],
        )
        .unwrap();
        w.data_record(300, &rec);
    }
    w.finish().unwrap()
}

/// An Ethernet/IPv4/UDP frame from `src` to the collector at 192.0.2.200:4739.
fn frame(src: [u8; 4], sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, 17, 0, 0]);
    ip.extend(src);
    ip.extend([192, 0, 2, 200]);
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend(ip);
    f.extend(sport.to_be_bytes());
    f.extend(4739u16.to_be_bytes());
    f.extend(((8 + payload.len()) as u16).to_be_bytes());
    f.extend([0, 0]);
    f.extend(payload);
    f
}

/// A classic little-endian microsecond pcap of frames captured at the given times.
fn pcap(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    out.extend([0; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (t, f) in frames {
        out.extend((*t as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(f);
    }
    out
}

/// Ten minutes of export traffic from two exporters, one message of 40 flows each every 10 s
/// (4,800 flows, more than `analyze` reads before it first moves time): 192.0.2.1 keeps the
/// collector's time, 192.0.2.2 runs two hours behind.
fn skewed_capture(path: &Path) {
    let mut frames = Vec::new();
    for i in 0..60 {
        let t = T0 + 10 * i;
        let seq = i as u32 * 40;
        frames.push((t, frame([192, 0, 2, 1], 2055, &message(t, seq, 1, 40))));
        let behind = t - 7200;
        frames.push((t, frame([192, 0, 2, 2], 2055, &message(behind, seq, 2, 40))));
    }
    std::fs::write(path, pcap(&frames)).unwrap();
}

fn botnest(args: &[&str]) -> Vec<Value> {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return vec![v];
    }
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[test]
fn analyze_shifts_a_lagging_exporter_into_the_collectors_clock() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("skewed.pcap");
    skewed_capture(&capture);
    let path = capture.to_str().unwrap();

    let corrected = &botnest(&["analyze", "--format", "json", path])[0];
    assert_eq!(corrected["stats"]["flows"], 4800);
    assert_eq!(corrected["stats"]["too_late"], 0, "{}", corrected["stats"]);

    // Without correction the lagging exporter's records are too late for any window once time
    // has moved past them (the last nine messages' 360 flows).
    let config = dir.path().join("botnest.toml");
    std::fs::write(&config, "[decoder.clock]\ncorrect = false\n").unwrap();
    let config = config.to_str().unwrap();
    let raw = &botnest(&["--config", config, "analyze", "--format", "json", path])[0];
    assert!(
        raw["stats"]["too_late"].as_u64().unwrap() >= 300,
        "{}",
        raw["stats"]
    );
}

#[test]
fn decode_shows_times_as_exported_unless_asked_and_reports_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("skewed.pcap");
    skewed_capture(&capture);
    let path = capture.to_str().unwrap();
    let start_of = |lines: &[Value], host: &str| -> Vec<i64> {
        lines
            .iter()
            .filter(|v| v["flow"]["src"] == host)
            .map(|v| (v["flow"]["start"].as_u64().unwrap() / 1_000_000_000) as i64)
            .collect()
    };
    let clocks_of = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .find_map(|v| v.get("summary"))
            .and_then(|s| s["clocks"].as_array().cloned())
            .expect("the summary lists exporter clocks")
    };

    let exported = botnest(&["decode", "--format", "json", path]);
    assert_eq!(start_of(&exported, "10.0.0.2")[0], T0 - 7200 - 5);
    assert_eq!(start_of(&exported, "10.0.0.1")[0], T0 - 5);
    let clocks = clocks_of(&exported);
    assert_eq!(clocks.len(), 1, "{clocks:?}");
    assert_eq!(clocks[0]["exporter"], "192.0.2.2:2055");
    assert_eq!(clocks[0]["offset_ms"], 7_200_000);
    assert_eq!(clocks[0]["correction_ms"], 0);

    let shifted = botnest(&["decode", "--correct-clocks", "--format", "json", path]);
    let starts = start_of(&shifted, "10.0.0.2");
    assert_eq!(starts.len(), 60 * 40);
    assert!(starts
        .iter()
        .enumerate()
        .all(|(i, s)| *s == T0 + 10 * (i / 40) as i64 - 5));
    assert_eq!(clocks_of(&shifted)[0]["correction_ms"], 7_200_000);
    let summary = shifted.iter().find_map(|v| v.get("summary")).unwrap();
    assert_eq!(summary["clock_corrected"], 60 * 40);
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_live_exporter_ten_minutes_ahead_is_corrected_by_the_socket_clock() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A state directory of its own: the default one is shared with whoever else runs botnest.
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "collect",
            "--correct-clocks",
            "--format",
            "json",
            "--listen",
        ])
        .arg(format!("udp://127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(20))
        .expect("collector listens");

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent_at = now_secs();
    for i in 0..3 {
        let m = message(now_secs() + 600, i, 7, 1);
        sock.send_to(&m, ("127.0.0.1", port)).unwrap();
    }
    let mut seen: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.iter().filter(|v| v.get("flow").is_some()).count() < 3 && Instant::now() < deadline {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(100)) {
            seen.extend(serde_json::from_str::<Value>(&l).ok());
        }
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    while let Ok(l) = lines.recv_timeout(Duration::from_millis(500)) {
        seen.extend(serde_json::from_str::<Value>(&l).ok());
    }

    let flows: Vec<&Value> = seen.iter().filter(|v| v.get("flow").is_some()).collect();
    assert_eq!(flows.len(), 3, "{seen:?}");
    for f in flows {
        let start = (f["flow"]["start"].as_u64().unwrap() / 1_000_000_000) as i64;
        // Sent 5 s before export by a clock 600 s ahead: 5 s before arrival by the collector's.
        assert!((start - (sent_at - 5)).abs() <= 3, "{f}");
    }
    let summary = seen.iter().find_map(|v| v.get("summary")).unwrap();
    let clocks = &summary["clocks"];
    let offset = clocks[0]["correction_ms"].as_i64().unwrap();
    assert!((offset + 600_000).abs() <= 3_000, "{clocks}");
    assert_eq!(summary["clock_corrected"], 3);
}

/// The template of `syn`: a flow with TCP flags.
fn syn_template() -> Template {
    let f = FieldSpec::iana;
    Template {
        id: 301,
        scope_field_count: 0,
        fields: vec![
            f(8, 4),   // sourceIPv4Address
            f(12, 4),  // destinationIPv4Address
            f(7, 2),   // sourceTransportPort
            f(11, 2),  // destinationTransportPort
            f(4, 1),   // protocolIdentifier
            f(6, 1),   // tcpControlBits
            f(1, 8),   // octetDeltaCount
            f(2, 8),   // packetDeltaCount
            f(152, 8), // flowStartMilliseconds
            f(153, 8), // flowEndMilliseconds
        ],
    }
}

/// A lone SYN from 192.168.5.7 to 198.51.100.9:4444 at `ms` (the exporter's clock), never
/// answered.
fn syn(ms: i64, sport: u16) -> Vec<u8> {
    let at = (ms as u64).to_be_bytes();
    let end = (ms as u64 + 200).to_be_bytes();
    record(
        &syn_template(),
        &[
            &[192, 168, 5, 7],
            &[198, 51, 100, 9],
            &sport.to_be_bytes(),
            &4444u16.to_be_bytes(),
            &[6],
            &[0x02],
            &60u64.to_be_bytes(),
            &1u64.to_be_bytes(),
            &at,
            &end,
        ],
    )
    .unwrap()
}

#[test]
fn a_live_run_detects_through_an_exporter_two_hours_behind() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let alerts = dir.path().join("alerts.json");
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["run", "--internal", "192.168.0.0/16", "--listen"])
        .arg(format!("udp://127.0.0.1:{port}"))
        .arg("--alerts-json")
        .arg(&alerts)
        .arg("--summary-file")
        .arg(&summary)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(30))
        .expect("botnest run listens");

    // A retry loop of the last five minutes, a SYN every half second, reported by an exporter
    // whose clock is two hours behind: uncorrected, every record would be too late.
    let behind = 7200;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let now = now_secs();
    let records: Vec<Vec<u8>> = (0..600)
        .map(|i| syn((now - behind - 300) * 1000 + i * 500, 40000 + i as u16))
        .collect();
    for (n, chunk) in records.chunks(100).enumerate() {
        let mut w = IpfixWriter::new((now - behind) as u32, (n * 100) as u32, 1);
        w.template(&syn_template());
        for r in chunk {
            w.data_record(301, r);
        }
        sock.send_to(&w.finish().unwrap(), ("127.0.0.1", port))
            .unwrap();
    }
    // The windows of those five minutes close at once (they end before now minus the lateness).
    let deadline = Instant::now() + Duration::from_secs(30);
    let alerted = || {
        std::fs::read_to_string(&alerts)
            .unwrap_or_default()
            .contains("198.51.100.9")
    };
    while !alerted() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(alerted(), "no alert naming the C2");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(doc["stats"]["too_late"], 0, "{}", doc["stats"]);
    assert_eq!(doc["collector"]["clock_corrected"], 600);
    let clocks = doc["collector"]["clocks"].as_array().unwrap();
    assert_eq!(clocks.len(), 1, "{clocks:?}");
    let correction = clocks[0]["correction_ms"].as_i64().unwrap();
    assert!((correction - behind * 1000).abs() <= 3_000, "{clocks:?}");
}
