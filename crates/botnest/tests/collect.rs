//! `botnest collect` end to end over loopback: UDP and TCP exporters, records printed as JSON,
//! RFC 5655 files that `botnest decode` reads back into the same records, templates kept across
//! a restart, the allow-list, and TCP exporters that misbehave.

use botnest_wire::encode::IpfixWriter;
use botnest_wire::{FieldSpec, Template};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_botnest");

/// A running collector whose stdout lines are gathered in the background.
struct Collector {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Collector {
    fn start(args: &[&str]) -> Collector {
        let mut child = Command::new(BIN)
            .arg("collect")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("botnest starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Ready once every socket logged that it listens.
        let endpoints = args.iter().filter(|a| **a == "--listen").count();
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut n = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    n += 1;
                    if n == endpoints {
                        let _ = ready_tx.send(());
                    }
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(20))
            .expect("collector listens");
        Collector {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until `n` JSON records were printed; returns them.
    fn records(&mut self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.json().len() < n && Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l);
            }
        }
        self.json()
    }

    fn json(&self) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("flow").is_some())
            .collect()
    }

    /// Stops with SIGINT and returns every line printed.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "collector exits cleanly: {status}");
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        self.seen
    }
}

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
            f(1, 4),   // octetDeltaCount (reduced size)
            f(2, 4),   // packetDeltaCount
            f(152, 8), // flowStartMilliseconds
            f(153, 8), // flowEndMilliseconds
        ],
    }
}

/// A data record: 10.0.0.`host` -> 192.0.2.1:443/TCP, `host` * 100 bytes in `host` packets.
fn record(host: u8) -> Vec<u8> {
    let mut r = vec![10, 0, 0, host, 192, 0, 2, 1];
    r.extend_from_slice(&40000u16.to_be_bytes());
    r.extend_from_slice(&443u16.to_be_bytes());
    r.push(6);
    r.extend_from_slice(&(u32::from(host) * 100).to_be_bytes());
    r.extend_from_slice(&u32::from(host).to_be_bytes());
    r.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
    r.extend_from_slice(&1_700_000_001_500u64.to_be_bytes());
    r
}

fn message(sequence: u32, with_template: bool, hosts: &[u8]) -> Vec<u8> {
    let mut w = IpfixWriter::new(1_700_000_002, sequence, 7);
    if with_template {
        w.template(&template());
    }
    for &h in hosts {
        w.data_record(300, &record(h));
    }
    w.finish().unwrap()
}

fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("summary file written");
    serde_json::from_str::<Value>(&text).unwrap()["summary"].clone()
}

fn hosts_of(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| r["flow"]["src"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn udp_and_tcp_exporters_are_decoded_and_written_files_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (free_port(), free_port());
    let files = dir.path().join("files");
    let mut c = Collector::start(&[
        "--listen",
        &format!("udp://127.0.0.1:{udp}"),
        "--listen",
        &format!("tcp://127.0.0.1:{tcp}"),
        "--format",
        "json",
        "--write",
        files.to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&message(0, true, &[1, 2]), ("127.0.0.1", udp))
        .unwrap();
    sock.send_to(&message(2, false, &[3]), ("127.0.0.1", udp))
        .unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let m = message(0, true, &[4, 5]);
    // split across writes: the collector must frame by the message length
    stream.write_all(&m[..10]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(&m[10..]).unwrap();
    drop(stream);

    let live = c.records(5);
    assert_eq!(
        hosts_of(&live),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    );
    let r3 = live
        .iter()
        .find(|r| r["flow"]["src"] == "10.0.0.3")
        .unwrap();
    assert_eq!(r3["octetDeltaCount"], 300);
    assert_eq!(r3["flowStartMilliseconds"], "2023-11-14T22:13:20Z");
    assert_eq!(r3["flow"]["packets"], 3);
    assert_eq!(r3["flow"]["dst_port"], 443);
    assert_eq!(r3["flow"]["start"], 1_700_000_000_000_000_000u64);
    assert_eq!(r3["flow"]["end"], 1_700_000_001_500_000_000u64);
    assert_eq!(r3["domain"], 7);
    let lines = c.stop();
    let summary: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .expect("summary line");
    assert_eq!(summary["records"], 5);
    assert_eq!(summary["lost_records"], 0);
    assert_eq!(summary["errors"], 0);

    // The files hold the same normalised records.
    let written: Vec<_> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ipfix"))
        .collect();
    assert!(!written.is_empty(), "an IPFIX file was written");
    let out = Command::new(BIN)
        .args(["decode", "--format", "json"])
        .args(&written)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut from_file: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("flow").cloned())
        .collect();
    let mut live_flows: Vec<Value> = live.iter().map(|r| r["flow"].clone()).collect();
    let key = |v: &Value| v["src"].as_str().unwrap().to_owned();
    from_file.sort_by_key(key);
    live_flows.sort_by_key(key);
    assert_eq!(from_file, live_flows);
}

#[test]
fn templates_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let port = free_port();
    let listen = format!("udp://127.0.0.1:{port}");
    let args = [
        "--listen",
        &listen,
        "--format",
        "json",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();

    let mut c = Collector::start(&args);
    sock.send_to(&message(0, true, &[1]), ("127.0.0.1", port))
        .unwrap();
    assert_eq!(c.records(1).len(), 1);
    c.stop();

    // Same exporter (same source port), data only: decodes with the saved template.
    let mut c = Collector::start(&args);
    sock.send_to(&message(1, false, &[9]), ("127.0.0.1", port))
        .unwrap();
    assert_eq!(hosts_of(&c.records(1)), ["10.0.0.9"]);
    c.stop();
}

#[test]
fn exporters_outside_the_allow_list_are_counted_not_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let summary_file = dir.path().join("summary.json");
    let c = Collector::start(&[
        "--listen",
        &format!("udp://127.0.0.1:{port}"),
        "--allow",
        "192.0.2.0/24",
        "--format",
        "none",
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        "--summary-file",
        summary_file.to_str().unwrap(),
    ]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        sock.send_to(&message(i, true, &[1]), ("127.0.0.1", port))
            .unwrap();
    }
    // The datagrams are counted as they arrive; wait for them before stopping.
    std::thread::sleep(Duration::from_millis(300));
    c.stop();
    let s = summary(&summary_file);
    assert_eq!(s["not_allowed"], 3);
    assert_eq!(s["records"], 0);
}

#[test]
fn tcp_exporters_that_send_garbage_or_half_a_message_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let summary_file = dir.path().join("summary.json");
    let mut c = Collector::start(&[
        "--listen",
        &format!("tcp://127.0.0.1:{port}"),
        "--format",
        "json",
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        "--summary-file",
        summary_file.to_str().unwrap(),
    ]);
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let m = message(0, true, &[1, 2]);
    half.write_all(&m).unwrap();
    half.write_all(&message(2, false, &[3])[..20]).unwrap();
    drop(half);
    // The whole message before the cut is still decoded.
    assert_eq!(hosts_of(&c.records(2)), ["10.0.0.1", "10.0.0.2"]);
    std::thread::sleep(Duration::from_millis(300));
    drop(garbage);
    c.stop();
    let s = summary(&summary_file);
    assert_eq!(s["tcp_not_ipfix"], 1);
    assert_eq!(s["tcp_truncated"], 1);
    assert_eq!(s["records"], 2);
}
