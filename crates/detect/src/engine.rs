//! The engine: windows over event time, verdicts per host, botnests.

use crate::botnest::{Botnests, Lifecycle};
use crate::config::DetectConfig;
use crate::detectors::p2p::OverlayHistory;
use crate::detectors::{run_all, Ctx, Finding};
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::Graph;
use crate::host::{HostKey, Hosts};
use crate::intel::{Intel, Target};
use botnest_flow::{FlowRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const NS: u64 = 1_000_000_000;

/// What botnest believes about one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostVerdict {
    /// The host.
    pub host: HostKey,
    /// Roles it plays.
    pub roles: BTreeSet<Role>,
    /// How sure botnest is that the host is malicious, 0 to 1.
    pub score: f64,
    /// First evidence.
    pub first_seen: Timestamp,
    /// Last evidence.
    pub last_seen: Timestamp,
    /// The evidence, one entry per behaviour and peer, newest numbers.
    pub evidence: Vec<Evidence>,
    /// The botnest it belongs to.
    pub botnest: Option<u64>,
    /// Roles given to it by other hosts' evidence (a C2 named by a bot, a victim named by a
    /// scanner), by the accusing host.
    #[serde(with = "crate::host::key_pairs")]
    pub named: BTreeMap<HostKey, Role>,
}

impl HostVerdict {
    /// Whether the verdict accuses the host (rather than naming it as a victim or peer).
    pub fn flagged(&self) -> bool {
        self.roles.iter().any(|r| {
            matches!(
                r,
                Role::Bot
                    | Role::C2
                    | Role::Scanner
                    | Role::Spammer
                    | Role::Flooder
                    | Role::Bruteforcer
            )
        })
    }
}

/// Something the engine found, to be reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// New evidence against a flagged host.
    Alert {
        /// When the window that found it closed.
        at: Timestamp,
        /// The host.
        host: HostKey,
        /// Its roles now.
        roles: BTreeSet<Role>,
        /// Its score now.
        score: f64,
        /// The new evidence.
        evidence: Evidence,
        /// Its botnest.
        botnest: Option<u64>,
    },
    /// A botnest appeared or changed (members, state).
    Botnest {
        /// When.
        at: Timestamp,
        /// Which botnest.
        id: u64,
        /// Its state.
        state: Lifecycle,
        /// How many members it has.
        members: usize,
    },
}

/// Counters of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Flow records observed.
    pub flows: u64,
    /// Records behind the watermark that were still applied (their window was open).
    pub late: u64,
    /// Records too late for any open window, dropped.
    pub too_late: u64,
    /// Windows evaluated.
    pub evaluations: u64,
}

/// How much state the engine holds, structure by structure: what a metrics endpoint exports
/// to show memory stays bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineSizes {
    /// Hosts in the graph.
    pub hosts: usize,
    /// Channels in the graph.
    pub channels: usize,
    /// Channel places allocated in the graph, expired ones awaiting compaction included.
    pub channel_slots: usize,
    /// Bytes allocated by the graph.
    pub graph_bytes: u64,
    /// Protocol graphs with an overlay history.
    pub overlay_graphs: usize,
    /// Samples in the overlay history.
    pub overlay_samples: usize,
    /// Host verdicts held.
    pub verdicts: usize,
    /// Evidence entries over all verdicts.
    pub evidence: usize,
    /// Evidence already alerted, remembered so it alerts once.
    pub alerted: usize,
    /// Botnests held (closed ones included).
    pub botnests: usize,
    /// Events not yet polled.
    pub pending_events: usize,
    /// Estimated bytes of all of the above: the graph's allocations plus the verdicts,
    /// botnests and history at their structures' sizes and text lengths. An estimate: heap
    /// bookkeeping and tree nodes' spare room are not counted.
    pub memory_bytes: u64,
}

/// Verdicts and botnests, as saved across a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// Verdicts of hosts.
    pub verdicts: Vec<HostVerdict>,
    /// Botnests.
    pub botnests: Botnests,
}

/// The detection engine. See the crate documentation.
#[derive(Debug)]
pub struct Engine {
    config: DetectConfig,
    hosts: Hosts,
    graph: Graph,
    newest: Timestamp,
    watermark: Timestamp,
    next_eval: Option<Timestamp>,
    verdicts: BTreeMap<HostKey, HostVerdict>,
    /// Evidence already alerted: host, behaviour, peer.
    alerted: BTreeSet<(HostKey, Behaviour, Option<Peer>)>,
    botnests: Botnests,
    events: VecDeque<Event>,
    stats: EngineStats,
    intel: Intel,
    allow: Intel,
    overlays: OverlayHistory,
}

impl Engine {
    /// An engine with the given settings.
    pub fn new(config: DetectConfig) -> Engine {
        let hosts = Hosts::new(&config.hosts);
        let graph = Graph::new(
            config.window_seconds * NS,
            config.max_hosts,
            config.max_channels,
        );
        let allow = Intel::from_targets("allow", &config.allow);
        Engine {
            config,
            hosts,
            graph,
            newest: Timestamp::default(),
            watermark: Timestamp::default(),
            next_eval: None,
            verdicts: BTreeMap::new(),
            alerted: BTreeSet::new(),
            botnests: Botnests::default(),
            events: VecDeque::new(),
            stats: EngineStats::default(),
            intel: Intel::new(),
            allow,
            overlays: OverlayHistory::default(),
        }
    }

    /// Replaces the blocklists (threat intelligence) with new contents: evidence from the next
    /// window on uses them. Lists are read and reloaded by the caller.
    pub fn set_intel(&mut self, intel: Intel) {
        self.intel = intel;
    }

    /// The blocklists in use.
    pub fn intel(&self) -> &Intel {
        &self.intel
    }

    /// The settings.
    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// Host identity (tenants, internal networks).
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// The property graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Sizes of the engine's state. Walks the verdicts and botnests (not the graph), so it is
    /// cheap enough for a metrics scrape.
    pub fn sizes(&self) -> EngineSizes {
        use std::mem::size_of;
        let (hosts, channels) = self.graph.size();
        let graph_bytes = self.graph.memory_bytes();
        let mut evidence = 0;
        let mut verdict_bytes = 0;
        for v in self.verdicts.values() {
            evidence += v.evidence.len();
            verdict_bytes += size_of::<(HostKey, HostVerdict)>()
                + v.roles.len() * size_of::<Role>()
                + v.named.len() * size_of::<(HostKey, Role)>()
                + v.evidence.capacity() * size_of::<Evidence>()
                + v.evidence
                    .iter()
                    .map(|e| e.detail.capacity())
                    .sum::<usize>();
        }
        let botnest_bytes: usize = self
            .botnests
            .iter()
            .map(|b| {
                size_of::<(u64, crate::botnest::Botnest)>()
                    + b.members.len() * size_of::<(HostKey, BTreeSet<Role>)>()
                    + b.c2
                        .iter()
                        .map(|c| size_of::<String>() + c.capacity())
                        .sum::<usize>()
                    + b.flows.capacity() * size_of::<crate::botnest::FlowSummary>()
                    + b.merged.capacity() * size_of::<u64>()
            })
            .sum();
        let overlay_samples = self.overlays.samples();
        let other = self.alerted.len() * size_of::<(HostKey, Behaviour, Option<Peer>)>()
            + self.events.len() * size_of::<Event>()
            + overlay_samples * 16;
        EngineSizes {
            hosts,
            channels,
            channel_slots: self.graph.channel_slots(),
            graph_bytes,
            overlay_graphs: self.overlays.graphs(),
            overlay_samples,
            verdicts: self.verdicts.len(),
            evidence,
            alerted: self.alerted.len(),
            botnests: self.botnests.len(),
            pending_events: self.events.len(),
            memory_bytes: graph_bytes + (verdict_bytes + botnest_bytes + other) as u64,
        }
    }

    /// The newest flow start seen: the event time that drives windows offline.
    pub fn newest(&self) -> Timestamp {
        self.newest
    }

    /// Applies one flow record.
    ///
    /// Time moves with flow starts: exporters send records in the order flows end, logs such as
    /// Zeek's in the order they start, and one long flow ending far ahead must not make every
    /// record after it late. A record is late when even its end is behind the watermark.
    pub fn observe(&mut self, f: &FlowRecord) {
        self.stats.flows += 1;
        let end = f.end.max(f.start);
        let start = if f.start.is_unset() { end } else { f.start };
        let window = self.config.window_seconds * NS;
        if !self.watermark.is_unset() && end < self.watermark {
            if end.as_unix_nanos() + window < self.watermark.as_unix_nanos() {
                self.stats.too_late += 1;
                return;
            }
            self.stats.late += 1;
        }
        let t = start;
        self.newest = self.newest.max(t);
        if self.next_eval.is_none() {
            let slide = self.config.slide_seconds.max(1) * NS;
            self.next_eval = Some(Timestamp((t.as_unix_nanos() / slide + 1) * slide));
        }
        self.graph.observe(&self.hosts, f);
    }

    /// Moves time to `now`: every window ending at or before `now` minus the allowed lateness
    /// is evaluated. Offline, pass the newest event time; live, the clock.
    pub fn advance(&mut self, now: Timestamp) {
        let lateness = self.config.lateness_seconds * NS;
        let w = Timestamp(now.as_unix_nanos().saturating_sub(lateness));
        self.watermark = self.watermark.max(w);
        let slide = self.config.slide_seconds.max(1) * NS;
        while let Some(at) = self.next_eval.filter(|at| *at <= self.watermark) {
            self.evaluate(at);
            self.next_eval = Some(Timestamp(at.as_unix_nanos() + slide));
        }
    }

    /// Evaluates the last window after the input ended (offline analysis).
    pub fn finish(&mut self) {
        let end = self.newest.as_unix_nanos()
            + (self.config.lateness_seconds + self.config.slide_seconds) * NS;
        self.advance(Timestamp(end));
    }

    /// The next event, if any.
    pub fn poll(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Verdicts of every host botnest has evidence about.
    pub fn verdicts(&self) -> impl Iterator<Item = &HostVerdict> {
        self.verdicts.values()
    }

    /// The botnests.
    pub fn botnests(&self) -> &Botnests {
        &self.botnests
    }

    /// Overlay graphs with history kept by the peer-to-peer detector: a state size.
    pub fn overlay_history(&self) -> usize {
        self.overlays.graphs()
    }

    /// Adds a target to the allow list while running (an operator marked a host benign): its
    /// verdict is dropped and nothing about it is reported again.
    pub fn allow(&mut self, target: Target) {
        if self.config.allow.contains(&target) {
            return;
        }
        self.config.allow.push(target);
        self.allow = Intel::from_targets("allow", &self.config.allow);
        let allow = &self.allow;
        self.verdicts.retain(|k, _| !allow.contains(k.addr, None));
    }

    /// Verdicts and botnests, to save across a restart.
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            verdicts: self.verdicts.values().cloned().collect(),
            botnests: self.botnests.clone(),
        }
    }

    /// Restores saved verdicts and botnests.
    pub fn restore(&mut self, snapshot: EngineSnapshot) {
        for v in snapshot.verdicts {
            for e in &v.evidence {
                self.alerted.insert((v.host, e.kind, e.peer));
            }
            self.verdicts.insert(v.host, v);
        }
        self.botnests = snapshot.botnests;
    }

    fn evaluate(&mut self, at: Timestamp) {
        self.stats.evaluations += 1;
        let window = self.config.window_seconds * NS;
        let from = Timestamp(at.as_unix_nanos().saturating_sub(window));
        let findings = {
            let ctx = Ctx {
                graph: &self.graph,
                hosts: &self.hosts,
                config: &self.config,
                intel: &self.intel,
                allow: &self.allow,
                from,
                to: at,
            };
            run_all(&ctx, &mut self.overlays)
        };
        let retention = self
            .config
            .retention_seconds
            .max(self.config.window_seconds)
            * NS;
        self.graph
            .expire(Timestamp(at.as_unix_nanos().saturating_sub(retention)));
        let changed = self.apply(findings, at);
        let links = self.links();
        let updates = self
            .botnests
            .assemble(&mut self.verdicts, &links, at, &self.config);
        for (id, state, members) in updates {
            self.events.push_back(Event::Botnest {
                at,
                id,
                state,
                members,
            });
        }
        self.representative_flows();
        for host in changed {
            self.alert(host, at);
        }
    }

    /// Gives each botnest the channels behind its members' evidence, while the graph still
    /// holds them; a botnest keeps its last ones once they expire.
    fn representative_flows(&mut self) {
        for b in self.botnests.iter_mut() {
            let mut flows = Vec::new();
            for member in b.members.keys() {
                let Some(v) = self.verdicts.get(member) else {
                    continue;
                };
                let Some(client) = self.graph.host_id(member) else {
                    continue;
                };
                for e in &v.evidence {
                    let Some(peer) = e.peer else { continue };
                    let Some(server) = self.graph.host_id(&peer.host) else {
                        continue;
                    };
                    let key = crate::graph::ChannelKey {
                        client,
                        server,
                        port: peer.port.unwrap_or(0),
                        proto: peer.proto,
                    };
                    if let Some(ch) = self.graph.channel(&key) {
                        flows.push(crate::botnest::FlowSummary {
                            client: *member,
                            server: peer.host,
                            port: key.port,
                            proto: key.proto,
                            flows: ch.flows,
                            failed: ch.failed,
                            bytes_out: ch.bytes_out,
                            bytes_in: ch.bytes_in,
                            first_seen: ch.first_seen,
                            last_seen: ch.last_seen,
                        });
                    }
                }
            }
            if flows.is_empty() {
                continue;
            }
            flows.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.client.cmp(&b.client)));
            flows.dedup_by(|a, b| a.client == b.client && a.server == b.server && a.port == b.port);
            flows.truncate(crate::botnest::REPRESENTATIVE_FLOWS);
            b.flows = flows;
        }
    }

    /// Merges findings into verdicts; returns hosts with new evidence.
    fn apply(&mut self, findings: Vec<Finding>, at: Timestamp) -> BTreeSet<HostKey> {
        let mut changed = BTreeSet::new();
        for f in findings {
            let v = self.verdicts.entry(f.host).or_insert_with(|| HostVerdict {
                host: f.host,
                roles: BTreeSet::new(),
                score: 0.0,
                first_seen: f.evidence.first_seen,
                last_seen: f.evidence.last_seen,
                evidence: Vec::new(),
                botnest: None,
                named: BTreeMap::new(),
            });
            v.first_seen = v.first_seen.min(f.evidence.first_seen);
            v.last_seen = v.last_seen.max(f.evidence.last_seen);
            match v
                .evidence
                .iter_mut()
                .find(|e| e.kind == f.evidence.kind && e.peer == f.evidence.peer)
            {
                Some(e) => {
                    let first = e.first_seen.min(f.evidence.first_seen);
                    *e = f.evidence.clone();
                    e.first_seen = first;
                }
                None => v.evidence.push(f.evidence.clone()),
            }
            changed.insert(f.host);

            if let Some((other, role)) = f.other {
                let o = self.verdicts.entry(other).or_insert_with(|| HostVerdict {
                    host: other,
                    roles: BTreeSet::new(),
                    score: 0.0,
                    first_seen: f.evidence.first_seen,
                    last_seen: f.evidence.last_seen,
                    evidence: Vec::new(),
                    botnest: None,
                    named: BTreeMap::new(),
                });
                o.named.insert(f.host, role);
                o.first_seen = o.first_seen.min(f.evidence.first_seen);
                o.last_seen = o.last_seen.max(f.evidence.last_seen);
            }
        }
        let threshold = self.config.bot_threshold;
        let stale = at.as_unix_nanos().saturating_sub(
            u64::from(self.config.close_after_windows) * self.config.window_seconds * NS,
        );
        for v in self.verdicts.values_mut() {
            v.evidence.retain(|e| e.last_seen.as_unix_nanos() >= stale);
            v.evidence
                .sort_by(|a, b| a.kind.cmp(&b.kind).then(b.score.total_cmp(&a.score)));
            v.score = combined_score(&v.evidence);
        }
        // Roles follow from the scores: a host's own evidence gives it roles once it is flagged,
        // and it takes the roles flagged hosts name it with.
        let flagged: BTreeSet<HostKey> = self
            .verdicts
            .values()
            .filter(|v| v.score >= threshold)
            .map(|v| v.host)
            .collect();
        for v in self.verdicts.values_mut() {
            v.roles.clear();
            if flagged.contains(&v.host) {
                v.roles.extend(v.evidence.iter().map(|e| e.role));
                if self.hosts.is_internal(v.host.addr) {
                    v.roles.insert(Role::Bot);
                }
            }
            v.roles.extend(
                v.named
                    .iter()
                    .filter(|(by, _)| flagged.contains(by))
                    .map(|(_, r)| *r),
            );
        }
        // Evidence below the threshold names no one: a suspicion, not a verdict.
        changed.retain(|h| self.verdicts.get(h).is_some_and(|v| v.score >= threshold));
        changed
    }

    /// Edges of the suspicion graph between flagged hosts and the hosts their evidence names.
    fn links(&self) -> Vec<(HostKey, HostKey, bool)> {
        let threshold = self.config.bot_threshold;
        let mut links = Vec::new();
        for v in self.verdicts.values().filter(|v| v.score >= threshold) {
            for e in &v.evidence {
                if let Some(p) = e.peer {
                    // C2s, peers and infectors join botnests; victims are attached, not joined.
                    let joins = matches!(
                        e.kind,
                        Behaviour::Beaconing
                            | Behaviour::SharedC2
                            | Behaviour::PeerToPeer
                            | Behaviour::WormSpread
                            | Behaviour::Blocklisted
                            | Behaviour::Flooding
                    );
                    links.push((v.host, p.host, joins));
                }
            }
        }
        links
    }

    fn alert(&mut self, host: HostKey, at: Timestamp) {
        let Some(v) = self.verdicts.get(&host) else {
            return;
        };
        for e in &v.evidence {
            if self.alerted.insert((host, e.kind, e.peer)) {
                self.events.push_back(Event::Alert {
                    at,
                    host,
                    roles: v.roles.clone(),
                    score: v.score,
                    evidence: e.clone(),
                    botnest: v.botnest,
                });
            }
        }
    }
}

/// Evidence combines like independent indications: the strongest of each behaviour, joined as
/// 1 - prod(1 - s).
fn combined_score(evidence: &[Evidence]) -> f64 {
    let mut best: BTreeMap<Behaviour, f64> = BTreeMap::new();
    for e in evidence {
        let b = best.entry(e.kind).or_insert(0.0);
        *b = b.max(e.score);
    }
    1.0 - best
        .values()
        .map(|s| 1.0 - s.clamp(0.0, 1.0))
        .product::<f64>()
}
