//! Alerts: detection events turned into messages delivered to sinks: JSON lines (stdout or a
//! file), syslog (RFC 5424 over UDP, or TCP with octet counting) and a webhook (HTTP POST).
//!
//! Detection never waits on a sink: each sink has its own thread behind a bounded queue, and an
//! alert that finds the queue full is dropped and counted. Before the queue, identical repeats
//! within an interval are suppressed, and each sink has a token bucket; alerts beyond it are
//! counted and reported in one "N alerts suppressed" notice once the sink has room again.
//! Failures to deliver are counted and logged at most once a minute per sink.

use crate::analyze::rfc3339;
use anyhow::{bail, Context, Result};
use botnest_detect::{Behaviour, Event, HostKey, Hosts, Peer, Role};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `[alerts]` table of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// JSON lines: `"-"` for stdout, else a file appended to.
    pub json: Option<String>,
    /// Syslog collector: `udp://HOST:PORT`, `tcp://HOST:PORT`, or `HOST:PORT` for UDP.
    pub syslog: Option<String>,
    /// URL that receives each alert as a JSON POST.
    pub webhook: Option<String>,
    /// Alerts per second each sink may send in the long run; 0 for no limit.
    pub rate_per_second: f64,
    /// Alerts a sink may send at once before the rate applies.
    pub burst: u32,
    /// Syslog facility: a name (`daemon`, `local0` ... `local7`, `auth`...) or its number.
    pub facility: Facility,
    /// An alert identical to one sent (same host, behaviour and peer) this many seconds ago or
    /// less is not sent again.
    pub repeat_seconds: u64,
    /// Alerts waiting for each sink; past this they are dropped and counted.
    pub queue: usize,
    /// How long one webhook request may take, in seconds.
    pub webhook_timeout_seconds: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            json: None,
            syslog: None,
            webhook: None,
            rate_per_second: 10.0,
            burst: 100,
            facility: Facility(3),
            repeat_seconds: 3600,
            queue: 1000,
            webhook_timeout_seconds: 5,
        }
    }
}

/// Facility names of RFC 5424 section 6.2.1, by code.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// A syslog facility code (0 to 23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct Facility(pub u8);

impl TryFrom<toml::Value> for Facility {
    type Error = String;

    fn try_from(v: toml::Value) -> Result<Self, String> {
        let code = match &v {
            toml::Value::String(s) => FACILITIES.iter().position(|f| f == s),
            toml::Value::Integer(n) => usize::try_from(*n).ok().filter(|n| *n < FACILITIES.len()),
            _ => None,
        };
        code.map(|c| Facility(c as u8))
            .ok_or_else(|| format!("unknown syslog facility {v}"))
    }
}

/// One alert, as every sink reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// When the window that found it closed (RFC 3339).
    pub time: String,
    /// The host's address.
    pub host: IpAddr,
    /// The host's tenant (its configured name, else its number).
    pub tenant: String,
    /// The host's roles.
    pub roles: BTreeSet<Role>,
    /// The host's score.
    pub score: f64,
    /// The new evidence.
    pub evidence: AlertEvidence,
    /// The botnest the host belongs to.
    pub botnest: Option<u64>,
    /// What makes two alerts the same.
    #[serde(skip)]
    key: (HostKey, Behaviour, Option<Peer>),
}

/// The evidence of an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvidence {
    /// Which behaviour.
    pub kind: Behaviour,
    /// Its score.
    pub score: f64,
    /// A sentence a person can check against the flows.
    pub detail: String,
    /// The other end (`address:port`).
    pub peer: Option<String>,
    /// First flow behind it (RFC 3339).
    pub first_seen: String,
    /// Last flow behind it (RFC 3339).
    pub last_seen: String,
}

impl Alert {
    /// The alert of an event; `None` for events that are not alerts.
    pub fn from_event(event: &Event, hosts: &Hosts) -> Option<Alert> {
        let Event::Alert {
            at,
            host,
            roles,
            score,
            evidence,
            botnest,
        } = event
        else {
            return None;
        };
        Some(Alert {
            time: rfc3339(*at),
            host: host.addr,
            tenant: hosts.tenant_name(host.tenant),
            roles: roles.clone(),
            score: round3(*score),
            evidence: AlertEvidence {
                kind: evidence.kind,
                score: round3(evidence.score),
                detail: evidence.detail.clone(),
                peer: evidence.peer.map(|p| p.endpoint()),
                first_seen: rfc3339(evidence.first_seen),
                last_seen: rfc3339(evidence.last_seen),
            },
            botnest: *botnest,
            key: (*host, evidence.kind, evidence.peer),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What a sink's thread is handed.
#[derive(Debug)]
enum Message {
    Alert(Arc<Alert>),
    /// Alerts the rate limit held back.
    Suppressed {
        count: u64,
        time: String,
    },
}

/// A destination of alerts. It runs on its own thread and may block.
trait Deliver: Send {
    fn alert(&mut self, alert: &Alert) -> Result<()>;
    fn suppressed(&mut self, count: u64, time: &str) -> Result<()>;
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Alerts and notices delivered.
    pub sent: AtomicU64,
    /// Deliveries that failed.
    pub failed: AtomicU64,
    /// Alerts dropped because the sink's queue was full.
    pub dropped: AtomicU64,
    /// Alerts held back by the rate limit.
    pub suppressed: AtomicU64,
}

/// A token bucket: `burst` tokens, refilled at `rate` per second; a rate of 0 never runs dry.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(0.0),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token is available, without taking it.
    pub fn ready(&mut self, now: Instant) -> bool {
        self.rate == 0.0 || {
            self.refill(now);
            self.tokens >= 1.0
        }
    }
}

/// Logs a repeated problem at most once a minute, with how often it happened in between.
#[derive(Debug, Default)]
struct LogLimit {
    last: Option<Instant>,
    quiet: u64,
}

impl LogLimit {
    const EVERY: Duration = Duration::from_secs(60);

    /// Whether to log now, and how many occurrences went unlogged before this one.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < Self::EVERY => {
                self.quiet += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.quiet))
            }
        }
    }
}

/// The detection thread's end of one sink.
struct SinkHandle {
    name: &'static str,
    tx: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
    bucket: TokenBucket,
    /// Alerts held back since the last notice.
    pending: u64,
    counters: Arc<SinkCounters>,
    drops: LogLimit,
}

impl SinkHandle {
    fn spawn(
        name: &'static str,
        sink: Box<dyn Deliver>,
        config: &AlertConfig,
        now: Instant,
    ) -> Result<SinkHandle> {
        let (tx, rx) = sync_channel(config.queue.max(1));
        let counters = Arc::new(SinkCounters::default());
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("alerts {name}"))
                .spawn(move || deliver_loop(name, sink, &rx, &counters))
                .context("cannot start an alert thread")?
        };
        Ok(SinkHandle {
            name,
            tx: Some(tx),
            thread: Some(thread),
            bucket: TokenBucket::new(config.rate_per_second, config.burst, now),
            pending: 0,
            counters,
            drops: LogLimit::default(),
        })
    }

    fn push(&mut self, msg: Message, now: Instant) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Relaxed);
                if let Some(quiet) = self.drops.allow(now) {
                    tracing::warn!(
                        sink = self.name,
                        earlier = quiet,
                        "alert queue full, alert dropped"
                    );
                }
            }
        }
    }

    /// Sends the notice of held-back alerts once the sink has room again, or `force`d.
    fn notice(&mut self, now: Instant, time: &str, force: bool) {
        if self.pending > 0 && (force || self.bucket.ready(now)) {
            let count = std::mem::take(&mut self.pending);
            tracing::warn!(
                sink = self.name,
                count,
                "alerts suppressed by the rate limit"
            );
            self.push(
                Message::Suppressed {
                    count,
                    time: time.to_owned(),
                },
                now,
            );
        }
    }

    fn offer(&mut self, alert: &Arc<Alert>, now: Instant) {
        self.notice(now, &alert.time, false);
        if self.bucket.take(now) {
            self.push(Message::Alert(Arc::clone(alert)), now);
        } else {
            self.pending += 1;
            self.counters.suppressed.fetch_add(1, Relaxed);
        }
    }

    fn close(&mut self, time: &str) {
        self.notice(Instant::now(), time, true);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn deliver_loop(
    name: &'static str,
    mut sink: Box<dyn Deliver>,
    rx: &Receiver<Message>,
    counters: &SinkCounters,
) {
    let mut failures = LogLimit::default();
    for msg in rx {
        let result = match &msg {
            Message::Alert(a) => sink.alert(a),
            Message::Suppressed { count, time } => sink.suppressed(*count, time),
        };
        match result {
            Ok(()) => {
                counters.sent.fetch_add(1, Relaxed);
            }
            Err(e) => {
                counters.failed.fetch_add(1, Relaxed);
                if let Some(quiet) = failures.allow(Instant::now()) {
                    tracing::warn!(sink = name, error = %format!("{e:#}"), earlier = quiet,
                        "cannot deliver alert");
                }
            }
        }
    }
}

/// Totals of one sink, reported at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkTotals {
    /// Alerts and notices delivered.
    pub sent: u64,
    /// Deliveries that failed.
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Alerts held back by the rate limit.
    pub suppressed: u64,
}

/// Every sink of alerts, with deduplication and rate limits. Owned by the detection thread.
pub struct Alerts {
    sinks: Vec<SinkHandle>,
    recent: HashMap<(HostKey, Behaviour, Option<Peer>), Instant>,
    repeat: Duration,
    repeats: u64,
    last_time: String,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Alerts {
    /// Opens the configured sinks; a destination that cannot be parsed or opened is an error.
    pub fn open(config: &AlertConfig) -> Result<Alerts> {
        let mut sinks: Vec<(&'static str, Box<dyn Deliver>)> = Vec::new();
        if let Some(dest) = &config.json {
            sinks.push(("json", Box::new(JsonSink::open(dest)?)));
        }
        if let Some(dest) = &config.syslog {
            sinks.push(("syslog", Box::new(SyslogSink::open(dest, config.facility)?)));
        }
        if let Some(url) = &config.webhook {
            let timeout = Duration::from_secs(config.webhook_timeout_seconds.max(1));
            sinks.push(("webhook", Box::new(WebhookSink::new(url, timeout)?)));
        }
        Alerts::with_sinks(sinks, config)
    }

    fn with_sinks(
        sinks: Vec<(&'static str, Box<dyn Deliver>)>,
        config: &AlertConfig,
    ) -> Result<Alerts> {
        let now = Instant::now();
        let sinks = sinks
            .into_iter()
            .map(|(name, sink)| SinkHandle::spawn(name, sink, config, now))
            .collect::<Result<_>>()?;
        Ok(Alerts {
            sinks,
            recent: HashMap::new(),
            repeat: Duration::from_secs(config.repeat_seconds),
            repeats: 0,
            last_time: String::new(),
        })
    }

    /// Names of the sinks, for the startup line.
    pub fn names(&self) -> Vec<&'static str> {
        self.sinks.iter().map(|s| s.name).collect()
    }

    /// Hands an alert to every sink, unless an identical one went out within the interval.
    pub fn send(&mut self, alert: Alert, now: Instant) {
        if let Some(t) = self.recent.get(&alert.key) {
            if now.saturating_duration_since(*t) < self.repeat {
                self.repeats += 1;
                return;
            }
        }
        if self.recent.len() >= 100_000 {
            let repeat = self.repeat;
            self.recent
                .retain(|_, t| now.saturating_duration_since(*t) < repeat);
        }
        self.recent.insert(alert.key, now);
        tracing::debug!(host = %alert.host, kind = alert.evidence.kind.name(),
            peer = alert.evidence.peer.as_deref().unwrap_or("-"), score = alert.score, "alert");
        self.last_time.clone_from(&alert.time);
        let alert = Arc::new(alert);
        for s in &mut self.sinks {
            s.offer(&alert, now);
        }
    }

    /// Lets sinks whose rate limit held alerts back report how many, once they have room.
    pub fn tick(&mut self, now: Instant) {
        for s in &mut self.sinks {
            s.notice(now, &self.last_time, false);
        }
    }

    /// Each sink's totals so far.
    pub fn totals(&self) -> Vec<(&'static str, SinkTotals)> {
        self.sinks
            .iter()
            .map(|s| {
                let c = &s.counters;
                let totals = SinkTotals {
                    sent: c.sent.load(Relaxed),
                    failed: c.failed.load(Relaxed),
                    dropped: c.dropped.load(Relaxed),
                    suppressed: c.suppressed.load(Relaxed),
                };
                (s.name, totals)
            })
            .collect()
    }

    /// Identical alerts not sent again.
    pub fn repeats(&self) -> u64 {
        self.repeats
    }

    /// Reports what is still held back, waits for the sinks to finish, returns their totals.
    pub fn close(mut self) -> Vec<(&'static str, SinkTotals)> {
        let time = self.last_time.clone();
        self.sinks
            .iter_mut()
            .map(|s| {
                s.close(&time);
                let c = &s.counters;
                let totals = SinkTotals {
                    sent: c.sent.load(Relaxed),
                    failed: c.failed.load(Relaxed),
                    dropped: c.dropped.load(Relaxed),
                    suppressed: c.suppressed.load(Relaxed),
                };
                (s.name, totals)
            })
            .collect()
    }
}

/// The line or document reporting held-back alerts.
fn suppressed_json(count: u64, time: &str) -> serde_json::Value {
    serde_json::json!({
        "time": time,
        "suppressed": count,
        "message": format!("{count} alerts suppressed"),
    })
}

/// JSON lines on stdout or appended to a file.
struct JsonSink {
    out: Box<dyn Write + Send>,
}

impl JsonSink {
    fn open(dest: &str) -> Result<JsonSink> {
        let out: Box<dyn Write + Send> = if dest == "-" {
            Box::new(std::io::stdout())
        } else {
            let path = PathBuf::from(dest);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open alert file {}", path.display()))?;
            Box::new(file)
        };
        Ok(JsonSink { out })
    }

    fn line(&mut self, value: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok(())
    }
}

impl Deliver for JsonSink {
    fn alert(&mut self, alert: &Alert) -> Result<()> {
        self.line(alert)
    }

    fn suppressed(&mut self, count: u64, time: &str) -> Result<()> {
        self.line(&suppressed_json(count, time))
    }
}

/// Private enterprise number of the structured-data id. 32473 is the number RFC 5612 reserves
/// for documentation examples; a deployment with its own number would use that instead.
const PEN: u32 = 32473;
/// Largest UDP datagram sent; RFC 5426 section 3.2 asks receivers to take 2048 octets at least.
const UDP_MAX: usize = 2048;

/// Syslog severities (RFC 5424 section 6.2.1).
const ERROR: u8 = 3;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;

/// How syslog messages travel.
enum SyslogTransport {
    Udp(UdpSocket),
    Tcp {
        addr: String,
        stream: Option<TcpStream>,
    },
}

/// Syslog messages (RFC 5424) to a collector over UDP (RFC 5426) or TCP (RFC 6587).
struct SyslogSink {
    transport: SyslogTransport,
    facility: Facility,
    hostname: String,
    procid: u32,
}

impl SyslogSink {
    fn open(dest: &str, facility: Facility) -> Result<SyslogSink> {
        let (kind, addr) = dest.split_once("://").unwrap_or(("udp", dest));
        let transport = match kind {
            "udp" => {
                let target = resolve(addr)?;
                let local: SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let sock = UdpSocket::bind(local).context("cannot open a UDP socket")?;
                sock.connect(target)
                    .with_context(|| format!("cannot reach syslog at {target}"))?;
                SyslogTransport::Udp(sock)
            }
            "tcp" => {
                resolve(addr)?;
                SyslogTransport::Tcp {
                    addr: addr.to_owned(),
                    stream: None,
                }
            }
            _ => bail!("bad syslog address {dest:?}: use udp://HOST:PORT or tcp://HOST:PORT"),
        };
        Ok(SyslogSink {
            transport,
            facility,
            hostname: local_hostname(),
            procid: std::process::id(),
        })
    }

    fn send(&mut self, msg: String) -> Result<()> {
        match &mut self.transport {
            SyslogTransport::Udp(sock) => {
                let mut bytes = msg.into_bytes();
                truncate_utf8(&mut bytes, UDP_MAX);
                sock.send(&bytes)?;
                Ok(())
            }
            SyslogTransport::Tcp { addr, stream } => {
                // RFC 6587 section 3.4.1: octet counting, "MSG-LEN SP SYSLOG-MSG".
                let frame = format!("{} {msg}", msg.len());
                // A connection the collector closed shows only on the next write: try a fresh
                // one once.
                for attempt in 0..2 {
                    if stream.is_none() {
                        *stream = Some(connect(addr)?);
                    }
                    if let Some(s) = stream {
                        match s.write_all(frame.as_bytes()) {
                            Ok(()) => return Ok(()),
                            Err(e) if attempt == 1 => {
                                *stream = None;
                                return Err(e.into());
                            }
                            Err(_) => *stream = None,
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl Deliver for SyslogSink {
    fn alert(&mut self, alert: &Alert) -> Result<()> {
        let msg = format_syslog(alert, self.facility, &self.hostname, self.procid);
        self.send(msg)
    }

    fn suppressed(&mut self, count: u64, time: &str) -> Result<()> {
        let pri = u16::from(self.facility.0) * 8 + u16::from(NOTICE);
        let msg = format!(
            "<{pri}>1 {} {} botnest {} suppressed [botnest@{PEN} suppressed=\"{count}\"] \
             {count} alerts suppressed",
            nil_if_empty(time),
            self.hostname,
            self.procid
        );
        self.send(msg)
    }
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("bad syslog address {addr:?}"))?
        .next()
        .with_context(|| format!("syslog host {addr:?} has no address"))
}

fn connect(addr: &str) -> Result<TcpStream> {
    let target = resolve(addr)?;
    let s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to syslog at {target}"))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

fn nil_if_empty(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Cuts at most `max` bytes without splitting a character.
fn truncate_utf8(bytes: &mut Vec<u8>, max: usize) {
    if bytes.len() <= max {
        return;
    }
    let mut end = max;
    while end > 0 && (bytes[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    bytes.truncate(end);
}

/// This machine's name for the HOSTNAME field: printable ASCII only (RFC 5424 section 6.2.4),
/// or the nil value.
fn local_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() {
        "-".to_owned()
    } else {
        name
    }
}

/// Escapes a PARAM-VALUE: `"`, `\` and `]` take a backslash (RFC 5424 section 6.3.3).
fn sd_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One alert as an RFC 5424 message: severity error from a score of 0.8, warning below;
/// MSGID the behaviour; the detail as MSG.
pub fn format_syslog(alert: &Alert, facility: Facility, hostname: &str, procid: u32) -> String {
    let severity = if alert.score >= 0.8 { ERROR } else { WARNING };
    let pri = u16::from(facility.0) * 8 + u16::from(severity);
    let mut sd = format!(
        "[botnest@{PEN} host=\"{}\" tenant=\"{}\" score=\"{}\"",
        sd_escape(&alert.host.to_string()),
        sd_escape(&alert.tenant),
        alert.score
    );
    if let Some(peer) = &alert.evidence.peer {
        sd.push_str(&format!(" peer=\"{}\"", sd_escape(peer)));
    }
    if let Some(id) = alert.botnest {
        sd.push_str(&format!(" botnest=\"{id}\""));
    }
    sd.push(']');
    // MSG in UTF-8 starts with a byte order mark (RFC 5424 section 6.4); plain ASCII needs none.
    let bom = if alert.evidence.detail.is_ascii() {
        ""
    } else {
        "\u{feff}"
    };
    format!(
        "<{pri}>1 {} {hostname} botnest {procid} {} {sd} {bom}{}",
        nil_if_empty(&alert.time),
        alert.evidence.kind.name(),
        alert.evidence.detail
    )
}

/// Each alert POSTed as JSON to a URL.
struct WebhookSink {
    agent: ureq::Agent,
    url: String,
}

impl WebhookSink {
    fn new(url: &str, timeout: Duration) -> Result<WebhookSink> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("bad webhook URL {url:?}: use http:// or https://");
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .user_agent(concat!("botnest/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(WebhookSink {
            agent,
            url: url.to_owned(),
        })
    }

    fn post(&mut self, body: Vec<u8>) -> Result<()> {
        self.agent
            .post(&self.url)
            .content_type("application/json")
            .send(body)
            .with_context(|| format!("webhook {}", self.url))?;
        Ok(())
    }
}

impl Deliver for WebhookSink {
    fn alert(&mut self, alert: &Alert) -> Result<()> {
        self.post(serde_json::to_vec(alert)?)
    }

    fn suppressed(&mut self, count: u64, time: &str) -> Result<()> {
        self.post(serde_json::to_vec(&suppressed_json(count, time))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn alert(host: &str, detail: &str) -> Alert {
        let key = HostKey {
            tenant: 0,
            addr: host.parse().unwrap(),
        };
        Alert {
            time: "2024-05-01T10:00:00.000Z".to_owned(),
            host: key.addr,
            tenant: "0".to_owned(),
            roles: [Role::Bot].into(),
            score: 0.9,
            evidence: AlertEvidence {
                kind: Behaviour::Beaconing,
                score: 0.9,
                detail: detail.to_owned(),
                peer: Some("203.0.113.5:443".to_owned()),
                first_seen: "2024-05-01T09:59:00.000Z".to_owned(),
                last_seen: "2024-05-01T10:00:00.000Z".to_owned(),
            },
            botnest: Some(1),
            key: (key, Behaviour::Beaconing, None),
        }
    }

    /// A sink that records what it is handed.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Deliver for Recorder {
        fn alert(&mut self, alert: &Alert) -> Result<()> {
            self.0.lock().unwrap().push(alert.host.to_string());
            Ok(())
        }
        fn suppressed(&mut self, count: u64, _time: &str) -> Result<()> {
            self.0.lock().unwrap().push(format!("{count} suppressed"));
            Ok(())
        }
    }

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 100, t0);
        assert_eq!((0..150).filter(|_| b.take(t0)).count(), 100);
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
        // A long pause refills to the burst, never beyond it.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..150).filter(|_| b.take(later)).count(), 100);
    }

    #[test]
    fn alerts_beyond_the_rate_are_counted_and_reported_in_one_notice() {
        let config = AlertConfig {
            rate_per_second: 10.0,
            burst: 100,
            ..AlertConfig::default()
        };
        let rec = Recorder::default();
        let mut alerts =
            Alerts::with_sinks(vec![("test", Box::new(rec.clone()))], &config).unwrap();
        let t0 = Instant::now();
        for i in 0..150u32 {
            let host = format!("10.0.{}.{}", i / 200, i % 200 + 1);
            alerts.send(alert(&host, "x"), t0);
        }
        // A tenth of a second later one token is back: the notice goes out, then the alert.
        alerts.tick(t0 + Duration::from_millis(100));
        let totals = alerts.close();
        let got = rec.0.lock().unwrap().clone();
        assert_eq!(got.len(), 101, "{got:?}");
        assert_eq!(got[100], "50 suppressed");
        assert_eq!(
            totals,
            [(
                "test",
                SinkTotals {
                    sent: 101,
                    failed: 0,
                    dropped: 0,
                    suppressed: 50
                }
            )]
        );
    }

    #[test]
    fn identical_alerts_within_the_interval_are_sent_once() {
        let config = AlertConfig {
            repeat_seconds: 60,
            ..AlertConfig::default()
        };
        let rec = Recorder::default();
        let mut alerts =
            Alerts::with_sinks(vec![("test", Box::new(rec.clone()))], &config).unwrap();
        let t0 = Instant::now();
        alerts.send(alert("10.0.0.1", "a"), t0);
        alerts.send(alert("10.0.0.1", "b"), t0 + Duration::from_secs(30));
        alerts.send(alert("10.0.0.2", "a"), t0 + Duration::from_secs(30));
        alerts.send(alert("10.0.0.1", "c"), t0 + Duration::from_secs(61));
        assert_eq!(alerts.repeats(), 1);
        alerts.close();
        assert_eq!(*rec.0.lock().unwrap(), ["10.0.0.1", "10.0.0.2", "10.0.0.1"]);
    }

    /// A sink that says when a delivery starts and waits for permission to finish it.
    struct Gate {
        started: std::sync::mpsc::Sender<()>,
        open: Receiver<()>,
    }

    impl Deliver for Gate {
        fn alert(&mut self, _alert: &Alert) -> Result<()> {
            let _ = self.started.send(());
            let _ = self.open.recv();
            Ok(())
        }
        fn suppressed(&mut self, _count: u64, _time: &str) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_alerts_instead_of_blocking() {
        let config = AlertConfig {
            queue: 1,
            rate_per_second: 0.0,
            ..AlertConfig::default()
        };
        let (started_tx, started) = std::sync::mpsc::channel();
        let (open, open_rx) = std::sync::mpsc::channel();
        let gate = Gate {
            started: started_tx,
            open: open_rx,
        };
        let mut alerts = Alerts::with_sinks(vec![("gate", Box::new(gate))], &config).unwrap();
        let now = Instant::now();
        alerts.send(alert("10.0.0.1", "a"), now);
        started.recv().unwrap();
        // The first alert is being delivered, the second waits in the queue, the third finds
        // the queue full.
        alerts.send(alert("10.0.0.2", "a"), now);
        alerts.send(alert("10.0.0.3", "a"), now);
        open.send(()).unwrap();
        open.send(()).unwrap();
        let totals = alerts.close();
        assert_eq!(totals[0].1.sent, 2);
        assert_eq!(totals[0].1.dropped, 1);
    }

    #[test]
    fn undeliverable_alerts_are_counted_not_fatal() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = AlertConfig {
            syslog: Some(format!("tcp://127.0.0.1:{closed}")),
            webhook: Some(format!("http://127.0.0.1:{closed}/alerts")),
            ..AlertConfig::default()
        };
        let mut alerts = Alerts::open(&config).unwrap();
        alerts.send(alert("10.0.0.1", "a"), Instant::now());
        for (name, t) in alerts.close() {
            assert_eq!((t.sent, t.failed), (0, 1), "{name}");
        }
    }

    #[test]
    fn bad_destinations_are_refused_at_start() {
        for config in [
            AlertConfig {
                syslog: Some("ftp://127.0.0.1:514".to_owned()),
                ..AlertConfig::default()
            },
            AlertConfig {
                webhook: Some("127.0.0.1:8080".to_owned()),
                ..AlertConfig::default()
            },
        ] {
            assert!(Alerts::open(&config).is_err(), "{config:?}");
        }
    }

    #[test]
    fn syslog_message_follows_rfc_5424() {
        let a = alert("10.0.0.1", "retry loop \u{b1}2%");
        let msg = format_syslog(&a, Facility(16), "probe", 42);
        // local0 (16) * 8 + error (3) = 131
        assert_eq!(
            msg,
            "<131>1 2024-05-01T10:00:00.000Z probe botnest 42 beaconing \
             [botnest@32473 host=\"10.0.0.1\" tenant=\"0\" score=\"0.9\" \
             peer=\"203.0.113.5:443\" botnest=\"1\"] \u{feff}retry loop \u{b1}2%"
        );
        let weak = Alert { score: 0.7, ..a };
        assert!(format_syslog(&weak, Facility(3), "h", 1).starts_with("<28>1 "));
    }

    #[test]
    fn structured_data_values_are_escaped() {
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
    }

    #[test]
    fn facilities_are_read_by_name_or_number() {
        let c: AlertConfig = toml::from_str("facility = \"local3\"").unwrap();
        assert_eq!(c.facility, Facility(19));
        let c: AlertConfig = toml::from_str("facility = 4").unwrap();
        assert_eq!(c.facility, Facility(4));
        assert!(toml::from_str::<AlertConfig>("facility = \"local9\"").is_err());
    }

    #[test]
    fn udp_datagrams_are_cut_between_characters() {
        let mut b = "a\u{b1}".repeat(1000).into_bytes();
        truncate_utf8(&mut b, 2048);
        assert!(b.len() <= 2048);
        assert!(String::from_utf8(b).is_ok());
    }
}
