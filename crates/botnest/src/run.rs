//! `botnest run`: the live pipeline. The collector's reader threads hand flow records in batches
//! to one detection thread, which owns the engine, moves its windows along and sends what it
//! finds to the alert sinks and the web server. Verdicts and botnests are saved in the state
//! directory every 30 s and at exit, and restored at start. Recorded inputs given with
//! `--replay` go through the same engine first.

use crate::alerts::{Alert, Alerts};
use crate::analyze::Intake;
use crate::collect::{restore_templates, save_json, save_templates, Batch, Forwarding, Report};
use crate::config::Config;
use crate::output::Format;
use anyhow::{Context, Result};
use botnest_collect::sources::Label;
use botnest_collect::{Collector, Decoder, Endpoint, RecordMeta, Sink};
use botnest_detect::{Engine, EngineSnapshot, Event, Target};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_web::{Action, AlertFigures, CollectorFigures, Publisher, Server, Shared};
use botnest_web::{OperatorState, SinkFigures, SocketFigures};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `botnest run`; they override the configuration file.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Listen on this socket: udp://ADDR:PORT, tcp://ADDR:PORT, or ADDR:PORT for UDP
    /// (repeatable), or "none" for no collector. Default: UDP and TCP 4739, UDP 2055 on all
    /// addresses.
    #[arg(long, value_name = "ENDPOINT|none")]
    pub listen: Vec<ListenArg>,
    /// Serve the web console and API here (ADDR:PORT, port 0 picks one), or "none".
    /// Default: 127.0.0.1:8080. A non-loopback address needs a token.
    #[arg(long, value_name = "ADDR:PORT|none")]
    pub http: Option<HttpArg>,
    /// Token every API request must carry (Authorization: Bearer TOKEN); also read from
    /// BOTNEST_TOKEN.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Feed these recorded inputs (anything `botnest analyze` reads) through the engine at start,
    /// then go on serving and collecting.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub replay: Vec<PathBuf>,
    /// Internal network (repeatable); replaces the default private and unique-local ranges.
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<IpNet>,
    /// Keep verdicts, botnests and templates across restarts in this directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write alerts as JSON lines to this file (appended), or to stdout with "-".
    #[arg(long, value_name = "PATH|-")]
    pub alerts_json: Option<String>,
    /// Send alerts to this syslog collector: udp://HOST:PORT, tcp://HOST:PORT or HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub syslog: Option<String>,
    /// POST each alert as JSON to this URL.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Write the verdicts, botnests and counters (one JSON document) to this file on exit.
    #[arg(long, value_name = "FILE")]
    pub summary_file: Option<PathBuf>,
}

/// A `--listen` value: an endpoint, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenArg {
    /// Listen here.
    At(Endpoint),
    /// Run no collector.
    None,
}

impl std::str::FromStr for ListenArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(ListenArg::None);
        }
        s.parse().map(ListenArg::At)
    }
}

/// A `--http` value: an address, or no web server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpArg {
    /// Serve here.
    At(SocketAddr),
    /// Serve nothing.
    None,
}

impl std::str::FromStr for HttpArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(HttpArg::None);
        }
        s.parse()
            .map(HttpArg::At)
            .map_err(|e| format!("bad HTTP address {s:?} (ADDR:PORT or none): {e}"))
    }
}

/// How long the detection thread waits for records before moving time on by the clock.
const TICK: Duration = Duration::from_millis(200);
/// How often verdicts, botnests and templates are saved.
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// The engine's state file in the state directory.
const ENGINE_FILE: &str = "engine.json";
/// What operators decided through the API (acknowledged botnests, hosts marked benign).
const OPERATOR_FILE: &str = "operator.json";

/// How often the collector's figures are published for the API.
const FIGURES_EVERY: Duration = Duration::from_secs(1);

/// Runs `botnest run` until SIGINT or SIGTERM.
pub fn run(args: &RunArgs, mut config: Config) -> Result<()> {
    apply_flags(args, &mut config);
    let state_dir = config.output.state_dir.clone();
    let mut engine = Engine::new(config.detect.clone());
    if let Some(dir) = &state_dir {
        restore_engine(&mut engine, &dir.join(ENGINE_FILE));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }

    // The web server comes first: a busy port or a missing token stops botnest before it
    // opens anything else.
    let web = if config.web.enabled {
        let shared = Shared::new(engine.hosts().clone(), config.web.recent_flows);
        let server = Server::start(config.web.clone(), Arc::clone(&shared))?;
        Some((server, shared))
    } else {
        None
    };
    let publisher = web.as_ref().map(|(_, shared)| {
        Publisher::with_interval(
            Arc::clone(shared),
            Duration::from_millis(config.web.publish_ms.max(10)),
        )
    });

    let operator = state_dir.as_ref().map(|d| d.join(OPERATOR_FILE));
    let decided = operator
        .as_deref()
        .map(restore_operator)
        .unwrap_or_default();
    for address in &decided.allowed {
        engine.allow(Target::Net(IpNet::from(*address)));
    }
    if let Some((_, shared)) = &web {
        for id in &decided.acknowledged {
            shared.acknowledge(*id);
        }
    }

    let alerts = Alerts::open(&config.alerts)?;
    let mut blocklists = crate::intel::Watched::new(config.detect.blocklists.clone());
    if let Some(intel) = blocklists.reload_if_changed() {
        engine.set_intel(intel);
    }
    let mut detection = Detection {
        blocklists,
        engine,
        alerts,
        clock: EventClock::default(),
        state: state_dir.as_ref().map(|d| d.join(ENGINE_FILE)),
        last_save: Instant::now(),
        publisher,
        stop: Arc::clone(&stop),
        operator,
        allowed: decided.allowed,
    };
    let replayed = if args.replay.is_empty() {
        None
    } else {
        Some(detection.replay(&args.replay, &config)?)
    };

    let mut decoder = Decoder::new(config.decoder.clone());
    if let Some(dir) = &state_dir {
        restore_templates(&mut decoder, &dir.join("templates.json"));
    }
    let forwarding = Forwarding::new(Format::None);
    let collector = Collector::start(&config.listen, decoder, forwarding.make_sink)
        .context("cannot open the listening sockets")?;
    // Printed once everything is ready, replayed inputs included: scripts wait for this line.
    eprintln!(
        "{}",
        startup_line(
            &config,
            &detection.alerts,
            state_dir.as_deref(),
            web.as_ref().map(|(s, _)| s.addr())
        )
    );
    let batches = forwarding.batches;
    let detector = std::thread::Builder::new()
        .name("detection".to_owned())
        .spawn(move || detection.run(&batches))
        .context("cannot start the detection thread")?;

    let templates = state_dir.as_ref().map(|d| d.join("templates.json"));
    let mut last_save = Instant::now();
    let mut last_figures: Option<Instant> = None;
    let mut report = Report::default();
    let mut first = true;
    while !stop.load(Relaxed) {
        // The collector's figures are published at once, then every second.
        if !std::mem::take(&mut first) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some((_, shared)) = &web {
            if last_figures.is_none_or(|t| t.elapsed() >= FIGURES_EVERY) {
                last_figures = Some(Instant::now());
                let decoder = collector
                    .decoder()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let mut decoders = vec![&*decoder];
                decoders.extend(replayed.as_ref());
                let sockets = socket_figures(collector.sockets());
                let drops = forwarding.dropped.load(Relaxed);
                let figures = CollectorFigures::read(&decoders, sockets, drops);
                drop(decoder);
                shared.set_collector(figures);
            }
        }
        if last_save.elapsed() >= SAVE_EVERY {
            last_save = Instant::now();
            let decoder = collector
                .decoder()
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(path) = &templates {
                save_templates(&decoder, path);
            }
            report.log(
                &decoder,
                collector.sockets(),
                forwarding.dropped.load(Relaxed),
            );
        }
    }

    tracing::info!("stopping");
    let decoder = collector.stop();
    // The reader threads are gone, so the queue disconnects and the detection thread ends.
    let detection = detector
        .join()
        .map_err(|_| anyhow::anyhow!("the detection thread failed"))?;
    if let Some((server, _)) = web {
        server.stop();
    }
    let decoder = decoder.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = &templates {
        save_templates(&decoder, path);
    }
    let mut totals = decoder.totals();
    if let Some(r) = &replayed {
        totals.add(&r.totals());
    }
    let summary = detection.finish();
    let mut doc = summary;
    doc["collector"] = serde_json::json!({
        "messages": totals.messages,
        "records": totals.records,
        "errors": totals.errors,
        "lost_records": totals.lost_records,
        "queue_drops": forwarding.dropped.load(Relaxed),
        "clock_corrected": totals.clock_corrected,
        "clocks": crate::output::clocks_json(&decoder.clocks()),
    });
    if let Some(path) = &args.summary_file {
        std::fs::write(path, format!("{doc}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn socket_figures(
    sockets: &[(Endpoint, Arc<botnest_collect::listen::SocketStats>)],
) -> Vec<SocketFigures> {
    sockets
        .iter()
        .map(|(e, s)| SocketFigures {
            endpoint: e.to_string(),
            messages: s.messages.load(Relaxed),
            bytes: s.bytes.load(Relaxed),
            not_allowed: s.not_allowed.load(Relaxed),
            kernel_drops: s.kernel_drops.load(Relaxed),
        })
        .collect()
}

fn apply_flags(args: &RunArgs, config: &mut Config) {
    if !args.listen.is_empty() {
        config.listen.listen = args
            .listen
            .iter()
            .filter_map(|l| match l {
                ListenArg::At(e) => Some(*e),
                ListenArg::None => None,
            })
            .collect();
    }
    match args.http {
        Some(HttpArg::At(addr)) => {
            config.web.enabled = true;
            config.web.listen = addr;
        }
        Some(HttpArg::None) => config.web.enabled = false,
        None => {}
    }
    if args.token.is_some() {
        config.web.token.clone_from(&args.token);
    }
    if config.web.token.is_none() {
        config.web.token = std::env::var("BOTNEST_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
    }
    if !args.internal.is_empty() {
        config.detect.hosts.internal = args.internal.clone();
    }
    if let Some(d) = &args.state_dir {
        config.output.state_dir = Some(d.clone());
    }
    let a = &mut config.alerts;
    for (flag, setting) in [
        (&args.alerts_json, &mut a.json),
        (&args.syslog, &mut a.syslog),
        (&args.webhook, &mut a.webhook),
    ] {
        if flag.is_some() {
            setting.clone_from(flag);
        }
    }
    // With no sink at all, alerts go to stdout rather than nowhere.
    if a.json.is_none() && a.syslog.is_none() && a.webhook.is_none() {
        a.json = Some("-".to_owned());
    }
}

fn startup_line(
    config: &Config,
    alerts: &Alerts,
    state: Option<&Path>,
    web: Option<SocketAddr>,
) -> String {
    let listen: Vec<String> = config.listen.listen.iter().map(|e| e.to_string()).collect();
    let listen = if listen.is_empty() {
        "no sockets".to_owned()
    } else {
        listen.join(", ")
    };
    let mut line = format!(
        "botnest: listening on {listen}; alerts to {}",
        alerts.names().join(", ")
    );
    match web {
        Some(addr) => line.push_str(&format!("; web console on http://{addr}/")),
        None => line.push_str("; no web console"),
    }
    match state {
        Some(dir) => line.push_str(&format!("; state in {}", dir.display())),
        None => line.push_str("; no state directory"),
    }
    line
}

/// Operators' decisions saved by an earlier run; none when there is no file or it is unreadable.
fn restore_operator(path: &Path) -> OperatorState {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable decisions");
            OperatorState::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OperatorState::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read decisions");
            OperatorState::default()
        }
    }
}

fn restore_engine(engine: &mut Engine, path: &Path) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read detection state");
            return;
        }
    };
    match serde_json::from_str::<EngineSnapshot>(&text) {
        Ok(snapshot) => {
            let (verdicts, botnests) = (snapshot.verdicts.len(), snapshot.botnests.len());
            engine.restore(snapshot);
            tracing::info!(path = %path.display(), verdicts, botnests, "detection state restored");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable detection state")
        }
    }
}

/// Event time carried on by the monotonic clock while no newer record arrives, so windows close
/// when traffic stops. It follows the exporters' clocks rather than this machine's: an exporter
/// whose clock is off by minutes would otherwise see every record dropped as too late.
#[derive(Debug, Default)]
struct EventClock {
    /// The newest event time and when it was seen.
    anchor: Option<(Timestamp, Instant)>,
}

impl EventClock {
    fn seen(&mut self, newest: Timestamp, now: Instant) {
        if newest.is_unset() {
            return;
        }
        if self.anchor.is_none_or(|(t, _)| newest > t) {
            self.anchor = Some((newest, now));
        }
    }

    /// Event time now; none before the first record.
    fn now(&self, now: Instant) -> Option<Timestamp> {
        self.anchor.map(|(t, at)| {
            let elapsed = now.saturating_duration_since(at).as_nanos();
            Timestamp(t.as_unix_nanos().saturating_add(elapsed as u64))
        })
    }
}

/// The detection thread's state.
struct Detection {
    blocklists: crate::intel::Watched,
    engine: Engine,
    alerts: Alerts,
    clock: EventClock,
    state: Option<PathBuf>,
    last_save: Instant,
    /// Views for the web server, when it runs.
    publisher: Option<Publisher>,
    /// Set on SIGINT or SIGTERM.
    stop: Arc<AtomicBool>,
    /// Where operators' decisions are saved.
    operator: Option<PathBuf>,
    /// Addresses operators marked benign.
    allowed: Vec<std::net::IpAddr>,
}

/// Records replayed between two moves of the engine's time, as `analyze` does.
const REPLAY_STEP: usize = 4096;

/// Feeds replayed records to the detection thread's engine in steps.
struct Replay<'a> {
    detection: &'a mut Detection,
    pending: Vec<FlowRecord>,
}

impl Replay<'_> {
    fn feed(&mut self, f: &FlowRecord) {
        self.detection.engine.observe(f);
        self.pending.push(*f);
        if self.pending.len() >= REPLAY_STEP {
            self.step();
        }
    }

    fn step(&mut self) {
        let d = &mut *self.detection;
        let newest = d.engine.newest();
        d.engine.advance(newest);
        if let Some(p) = &mut d.publisher {
            p.flows(&self.pending);
        }
        self.pending.clear();
        d.drain();
        if let Some(p) = &mut d.publisher {
            p.publish(&d.engine, false);
        }
    }
}

impl Sink for Replay<'_> {
    fn flow(&mut self, _meta: &RecordMeta<'_>, flow: &FlowRecord, _raw: &botnest_wire::Record<'_>) {
        self.feed(flow);
    }
}

impl Intake for Replay<'_> {
    fn intake(&mut self, flow: &FlowRecord, _label: Option<&Label>) {
        self.feed(flow);
    }
}

impl Detection {
    /// Feeds recorded inputs through the engine, moving its time with the records, and closes
    /// the last window; returns the decoder that read them, for its counters.
    fn replay(&mut self, files: &[PathBuf], config: &Config) -> Result<Decoder> {
        let mut decoder = Decoder::new(config.decoder.clone());
        let started = Instant::now();
        let before = self.engine.stats().flows;
        {
            let mut replay = Replay {
                detection: self,
                pending: Vec::with_capacity(REPLAY_STEP),
            };
            for path in files {
                crate::analyze::read_input(path, &mut decoder, &mut replay)
                    .with_context(|| format!("cannot replay {}", path.display()))?;
                replay.step();
            }
        }
        self.engine.finish();
        self.drain();
        self.clock.seen(self.engine.newest(), Instant::now());
        if let Some(p) = &mut self.publisher {
            p.publish(&self.engine, true);
        }
        tracing::info!(
            files = files.len(),
            flows = self.engine.stats().flows - before,
            seconds = started.elapsed().as_secs_f64(),
            botnests = self.engine.botnests().len(),
            "replayed"
        );
        Ok(decoder)
    }

    /// Runs until every reader thread has gone, or, with no reader threads at all, until
    /// botnest is told to stop.
    fn run(mut self, batches: &Receiver<Batch>) -> Detection {
        loop {
            match batches.recv_timeout(TICK) {
                Ok(batch) => {
                    for f in &batch.flows {
                        self.engine.observe(f);
                    }
                    if let Some(p) = &mut self.publisher {
                        p.flows(&batch.flows);
                    }
                    self.clock.seen(self.engine.newest(), Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if self.stop.load(Relaxed) {
                        break;
                    }
                    std::thread::sleep(TICK);
                }
            }
            if let Some(t) = self.clock.now(Instant::now()) {
                self.engine.advance(t);
            }
            self.drain();
            self.apply_actions();
            if let Some(p) = &mut self.publisher {
                p.publish(&self.engine, false);
            }
            if self.last_save.elapsed() >= SAVE_EVERY {
                self.save();
                self.log_state();
                // Blocklists are checked for changes as often as the state is saved.
                if let Some(intel) = self.blocklists.reload_if_changed() {
                    self.engine.set_intel(intel);
                }
            }
        }
        self
    }

    fn drain(&mut self) {
        let now = Instant::now();
        while let Some(event) = self.engine.poll() {
            match &event {
                Event::Alert { .. } => {
                    if let Some(alert) = Alert::from_event(&event, self.engine.hosts()) {
                        if let Some(p) = &mut self.publisher {
                            match serde_json::to_string(&alert) {
                                Ok(json) => p.alert(json),
                                Err(e) => tracing::warn!(error = %e, "cannot encode an alert"),
                            }
                        }
                        self.alerts.send(alert, now);
                    }
                }
                Event::Botnest {
                    id, state, members, ..
                } => {
                    tracing::info!(id, state = ?state, members, "botnest");
                    if let Some(p) = &mut self.publisher {
                        p.botnest(*id, *state, *members);
                    }
                }
            }
        }
        self.alerts.tick(now);
        if let Some(p) = &self.publisher {
            let sinks = self.alerts.totals();
            p.shared().set_alerts(AlertFigures {
                repeats: self.alerts.repeats(),
                sinks: sinks
                    .into_iter()
                    .map(|(name, t)| {
                        let f = SinkFigures {
                            sent: t.sent,
                            failed: t.failed,
                            dropped: t.dropped,
                            suppressed: t.suppressed,
                        };
                        (name, f)
                    })
                    .collect(),
            });
        }
    }

    /// Carries out what operators asked for through the API.
    fn apply_actions(&mut self) {
        let Some(p) = &mut self.publisher else {
            return;
        };
        let actions = p.shared().take_actions();
        if actions.is_empty() {
            return;
        }
        for a in actions {
            match a {
                Action::AllowHost { tenant, address } => {
                    tracing::info!(%address, tenant, "host allowed by an operator");
                    self.engine.allow(Target::Net(IpNet::from(address)));
                    if !self.allowed.contains(&address) {
                        self.allowed.push(address);
                    }
                }
            }
        }
        p.publish(&self.engine, true);
    }

    /// The engine's state sizes and counters, for whoever watches the log.
    fn log_state(&self) {
        let (hosts, channels) = self.engine.graph().size();
        let s = self.engine.stats();
        let g = self.engine.graph().stats();
        tracing::info!(
            hosts,
            channels,
            verdicts = self.engine.verdicts().count(),
            botnests = self.engine.botnests().len(),
            flows = s.flows,
            late = s.late,
            too_late = s.too_late,
            windows = s.evaluations,
            hosts_refused = g.hosts_refused,
            channels_refused = g.channels_refused,
            "detection state"
        );
    }

    fn save(&mut self) {
        self.last_save = Instant::now();
        if let Some(path) = &self.state {
            if let Err(e) = save_json(path, &self.engine.snapshot()) {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"),
                    "cannot save detection state");
            }
        }
        if let (Some(path), Some(p)) = (&self.operator, &self.publisher) {
            let decided = OperatorState {
                acknowledged: p.shared().acknowledged_ids(),
                allowed: self.allowed.clone(),
            };
            if let Err(e) = save_json(path, &decided) {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"),
                    "cannot save operators' decisions");
            }
        }
    }

    /// Closes the last window, sends its alerts, saves the state and closes the sinks; returns
    /// the report of verdicts, botnests and counters.
    fn finish(mut self) -> serde_json::Value {
        self.engine.finish();
        self.drain();
        self.save();
        let repeats = self.alerts.repeats();
        let sinks = self.alerts.close();
        let mut doc = crate::analyze::report(&self.engine);
        let mut per_sink = serde_json::Map::new();
        for (name, totals) in &sinks {
            tracing::info!(
                sink = name,
                sent = totals.sent,
                failed = totals.failed,
                dropped = totals.dropped,
                suppressed = totals.suppressed,
                "alert sink closed"
            );
            per_sink.insert((*name).to_owned(), serde_json::json!(totals));
        }
        doc["alerts"] = serde_json::json!({ "repeats": repeats, "sinks": per_sink });
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_moves_with_records_then_with_the_clock() {
        let mut c = EventClock::default();
        let t0 = Instant::now();
        assert_eq!(c.now(t0), None);
        c.seen(Timestamp::from_unix_secs(1000), t0);
        // An older record does not move the anchor back.
        c.seen(Timestamp::from_unix_secs(900), t0 + Duration::from_secs(1));
        assert_eq!(
            c.now(t0 + Duration::from_secs(5)),
            Some(Timestamp::from_unix_secs(1005))
        );
        c.seen(Timestamp::from_unix_secs(2000), t0 + Duration::from_secs(6));
        assert_eq!(
            c.now(t0 + Duration::from_secs(6)),
            Some(Timestamp::from_unix_secs(2000))
        );
    }
}
