//! Open vSwitch 3.1 (userspace datapath) as a live IPFIX exporter. Each test builds a private
//! lab: a network namespace running its own ovsdb-server and ovs-vswitchd (run directory,
//! sockets and pidfiles in a directory of the test), a `netdev` bridge, and two namespaces as
//! hosts on veth ports. botnest collects on the loopback of the switch's namespace while the
//! hosts exchange pings, TCP transfers and UDP datagrams of known size; the records must
//! describe that traffic, and decoding a capture of the export traffic must give the very
//! records the live collector printed.

#[allow(dead_code)]
mod live_common;

use botnest_flow::{Direction, FlowRecord};
use live_common::{data_records, json, prerequisites, signal, wait_bounded, Collector, WAIT};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Names of namespaces, interfaces and run directories of these tests start with this.
const PREFIX: &str = "bnl";
/// The collector's port on the loopback of the switch's namespace (private to the test).
const COLLECTOR_PORT: u16 = 4739;
const TCP_PORT: u16 = 5001;
const UDP_PORT: u16 = 5003;

const TOOLS: &[&str] = &[
    "ip",
    "ethtool",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "tshark",
    "python3",
];

const A4: &str = "10.98.0.1";
const B4: &str = "10.98.0.2";
const A6: &str = "fd00:98::1";
const B6: &str = "fd00:98::2";

/// The traffic helper of the repository.
const TRAFFIC_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/live/traffic.py");

/// Runs a command to completion; panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command run inside namespace `ns`.
fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Stops the daemon whose pidfile is `pidfile`, if that pid is still an Open vSwitch process:
/// SIGTERM, then SIGKILL when it does not go within a few seconds.
fn stop_daemon(pidfile: &Path) {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.starts_with("ovs") {
        return;
    }
    signal(pid, "TERM");
    for _ in 0..250 {
        if !process_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(pid, "KILL");
}

/// The private switch and two hosts of one test run. Dropping it tears everything down, also
/// when the test failed half way.
#[derive(Debug)]
struct Lab {
    /// Prefix, pid of the test process and a letter per test: unique among concurrent runs,
    /// and a crashed run's leftovers are recognisable by their dead pid.
    name: String,
    dir: PathBuf,
    namespaces: Vec<String>,
}

impl Lab {
    fn new(test: char) -> Lab {
        sweep_leftovers();
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}{test}");
        let dir = PathBuf::from(format!("/tmp/botnest-live-ovs-{pid}-{test}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("run directory");
        let mut lab = Lab {
            name,
            dir,
            namespaces: Vec::new(),
        };
        lab.start_switch();
        lab.add_host('a', A4, A6);
        lab.add_host('b', B4, B6);
        lab
    }

    fn ns(&self, which: char) -> String {
        format!("{}{which}", self.name)
    }

    fn add_namespace(&mut self, ns: &str) {
        run(Command::new("ip").args(["netns", "add", ns]));
        self.namespaces.push(ns.to_string());
        run(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]));
    }

    /// An Open vSwitch command with the private run directory.
    fn ovs(&self, program: &str) -> Command {
        let mut c = in_ns(&self.ns('o'), program);
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.dir.join("db.sock").display());
        run(self.ovs("ovs-vsctl").args([&db, "--timeout=20"]).args(args))
    }

    fn ofctl(&self, args: &[&str]) -> String {
        let mgmt = format!("unix:{}", self.dir.join("br0.mgmt").display());
        let (cmd, rest) = args.split_first().expect("an ovs-ofctl command");
        run(self.ovs("ovs-ofctl").arg(cmd).arg(&mgmt).args(rest))
    }

    /// ovsdb-server and ovs-vswitchd in a namespace of their own (so the userspace datapath's
    /// tap devices cannot meet any other Open vSwitch), and bridge br0 on the netdev datapath.
    fn start_switch(&mut self) {
        let ns = self.ns('o');
        self.add_namespace(&ns);
        let d = &self.dir;
        let db = d.join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"));
        run(self
            .ovs("ovsdb-server")
            .arg(&db)
            .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
            .arg(format!(
                "--pidfile={}",
                d.join("ovsdb-server.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                d.join("ovsdb-server.log").display()
            ))
            .args(["--detach", "--no-chdir"]));
        self.vsctl(&["--no-wait", "init"]);
        run(self
            .ovs("ovs-vswitchd")
            .arg(format!("unix:{}", d.join("db.sock").display()))
            .arg(format!(
                "--pidfile={}",
                d.join("ovs-vswitchd.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                d.join("ovs-vswitchd.log").display()
            ))
            .args(["--detach", "--no-chdir"]));
        self.vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ]);
    }

    /// Host namespace `which` on a veth pair whose other end is a port of br0.
    fn add_host(&mut self, which: char, v4: &str, v6: &str) {
        let (host, switch) = (self.ns(which), self.ns('o'));
        self.add_namespace(&host);
        let port = format!("{}p{which}", self.name);
        let nic = format!("{}i{which}", self.name);
        let ip = |args: &[&str]| run(Command::new("ip").args(args));
        ip(&["link", "add", &port, "type", "veth", "peer", "name", &nic]);
        ip(&["link", "set", &nic, "netns", &host]);
        ip(&["link", "set", &port, "netns", &switch]);
        ip(&["-n", &switch, "link", "set", &port, "up"]);
        self.vsctl(&["add-port", "br0", &port]);
        ip(&["-n", &host, "addr", "add", &format!("{v4}/24"), "dev", &nic]);
        let v6 = format!("{v6}/64");
        ip(&["-n", &host, "addr", "add", &v6, "dev", &nic, "nodad"]);
        ip(&["-n", &host, "link", "set", &nic, "up"]);
        // With checksum offload on the veths, TCP segments leave with partial checksums that
        // the userspace datapath forwards as they are and the peer drops: TCP never connects.
        run(in_ns(&host, "ethtool").args(["-K", &nic, "tx", "off"]));
        run(in_ns(&switch, "ethtool").args(["-K", &port, "tx", "off"]));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        teardown(&self.dir, &self.namespaces);
    }
}

/// Stops the daemons of a run directory, deletes the namespaces (which takes the veths with
/// them) and the directory.
fn teardown(dir: &Path, namespaces: &[String]) {
    stop_daemon(&dir.join("ovs-vswitchd.pid"));
    stop_daemon(&dir.join("ovsdb-server.pid"));
    for ns in namespaces {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
    if std::env::var_os("BOTNEST_LIVE_KEEP").is_some() {
        eprintln!("keeping {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The pid in a name made by [`Lab::new`], if it is one.
fn pid_in(name: &str, prefix: &str) -> Option<u32> {
    let digits: String = name
        .strip_prefix(prefix)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Removes what runs of these tests left behind when their process died (its pid is no longer
/// running): daemons, namespaces, run directories. Live runs are left alone.
fn sweep_leftovers() {
    if let Ok(entries) = std::fs::read_dir("/tmp") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if pid_in(&name, "botnest-live-ovs-").is_some_and(|p| !process_alive(p)) {
                teardown(&e.path(), &[]);
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let list = Command::new("ip").args(["netns", "list"]).output();
    let list = list.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    for line in list.unwrap_or_default().lines() {
        let ns = line.split_whitespace().next().unwrap_or_default();
        if pid_in(ns, PREFIX).is_some_and(|p| !process_alive(p)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// tshark capturing the export traffic on the switch namespace's loopback.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts the capture and waits until tshark reports that it captures.
    fn start(lab: &Lab, file: PathBuf) -> Capture {
        let mut child = in_ns(&lab.ns('o'), "tshark")
            .args(["-i", "lo", "-f", &format!("udp port {COLLECTOR_PORT}")])
            .arg("-w")
            .arg(&file)
            .args(["-F", "pcap", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Capturing on") {
                    let _ = tx.send(());
                }
            }
        });
        let capture = Capture { child, file };
        rx.recv_timeout(WAIT).expect("tshark starts capturing");
        capture
    }

    /// Stops tshark (SIGINT makes it write out what it captured) and returns the file.
    fn stop(mut self) -> PathBuf {
        signal(self.child.id(), "INT");
        assert!(wait_bounded(&mut self.child, WAIT), "tshark stops cleanly");
        self.file.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The traffic server in host b, killed when dropped.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(lab: &Lab) -> Server {
        let mut child = in_ns(&lab.ns('b'), "python3")
            .args([
                TRAFFIC_PY,
                "serve",
                &TCP_PORT.to_string(),
                &UDP_PORT.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("traffic server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let server = Server { child, lines };
        assert_eq!(server.line(), "ready", "traffic server listens");
        server
    }

    /// The next line the server prints.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("traffic server output")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the traffic helper in host a; returns the JSON it printed, if any.
fn from_a(lab: &Lab, args: &[&str]) -> Value {
    let out = run(in_ns(&lab.ns('a'), "python3").arg(TRAFFIC_PY).args(args));
    serde_json::from_str(out.trim()).unwrap_or(Value::Null)
}

/// Runs the traffic helper in the switch's namespace.
fn from_switch(lab: &Lab, args: &[&str]) {
    run(in_ns(&lab.ns('o'), "python3").arg(TRAFFIC_PY).args(args));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An IPFIX message with one options record whose exportingProcessId is `id`: the test's own
/// end-of-export marker, distinct from anything Open vSwitch sends.
fn marker(id: u32) -> Vec<u8> {
    let export_secs = u32::try_from(now_ns() / 1_000_000_000).unwrap();
    let mut m = Vec::new();
    m.extend_from_slice(&10u16.to_be_bytes()); // version: IPFIX
    m.extend_from_slice(&38u16.to_be_bytes()); // message length
    m.extend_from_slice(&export_secs.to_be_bytes()); // export time
    m.extend_from_slice(&0u32.to_be_bytes()); // sequence number: no data records before
    m.extend_from_slice(&0u32.to_be_bytes()); // observation domain 0
                                              // Options template set (RFC 7011 §3.4.2.2): template 400, one field, one scope field.
    m.extend_from_slice(&3u16.to_be_bytes()); // set id 3: options template set
    m.extend_from_slice(&14u16.to_be_bytes()); // set length
    m.extend_from_slice(&400u16.to_be_bytes()); // template id
    m.extend_from_slice(&1u16.to_be_bytes()); // field count
    m.extend_from_slice(&1u16.to_be_bytes()); // scope field count
    m.extend_from_slice(&144u16.to_be_bytes()); // exportingProcessId
    m.extend_from_slice(&4u16.to_be_bytes()); // field length
                                              // Data set with the one options record.
    m.extend_from_slice(&400u16.to_be_bytes()); // set id: template 400
    m.extend_from_slice(&8u16.to_be_bytes()); // set length
    m.extend_from_slice(&id.to_be_bytes()); // exportingProcessId
    assert_eq!(m.len(), 38, "the header's length is the message's");
    m
}

/// How many packets and octets one direction of a flow must have, in sum over its records.
#[derive(Debug, Clone, Copy)]
struct Want {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    packets: u64,
    /// Least and most IP octets: exact where the packets' sizes are known.
    octets: (u64, u64),
    /// TCP flags that must all have been seen.
    flags: u16,
}

fn want(src: &str, dst: &str, ports: (u16, u16), protocol: u8, packets: u64, octets: u64) -> Want {
    Want {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        src_port: ports.0,
        dst_port: ports.1,
        protocol,
        packets,
        octets: (octets, octets),
        flags: 0,
    }
}

/// Both directions of a TCP transfer of `bytes` from a to b. Every segment either side sent
/// (as its kernel counted them, retransmissions included) crosses the bridge once. The
/// server's connection does not count the SYN-ACK: Linux sends it for the listening socket,
/// before the connection's own socket exists.
fn tcp_wants(src: &str, dst: &str, client: &Value, server: &Value, bytes: u64) -> [Want; 2] {
    let port = u16::try_from(client["port"].as_u64().expect("client port")).unwrap();
    assert_eq!(
        server["port"], client["port"],
        "the server reports this connection"
    );
    let out = client["segs_out"].as_u64().expect("client segs_out");
    let back = server["segs_out"].as_u64().expect("server segs_out") + 1;
    let ip_header = if src.contains(':') { 40 } else { 20 };
    // Each segment has the IP header and 20 to 60 octets of TCP header.
    let range = |n: u64, payload: u64| {
        (
            payload + n * (ip_header + 20),
            payload + n * (ip_header + 60),
        )
    };
    let mut up = want(src, dst, (port, TCP_PORT), 6, out, 0);
    up.octets = range(out, bytes);
    up.flags = 0x02 | 0x10 | 0x01; // SYN, ACK, FIN
    let mut down = want(dst, src, (TCP_PORT, port), 6, back, 0);
    down.octets = range(back, 0);
    down.flags = 0x02 | 0x10 | 0x01;
    [up, down]
}

/// Pings, TCP transfers and UDP datagrams from host a to host b, and what they must add up to.
fn traffic(lab: &Lab) -> Vec<Want> {
    let server = Server::start(lab);
    let mut wants = Vec::new();
    // Echo request and reply, ICMP type and code in the destination port; 56 octets of data
    // plus the 8-octet ICMP header and the IP header.
    from_a(lab, &["ping", B4, "3", "56"]);
    wants.push(want(A4, B4, (0, 0x0800), 1, 3, 3 * 84));
    wants.push(want(B4, A4, (0, 0x0000), 1, 3, 3 * 84));
    from_a(lab, &["ping", B6, "3", "56"]);
    wants.push(want(A6, B6, (0, 0x8000), 58, 3, 3 * 104));
    wants.push(want(B6, A6, (0, 0x8100), 58, 3, 3 * 104));
    for (dst, bytes) in [(B4, 100_000), (B6, 30_000)] {
        let client = from_a(
            lab,
            &["tcp", dst, &TCP_PORT.to_string(), &bytes.to_string()],
        );
        let server: Value = serde_json::from_str(&server.line()).expect("server report");
        let src = if dst == B4 { A4 } else { A6 };
        wants.extend(tcp_wants(src, dst, &client, &server, bytes));
    }
    let sent = from_a(lab, &["udp", B4, &UDP_PORT.to_string(), "5", "100"]);
    let port = u16::try_from(sent["port"].as_u64().expect("udp port")).unwrap();
    wants.push(want(A4, B4, (port, UDP_PORT), 17, 5, 5 * 128));
    let sent = from_a(lab, &["udp", B6, &UDP_PORT.to_string(), "4", "50"]);
    let port = u16::try_from(sent["port"].as_u64().expect("udp port")).unwrap();
    wants.push(want(A6, B6, (port, UDP_PORT), 17, 4, 4 * 98));
    wants
}

/// Sums of the records of one direction of a flow as observed in one direction of the port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sum {
    records: usize,
    packets: u64,
    octets: u64,
    flags: u16,
}

type Key = (IpAddr, IpAddr, u16, u16, u8, Direction);

fn sums(records: &[FlowRecord]) -> HashMap<Key, Sum> {
    let mut out: HashMap<Key, Sum> = HashMap::new();
    for r in records {
        let dir = r.direction;
        let s = out
            .entry((r.src, r.dst, r.src_port, r.dst_port, r.protocol, dir))
            .or_default();
        s.records += 1;
        s.packets += r.packets;
        s.octets += r.octets;
        s.flags |= r.tcp_flags;
    }
    out
}

fn sum_of(sums: &HashMap<Key, Sum>, w: &Want, dir: Direction) -> Sum {
    let key = (w.src, w.dst, w.src_port, w.dst_port, w.protocol, dir);
    sums.get(&key).copied().unwrap_or_default()
}

fn now_ns() -> u64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(d.as_nanos()).unwrap()
}

/// What one test run saw: the live collector's output and the offline decode of the capture.
struct Observed {
    live: Vec<String>,
    offline: Vec<String>,
    wants: Vec<Want>,
    /// Wall clock before the export was switched on and after it was switched off.
    window: (u64, u64),
}

/// Sets up the lab, starts collector and capture, lets `configure` turn the export on, runs
/// the traffic, waits until the records of all of it arrived in every direction in `dirs`,
/// turns the export off with `unconfigure` and gathers both outputs.
fn observe(
    test: char,
    dirs: &[Direction],
    configure: impl Fn(&Lab),
    unconfigure: impl Fn(&Lab),
) -> Observed {
    let t0 = Instant::now();
    // Progress on stderr, shown when the test fails.
    let step = |what: &str| eprintln!("[{:>6.2?}] {what}", t0.elapsed());
    let lab = Lab::new(test);
    step("switch and hosts up");
    let listen = format!("udp://127.0.0.1:{COLLECTOR_PORT}");
    // Listening before the export starts: Open vSwitch sends from a connected UDP socket, and
    // an ICMP port unreachable from a closed port makes its next send fail, losing a message.
    let mut collector = Collector::start(
        &["ip", "netns", "exec", &lab.ns('o')],
        &["--listen", &listen],
    );
    let capture = Capture::start(&lab, lab.dir.join("export.pcap"));
    step("collector and capture running");
    let begin = now_ns();
    configure(&lab);
    step("export configured");
    let wants = traffic(&lab);
    step("traffic sent");
    collector.wait_for(|records| {
        let sums = sums(records);
        wants.iter().all(|w| {
            dirs.iter()
                .all(|d| sum_of(&sums, w, *d).packets >= w.packets)
        })
    });
    step("records of all traffic collected");
    unconfigure(&lab);
    // Flows of other traffic (router solicitations, say) may be exported until the export is
    // switched off, and the last of them when it is.
    let end = now_ns();
    step("export off");
    // The export is off. A last message from the test itself marks the end of the export
    // traffic: once the capture file and the collector both show it, they hold everything
    // that came before it (loopback delivers in order) and can be stopped.
    let id = std::process::id();
    from_switch(
        &lab,
        &[
            "send",
            "127.0.0.1",
            &COLLECTOR_PORT.to_string(),
            &hex(&marker(id)),
        ],
    );
    let is_marker = |v: &Value| v["exportingProcessId"] == id && v["options"] == true;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let lines = live_common::try_decode(&capture.file).unwrap_or_default();
        if json(&lines).iter().any(is_marker) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let offline = live_common::decode(&capture.stop());
    step("capture complete and decoded");
    collector.wait_for_object(is_marker);
    let live = collector.stop();
    step("collector stopped");
    // Kept beside the capture for examination (BOTNEST_LIVE_KEEP keeps the directory).
    let _ = std::fs::write(lab.dir.join("live.jsonl"), live.join("\n"));
    let _ = std::fs::write(lab.dir.join("offline.jsonl"), offline.join("\n"));
    Observed {
        live,
        offline,
        wants,
        window: (begin, end),
    }
}

impl Observed {
    fn records(&self) -> Vec<FlowRecord> {
        live_common::flows(&self.live)
    }

    /// Every wanted flow, observed in each direction of `dirs`, adds up to the traffic.
    fn assert_traffic(&self, dirs: &[Direction]) {
        let records = self.records();
        let sums = sums(&records);
        // ICMP last: its type and code come from separate elements in Open vSwitch's records
        // (icmpTypeIPv4 and icmpCodeIPv4, or the IPv6 pair), the rest from ports.
        let mut wants = self.wants.clone();
        wants.sort_by_key(|w| matches!(w.protocol, 1 | 58));
        for w in &wants {
            for d in dirs {
                let s = sum_of(&sums, w, *d);
                let what = format!("{w:?} seen {d:?}: {s:?}");
                assert_eq!(s.packets, w.packets, "packets of {what}");
                assert!(
                    (w.octets.0..=w.octets.1).contains(&s.octets),
                    "octets of {what}"
                );
                assert_eq!(s.flags & w.flags, w.flags, "TCP flags of {what}");
                assert_eq!(s.flags & 0x04, 0, "no RST in {what}");
            }
        }
    }

    /// Times, derived from flowStart/EndDeltaMicroseconds and the export time, fall in the
    /// test's wall-clock window. The export time has whole seconds (RFC 7011 §3.1), so a time
    /// may come out up to a second early.
    fn assert_times(&self) {
        let (begin, end) = self.window;
        for r in self.records() {
            let (s, e) = (r.start.as_unix_nanos(), r.end.as_unix_nanos());
            assert!(
                s <= e && s + 1_000_000_000 >= begin && e <= end,
                "times of {r:?} outside {begin}..{end}"
            );
        }
    }

    fn assert_clean(&self) {
        let summary = live_common::summary(&self.live);
        assert_eq!(summary["errors"], 0, "no decode errors: {summary}");
        assert_eq!(summary["lost_records"], 0, "nothing lost: {summary}");
    }

    /// The offline decode of the capture printed exactly the live collector's lines.
    fn assert_offline_equals_live(&self) {
        let sorted = |lines: &[String]| {
            let mut objects: Vec<String> = json(lines)
                .into_iter()
                .filter(|v| v.get("summary").is_none())
                .map(|v| v.to_string())
                .collect();
            objects.sort();
            objects
        };
        let (live, offline) = (sorted(&self.live), sorted(&self.offline));
        assert!(!live.is_empty(), "records were collected");
        assert_eq!(offline.len(), live.len(), "as many records offline as live");
        assert!(
            offline == live,
            "offline decode differs from the live records"
        );
        // Clock offsets are measurements of arrival times, which the capture's timestamps and
        // the collector's socket give a little apart; no correction may differ.
        let without_offsets = |lines: &[String]| {
            let mut s = live_common::summary(lines);
            for c in s["clocks"].as_array_mut().into_iter().flatten() {
                assert_eq!(c["correction_ms"], 0, "no exporter clock corrected: {c}");
                c.as_object_mut().unwrap().remove("offset_ms");
            }
            s
        };
        assert_eq!(
            without_offsets(&self.offline),
            without_offsets(&self.live),
            "same summary offline and live"
        );
    }
}

#[test]
fn ovs_bridge_ipfix_reports_the_traffic_between_two_hosts() {
    if !prerequisites("live_ovs", TOOLS) {
        return;
    }
    // Bridge-wide sampling of every packet (sampling=1), aggregated in a cache of up to 1024
    // flows (0, the default, disables the cache: one record per packet) for 2 seconds.
    let configure = |lab: &Lab| {
        lab.vsctl(&[
            "--",
            "set",
            "Bridge",
            "br0",
            "ipfix=@i",
            "--",
            "--id=@i",
            "create",
            "IPFIX",
            &format!("targets=\"127.0.0.1:{COLLECTOR_PORT}\""),
            "obs_domain_id=123",
            "obs_point_id=456",
            "cache_active_timeout=2",
            "cache_max_flows=1024",
            "sampling=1",
        ]);
    };
    let unconfigure = |lab: &Lab| {
        lab.vsctl(&["clear", "Bridge", "br0", "ipfix"]);
    };
    // The bridge samples each packet where it enters (the input port) and where it leaves.
    let dirs = [Direction::Ingress, Direction::Egress];
    let seen = observe('b', &dirs, configure, unconfigure);
    seen.assert_clean();
    seen.assert_traffic(&dirs);
    for r in data_records(&seen.live) {
        if r["options"] == true {
            continue;
        }
        assert_eq!(r["domain"], 123, "observation domain of {r}");
        assert_eq!(r["flow"]["observation_domain"], 123, "{r}");
        assert_eq!(r["flow"]["observation_point"], 456, "{r}");
    }
    seen.assert_times();
    seen.assert_offline_equals_live();
}

#[test]
fn ovs_per_flow_sampling_reports_the_traffic_between_two_hosts() {
    if !prerequisites("live_ovs", TOOLS) {
        return;
    }
    // A collector set referenced by OpenFlow sample() actions that pick every packet
    // (probability 65535 of 65535) with their own observation domain and point per family.
    // One domain for both: the exporter refreshes templates for the first domain only.
    let configure = |lab: &Lab| {
        lab.vsctl(&[
            "--",
            "--id=@br",
            "get",
            "Bridge",
            "br0",
            "--",
            "--id=@i",
            "create",
            "IPFIX",
            &format!("targets=\"127.0.0.1:{COLLECTOR_PORT}\""),
            "cache_active_timeout=2",
            "cache_max_flows=1024",
            "--",
            "create",
            "Flow_Sample_Collector_Set",
            "id=5",
            "bridge=@br",
            "ipfix=@i",
        ]);
        for (family, point) in [("ip", 88), ("ipv6", 89)] {
            lab.ofctl(&[
                "add-flow",
                &format!(
                    "priority=10,{family},actions=sample(probability=65535,collector_set_id=5,\
                     obs_domain_id=77,obs_point_id={point}),NORMAL"
                ),
            ]);
        }
    };
    let unconfigure = |lab: &Lab| {
        lab.vsctl(&["--", "--all", "destroy", "Flow_Sample_Collector_Set"]);
    };
    let dirs = [Direction::Ingress];
    let seen = observe('f', &dirs, configure, unconfigure);
    seen.assert_clean();
    seen.assert_traffic(&dirs);
    for r in data_records(&seen.live) {
        if r["options"] == true {
            continue;
        }
        let v6 = r["flow"]["src"].as_str().is_some_and(|a| a.contains(':'));
        assert_eq!(r["domain"], 77, "observation domain of {r}");
        assert_eq!(
            r["flow"]["observation_point"],
            if v6 { 89 } else { 88 },
            "{r}"
        );
    }
    seen.assert_times();
    seen.assert_offline_equals_live();
}
