//! Live events never wait for a slow client: a client that stops reading falls behind, is told
//! how many events it missed, and the misses are counted, while events keep being sent.

use botnest_detect::{DetectConfig, Hosts};
use botnest_web::{Server, Shared, WebConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_client_that_stops_reading_misses_events_and_nothing_waits() {
    let shared = Shared::new(Hosts::new(&DetectConfig::default().hosts), 1000);
    let config = WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..WebConfig::default()
    };
    let server = Server::start(config, shared.clone()).unwrap();
    let addr = server.addr().to_string();

    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(slow, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(slow.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // The stream is open; now the client reads nothing while far more is sent than socket
    // buffers and the event buffer hold together.
    let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(4000));
    for _ in 0..20_000 {
        shared.send_event("alert", data.clone());
    }
    // The sender never blocked; the client now reads and finds the gap announced, before or
    // after the first events it gets (the server may fall behind before it forwards any).
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut missed = None;
    let mut alerts = 0u64;
    let mut last_id: Option<u64> = None;
    for _ in 0..200_000 {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("event: lagged") {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(line.trim().trim_start_matches("data: ")).unwrap();
            missed = v["missed"].as_u64();
            // The events still held after the gap follow it, with their ids: read up to one.
            continue;
        }
        if line.starts_with("event: alert") {
            alerts += 1;
        }
        if let Some(id) = line.strip_prefix("id: ") {
            let id: u64 = id.trim().parse().unwrap();
            assert!(last_id.is_none_or(|l| id > l), "{id} after {last_id:?}");
            last_id = Some(id);
            if missed.is_some() {
                break;
            }
        }
    }
    let missed = missed.expect("a lagged event");
    assert!(last_id.is_some(), "events carry ids");
    assert!(missed > 0);
    assert!(alerts + missed <= 20_000, "{alerts} + {missed}");
    let metrics = get(&addr, "/metrics");
    let lagged: f64 = metrics
        .lines()
        .find(|l| l.starts_with("botnest_http_events_lagged_total "))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap();
    assert!(lagged >= missed as f64, "{lagged} < {missed}");
    drop(slow);
    server.stop();
}
