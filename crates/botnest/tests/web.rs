//! The web API of `botnest run` end to end: the test writes a recorded scenario (an RFC 5655
//! IPFIX file: two tenants on VLANs 10 and 20 reusing the same addresses, bots of one tenant
//! beaconing to a shared C2, a scanner, ordinary browsing, and an exporter whose interface name
//! is a script), starts the real binary with `--replay`, and checks what the API says against
//! the scenario, every answer against the OpenAPI document, the exports in each format, the
//! metrics, the live events, and the token, CSRF and Host checks.

use botnest_wire::encode::{record, IpfixWriter};
use botnest_wire::{FieldSpec, Template};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod live_common;

const BIN: &str = env!("CARGO_BIN_EXE_botnest");
const PATIENCE: Duration = Duration::from_secs(30);

/// The first tenant's name, configured with every character that breaks some format.
const ACME: &str = "ac\"me <b>&'`x\ny";
const BETA: &str = "beta";
const ACME_VLAN: u16 = 10;
const BETA_VLAN: u16 = 20;
const BOTS: [&str; 3] = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
/// A fourth host of the first tenant that starts beaconing only once botnest is running.
const LATE_BOT: &str = "10.0.0.14";
const C2: &str = "203.0.113.7";
const C2_PORT: u16 = 8443;
const SCANNER: &str = "10.0.0.50";
/// An interface name sent by the exporter in options data: a script if anything renders it.
const EVIL_IFNAME: &str = "<img src=x onerror=alert(1)>\"'&`eth0";
const EVIL_IFINDEX: u32 = 3;
/// Event time of the scenario's first record.
const T0_MS: u64 = 1_700_000_000_000;
/// How long the scenario runs, in seconds.
const SPAN_S: u64 = 7200;

fn template() -> Template {
    let f = FieldSpec::iana;
    Template {
        id: 256,
        scope_field_count: 0,
        fields: vec![
            f(8, 4),   // sourceIPv4Address
            f(12, 4),  // destinationIPv4Address
            f(7, 2),   // sourceTransportPort
            f(11, 2),  // destinationTransportPort
            f(4, 1),   // protocolIdentifier
            f(6, 2),   // tcpControlBits
            f(1, 8),   // octetDeltaCount
            f(2, 8),   // packetDeltaCount
            f(152, 8), // flowStartMilliseconds
            f(153, 8), // flowEndMilliseconds
            f(10, 4),  // ingressInterface
            f(14, 4),  // egressInterface
            f(58, 2),  // vlanId
        ],
    }
}

fn interface_template() -> Template {
    Template {
        id: 257,
        scope_field_count: 1,
        fields: vec![
            FieldSpec::iana(10, 4),      // scope: ingressInterface
            FieldSpec::iana(82, 0xffff), // interfaceName, variable length
        ],
    }
}

/// One flow record.
#[derive(Debug, Clone, Copy)]
struct Flow {
    src: &'static str,
    sport: u16,
    dst: &'static str,
    dport: u16,
    flags: u16,
    bytes: u64,
    packets: u64,
    start_ms: u64,
    vlan: u16,
}

impl Flow {
    fn encode(&self) -> Vec<u8> {
        let src: Ipv4Addr = self.src.parse().unwrap();
        let dst: Ipv4Addr = self.dst.parse().unwrap();
        record(
            &template(),
            &[
                &src.octets(),
                &dst.octets(),
                &self.sport.to_be_bytes(),
                &self.dport.to_be_bytes(),
                &[6],
                &self.flags.to_be_bytes(),
                &self.bytes.to_be_bytes(),
                &self.packets.to_be_bytes(),
                &self.start_ms.to_be_bytes(),
                &(self.start_ms + 300).to_be_bytes(),
                &EVIL_IFINDEX.to_be_bytes(),
                &1u32.to_be_bytes(),
                &self.vlan.to_be_bytes(),
            ],
        )
        .unwrap()
    }
}

/// A completed TCP exchange: the request and the answer, as a switch exports them.
fn exchange(
    src: &'static str,
    sport: u16,
    dst: &'static str,
    dport: u16,
    at: u64,
    vlan: u16,
) -> [Flow; 2] {
    let req = Flow {
        src,
        sport,
        dst,
        dport,
        flags: 0x1b, // SYN ACK PSH FIN
        bytes: 310,
        packets: 5,
        start_ms: at,
        vlan,
    };
    let reply = Flow {
        src: dst,
        sport: dport,
        dst: src,
        dport: sport,
        flags: 0x1b,
        bytes: 520,
        packets: 4,
        start_ms: at + 20,
        vlan,
    };
    [req, reply]
}

/// A bot's contacts with the C2 every 60 s (with a little jitter) from `from_s` to `to_s`.
fn beacon(bot: &'static str, vlan: u16, t0: u64, from_s: u64, to_s: u64, seed: u64) -> Vec<Flow> {
    let mut out = Vec::new();
    let mut t = t0 + from_s * 1000 + seed * 7000;
    let mut i = 0u64;
    while t < t0 + to_s * 1000 {
        let port = 40000 + ((seed * 1000 + i) % 20000) as u16;
        out.extend(exchange(bot, port, C2, C2_PORT, t, vlan));
        let jitter = (i * 37 + seed * 11) % 600;
        t += 59_700 + jitter;
        i += 1;
    }
    out
}

/// The recorded scenario.
fn scenario() -> Vec<Flow> {
    let mut flows = Vec::new();
    for (i, bot) in BOTS.iter().enumerate() {
        flows.extend(beacon(bot, ACME_VLAN, T0_MS, 0, SPAN_S, i as u64));
    }
    // The same addresses in the other tenant browse the web like anyone.
    let sites = [
        "93.184.216.34",
        "93.184.216.35",
        "151.101.1.69",
        "140.82.112.4",
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        // xorshift64: irregular times, the same every run.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for host in BOTS {
        for k in 0..40u64 {
            let at = T0_MS + next() % (SPAN_S * 1000);
            let site = sites[(next() % sites.len() as u64) as usize];
            flows.extend(exchange(host, 30000 + k as u16, site, 443, at, BETA_VLAN));
        }
    }
    // A scanner of the first tenant tries telnet on many addresses, never answered.
    let targets: Vec<&'static str> = (1..=250)
        .map(|i| &*Box::leak(format!("198.51.100.{i}").into_boxed_str()))
        .collect();
    for (i, dst) in targets.iter().enumerate() {
        flows.push(Flow {
            src: SCANNER,
            sport: 50000 + i as u16,
            dst,
            dport: 23,
            flags: 0x02,
            bytes: 40,
            packets: 1,
            start_ms: T0_MS + 1_000_000 + i as u64 * 500,
            vlan: ACME_VLAN,
        });
    }
    flows.sort_by_key(|f| f.start_ms);
    flows
}

/// IPFIX messages: templates and the interface name first, then the records, 50 a message.
fn messages(flows: &[Flow], sequence: &mut u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for chunk in flows.chunks(50) {
        let export = (chunk[0].start_ms / 1000) as u32;
        let mut w = IpfixWriter::new(export, *sequence, 1);
        w.template(&template());
        w.options_template(&interface_template());
        let mut name = EVIL_IFINDEX.to_be_bytes().to_vec();
        name.push(EVIL_IFNAME.len() as u8);
        name.extend(EVIL_IFNAME.as_bytes());
        w.data_record(257, &name);
        for f in chunk {
            w.data_record(256, &f.encode());
        }
        out.push(w.finish().unwrap());
        *sequence += chunk.len() as u32 + 1;
    }
    out
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("botnest.toml");
    let mut names = toml::Table::new();
    names.insert(ACME_VLAN.to_string(), toml::Value::String(ACME.to_owned()));
    names.insert(BETA_VLAN.to_string(), toml::Value::String(BETA.to_owned()));
    let mut hosts = toml::Table::new();
    hosts.insert("tenant_from".into(), "vlan".into());
    hosts.insert(
        "internal".into(),
        toml::Value::Array(vec!["10.0.0.0/8".into()]),
    );
    hosts.insert("tenant_names".into(), toml::Value::Table(names));
    let mut detect = toml::Table::new();
    detect.insert("hosts".into(), toml::Value::Table(hosts));
    // The live part of the test goes on with the recorded scenario's (historical) times, as a
    // replay would: its exporter's clock is years behind on purpose, so it is not corrected.
    let mut clock = toml::Table::new();
    clock.insert("correct".into(), false.into());
    let mut decoder = toml::Table::new();
    decoder.insert("clock".into(), toml::Value::Table(clock));
    let mut doc = toml::Table::new();
    doc.insert("detect".into(), toml::Value::Table(detect));
    doc.insert("decoder".into(), toml::Value::Table(decoder));
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// A running `botnest run` and the address of its web server.
struct Run {
    child: Child,
    http: String,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        let (child, line) = live_common::start_run(args, PATIENCE);
        let http = line
            .split("web console on http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no web address in {line:?}"))
            .to_owned();
        Run { child, http }
    }
}

impl Run {
    /// Stops with SIGINT; the run must end cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "botnest run exits cleanly: {status}");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// One HTTP/1.1 request with `Connection: close`; `headers` may override Host.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[end + 2 + size + 2..];
    }
}

fn get(addr: &str, path: &str) -> Answer {
    request(addr, "GET", path, &[], b"")
}

/// Percent-encodes a path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Validates answers against the schemas of the OpenAPI document the server serves, and
/// remembers which operations were checked.
struct Spec {
    doc: Value,
    checked: std::cell::RefCell<BTreeSet<(String, String)>>,
}

impl Spec {
    /// The JSON schema of a path's GET answer with a status.
    fn schema(&self, path: &str, method: &str, status: &str) -> Value {
        let s = &self.doc["paths"][path][method]["responses"][status]["content"]
            ["application/json"]["schema"];
        assert!(
            !s.is_null(),
            "the document has no JSON schema for {method} {path} {status}"
        );
        s.clone()
    }

    fn new(doc: Value) -> Spec {
        Spec {
            doc,
            checked: Default::default(),
        }
    }

    /// Operations of the document whose answers are JSON, none of them left unchecked.
    fn all_checked(&self, except: &[&str]) {
        let checked = self.checked.borrow();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                if except.contains(&path.as_str()) {
                    continue;
                }
                assert!(
                    checked.contains(&(path.clone(), method.clone())),
                    "{method} {path} is in the document but no answer of it was checked"
                );
            }
        }
    }

    fn check(&self, path: &str, method: &str, answer: &Answer) {
        self.checked
            .borrow_mut()
            .insert((path.to_owned(), method.to_owned()));
        let status = answer.status.to_string();
        let schema = self.schema(path, method, &status);
        let mut root = self.doc.clone();
        let obj = root.as_object_mut().unwrap();
        obj.retain(|k, _| k == "components");
        for (k, v) in schema.as_object().unwrap() {
            obj.insert(k.clone(), v.clone());
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("bad schema for {path}: {e}"));
        let instance = answer.json();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document:\n{}\n{}",
            errors.join("\n"),
            serde_json::to_string_pretty(&instance).unwrap()
        );
    }
}

fn write_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("scenario.ipfix");
    let mut seq = 0;
    let bytes: Vec<u8> = messages(&scenario(), &mut seq).concat();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn find_botnest(addr: &str) -> Value {
    let all = get(addr, "/api/botnests").json();
    all["botnests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["c2"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == &format!("{C2}:{C2_PORT}"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no botnest with the C2: {all:#}"))
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads server-sent events on a thread, handing on (event, data) pairs.
fn subscribe(addr: &str, headers: &[(&str, &str)]) -> mpsc::Receiver<(String, String)> {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req =
        format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let (mut event, mut data) = (String::new(), String::new());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            let l = line.trim_end_matches(['\r', '\n']);
            // Chunk-size lines of the chunked encoding match none of these and are skipped.
            if let Some(e) = l
                .strip_prefix("event: ")
                .or_else(|| l.strip_prefix("event:"))
            {
                event = e.to_owned();
            } else if let Some(d) = l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")) {
                data.push_str(d);
            } else if l.is_empty()
                && !event.is_empty()
                && tx
                    .send((std::mem::take(&mut event), std::mem::take(&mut data)))
                    .is_err()
            {
                return;
            }
            line.clear();
        }
    });
    rx
}

#[test]
fn the_api_tells_the_replayed_scenario_and_follows_live_detections() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path());
    let cfg = config(dir.path());
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    drop(udp);
    let listen = format!("udp://127.0.0.1:{port}");
    let state = dir.path().join("state");
    let alerts = dir.path().join("alerts.json");
    let run = Run::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        &listen,
        "--http",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
        "--alerts-json",
        alerts.to_str().unwrap(),
        "--replay",
        scenario.to_str().unwrap(),
    ]);
    let a = run.http.as_str();
    let spec = Spec::new(get(a, "/api/openapi.json").json());
    assert_eq!(spec.doc["openapi"], "3.1.0");

    // The botnest: the three bots of the first tenant and their C2, nothing of the second.
    let b = find_botnest(a);
    let id = b["id"].as_u64().unwrap();
    let members: BTreeMap<(String, String), String> = b["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let key = (
                m["tenant"].as_str().unwrap().to_owned(),
                m["address"].as_str().unwrap().to_owned(),
            );
            (key, m["role"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    for bot in BOTS {
        assert_eq!(
            members
                .get(&(ACME.to_owned(), bot.to_owned()))
                .map(String::as_str),
            Some("bot"),
            "{members:?}"
        );
        assert!(
            !members.contains_key(&(BETA.to_owned(), bot.to_owned())),
            "{members:?}"
        );
    }
    assert_eq!(
        members
            .get(&("0".to_owned(), C2.to_owned()))
            .map(String::as_str),
        Some("c2"),
        "{members:?}"
    );
    assert!(b["tenants"].as_array().unwrap().iter().any(|t| t == ACME));
    for f in b["flows"].as_array().unwrap() {
        assert_eq!(f["client"]["tenant"], ACME, "{f}");
        assert_eq!(f["server"]["address"], C2, "{f}");
    }
    assert!(!b["tenants"].as_array().unwrap().iter().any(|t| t == BETA));

    // Filters.
    let acme_hosts = get(a, &format!("/api/hosts?tenant={}", enc(ACME))).json();
    let addrs: BTreeSet<&str> = acme_hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    assert!(BOTS.iter().all(|b| addrs.contains(b)), "{addrs:?}");
    assert!(get(a, &format!("/api/hosts?tenant={BETA}")).json()["hosts"]
        .as_array()
        .unwrap()
        .is_empty());
    let c2s = get(a, "/api/hosts?role=c2").json();
    assert!(c2s["hosts"].as_array().unwrap().iter().all(|h| h["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "c2")));
    assert!(c2s["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["address"] == C2));
    assert!(get(a, "/api/hosts?min_score=1.01").json()["hosts"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        get(a, "/api/botnests?since=2100-01-01T00:00:00Z").json()["botnests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !get(a, &format!("/api/botnests?tenant={}&state=", enc(ACME))).json()["botnests"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // One bot in detail: evidence, its channel to the C2, its recent flows with interface names
    // exactly as the exporter sent them.
    let path = format!("/api/hosts/{}/{}", enc(ACME), BOTS[0]);
    let host = get(a, &path);
    assert_eq!(host.status, 200);
    spec.check("/api/hosts/{tenant}/{address}", "get", &host);
    let host = host.json();
    assert_eq!(host["accused"], true);
    let kinds: BTreeSet<&str> = host["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains("beaconing"), "{kinds:?}");
    let to_c2 = host["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["server"]["address"] == C2 && c["port"] == C2_PORT)
        .expect("the channel to the C2");
    assert_eq!(to_c2["client"]["tenant"], ACME);
    let mean = to_c2["interval_mean_s"].as_f64().unwrap();
    assert!((55.0..65.0).contains(&mean), "{mean}");
    let flows = host["flows"].as_array().unwrap();
    assert!(!flows.is_empty());
    assert!(flows
        .iter()
        .all(|f| f["src"] == BOTS[0] || f["dst"] == BOTS[0]));
    assert!(
        flows.iter().all(|f| f["vlan"] == ACME_VLAN),
        "the other tenant's host with the same address is not mixed in"
    );
    assert_eq!(flows[0]["input_interface_name"], EVIL_IFNAME);
    // The same address in the other tenant is a different host.
    let other = get(a, &format!("/api/hosts/{BETA}/{}", BOTS[0])).json();
    assert_eq!(other["accused"], false);
    assert!(other["flows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["vlan"] == BETA_VLAN));

    let channels = get(
        a,
        &format!("/api/channels?tenant={}&address={}", enc(ACME), BOTS[0]),
    )
    .json();
    let channels = channels["channels"].as_array().unwrap();
    assert!(!channels.is_empty());
    for c in channels {
        let ends = [&c["client"], &c["server"]];
        assert!(
            ends.iter()
                .any(|e| e["address"] == BOTS[0] && e["tenant"] == ACME),
            "{c}"
        );
    }
    let botnest_flows = get(a, &format!("/api/flows?botnest={id}&limit=50")).json();
    let botnest_flows = botnest_flows["flows"].as_array().unwrap();
    assert_eq!(botnest_flows.len(), 50);
    for f in botnest_flows {
        assert!(
            f["dst"] == C2 || f["src"] == C2 || BOTS.iter().any(|b| f["src"] == *b),
            "{f}"
        );
        assert_eq!(f["vlan"], ACME_VLAN, "{f}");
    }

    let exporters = get(a, "/api/exporters");
    spec.check("/api/exporters", "get", &exporters);
    let exporters = exporters.json();
    let names: Vec<&str> = exporters["exporters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["interfaces"].as_array().unwrap())
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&EVIL_IFNAME), "{exporters:#}");

    // Every endpoint answers as the document says.
    let member = format!("/api/hosts/{}/{}", enc(ACME), BOTS[1]);
    for (doc_path, url) in [
        ("/api/botnests", "/api/botnests".to_owned()),
        (
            "/api/botnests",
            format!(
                "/api/botnests?min_score=0.1&state=active&tenant={}",
                enc(ACME)
            ),
        ),
        ("/api/botnests/{id}", format!("/api/botnests/{id}")),
        ("/api/hosts", "/api/hosts".to_owned()),
        (
            "/api/hosts",
            "/api/hosts?role=bot&since=1700000000&until=2100-01-01T00:00:00Z".to_owned(),
        ),
        ("/api/hosts/{tenant}/{address}", member.clone()),
        (
            "/api/hosts/{tenant}/{address}",
            format!("/api/hosts/0/{C2}"),
        ),
        ("/api/channels", "/api/channels".to_owned()),
        (
            "/api/channels",
            format!("/api/channels?botnest={id}&limit=5"),
        ),
        ("/api/flows", "/api/flows".to_owned()),
        ("/api/flows", format!("/api/flows?botnest={id}&limit=3")),
        (
            "/api/flows",
            format!("/api/flows?address={SCANNER}&tenant={}", enc(ACME)),
        ),
        ("/api/exporters", "/api/exporters".to_owned()),
        ("/api/status", "/api/status".to_owned()),
        ("/api/session", "/api/session".to_owned()),
    ] {
        let answer = get(a, &url);
        assert_eq!(answer.status, 200, "{url}: {}", answer.text());
        assert!(
            answer
                .header("content-type")
                .starts_with("application/json"),
            "{url}"
        );
        spec.check(doc_path, "get", &answer);
    }
    for (doc_path, url, status) in [
        ("/api/botnests", "/api/botnests?state=asleep", 400),
        ("/api/botnests", "/api/botnests?colour=red", 400),
        ("/api/hosts", "/api/hosts?min_score=high", 400),
        ("/api/hosts", "/api/hosts?since=yesterday", 400),
        ("/api/botnests/{id}", "/api/botnests/999999", 404),
        ("/api/botnests/{id}", "/api/botnests/x", 400),
        (
            "/api/hosts/{tenant}/{address}",
            "/api/hosts/0/not-an-address",
            400,
        ),
        (
            "/api/hosts/{tenant}/{address}",
            "/api/hosts/0/192.0.2.250",
            404,
        ),
        ("/api/flows", "/api/flows?botnest=999999", 404),
        ("/api/flows", "/api/flows?limit=-1", 400),
        ("/api/export/{format}", "/api/export/dot", 400),
        (
            "/api/export/{format}",
            "/api/export/json?botnest=999999",
            404,
        ),
    ] {
        let answer = get(a, url);
        assert_eq!(answer.status, status, "{url}: {}", answer.text());
        spec.check(doc_path, "get", &answer);
    }
    let csrf = get(a, "/api/session").json()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong_method = request(a, "DELETE", "/api/hosts", &[("X-Botnest-CSRF", &csrf)], b"");
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.json()["error"]
        .as_str()
        .unwrap()
        .contains("DELETE"));
    let unknown = get(a, "/api/nothing-here");
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"]
        .as_str()
        .unwrap()
        .contains("/api/nothing-here"));

    // Headers on the console and the API.
    for url in ["/", "/api/status"] {
        let answer = get(a, url);
        let csp = answer.header("content-security-policy");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
    }
    assert!(get(a, "/").header("content-type").starts_with("text/html"));

    check_exports(a, id);
    check_metrics(a);
    check_state_changes(a, &spec, id);
    // Answers that are not JSON are checked above by their own parsers; login by the token
    // test.
    spec.all_checked(&[
        "/api/events",
        "/api/export/{format}",
        "/metrics",
        "/api/openapi.json",
        "/api/login",
    ]);
    live_alert(a, port);
    run.stop();

    // After a restart with the same state directory, the operators' decisions still hold: the
    // botnest is still acknowledged, and the scanner, replayed again, is not judged again.
    let again = Run::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "none",
        "--http",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
        "--alerts-json",
        alerts.to_str().unwrap(),
        "--replay",
        scenario.to_str().unwrap(),
    ]);
    let a = again.http.as_str();
    let b = wait_for("the restored botnest", || {
        let v = get(a, &format!("/api/botnests/{id}"));
        (v.status == 200).then(|| v.json())
    });
    assert_eq!(b["acknowledged"], true);
    let scanner = get(a, &format!("/api/hosts/{}/{SCANNER}", enc(ACME))).json();
    assert!(
        !scanner["flows"].as_array().unwrap().is_empty(),
        "replayed again"
    );
    assert!(
        scanner["evidence"].as_array().unwrap().is_empty(),
        "{scanner:#}"
    );
    let bot = get(a, &format!("/api/hosts/{}/{}", enc(ACME), BOTS[0])).json();
    assert_eq!(bot["accused"], true);
    again.stop();
}

/// Every export format, parsed back and checked for structure and escaping.
fn check_exports(a: &str, id: u64) {
    let graphml = get(a, &format!("/api/export/graphml?botnest={id}"));
    assert_eq!(graphml.status, 200);
    assert!(graphml
        .header("content-disposition")
        .contains(&format!("botnest-{id}.graphml")));
    let text = graphml.text();
    let doc = roxmltree::Document::parse(&text).expect("well-formed GraphML");
    let g = doc.root_element();
    assert_eq!(g.tag_name().name(), "graphml");
    let keys: BTreeMap<&str, &str> = g
        .children()
        .filter(|n| n.has_tag_name("key"))
        .map(|k| {
            (
                k.attribute("id").unwrap(),
                k.attribute("attr.name").unwrap(),
            )
        })
        .collect();
    let graph = g.children().find(|n| n.has_tag_name("graph")).unwrap();
    let nodes: BTreeMap<String, BTreeMap<&str, String>> = graph
        .children()
        .filter(|n| n.has_tag_name("node"))
        .map(|n| {
            let data = n
                .children()
                .filter(|d| d.has_tag_name("data"))
                .map(|d| {
                    (
                        keys[d.attribute("key").unwrap()],
                        d.text().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            (n.attribute("id").unwrap().to_owned(), data)
        })
        .collect();
    let bot = &nodes[&format!("{ACME}/{}", BOTS[0])];
    assert_eq!(
        bot["tenant"], ACME,
        "the hostile tenant name comes back intact"
    );
    assert_eq!(bot["role"], "bot");
    assert_eq!(nodes[&format!("0/{C2}")]["role"], "c2");
    let edges: Vec<_> = graph
        .children()
        .filter(|n| n.has_tag_name("edge"))
        .collect();
    assert!(!edges.is_empty());
    for e in &edges {
        assert!(nodes.contains_key(e.attribute("source").unwrap()));
        assert!(nodes.contains_key(e.attribute("target").unwrap()));
    }
    assert!(edges.iter().any(|e| {
        e.attribute("target") == Some(&format!("0/{C2}"))
            && e.children()
                .any(|d| d.attribute("key") == Some("e_port") && d.text() == Some("8443"))
    }));

    let gexf = get(a, &format!("/api/export/gexf?botnest={id}")).text();
    let doc = roxmltree::Document::parse(&gexf).expect("well-formed GEXF");
    assert_eq!(
        doc.root_element().tag_name().namespace(),
        Some("http://gexf.net/1.3")
    );
    let gnodes: BTreeSet<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("node"))
        .map(|n| n.attribute("id").unwrap())
        .collect();
    assert_eq!(gnodes.len(), nodes.len());
    assert!(gnodes.contains(format!("{ACME}/{}", BOTS[0]).as_str()));
    for e in doc.descendants().filter(|n| n.has_tag_name("edge")) {
        assert!(gnodes.contains(e.attribute("source").unwrap()));
        assert!(gnodes.contains(e.attribute("target").unwrap()));
    }
    let values: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("attvalue"))
        .map(|n| n.attribute("value").unwrap())
        .collect();
    assert!(values.contains(&ACME));

    // Neo4j import tables: parse back, every edge end a node, the hostile name intact.
    let nodes_csv = get(a, &format!("/api/export/csv?botnest={id}&table=nodes"));
    assert!(nodes_csv.header("content-type").starts_with("text/csv"));
    let mut r = csv::Reader::from_reader(nodes_csv.body.as_slice());
    assert_eq!(r.headers().unwrap().get(0), Some("key:ID"));
    assert!(r.headers().unwrap().iter().any(|h| h == ":LABEL"));
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let ids: BTreeSet<String> = rows.iter().map(|r| r[0].to_owned()).collect();
    assert!(rows.iter().any(|r| &r[2] == ACME && &r[3] == "bot"));
    let edges_csv = get(a, &format!("/api/export/csv?botnest={id}&table=edges"));
    let mut r = csv::Reader::from_reader(edges_csv.body.as_slice());
    let head: Vec<&str> = r.headers().unwrap().iter().take(3).collect();
    assert_eq!(head, [":START_ID", ":END_ID", ":TYPE"]);
    let erows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert!(!erows.is_empty());
    assert!(erows
        .iter()
        .all(|e| ids.contains(&e[0]) && ids.contains(&e[1])));
    let zip = get(a, &format!("/api/export/csv?botnest={id}"));
    assert_eq!(zip.header("content-type"), "application/zip");
    assert_eq!(&zip.body[..4], b"PK\x03\x04");
    let listing = unzip(&zip.body);
    assert_eq!(
        listing.keys().cloned().collect::<Vec<_>>(),
        ["edges.csv", "nodes.csv"]
    );
    assert_eq!(listing["nodes.csv"], nodes_csv.body);

    // Cypher: the hostile name only inside escaped literals, one statement per line.
    let cypher = get(a, &format!("/api/export/cypher?botnest={id}")).text();
    assert!(
        cypher.contains(r#"h.tenant = 'ac\"me <b>&\'`x\ny'"#),
        "{cypher}"
    );
    for line in cypher.lines().filter(|l| !l.starts_with("//")) {
        assert!(line.ends_with(';'), "{line}");
        assert_eq!(unquoted_quotes(line) % 2, 0, "unbalanced quotes in {line}");
    }
    assert!(cypher.contains(&format!("MERGE (h:Host {{key: '0/{C2}'}})")));

    // STIX: structure, references, determinism, and the official validator where installed.
    let stix1 = get(a, &format!("/api/export/stix?botnest={id}")).json();
    let stix2 = get(a, &format!("/api/export/stix?botnest={id}")).json();
    assert_eq!(stix1, stix2, "identifiers and content are deterministic");
    check_stix(&stix1);
    let json = get(a, &format!("/api/export/json?botnest={id}")).json();
    assert_eq!(json["botnests"][0]["id"], id);
}

/// The stored files of a ZIP archive, read through its central directory.
fn unzip(b: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let le16 = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
    let le32 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let end = b.len() - 22;
    assert_eq!(le32(end), 0x0605_4b50);
    let (count, mut at) = (le16(end + 10), le32(end + 16));
    let mut out = BTreeMap::new();
    for _ in 0..count {
        assert_eq!(le32(at), 0x0201_4b50);
        let (size, name_len, offset) = (le32(at + 20), le16(at + 28), le32(at + 42));
        let name = String::from_utf8(b[at + 46..at + 46 + name_len].to_vec()).unwrap();
        let data_at = offset + 30 + le16(offset + 26) + le16(offset + 28);
        out.insert(name, b[data_at..data_at + size].to_vec());
        at += 46 + name_len + le16(at + 30) + le16(at + 32);
    }
    out
}

/// Single quotes of a Cypher line not escaped by a backslash.
fn unquoted_quotes(line: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '\'' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n
}

fn check_stix(bundle: &Value) {
    assert_eq!(bundle["type"], "bundle");
    let objects = bundle["objects"].as_array().unwrap();
    let ids: BTreeSet<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), objects.len(), "no object twice");
    for o in objects {
        let id = o["id"].as_str().unwrap();
        assert!(
            id.starts_with(&format!("{}--", o["type"].as_str().unwrap())),
            "{id}"
        );
        for (k, v) in o.as_object().unwrap() {
            let refs: Vec<&str> = if k.ends_with("_ref") {
                v.as_str().into_iter().collect()
            } else if k.ends_with("_refs") {
                v.as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect()
            } else {
                continue;
            };
            for r in refs {
                assert!(
                    ids.contains(r),
                    "{id}: {k} points at {r}, not in the bundle"
                );
            }
        }
    }
    let indicator = objects
        .iter()
        .find(|o| o["type"] == "indicator")
        .expect("an indicator for the C2");
    let pattern = indicator["pattern"].as_str().unwrap();
    assert!(
        pattern.contains(&format!("network-traffic:dst_ref.value = '{C2}'")),
        "{pattern}"
    );
    assert!(
        pattern.contains(&format!("network-traffic:dst_port = {C2_PORT}")),
        "{pattern}"
    );
    assert!(objects
        .iter()
        .any(|o| o["type"] == "ipv4-addr" && o["value"] == BOTS[0]));
    assert!(objects.iter().any(|o| o["type"] == "observed-data"));
    assert!(objects.iter().any(|o| o["type"] == "relationship"
        && o["relationship_type"] == "indicates"
        && o["source_ref"] == indicator["id"]));

    let validator =
        std::env::var("BOTNEST_STIX_VALIDATOR").unwrap_or_else(|_| "stix2_validator".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    // 103: identifiers are UUIDv5 on purpose, so an export is the same every time; 301: a
    // channel aggregates many client ports, so network-traffic has only dst_port.
    match Command::new(&validator)
        .args(["--strict", "--enforce-refs", "--disable", "103,301"])
        .arg(&file)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("STIX JSON: Valid"),
                "stix2-validator: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "stix2-validator ({validator}) is needed in CI: {e}"
            );
            eprintln!(
                "skipping the STIX validator ({validator}: {e}); pip install stix2-validator"
            );
        }
    }
}

/// Parses the exposition line by line and checks a few figures against the status.
fn check_metrics(a: &str) {
    let answer = get(a, "/metrics");
    assert!(answer
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let text = answer.text();
    let mut samples: BTreeMap<String, f64> = BTreeMap::new();
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned()), "{name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(typed.contains(name), "{name} has no TYPE line before it");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        samples.insert(series.to_owned(), value);
    }
    let status = get(a, "/api/status").json();
    let flows = status["engine"]["flows"].as_f64().unwrap();
    assert!(flows > 0.0);
    assert_eq!(samples["botnest_engine_flows_total"], flows);
    assert!(samples["botnest_engine_evaluations_total"] > 0.0);
    assert!(samples["botnest_engine_memory_bytes"] > 0.0);
    assert!(samples["botnest_engine_evidence"] >= 4.0);
    assert!(samples["botnest_accused_hosts"] >= 4.0);
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("botnest_botnests{state=\"")
                && k.contains(&format!(
                    "tenant=\"{}\"",
                    ACME.replace('"', "\\\"").replace('\n', "\\n")
                ))),
        "{text}"
    );
    assert!(samples.keys().any(
        |k| k.starts_with("botnest_http_requests_total{route=\"/api/status\",status=\"200\"}")
    ));
    assert!(samples
        .keys()
        .any(|k| k.starts_with("botnest_collector_records_total{exporter=")));
    assert!(samples
        .keys()
        .any(|k| k.starts_with("botnest_alerts_sent_total{sink=\"json\"}")));
}

/// CSRF, origin and Host checks; then the two state changes.
fn check_state_changes(a: &str, spec: &Spec, id: u64) {
    let session = get(a, "/api/session").json();
    let csrf = session["csrf"].as_str().unwrap().to_owned();
    assert_eq!(session["token_required"], false);
    let ack = format!("/api/botnests/{id}/acknowledge");
    let refused = request(a, "POST", &ack, &[], b"");
    assert_eq!(refused.status, 403);
    spec.check("/api/botnests/{id}/acknowledge", "post", &refused);
    let cross = request(
        a,
        "POST",
        &ack,
        &[("X-Botnest-CSRF", &csrf), ("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(cross.status, 403);
    let wrong = request(a, "POST", &ack, &[("X-Botnest-CSRF", "0000")], b"");
    assert_eq!(wrong.status, 403);
    let origin = format!("http://{a}");
    let done = request(
        a,
        "POST",
        &ack,
        &[("X-Botnest-CSRF", &csrf), ("Origin", &origin)],
        b"",
    );
    assert_eq!(done.status, 200, "{}", done.text());
    spec.check("/api/botnests/{id}/acknowledge", "post", &done);
    assert_eq!(
        get(a, &format!("/api/botnests/{id}")).json()["acknowledged"],
        true
    );

    // A page of another site reaching a loopback server through DNS rebinding has its own Host.
    let rebound = request(
        a,
        "GET",
        "/api/hosts",
        &[("Host", "evil.example:8080")],
        b"",
    );
    assert_eq!(rebound.status, 421);
    assert!(rebound.json()["error"].is_string());

    // Marking the scanner benign: its verdict goes away.
    let scanner = format!("/api/hosts/{}/{SCANNER}", enc(ACME));
    let before = get(a, &scanner).json();
    assert!(
        !before["evidence"].as_array().unwrap().is_empty(),
        "{before:#}"
    );
    let allow = request(
        a,
        "POST",
        &format!("{scanner}/allow"),
        &[("X-Botnest-CSRF", &csrf)],
        b"",
    );
    assert_eq!(allow.status, 202, "{}", allow.text());
    spec.check("/api/hosts/{tenant}/{address}/allow", "post", &allow);
    wait_for("the allowed host's verdict to go", || {
        let h = get(a, &scanner).json();
        h["evidence"].as_array().unwrap().is_empty().then_some(())
    });
}

/// A bot that starts beaconing now shows up as a live `alert` event.
fn live_alert(a: &str, port: u16) {
    let events = subscribe(a, &[]);
    // The stream is open once the first status event arrives (sent every few seconds) or any
    // other; give the subscription a moment to register before sending.
    std::thread::sleep(Duration::from_millis(300));
    let start = T0_MS + SPAN_S * 1000;
    let mut flows = beacon(LATE_BOT, ACME_VLAN, start, 0, 3600, 5);
    flows.extend(beacon(BOTS[0], ACME_VLAN, start, 0, 3600, 0));
    flows.sort_by_key(|f| f.start_ms);
    // A last record well after, so the windows holding the beacons close.
    let mut tail = exchange(
        "10.0.0.99",
        40000,
        "93.184.216.34",
        443,
        start + 3 * 3600 * 1000,
        ACME_VLAN,
    )
    .to_vec();
    flows.append(&mut tail);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seq = 1_000_000;
    for m in messages(&flows, &mut seq) {
        sock.send_to(&m, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no alert event for {LATE_BOT}; saw {seen:?}"
        );
        let Ok((event, data)) = events.recv_timeout(left) else {
            let status = get(a, "/api/status").json();
            let late = get(a, &format!("/api/hosts/{}/{LATE_BOT}", enc(ACME))).text();
            panic!("the event stream ended; saw {seen:?}; status {status:#}; {LATE_BOT}: {late}");
        };
        if event == "alert" {
            let v: Value = serde_json::from_str(&data).unwrap();
            if v["host"] == LATE_BOT {
                assert_eq!(v["tenant"], ACME);
                assert!(v["evidence"]["kind"].is_string());
                return;
            }
        }
        seen.push(event);
    }
}

#[test]
fn a_token_guards_the_api_and_a_public_address_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path());
    let token = "t0ken-with-enough-entropy-0123456789";
    let run = Run::start(&[
        "--listen",
        "none",
        "--http",
        "127.0.0.1:0",
        "--token",
        token,
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        "--alerts-json",
        dir.path().join("alerts.json").to_str().unwrap(),
        "--replay",
        scenario.to_str().unwrap(),
    ]);
    let a = run.http.as_str();
    let bearer = format!("Bearer {token}");
    for path in [
        "/api/hosts",
        "/api/botnests",
        "/api/status",
        "/metrics",
        "/api/export/json",
        "/api/events",
    ] {
        let none = get(a, path);
        assert_eq!(none.status, 401, "{path}");
        assert!(none.json()["error"].is_string());
        assert!(none.header("www-authenticate").starts_with("Bearer"));
        let wrong = request(
            a,
            "GET",
            path,
            &[(
                "Authorization",
                "Bearer t0ken-with-enough-entropy-012345678",
            )],
            b"",
        );
        assert_eq!(wrong.status, 401, "{path}");
    }
    for path in ["/api/hosts", "/api/status", "/metrics", "/api/export/json"] {
        let ok = request(a, "GET", path, &[("Authorization", &bearer)], b"");
        assert_eq!(ok.status, 200, "{path}");
    }
    assert!(
        request(a, "GET", "/api/hosts", &[("Authorization", &bearer)], b"").json()["hosts"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    // The console and the session endpoint are public, so the console can ask for the token.
    assert_eq!(get(a, "/").status, 200);
    let session = get(a, "/api/session").json();
    assert_eq!(session["token_required"], true);
    assert_eq!(session["authenticated"], false);
    let csrf = session["csrf"].as_str().unwrap().to_owned();
    // Logging in needs the CSRF token too, then the cookie authenticates (live events as well).
    let body = serde_json::json!({"token": token}).to_string();
    let json = [("Content-Type", "application/json")];
    assert_eq!(
        request(a, "POST", "/api/login", &json, body.as_bytes()).status,
        403
    );
    let doc = request(
        a,
        "GET",
        "/api/openapi.json",
        &[("Authorization", &bearer)],
        b"",
    );
    let spec = Spec::new(doc.json());
    let bad = serde_json::json!({"token": "nope"}).to_string();
    let with_csrf = [json[0], ("X-Botnest-CSRF", &csrf)];
    let refused = request(a, "POST", "/api/login", &with_csrf, bad.as_bytes());
    assert_eq!(refused.status, 401);
    spec.check("/api/login", "post", &refused);
    let garbled = request(a, "POST", "/api/login", &with_csrf, b"{\"tok");
    assert_eq!(garbled.status, 400);
    spec.check("/api/login", "post", &garbled);
    let login = request(a, "POST", "/api/login", &with_csrf, body.as_bytes());
    assert_eq!(login.status, 200, "{}", login.text());
    spec.check("/api/login", "post", &login);
    let unauthorized = get(a, "/api/status");
    spec.check("/api/status", "get", &unauthorized);
    let cookie = login
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        login.header("set-cookie").contains("HttpOnly")
            && login.header("set-cookie").contains("SameSite=Strict")
    );
    assert_eq!(
        request(a, "GET", "/api/hosts", &[("Cookie", &cookie)], b"").status,
        200
    );
    let events = subscribe(a, &[("Cookie", &cookie)]);
    let (event, _) = events
        .recv_timeout(PATIENCE)
        .expect("a status event within seconds");
    assert_eq!(event, "status");
    let metrics = request(a, "GET", "/metrics", &[("Authorization", &bearer)], b"").text();
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("botnest_http_unauthorized_total "))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .unwrap();
    assert!(refused >= 13.0, "{refused}");
    drop(run);

    // A public address without a token: botnest refuses to start, and says why.
    let out = Command::new(BIN)
        .args(["run", "--listen", "none", "--http", "0.0.0.0:0"])
        .env_remove("BOTNEST_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token"), "{err}");
}

#[test]
fn analyze_exports_recorded_data_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path());
    let cfg = config(dir.path());
    let analyze = |args: &[&str]| {
        Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap(), "analyze", "--quiet"])
            .args(args)
            .arg(&scenario)
            .output()
            .unwrap()
    };
    let graphml = analyze(&["--format", "graphml"]);
    assert!(graphml.status.success());
    let text = String::from_utf8(graphml.stdout).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let ids: BTreeSet<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("node"))
        .map(|n| n.attribute("id").unwrap())
        .collect();
    for bot in BOTS {
        assert!(ids.contains(format!("{ACME}/{bot}").as_str()), "{ids:?}");
    }
    assert!(ids.contains(format!("0/{C2}").as_str()));

    let gexf = analyze(&["--format", "gexf", "--botnest", "1"]);
    assert!(gexf.status.success());
    roxmltree::Document::parse(std::str::from_utf8(&gexf.stdout).unwrap()).unwrap();

    let stix_file = dir.path().join("bundle.json");
    let stix = analyze(&["--format", "stix", "--out", stix_file.to_str().unwrap()]);
    assert!(stix.status.success());
    let bundle: Value = serde_json::from_slice(&std::fs::read(&stix_file).unwrap()).unwrap();
    check_stix(&bundle);

    let out = dir.path().join("neo4j");
    let csv = analyze(&["--format", "csv", "--out", out.to_str().unwrap()]);
    assert!(csv.status.success());
    let nodes = csv::Reader::from_path(out.join("nodes.csv"))
        .unwrap()
        .records()
        .count();
    let edges = csv::Reader::from_path(out.join("edges.csv"))
        .unwrap()
        .records()
        .count();
    assert!(nodes >= 4 && edges >= 3, "{nodes} nodes, {edges} edges");

    let cypher = analyze(&["--format", "cypher"]);
    assert!(cypher.status.success());
    assert!(String::from_utf8(cypher.stdout)
        .unwrap()
        .contains("MERGE (b:Botnest {id: 1})"));

    let no_dir = analyze(&["--format", "csv"]);
    assert!(!no_dir.status.success());
    assert!(String::from_utf8_lossy(&no_dir.stderr).contains("--out DIR"));
    let unknown = analyze(&["--format", "json", "--botnest", "999"]);
    assert!(
        unknown.status.success(),
        "json is the report, not an export"
    );
    let unknown = analyze(&["--format", "stix", "--botnest", "999"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no botnest 999"));
}
