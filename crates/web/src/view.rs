//! What the detection thread publishes for the API: an immutable picture of verdicts, botnests
//! and the channels around them, rebuilt now and then and swapped in whole, so a request never
//! touches the engine and never waits for detection.

use crate::json::{self, rfc3339};
use botnest_detect::{Engine, HostKey, Lifecycle};
use botnest_flow::Timestamp;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// A host as the API names it: tenant name and address.
pub type HostName = (String, IpAddr);

/// A host with a verdict: accused, or a botnest member with some evidence.
#[derive(Debug, Clone)]
pub struct HostEntry {
    /// Tenant name and address.
    pub name: HostName,
    /// Whether it is reported (flagged over the bot threshold, or a C2 endpoint).
    pub accused: bool,
    /// Its score.
    pub score: f64,
    /// Its roles (snake_case names).
    pub roles: Vec<&'static str>,
    /// First evidence.
    pub first_seen: Timestamp,
    /// Latest evidence.
    pub last_seen: Timestamp,
    /// Its botnest.
    pub botnest: Option<u64>,
    /// The host's JSON (the `analyze` shape).
    pub json: Value,
}

/// A botnest.
#[derive(Debug, Clone)]
pub struct BotnestEntry {
    /// Its id.
    pub id: u64,
    /// Where it is in its life.
    pub state: Lifecycle,
    /// Its score.
    pub score: f64,
    /// Tenants of its members.
    pub tenants: Vec<String>,
    /// First evidence.
    pub first_seen: Timestamp,
    /// Latest evidence.
    pub last_seen: Timestamp,
    /// Its members with their roles.
    pub members: Vec<(HostName, Vec<&'static str>)>,
    /// The botnest's JSON (the `analyze` shape).
    pub json: Value,
}

/// A channel touching an accused host or a botnest member.
#[derive(Debug, Clone)]
pub struct ChannelEntry {
    /// The initiating host.
    pub client: HostName,
    /// The answering host.
    pub server: HostName,
    /// Server port.
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Requests.
    pub flows: u32,
    /// Bytes client to server.
    pub bytes_out: u64,
    /// Bytes server to client.
    pub bytes_in: u64,
    /// First request.
    pub first_seen: Timestamp,
    /// Last flow end.
    pub last_seen: Timestamp,
    /// The channel's JSON.
    pub json: Value,
}

/// Counters of the engine as of the view.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineFigures {
    /// Flow records observed.
    pub flows: u64,
    /// Late records applied.
    pub late: u64,
    /// Records dropped as too late.
    pub too_late: u64,
    /// Windows evaluated.
    pub evaluations: u64,
    /// Windows passed over after a jump of event time.
    pub windows_skipped: u64,
    /// Hosts in the graph.
    pub hosts: usize,
    /// Channels in the graph.
    pub channels: usize,
    /// Hosts refused at the graph's limit.
    pub hosts_refused: u64,
    /// Channels refused at the graph's limit.
    pub channels_refused: u64,
    /// Verdicts held (hosts with any evidence).
    pub verdicts: usize,
    /// Botnests held (any state).
    pub botnests: usize,
    /// Overlay graphs with history (peer-to-peer detector).
    pub overlay_history: usize,
    /// The newest event time seen.
    pub newest: Timestamp,
    /// Window length, seconds.
    pub window_seconds: u64,
    /// Window slide, seconds.
    pub slide_seconds: u64,
    /// Score from which a host is reported.
    pub bot_threshold: f64,
}

impl EngineFigures {
    /// The figures of `engine` now.
    pub fn of(engine: &Engine) -> EngineFigures {
        let s = engine.stats();
        let (hosts, channels) = engine.graph().size();
        let g = engine.graph().stats();
        let c = engine.config();
        EngineFigures {
            flows: s.flows,
            late: s.late,
            too_late: s.too_late,
            evaluations: s.evaluations,
            windows_skipped: s.windows_skipped,
            hosts,
            channels,
            hosts_refused: g.hosts_refused,
            channels_refused: g.channels_refused,
            verdicts: engine.verdicts().count(),
            botnests: engine.botnests().len(),
            overlay_history: engine.overlay_history(),
            newest: engine.newest(),
            window_seconds: c.window_seconds,
            slide_seconds: c.slide_seconds,
            bot_threshold: c.bot_threshold,
        }
    }

    /// The newest event time, RFC 3339, or none before the first record.
    pub fn newest(&self) -> Option<String> {
        (!self.newest.is_unset()).then(|| rfc3339(self.newest))
    }
}

/// The published picture.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Accused hosts and botnest members with a verdict, by tenant and address.
    pub verdicts: BTreeMap<HostName, HostEntry>,
    /// Botnests by id.
    pub botnests: BTreeMap<u64, BotnestEntry>,
    /// Channels of accused hosts and botnest members.
    pub channels: Vec<ChannelEntry>,
    /// Positions in `channels` by host (either end).
    pub channels_by_host: BTreeMap<HostName, Vec<usize>>,
}

/// Channels kept per host in a view; the busiest are kept.
pub const CHANNELS_PER_HOST: usize = 2_000;

impl View {
    /// Builds the picture of `engine`.
    pub fn build(engine: &Engine) -> View {
        let name = |k: &HostKey| (engine.hosts().tenant_name(k.tenant), k.addr);
        let mut botnests = BTreeMap::new();
        let mut watched: BTreeSet<HostKey> = BTreeSet::new();
        for b in engine.botnests().iter() {
            watched.extend(b.members.keys().copied());
            botnests.insert(
                b.id,
                BotnestEntry {
                    id: b.id,
                    state: b.state,
                    score: b.score,
                    tenants: b
                        .tenants
                        .iter()
                        .map(|t| engine.hosts().tenant_name(*t))
                        .collect(),
                    first_seen: b.first_seen,
                    last_seen: b.last_seen,
                    members: b
                        .members
                        .iter()
                        .map(|(h, r)| (name(h), r.iter().map(|r| json::role_name(*r)).collect()))
                        .collect(),
                    json: json::botnest_json(engine, b),
                },
            );
        }
        let mut verdicts = BTreeMap::new();
        for v in engine.verdicts() {
            let accused = json::accused(engine, v);
            if !accused && !watched.contains(&v.host) {
                continue;
            }
            watched.insert(v.host);
            let n = name(&v.host);
            verdicts.insert(
                n.clone(),
                HostEntry {
                    name: n,
                    accused,
                    score: v.score,
                    roles: v.roles.iter().map(|r| json::role_name(*r)).collect(),
                    first_seen: v.first_seen,
                    last_seen: v.last_seen,
                    botnest: v.botnest,
                    json: json::host_json(engine, v),
                },
            );
        }
        let graph = engine.graph();
        // Host ids are small dense numbers: a flag per id makes the pass over every channel two
        // array reads per channel.
        let ids: Vec<u32> = watched.iter().filter_map(|k| graph.host_id(k)).collect();
        let mut is_watched = vec![false; ids.iter().max().map_or(0, |m| *m as usize + 1)];
        for &id in &ids {
            is_watched[id as usize] = true;
        }
        let watched_id = |id: u32| is_watched.get(id as usize).copied().unwrap_or(false);
        // The busiest channels of each watched host, so a scanner's fan-out stays bounded.
        let mut per_host: BTreeMap<u32, Vec<&botnest_detect::graph::Channel>> = BTreeMap::new();
        if !ids.is_empty() {
            for c in graph.channels() {
                for end in [c.key.client, c.key.server] {
                    if watched_id(end) {
                        per_host.entry(end).or_default().push(c);
                    }
                }
            }
        }
        let mut chosen = BTreeSet::new();
        for list in per_host.values_mut() {
            list.sort_by_key(|c| std::cmp::Reverse(c.flows));
            chosen.extend(list.iter().take(CHANNELS_PER_HOST).map(|c| c.key));
        }
        let mut channels = Vec::with_capacity(chosen.len());
        let mut channels_by_host: BTreeMap<HostName, Vec<usize>> = BTreeMap::new();
        for key in chosen {
            let Some(c) = graph.channel(&key) else {
                continue;
            };
            let (Some(client), Some(server)) = (graph.host(key.client), graph.host(key.server))
            else {
                continue;
            };
            let Some(json) = json::channel_json(engine, c) else {
                continue;
            };
            let i = channels.len();
            let (client, server) = (name(&client.key), name(&server.key));
            channels_by_host.entry(client.clone()).or_default().push(i);
            if server != client {
                channels_by_host.entry(server.clone()).or_default().push(i);
            }
            channels.push(ChannelEntry {
                client,
                server,
                port: key.port,
                proto: key.proto,
                flows: c.flows,
                bytes_out: c.bytes_out,
                bytes_in: c.bytes_in,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
                json,
            });
        }
        View {
            verdicts,
            botnests,
            channels,
            channels_by_host,
        }
    }

    /// The accused hosts.
    pub fn accused(&self) -> impl Iterator<Item = &HostEntry> {
        self.verdicts.values().filter(|h| h.accused)
    }

    /// The channels of one host.
    pub fn channels_of<'a>(&'a self, host: &HostName) -> impl Iterator<Item = &'a ChannelEntry> {
        self.channels_by_host
            .get(host)
            .into_iter()
            .flatten()
            .map(|&i| &self.channels[i])
    }
}
