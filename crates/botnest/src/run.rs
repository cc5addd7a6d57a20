//! `botnest run`: the live pipeline. The collector's reader threads hand flow records in batches
//! to one detection thread, which owns the engine, moves its windows along and sends what it
//! finds to the alert sinks. Verdicts and botnests are saved in the state directory every 30 s
//! and at exit, and restored at start.

use crate::alerts::{Alert, Alerts};
use crate::collect::{restore_templates, save_json, save_templates, Batch, Forwarding, Report};
use crate::config::Config;
use crate::output::Format;
use anyhow::{Context, Result};
use botnest_collect::{Collector, Decoder, Endpoint};
use botnest_detect::{Engine, EngineSnapshot, Event};
use botnest_flow::Timestamp;
use ipnet::IpNet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `botnest run`; they override the configuration file.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Listen on this socket: udp://ADDR:PORT, tcp://ADDR:PORT, or ADDR:PORT for UDP
    /// (repeatable). Default: UDP and TCP 4739, UDP 2055 on all addresses.
    #[arg(long, value_name = "ENDPOINT")]
    pub listen: Vec<Endpoint>,
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

/// How long the detection thread waits for records before moving time on by the clock.
const TICK: Duration = Duration::from_millis(200);
/// How often verdicts, botnests and templates are saved.
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// The engine's state file in the state directory.
const ENGINE_FILE: &str = "engine.json";

/// Runs `botnest run` until SIGINT or SIGTERM.
pub fn run(args: &RunArgs, mut config: Config) -> Result<()> {
    apply_flags(args, &mut config);
    let state_dir = config.output.state_dir.clone();
    let mut engine = Engine::new(config.detect.clone());
    if let Some(dir) = &state_dir {
        restore_engine(&mut engine, &dir.join(ENGINE_FILE));
    }
    let alerts = Alerts::open(&config.alerts)?;
    let mut decoder = Decoder::new(config.decoder.clone());
    if let Some(dir) = &state_dir {
        restore_templates(&mut decoder, &dir.join("templates.json"));
    }

    let forwarding = Forwarding::new(Format::None);
    let collector = Collector::start(&config.listen, decoder, forwarding.make_sink)
        .context("cannot open the listening sockets")?;
    eprintln!("{}", startup_line(&config, &alerts, state_dir.as_deref()));
    let mut blocklists = crate::intel::Watched::new(config.detect.blocklists.clone());
    if let Some(intel) = blocklists.reload_if_changed() {
        engine.set_intel(intel);
    }
    let detection = Detection {
        blocklists,
        engine,
        alerts,
        clock: EventClock::default(),
        state: state_dir.as_ref().map(|d| d.join(ENGINE_FILE)),
        last_save: Instant::now(),
    };
    let batches = forwarding.batches;
    let detector = std::thread::Builder::new()
        .name("detection".to_owned())
        .spawn(move || detection.run(&batches))
        .context("cannot start the detection thread")?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    let templates = state_dir.as_ref().map(|d| d.join("templates.json"));
    let mut last_save = Instant::now();
    let mut report = Report::default();
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
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
    let decoder = decoder.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = &templates {
        save_templates(&decoder, path);
    }
    let totals = decoder.totals();
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

fn apply_flags(args: &RunArgs, config: &mut Config) {
    if !args.listen.is_empty() {
        config.listen.listen = args.listen.clone();
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

fn startup_line(config: &Config, alerts: &Alerts, state: Option<&Path>) -> String {
    let listen: Vec<String> = config.listen.listen.iter().map(|e| e.to_string()).collect();
    let mut line = format!(
        "botnest: listening on {}; alerts to {}",
        listen.join(", "),
        alerts.names().join(", ")
    );
    match state {
        Some(dir) => line.push_str(&format!("; state in {}", dir.display())),
        None => line.push_str("; no state directory"),
    }
    line
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
}

impl Detection {
    /// Runs until every reader thread has gone.
    fn run(mut self, batches: &Receiver<Batch>) -> Detection {
        loop {
            match batches.recv_timeout(TICK) {
                Ok(batch) => {
                    for f in &batch.flows {
                        self.engine.observe(f);
                    }
                    self.clock.seen(self.engine.newest(), Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(t) = self.clock.now(Instant::now()) {
                self.engine.advance(t);
            }
            self.drain();
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
                        self.alerts.send(alert, now);
                    }
                }
                Event::Botnest {
                    id, state, members, ..
                } => {
                    tracing::info!(id, state = ?state, members, "botnest");
                }
            }
        }
        self.alerts.tick(now);
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
