//! `botnest run` end to end over loopback: IPFIX describing a bot in a retry loop goes in, and
//! one alert per host, behaviour and peer comes out on each sink (a JSON file, rsyslog over UDP
//! and then TCP, a webhook served here); after a restart with the same state directory the
//! verdicts and botnests are still there and nothing already reported is reported again.

use botnest_wire::encode::{record, IpfixWriter};
use botnest_wire::{FieldSpec, Template};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(dead_code)]
mod live_common;

const BOT: &str = "192.168.1.107";
const C2: &str = "66.63.168.35";
const C2_PORT: u16 = 5888;
const BOT2: &str = "192.168.1.108";
const C2B: &str = "198.51.100.44";
const C2B_PORT: u16 = 4444;
/// local3 (19) * 8 + error (3) or warning (4).
const PRIS: [u16; 2] = [155, 156];
/// How long any one thing may take to show up.
const PATIENCE: Duration = Duration::from_secs(30);

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it gives a value or patience runs out.
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

/// One syslog message as the server received it.
#[derive(Debug, Clone)]
struct SyslogMsg {
    pri: u16,
    app: String,
    msgid: String,
    /// Structured data and message.
    rest: String,
}

/// A syslog server on loopback: rsyslog with a private configuration, or, where rsyslog cannot
/// run, a listener of this test.
enum SyslogServer {
    Rsyslog { child: Child, out: PathBuf },
    Own { got: Arc<Mutex<Vec<String>>> },
}

impl SyslogServer {
    fn start(dir: &Path, udp: u16, tcp: u16) -> SyslogServer {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let rsyslogd = ["rsyslogd", "/usr/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Command::new(p).arg("-v").output().is_ok());
        let have = rsyslogd.is_some();
        if let (true, Some(bin)) = (is_root, rsyslogd) {
            return SyslogServer::rsyslog(bin, dir, udp, tcp);
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "rsyslog needed in CI (root: {is_root}, rsyslogd installed: {have})"
        );
        eprintln!(
            "skipping rsyslog (root: {is_root}, rsyslogd installed: {have}); \
             a syslog listener of the test receives the messages instead"
        );
        SyslogServer::own(udp, tcp)
    }

    fn rsyslog(bin: &str, dir: &Path, udp: u16, tcp: u16) -> SyslogServer {
        let out = dir.join("syslog.out");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{dir}\")\n\
                 module(load=\"imudp\")\n\
                 module(load=\"imtcp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
                 template(name=\"fields\" type=\"string\" \
                   string=\"%pri%|%app-name%|%msgid%|%structured-data% %msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{out}\" template=\"fields\")\n",
                dir = dir.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd starts");
        let server = SyslogServer::Rsyslog { child, out };
        server.wait_ready(udp, tcp);
        server
    }

    fn own(udp: u16, tcp: u16) -> SyslogServer {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sock = UdpSocket::bind(("127.0.0.1", udp)).unwrap();
        let g = Arc::clone(&got);
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = sock.recv(&mut buf) {
                g.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        let listener = TcpListener::bind(("127.0.0.1", tcp)).unwrap();
        let g = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let g = Arc::clone(&g);
                std::thread::spawn(move || read_octet_counted(stream, &g));
            }
        });
        let server = SyslogServer::Own { got };
        server.wait_ready(udp, tcp);
        server
    }

    /// Sends probes over both transports until the server has logged them.
    fn wait_ready(&self, udp: u16, tcp: u16) {
        let probe = |id: &str| format!("<13>1 - - probe - {id} - ready");
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        wait_for("syslog server over UDP", || {
            sock.send_to(probe("udp").as_bytes(), ("127.0.0.1", udp))
                .ok()?;
            std::thread::sleep(Duration::from_millis(200));
            self.messages()
                .iter()
                .any(|m| m.msgid == "udp")
                .then_some(())
        });
        wait_for("syslog server over TCP", || {
            let mut s = TcpStream::connect(("127.0.0.1", tcp)).ok()?;
            let m = probe("tcp");
            s.write_all(format!("{} {m}", m.len()).as_bytes()).ok()?;
            drop(s);
            std::thread::sleep(Duration::from_millis(200));
            self.messages()
                .iter()
                .any(|m| m.msgid == "tcp")
                .then_some(())
        });
    }

    fn messages(&self) -> Vec<SyslogMsg> {
        match self {
            SyslogServer::Rsyslog { out, .. } => std::fs::read_to_string(out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut f = l.splitn(4, '|');
                    Some(SyslogMsg {
                        pri: f.next()?.parse().ok()?,
                        app: f.next()?.to_owned(),
                        msgid: f.next()?.to_owned(),
                        rest: f.next()?.to_owned(),
                    })
                })
                .collect(),
            SyslogServer::Own { got } => got
                .lock()
                .unwrap()
                .iter()
                .filter_map(|m| parse_5424(m))
                .collect(),
        }
    }

    /// Messages of botnest with this MSGID.
    fn botnest(&self, msgid: &str) -> Vec<SyslogMsg> {
        self.messages()
            .into_iter()
            .filter(|m| m.app == "botnest" && m.msgid == msgid)
            .collect()
    }
}

impl Drop for SyslogServer {
    fn drop(&mut self) {
        if let SyslogServer::Rsyslog { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// RFC 6587 octet-counted frames: "LEN SP MSG".
fn read_octet_counted(stream: TcpStream, got: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(stream);
    loop {
        let mut len = Vec::new();
        if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
            return;
        }
        let Some(n) = std::str::from_utf8(&len[..len.len() - 1])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return;
        };
        let mut msg = vec![0; n];
        if r.read_exact(&mut msg).is_err() {
            return;
        }
        got.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&msg).into_owned());
    }
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` (RFC 5424 section 6).
fn parse_5424(m: &str) -> Option<SyslogMsg> {
    let (pri, rest) = m.strip_prefix('<')?.split_once(">1 ")?;
    let mut f = rest.splitn(6, ' ');
    let (_time, _host, app, _procid, msgid) =
        (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    Some(SyslogMsg {
        pri: pri.parse().ok()?,
        app: app.to_owned(),
        msgid: msgid.to_owned(),
        rest: f.next()?.to_owned(),
    })
}

/// A webhook receiver: answers every POST with 200 and keeps the bodies.
struct Webhook {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let b = Arc::clone(&b);
                std::thread::spawn(move || serve(stream, &b));
            }
        });
        Webhook { port, bodies }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/alerts", self.port)
    }

    fn alerts(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Reads HTTP/1.1 requests of one connection; each body goes to `bodies`.
fn serve(stream: TcpStream, bodies: &Mutex<Vec<Value>>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut request = String::new();
        if r.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        assert!(request.starts_with("POST /alerts "), "{request}");
        let mut length = 0;
        let mut json = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            json |= h == "content-type: application/json";
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        assert!(json, "webhook body declared as JSON");
        bodies
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap());
        w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    }
}

/// A running `botnest run`.
struct Run {
    child: Child,
}

impl Run {
    fn start(args: &[String]) -> Run {
        // The web console is tested on its own (tests/web.rs); several of these runs may be
        // up at once, so none takes the default port.
        let mut all = vec!["--http", "none"];
        all.extend(args.iter().map(String::as_str));
        let (child, line) = live_common::start_run(&all, PATIENCE);
        assert!(line.contains("alerts to json, syslog, webhook"), "{line}");
        Run { child }
    }

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

/// The IPFIX template of the flows sent.
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
            f(6, 1),   // tcpControlBits (reduced size)
            f(1, 4),   // octetDeltaCount (reduced size)
            f(2, 4),   // packetDeltaCount (reduced size)
            f(152, 8), // flowStartMilliseconds
            f(153, 8), // flowEndMilliseconds
        ],
    }
}

/// One unanswered TCP attempt: a single SYN from `src` to `dst:port` at `start_ms`.
fn syn(src: &str, sport: u16, dst: &str, dport: u16, start_ms: u64) -> Vec<u8> {
    let src: Ipv4Addr = src.parse().unwrap();
    let dst: Ipv4Addr = dst.parse().unwrap();
    record(
        &template(),
        &[
            &src.octets(),
            &dst.octets(),
            &sport.to_be_bytes(),
            &dport.to_be_bytes(),
            &[6],    // TCP
            &[0x02], // SYN only: never answered
            &52u32.to_be_bytes(),
            &1u32.to_be_bytes(),
            &start_ms.to_be_bytes(),
            &(start_ms + 200).to_be_bytes(),
        ],
    )
    .unwrap()
}

/// Records of a bot retrying a refusing C2 every half second from `from` to `to` seconds after
/// `t0_ms`.
fn retry_loop(bot: &str, c2: &str, port: u16, t0_ms: u64, from: u64, to: u64) -> Vec<Vec<u8>> {
    (from * 2..to * 2)
        .map(|i| syn(bot, 40000 + (i % 20000) as u16, c2, port, t0_ms + i * 500))
        .collect()
}

/// Sends records to the collector in messages of 100 records, the template first.
fn export(port: u16, records: &[Vec<u8>], sequence: &mut u32) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    for chunk in records.chunks(100) {
        let mut w = IpfixWriter::new(now, *sequence, 1);
        w.template(&template());
        for r in chunk {
            w.data_record(256, r);
        }
        sock.send_to(&w.finish().unwrap(), ("127.0.0.1", port))
            .unwrap();
        *sequence += chunk.len() as u32;
    }
}

/// Alert lines of the JSON file (notices of suppressed alerts have no evidence).
fn json_alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
        .filter(|v| v.get("evidence").is_some())
        .collect()
}

fn is_alert_of(v: &Value, host: &str, peer: &str) -> bool {
    v["host"] == host && v["evidence"]["kind"] == "beaconing" && v["evidence"]["peer"] == peer
}

/// Checks an alert of `host` beaconing to a C2 in a retry loop.
fn check_alert(v: &Value, host: &str, peer: &str) {
    assert!(is_alert_of(v, host, peer), "{v}");
    assert_eq!(v["tenant"], "0");
    assert!(
        v["roles"].as_array().unwrap().contains(&"bot".into()),
        "{v}"
    );
    assert!(v["score"].as_f64().unwrap() >= 0.6, "{v}");
    assert!(v["botnest"].as_u64().is_some(), "{v}");
    assert!(
        v["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("retry loop"),
        "{v}"
    );
    assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");
}

fn check_syslog(m: &SyslogMsg, host: &str, peer: &str) {
    assert!(PRIS.contains(&m.pri), "{m:?}");
    assert!(
        m.rest.starts_with(&format!(
            "[botnest@32473 host=\"{host}\" tenant=\"0\" score=\""
        )),
        "{m:?}"
    );
    assert!(m.rest.contains(&format!("peer=\"{peer}\"")), "{m:?}");
    assert!(m.rest.contains(" botnest=\""), "{m:?}");
    assert!(m.rest.contains("retry loop"), "{m:?}");
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary written")).unwrap()
}

fn host_in<'a>(summary: &'a Value, addr: &str) -> Option<&'a Value> {
    summary["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == addr)
}

#[test]
fn alerts_reach_every_sink_once_and_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("botnest.toml");
    std::fs::write(
        &config,
        "[detect]\nwindow_seconds = 60\nslide_seconds = 10\nlateness_seconds = 0\n\n\
         [alerts]\nfacility = \"local3\"\n",
    )
    .unwrap();
    let (syslog_udp, syslog_tcp) = (free_udp_port(), free_tcp_port());
    let syslog = SyslogServer::start(d, syslog_udp, syslog_tcp);
    let webhook = Webhook::start();
    let alerts = d.join("alerts.json");
    let state = d.join("state");
    let listen = free_udp_port();
    let args = |syslog: String, summary: &str| -> Vec<String> {
        [
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("udp://127.0.0.1:{listen}"),
            "--internal",
            "192.168.0.0/16",
            "--state-dir",
            state.to_str().unwrap(),
            "--alerts-json",
            alerts.to_str().unwrap(),
            "--syslog",
            &syslog,
            "--webhook",
            &webhook.url(),
            "--summary-file",
            d.join(summary).to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let c2 = format!("{C2}:{C2_PORT}");
    let c2b = format!("{C2B}:{C2B_PORT}");
    // Event time: five minutes ago, spanning several 60 s windows.
    let t0 = now_ms() - 300_000;
    let mut sequence = 0;

    // First run: syslog over UDP.
    let run = Run::start(&args(format!("udp://127.0.0.1:{syslog_udp}"), "first.json"));
    export(
        listen,
        &retry_loop(BOT, C2, C2_PORT, t0, 0, 150),
        &mut sequence,
    );
    let alert = wait_for("the JSON alert", || {
        json_alerts(&alerts)
            .into_iter()
            .find(|v| is_alert_of(v, BOT, &c2))
    });
    check_alert(&alert, BOT, &c2);
    let nest = alert["botnest"].as_u64().unwrap();
    let msg = wait_for("the syslog alert over UDP", || {
        syslog.botnest("beaconing").into_iter().next()
    });
    check_syslog(&msg, BOT, &c2);
    let hook = wait_for("the webhook alert", || {
        webhook
            .alerts()
            .into_iter()
            .find(|v| is_alert_of(v, BOT, &c2))
    });
    assert_eq!(hook, alert, "the webhook gets the alert the file has");
    run.stop();
    let first = summary(&d.join("first.json"));
    assert_eq!(host_in(&first, BOT).expect("bot reported")["botnest"], nest);

    // Second run, same state: syslog over TCP. The first bot keeps retrying, a second one starts.
    let run = Run::start(&args(
        format!("tcp://127.0.0.1:{syslog_tcp}"),
        "second.json",
    ));
    let mut records = retry_loop(BOT, C2, C2_PORT, t0, 150, 290);
    records.extend(retry_loop(BOT2, C2B, C2B_PORT, t0, 150, 290));
    records.sort_by_key(|r| r[r.len() - 16..r.len() - 8].to_vec());
    export(listen, &records, &mut sequence);
    let alert2 = wait_for("the JSON alert of the second bot", || {
        json_alerts(&alerts)
            .into_iter()
            .find(|v| is_alert_of(v, BOT2, &c2b))
    });
    check_alert(&alert2, BOT2, &c2b);
    let msg2 = wait_for("the syslog alert over TCP", || {
        syslog
            .botnest("beaconing")
            .into_iter()
            .find(|m| m.rest.contains(&format!("host=\"{BOT2}\"")))
    });
    check_syslog(&msg2, BOT2, &c2b);
    wait_for("the webhook alert of the second bot", || {
        webhook
            .alerts()
            .into_iter()
            .find(|v| is_alert_of(v, BOT2, &c2b))
    });
    run.stop();

    // One alert per host, behaviour and peer, across both runs and on every sink.
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for v in json_alerts(&alerts) {
        let key = format!(
            "{} {} {}",
            v["host"], v["evidence"]["kind"], v["evidence"]["peer"]
        );
        *per_key.entry(key).or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "{per_key:?}");
    assert_eq!(
        json_alerts(&alerts).len(),
        webhook.alerts().len(),
        "the file and the webhook get the same alerts"
    );
    let beaconing_to_c2 = syslog
        .botnest("beaconing")
        .iter()
        .filter(|m| m.rest.contains(&format!("host=\"{BOT}\"")))
        .count();
    assert_eq!(beaconing_to_c2, 1);

    // The first bot's verdict and botnest survived the restart.
    let second = summary(&d.join("second.json"));
    let bot = host_in(&second, BOT).expect("first bot still reported");
    assert_eq!(bot["botnest"], nest);
    assert!(bot["roles"].as_array().unwrap().contains(&"bot".into()));
    let nest2 = alert2["botnest"].as_u64().unwrap();
    assert_ne!(nest2, nest, "the second bot's C2 is another botnest");
    let nests = second["botnests"].as_array().unwrap();
    let first_nest = nests
        .iter()
        .find(|b| b["id"] == nest)
        .expect("first botnest kept");
    assert!(first_nest["c2"].as_array().unwrap().contains(&c2.into()));
    assert!(nests.iter().any(|b| b["id"] == nest2));
}
