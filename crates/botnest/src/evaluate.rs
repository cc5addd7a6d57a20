//! `botnest evaluate`: scores botnest's verdicts against the ground truth of labelled data.
//!
//! Each input is analysed on its own, by the same readers and engine as `botnest analyze`, with
//! the engine's windows moved after every flow, as a live collector moves them. While it runs,
//! the verdicts after each evaluation are kept, so that the scores can say not only whether a
//! host was found but when. Then the input is scored per host (precision, recall, F1, C2 named,
//! delay) and per time window and address, by the metric of the CTU-13 paper.

mod metrics;
mod truth;

use crate::analyze::{read_input, rfc3339, role_name, Intake, ReportFormat};
use anyhow::{bail, Context, Result};
use botnest_collect::sources::Label;
use botnest_collect::{Decoder, DecoderConfig, RecordMeta, Sink};
use botnest_detect::{Behaviour, DetectConfig, Engine, Event, Role};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::Record;
use metrics::{Confusion, CtuMetric, WindowEntry, CTU_ALPHA};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use truth::{counts_as_infection, is_unicast_host, label_class, FlowClass, TruthFile, C2};

const NS: u64 = 1_000_000_000;

/// Options of `botnest evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Ground-truth file (TOML): infected machines, their C2 endpoints, clean machines. Give it
    /// once for every input, or once per input in the inputs' order. Labelled Zeek and Argus
    /// inputs need none.
    #[arg(long, value_name = "FILE")]
    pub truth: Vec<PathBuf>,
    /// Length of the comparison windows, in minutes (detection delays are counted in them).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub window_minutes: u64,
    /// Output: a readable report, or one JSON document.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Internal network (repeatable); replaces the default private and unique-local ranges.
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<ipnet::IpNet>,
    /// Labelled Zeek conn.log or Argus files, or any input `botnest analyze` reads.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Runs `botnest evaluate`.
pub fn run(args: &EvaluateArgs, mut config: DetectConfig, decoder: DecoderConfig) -> Result<()> {
    if !args.internal.is_empty() {
        config.hosts.internal = args.internal.clone();
    }
    let truths = truth_per_input(&args.truth, args.inputs.len())?;
    let mut reports = Vec::new();
    for (path, truth) in args.inputs.iter().zip(truths) {
        let report = evaluate(
            path,
            truth.as_ref(),
            &config,
            &decoder,
            args.window_minutes * 60,
        )
        .with_context(|| format!("cannot evaluate {}", path.display()))?;
        reports.push(report);
    }
    match args.format {
        ReportFormat::Json => {
            let doc = serde_json::json!({ "inputs": reports });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        ReportFormat::Text => {
            for r in &reports {
                print!("{}", text_report(r));
            }
        }
    }
    Ok(())
}

/// Pairs truth files with inputs: none, one for all, or one each.
fn truth_per_input(paths: &[PathBuf], inputs: usize) -> Result<Vec<Option<(PathBuf, TruthFile)>>> {
    let load = |p: &PathBuf| TruthFile::load(p).map(|t| Some((p.clone(), t)));
    match paths.len() {
        0 => Ok(vec![None; inputs]),
        1 => Ok(vec![load(&paths[0])?; inputs]),
        n if n == inputs => paths.iter().map(load).collect(),
        n => bail!("{n} truth files for {inputs} inputs: give one, or one per input"),
    }
}

/// Analyses one input and scores it.
pub fn evaluate(
    path: &Path,
    truth: Option<&(PathBuf, TruthFile)>,
    config: &DetectConfig,
    decoder: &DecoderConfig,
    window_seconds: u64,
) -> Result<InputReport> {
    let file = truth.map(|(_, t)| t);
    let mut scorer = Scorer::new(Engine::new(config.clone()), file, window_seconds);
    let mut decoder = Decoder::new(decoder.clone());
    read_input(path, &mut decoder, &mut scorer)?;
    scorer.finish();
    if truth.is_none() && scorer.labelled == 0 {
        bail!("no ground truth: the input carries no labels; give --truth");
    }
    let machines = machines(&scorer, file);
    Ok(report(path, truth, &scorer, &machines))
}

/// What was seen of one source address.
#[derive(Debug, Clone)]
struct Source {
    first: Timestamp,
    last: Timestamp,
    /// Destinations of its flows labelled malicious, with the first such flow to each.
    malicious: BTreeMap<IpAddr, Timestamp>,
    /// First flow to one of its C2 endpoints of the truth file.
    first_c2: Option<Timestamp>,
}

/// What one source address did in one window: the class of its flows that are not labelled
/// malicious, and the destinations of those that are (attributed once all flows are read).
#[derive(Debug, Clone, Default)]
struct WindowObs {
    class: Option<FlowClass>,
    malicious: BTreeSet<IpAddr>,
}

/// The verdicts after an evaluation: addresses with the bot role, and accused addresses (any
/// malicious role).
#[derive(Debug, Clone, PartialEq)]
struct FlagState {
    /// When the verdicts were known (event time).
    at: Timestamp,
    bots: BTreeSet<IpAddr>,
    accused: BTreeSet<IpAddr>,
}

/// Feeds the engine and keeps what scoring needs.
struct Scorer {
    engine: Engine,
    window_ns: u64,
    /// Whether a truth file was given: its infected machines are then the only ones.
    has_truth: bool,
    infected: BTreeSet<IpAddr>,
    c2: BTreeMap<IpAddr, Vec<C2>>,
    start: Option<Timestamp>,
    end: Timestamp,
    flows: u64,
    labelled: u64,
    sources: BTreeMap<IpAddr, Source>,
    windows: BTreeMap<u64, BTreeMap<IpAddr, WindowObs>>,
    log: Vec<FlagState>,
    evaluations: u64,
    alerts: Vec<(Timestamp, IpAddr)>,
    named: BTreeMap<IpAddr, BTreeSet<(IpAddr, Option<u16>)>>,
}

impl Scorer {
    fn new(engine: Engine, truth: Option<&TruthFile>, window_seconds: u64) -> Scorer {
        let mut infected = BTreeSet::new();
        let mut c2 = BTreeMap::new();
        for entry in truth.map(|t| t.infected.as_slice()).unwrap_or_default() {
            let endpoints: Vec<C2> = entry.c2.iter().filter_map(|s| C2::parse(s).ok()).collect();
            for a in &entry.addresses {
                infected.insert(*a);
                c2.insert(*a, endpoints.clone());
            }
        }
        Scorer {
            engine,
            window_ns: window_seconds.max(1) * NS,
            has_truth: truth.is_some(),
            infected,
            c2,
            start: None,
            end: Timestamp::default(),
            flows: 0,
            labelled: 0,
            sources: BTreeMap::new(),
            windows: BTreeMap::new(),
            log: Vec::new(),
            evaluations: 0,
            alerts: Vec::new(),
            named: BTreeMap::new(),
        }
    }

    /// The comparison window of a time, numbered from 1 at the first flow.
    fn window_of(&self, t: Timestamp) -> u64 {
        let start = self.start.unwrap_or(t).as_unix_nanos();
        t.as_unix_nanos().saturating_sub(start) / self.window_ns + 1
    }

    /// The class of a flow's source: from its label; without one, from the truth file, where
    /// internal hosts it does not name are normal and the rest of the world is unknown.
    fn class(&self, f: &FlowRecord, label: Option<&Label>) -> FlowClass {
        match label {
            Some(l) => label_class(f, l),
            None if self.infected.contains(&f.src) => FlowClass::Botnet,
            None if self.is_internal_host(f.src) && self.has_truth => FlowClass::Normal,
            None => FlowClass::Background,
        }
    }

    fn is_internal_host(&self, a: IpAddr) -> bool {
        is_unicast_host(a) && self.engine.hosts().is_internal(a)
    }

    fn record(&mut self, f: &FlowRecord, label: Option<&Label>) {
        let t = if f.start.is_unset() { f.end } else { f.start };
        self.flows += 1;
        self.labelled += u64::from(label.is_some());
        self.start = Some(self.start.map_or(t, |s| s.min(t)));
        self.end = self.end.max(t);
        let malicious = label.is_some_and(|l| counts_as_infection(f, l));
        let class = self.class(f, label);
        let to_c2 = self
            .c2
            .get(&f.src)
            .is_some_and(|c| c.iter().any(|c| c.contacted_by(f)));
        let s = self.sources.entry(f.src).or_insert(Source {
            first: t,
            last: t,
            malicious: BTreeMap::new(),
            first_c2: None,
        });
        s.first = s.first.min(t);
        s.last = s.last.max(t);
        if malicious {
            let first = s.malicious.entry(f.dst).or_insert(t);
            *first = (*first).min(t);
        }
        if to_c2 {
            s.first_c2 = Some(s.first_c2.map_or(t, |m| m.min(t)));
        }
        let w = self.window_of(t);
        let obs = self.windows.entry(w).or_default().entry(f.src).or_default();
        if malicious {
            obs.malicious.insert(f.dst);
        } else {
            obs.class = obs.class.max(Some(class));
        }
    }

    /// Sources of flows labelled malicious.
    fn malicious_sources(&self) -> BTreeSet<IpAddr> {
        self.sources
            .iter()
            .filter(|(_, s)| !s.malicious.is_empty())
            .map(|(a, _)| *a)
            .collect()
    }

    /// Which malicious-labelled flows make their source infected. Datasets label the
    /// conversations of an infected machine whichever end starts them, so a flow to a host
    /// that itself sends malicious flows (the gateway pinging the bot) is the destination's,
    /// not the source's. With a truth file, only its infected machines are infected.
    fn attributes(&self, src: IpAddr, dst: IpAddr, malicious_sources: &BTreeSet<IpAddr>) -> bool {
        if self.has_truth {
            return self.infected.contains(&src);
        }
        !malicious_sources.contains(&dst)
    }

    /// The first flow that makes a source infected, by the labels.
    fn first_malicious(
        &self,
        src: IpAddr,
        malicious_sources: &BTreeSet<IpAddr>,
    ) -> Option<Timestamp> {
        let s = self.sources.get(&src)?;
        s.malicious
            .iter()
            .filter(|(dst, _)| self.attributes(src, **dst, malicious_sources))
            .map(|(_, t)| *t)
            .min()
    }

    /// Keeps the verdicts and events of evaluations that ran since the last call. `known` is
    /// the event time at which they ran: the newest flow when the engine moved. An evaluation
    /// of the window ending at `t` runs once the newest flow is `lateness` past `t`, and judges
    /// every flow seen until then, so its verdicts date from then, not from `t` (dating them
    /// at `t` would put a detection before the flows that caused it).
    fn after_advance(&mut self, known: Timestamp) {
        self.drain_events();
        let evaluations = self.engine.stats().evaluations;
        if evaluations == self.evaluations {
            return;
        }
        self.evaluations = evaluations;
        let mut state = FlagState {
            at: known,
            bots: BTreeSet::new(),
            accused: BTreeSet::new(),
        };
        for v in self.engine.verdicts() {
            if v.roles.contains(&Role::Bot) {
                state.bots.insert(v.host.addr);
            }
            if v.flagged() {
                state.accused.insert(v.host.addr);
            }
        }
        let unchanged = self
            .log
            .last()
            .is_some_and(|l| l.bots == state.bots && l.accused == state.accused);
        if !unchanged {
            self.log.push(state);
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.engine.poll() {
            if let Event::Alert {
                at, host, evidence, ..
            } = event
            {
                self.alerts.push((at, host.addr));
                if let Some(p) = evidence.peer.filter(|_| names_c2(evidence.kind)) {
                    let named = self.named.entry(host.addr).or_default();
                    named.insert((p.host.addr, p.port));
                }
            }
        }
    }

    fn finish(&mut self) {
        self.engine.finish();
        // Live, the windows holding the last flows close `lateness` after them.
        let c = self.engine.config();
        let known = self.engine.newest().as_unix_nanos() + c.lateness_seconds * NS;
        self.after_advance(Timestamp(known));
        let mut named = Vec::new();
        for v in self.engine.verdicts() {
            for e in v.evidence.iter().filter(|e| names_c2(e.kind)) {
                if let Some(p) = e.peer {
                    named.push((v.host.addr, (p.host.addr, p.port)));
                }
            }
        }
        for (host, peer) in named {
            self.named.entry(host).or_default().insert(peer);
        }
    }
}

/// Behaviours whose other end is a C2 endpoint (the ones botnests take their C2 list from).
fn names_c2(kind: Behaviour) -> bool {
    matches!(
        kind,
        Behaviour::Beaconing | Behaviour::SharedC2 | Behaviour::Blocklisted
    )
}

impl Sink for Scorer {
    fn flow(&mut self, _meta: &RecordMeta<'_>, flow: &FlowRecord, _raw: &Record<'_>) {
        self.intake(flow, None);
    }
}

impl Intake for Scorer {
    fn intake(&mut self, flow: &FlowRecord, label: Option<&Label>) {
        self.record(flow, label);
        self.engine.observe(flow);
        let now = self.engine.newest();
        self.engine.advance(now);
        self.after_advance(now);
    }
}

/// One machine of the ground truth.
#[derive(Debug, Clone)]
struct Machine {
    addresses: Vec<IpAddr>,
    infected: bool,
    c2: Vec<C2>,
}

/// The machines to score: those of the truth file, then (without one) the sources the labels
/// make infected, then every other internal source address, as a clean machine.
fn machines(s: &Scorer, truth: Option<&TruthFile>) -> Vec<Machine> {
    let mut out = Vec::new();
    if let Some(t) = truth {
        for e in &t.infected {
            let c2 = e.c2.iter().filter_map(|c| C2::parse(c).ok()).collect();
            out.push(Machine {
                addresses: e.addresses.clone(),
                infected: true,
                c2,
            });
        }
        for e in &t.benign {
            out.push(Machine {
                addresses: e.addresses.clone(),
                infected: false,
                c2: Vec::new(),
            });
        }
    }
    let covered: BTreeSet<IpAddr> = out.iter().flat_map(|m| m.addresses.clone()).collect();
    let malicious = s.malicious_sources();
    for addr in s.sources.keys() {
        if covered.contains(addr) || !s.is_internal_host(*addr) {
            continue;
        }
        out.push(Machine {
            addresses: vec![*addr],
            infected: truth.is_none() && s.first_malicious(*addr, &malicious).is_some(),
            c2: Vec::new(),
        });
    }
    out
}

/// The scores of one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    /// The input file.
    pub input: String,
    /// Where the truth came from: "labels", "file" or "labels and file".
    pub truth: String,
    /// The truth file, if any.
    pub truth_file: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Flows read.
    pub flows: u64,
    /// Flows that carried a label.
    pub labelled_flows: u64,
    /// First flow.
    pub start: Option<String>,
    /// Last flow.
    pub end: Option<String>,
    /// Seconds from first to last flow.
    pub duration_seconds: f64,
    /// Length of the comparison windows.
    pub window_seconds: u64,
    /// Machines scored (seen in the input): infected and clean.
    pub machines: MachineCounts,
    /// Per machine: flagged means the bot role.
    pub hosts: Confusion,
    /// Per machine: accused means any malicious role (bot, C2, scanner, spammer...).
    pub accused: Confusion,
    /// Each infected machine.
    pub infected: Vec<MachineResult>,
    /// Clean machines that were flagged or accused.
    pub false_positives: Vec<MachineResult>,
    /// The time-window metric of CTU-13.
    pub ctu: CtuMetric,
    /// Alerts against clean machines.
    pub false_alerts: FalseAlerts,
    /// The goals of the detector, met or not.
    pub goals: Goals,
}

/// How many machines were scored.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MachineCounts {
    /// Infected machines seen in the input.
    pub infected: u64,
    /// Clean machines seen in the input.
    pub benign: u64,
    /// Machines of the truth file that sent no flow in the input.
    pub unseen: u64,
}

/// What botnest said about one machine.
#[derive(Debug, Clone, Serialize)]
pub struct MachineResult {
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Whether it had the bot role at any evaluation.
    pub flagged: bool,
    /// Whether it had any malicious role at any evaluation.
    pub accused: bool,
    /// Its roles at the end.
    pub roles: Vec<String>,
    /// Its highest score at the end.
    pub score: f64,
    /// Alerts raised against it.
    pub alerts: u64,
    /// The first evaluation that gave it the bot role.
    pub detected_at: Option<String>,
    /// What the delay is measured from: "first C2 contact", "first malicious flow" or "first
    /// flow".
    pub reference: &'static str,
    /// When that was.
    pub reference_at: Option<String>,
    /// Seconds from the reference to detection.
    pub delay_seconds: Option<f64>,
    /// The same in comparison windows.
    pub delay_windows: Option<f64>,
    /// C2 endpoints of the truth.
    pub c2: Vec<String>,
    /// Whether its evidence named one of them (none when the truth names no C2).
    pub c2_named: Option<bool>,
    /// The endpoints its evidence named as C2.
    pub named_endpoints: Vec<String>,
}

/// False alerts against clean machines, per 10,000 host-days.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FalseAlerts {
    /// Alert events against clean machines.
    pub alerts: u64,
    /// Clean machines flagged as bots.
    pub hosts_flagged: u64,
    /// Clean machines times the input's duration, in days.
    pub host_days: f64,
    /// Alerts per 10,000 host-days.
    pub per_10k_host_days: Option<f64>,
}

/// The goals for every input.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Goals {
    /// Every infected machine got the bot role.
    pub every_infected_flagged: bool,
    /// Every infected machine with a C2 in the truth had it named (none when no truth names a
    /// C2).
    pub c2_named: Option<bool>,
    /// Every infected machine was flagged within two windows of its reference time.
    pub within_two_windows: bool,
    /// No clean machine got the bot role.
    pub no_benign_flagged: bool,
}

fn report(
    path: &Path,
    truth: Option<&(PathBuf, TruthFile)>,
    s: &Scorer,
    machines: &[Machine],
) -> InputReport {
    let seen: Vec<&Machine> = machines
        .iter()
        .filter(|m| m.addresses.iter().any(|a| s.sources.contains_key(a)))
        .collect();
    let results: Vec<(bool, MachineResult)> =
        seen.iter().map(|m| (m.infected, result(s, m))).collect();
    let hosts = Confusion::count(results.iter().map(|(i, r)| (*i, r.flagged)));
    let accused = Confusion::count(results.iter().map(|(i, r)| (*i, r.accused)));
    let (infected, benign): (Vec<_>, Vec<_>) = results.into_iter().partition(|(i, _)| *i);
    let infected: Vec<MachineResult> = infected.into_iter().map(|(_, r)| r).collect();
    let benign: Vec<MachineResult> = benign.into_iter().map(|(_, r)| r).collect();
    let duration = s.start.map_or(0.0, |st| {
        (s.end.as_unix_nanos() - st.as_unix_nanos()) as f64 / NS as f64
    });
    let host_days = benign.len() as f64 * duration / 86_400.0;
    let false_alerts = FalseAlerts {
        alerts: benign.iter().map(|r| r.alerts).sum(),
        hosts_flagged: benign.iter().filter(|r| r.flagged).count() as u64,
        host_days,
        per_10k_host_days: (host_days > 0.0)
            .then(|| benign.iter().map(|r| r.alerts).sum::<u64>() as f64 / host_days * 1e4),
    };
    let goals = Goals {
        every_infected_flagged: infected.iter().all(|r| r.flagged),
        c2_named: infected
            .iter()
            .filter_map(|r| r.c2_named)
            .reduce(|a, b| a && b),
        within_two_windows: infected
            .iter()
            .all(|r| r.delay_windows.is_some_and(|d| d <= 2.0)),
        no_benign_flagged: benign.iter().all(|r| !r.flagged),
    };
    InputReport {
        input: path.display().to_string(),
        truth: match (s.labelled > 0, truth.is_some()) {
            (true, true) => "labels and file",
            (false, true) => "file",
            _ => "labels",
        }
        .to_string(),
        truth_file: truth.map(|(p, _)| p.display().to_string()),
        description: truth
            .map(|(_, t)| t.description.clone())
            .filter(|d| !d.is_empty()),
        flows: s.flows,
        labelled_flows: s.labelled,
        start: s.start.map(rfc3339),
        end: s.start.map(|_| rfc3339(s.end)),
        duration_seconds: duration,
        window_seconds: s.window_ns / NS,
        machines: MachineCounts {
            infected: infected.len() as u64,
            benign: benign.len() as u64,
            unseen: (machines.len() - seen.len()) as u64,
        },
        hosts,
        accused,
        false_positives: benign
            .into_iter()
            .filter(|r| r.accused || r.flagged)
            .collect(),
        infected,
        ctu: ctu_metric(s),
        false_alerts,
        goals,
    }
}

/// Scores one machine.
fn result(s: &Scorer, m: &Machine) -> MachineResult {
    let has = |set: &BTreeSet<IpAddr>| m.addresses.iter().any(|a| set.contains(a));
    let detected = s.log.iter().find(|l| has(&l.bots)).map(|l| l.at);
    let (reference, reference_at) = reference_time(s, m);
    let delay = detected
        .zip(reference_at)
        .map(|(d, r)| (d.as_unix_nanos() as f64 - r.as_unix_nanos() as f64) / NS as f64);
    let named: BTreeSet<(IpAddr, Option<u16>)> = m
        .addresses
        .iter()
        .filter_map(|a| s.named.get(a))
        .flatten()
        .copied()
        .collect();
    let verdicts: Vec<_> = s
        .engine
        .verdicts()
        .filter(|v| m.addresses.contains(&v.host.addr))
        .collect();
    MachineResult {
        addresses: m.addresses.iter().map(|a| a.to_string()).collect(),
        flagged: detected.is_some(),
        accused: s.log.iter().any(|l| has(&l.accused)),
        roles: verdicts
            .iter()
            .flat_map(|v| v.roles.iter().map(|r| role_name(*r).to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        score: verdicts.iter().map(|v| v.score).fold(0.0, f64::max),
        alerts: s
            .alerts
            .iter()
            .filter(|(_, a)| m.addresses.contains(a))
            .count() as u64,
        detected_at: detected.map(rfc3339),
        reference,
        reference_at: reference_at.map(rfc3339),
        delay_seconds: delay,
        delay_windows: delay.map(|d| d / (s.window_ns / NS) as f64),
        c2: m.c2.iter().map(|c| c.to_string()).collect(),
        c2_named: (!m.c2.is_empty()).then(|| {
            named
                .iter()
                .any(|(a, p)| m.c2.iter().any(|c| c.matches(*a, *p)))
        }),
        named_endpoints: named.iter().map(|(a, p)| endpoint(*a, *p)).collect(),
    }
}

/// The time detection is measured from: the first C2 contact where the truth names a C2 and
/// the machine contacted it, else its first malicious flow by the labels, else its first flow.
fn reference_time(s: &Scorer, m: &Machine) -> (&'static str, Option<Timestamp>) {
    let sources: Vec<&Source> = m
        .addresses
        .iter()
        .filter_map(|a| s.sources.get(a))
        .collect();
    let min = |f: fn(&Source) -> Option<Timestamp>| sources.iter().filter_map(|s| f(s)).min();
    if let Some(t) = min(|s| s.first_c2) {
        return ("first C2 contact", Some(t));
    }
    let malicious = s.malicious_sources();
    let first_malicious = m
        .addresses
        .iter()
        .filter_map(|a| s.first_malicious(*a, &malicious))
        .min();
    if let Some(t) = first_malicious {
        return ("first malicious flow", Some(t));
    }
    ("first flow", min(|s| Some(s.first)))
}

fn endpoint(a: IpAddr, p: Option<u16>) -> String {
    match (a, p) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// The CTU-13 metric over the comparison windows. An address is predicted a bot in window
/// (s, e] when it had the bot role in the verdicts in force at s or after any evaluation in
/// the window.
fn ctu_metric(s: &Scorer) -> CtuMetric {
    let start = s.start.map_or(0, |t| t.as_unix_nanos());
    let malicious = s.malicious_sources();
    let mut windows: Vec<(u64, BTreeMap<IpAddr, WindowEntry>)> = Vec::new();
    for (t, addrs) in &s.windows {
        let from = start + (t - 1) * s.window_ns;
        let to = from + s.window_ns;
        let mut bots: BTreeSet<IpAddr> = BTreeSet::new();
        if let Some(l) = s.log.iter().rev().find(|l| l.at.as_unix_nanos() <= from) {
            bots.extend(&l.bots);
        }
        for l in s.log.iter().filter(|l| {
            let at = l.at.as_unix_nanos();
            at > from && at <= to
        }) {
            bots.extend(&l.bots);
        }
        let entries = addrs
            .iter()
            .map(|(a, obs)| (*a, (window_class(s, *a, obs, &malicious), bots.contains(a))))
            .collect();
        windows.push((*t, entries));
    }
    CtuMetric::compute(
        windows.iter().map(|(t, e)| (*t, e)),
        s.window_ns / NS,
        CTU_ALPHA,
    )
}

/// An address's class in one window: botnet when one of its malicious-labelled flows there
/// is attributed to it, else the class of its other flows (background when it had none).
fn window_class(s: &Scorer, a: IpAddr, obs: &WindowObs, malicious: &BTreeSet<IpAddr>) -> FlowClass {
    if obs.malicious.iter().any(|d| s.attributes(a, *d, malicious)) {
        FlowClass::Botnet
    } else {
        obs.class.unwrap_or(FlowClass::Background)
    }
}

fn fmt_rate(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"))
}

fn text_report(r: &InputReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "== {} (truth: {})", r.input, r.truth);
    let _ = writeln!(
        out,
        "{} flows ({} labelled) over {:.1} min; windows of {} s",
        r.flows,
        r.labelled_flows,
        r.duration_seconds / 60.0,
        r.window_seconds
    );
    let _ = writeln!(
        out,
        "machines: {} infected, {} clean ({} of the truth file unseen)",
        r.machines.infected, r.machines.benign, r.machines.unseen
    );
    write_confusion(&mut out, "bot role", &r.hosts);
    write_confusion(&mut out, "accused ", &r.accused);
    for m in &r.infected {
        let _ = writeln!(
            out,
            "  infected {}: {}",
            m.addresses.join(" "),
            machine_line(m)
        );
    }
    for m in &r.false_positives {
        let _ = writeln!(
            out,
            "  clean {} {}: roles {}, {} alerts",
            m.addresses.join(" "),
            if m.flagged { "FLAGGED" } else { "accused" },
            m.roles.join(","),
            m.alerts
        );
    }
    let c = &r.ctu;
    let _ = writeln!(
        out,
        "CTU-13 time windows: {} windows, TP {} FN {} FP {} TN {}; tTP {:.3} tFN {:.3} tFP {:.3} \
         tTN {:.3}; precision {} recall {} FPR {} F1 {}",
        c.windows,
        c.counts.tp,
        c.counts.fn_,
        c.counts.fp,
        c.counts.tn,
        c.t_tp,
        c.t_fn,
        c.t_fp,
        c.t_tn,
        fmt_rate(c.precision),
        fmt_rate(c.recall),
        fmt_rate(c.fpr),
        fmt_rate(c.f1)
    );
    let f = &r.false_alerts;
    let _ = writeln!(
        out,
        "false alerts: {} over {:.2} clean host-days ({} per 10,000 host-days)",
        f.alerts,
        f.host_days,
        fmt_rate(f.per_10k_host_days)
    );
    let g = &r.goals;
    let _ = writeln!(
        out,
        "goals: every infected flagged {}, C2 named {}, within two windows {}, no clean flagged \
         {}\n",
        yes_no(g.every_infected_flagged),
        g.c2_named.map_or("n/a", yes_no),
        yes_no(g.within_two_windows),
        yes_no(g.no_benign_flagged)
    );
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

fn write_confusion(out: &mut String, what: &str, c: &Confusion) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{what}: TP {} FP {} FN {} TN {}; precision {} recall {} F1 {}",
        c.tp,
        c.fp,
        c.fn_,
        c.tn,
        fmt_rate(c.precision),
        fmt_rate(c.recall),
        fmt_rate(c.f1)
    );
}

fn machine_line(m: &MachineResult) -> String {
    let found = match (m.flagged, m.delay_seconds, m.delay_windows) {
        (true, Some(s), Some(w)) => format!("bot, {s:.0} s ({w:.2} windows) after {}", m.reference),
        (true, _, _) => "bot".to_string(),
        (false, _, _) if m.accused => "accused, not a bot".to_string(),
        (false, _, _) => "MISSED".to_string(),
    };
    let c2 = match m.c2_named {
        Some(true) => format!("; C2 {} named", m.c2.join(" or ")),
        Some(false) => format!("; C2 {} NOT named", m.c2.join(" or ")),
        None => String::new(),
    };
    format!("{found}{c2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(t: u64, src: &str, dst: &str) -> FlowRecord {
        FlowRecord {
            start: Timestamp(t * NS),
            end: Timestamp(t * NS),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol: 6,
            ..Default::default()
        }
    }

    fn scorer(truth: Option<&TruthFile>) -> Scorer {
        Scorer::new(Engine::new(DetectConfig::default()), truth, 120)
    }

    fn infected(s: &Scorer, truth: Option<&TruthFile>) -> Vec<String> {
        machines(s, truth)
            .into_iter()
            .filter(|m| m.infected)
            .map(|m| m.addresses[0].to_string())
            .collect()
    }

    #[test]
    fn labels_attribute_a_flow_to_a_bot_to_the_bot_not_its_sender() {
        let bad = Label::new("Malicious", None);
        let good = Label::new("Benign", None);
        let mut s = scorer(None);
        s.intake(&flow(1000, "192.168.2.1", "224.0.0.251"), Some(&bad));
        s.intake(&flow(1001, "192.168.2.16", "31.31.74.35"), Some(&bad));
        s.intake(&flow(1002, "192.168.2.1", "192.168.2.16"), Some(&bad));
        s.intake(&flow(1003, "192.168.2.12", "8.8.8.8"), Some(&good));
        assert_eq!(infected(&s, None), ["192.168.2.16"]);
        let malicious = s.malicious_sources();
        let first = s.first_malicious("192.168.2.16".parse().unwrap(), &malicious);
        assert_eq!(first, Some(Timestamp(1001 * NS)));
        // In the time windows the gateway is normal, the bot botnet.
        let w = &s.windows[&1];
        let gw: IpAddr = "192.168.2.1".parse().unwrap();
        let bot: IpAddr = "192.168.2.16".parse().unwrap();
        assert_eq!(
            window_class(&s, gw, &w[&gw], &malicious),
            FlowClass::Background
        );
        assert_eq!(
            window_class(&s, bot, &w[&bot], &malicious),
            FlowClass::Botnet
        );
    }

    #[test]
    fn a_truth_file_decides_which_hosts_are_infected() {
        let truth: TruthFile = toml::from_str(
            "[[infected]]\naddresses = [\"10.0.0.5\"]\nc2 = [\"198.51.100.1:443/tcp\"]\n",
        )
        .unwrap();
        let mut s = scorer(Some(&truth));
        s.intake(&flow(1000, "10.0.0.5", "198.51.100.1"), None);
        s.intake(&flow(1001, "10.0.0.6", "198.51.100.2"), None);
        assert_eq!(infected(&s, Some(&truth)), ["10.0.0.5"]);
        let src = &s.sources[&"10.0.0.5".parse::<IpAddr>().unwrap()];
        assert_eq!(src.first_c2, None, "port 0 is not the C2's port 443");
        let m = &machines(&s, Some(&truth))[1];
        assert!(!m.infected);
        assert_eq!(
            s.windows[&1][&m.addresses[0]].class,
            Some(FlowClass::Normal)
        );
    }

    #[test]
    fn comparison_windows_are_numbered_from_the_first_flow() {
        let mut s = scorer(None);
        s.intake(&flow(1000, "10.0.0.1", "10.0.0.2"), None);
        assert_eq!(s.window_of(Timestamp(1000 * NS)), 1);
        assert_eq!(s.window_of(Timestamp(1119 * NS)), 1);
        assert_eq!(s.window_of(Timestamp(1120 * NS)), 2);
    }
}
