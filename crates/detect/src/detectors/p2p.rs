//! Peer-to-peer overlays.
//!
//! Three views, from the literature on P2P botnets:
//!
//! - Protocol graphs (Collins and Reiter, RAID 2007): one graph per protocol and server-port
//!   class, whose size and largest connected component are compared with the same graph's past
//!   windows. An overlay joining the network makes its graph grow beyond its history; its hosts
//!   that both initiate and accept in that graph are its members.
//! - Initiators that also accept (Graption, Iliofotou et al. 2009): a client only initiates and
//!   a server only accepts, an overlay node does both, on ports of its own choosing.
//! - Probing the peer list: a node keeps contacting many peers on random high ports with short
//!   exchanges, and many of them no longer answer (peers churn, and a bot's list is stale).
//!   Peers that other internal hosts also contact (mutual contacts, Coskun et al. 2010) tie the
//!   members of one overlay together.
//!
//! - Peer discovery ([`super::discovery`]): a node probing external peers one small UDP
//!   datagram at a time, minute after minute, mostly unanswered; it needs fewer peers than the
//!   peer-list view because it also asks that the probing go on over time.
//!
//! The host views work on a single window, so they also serve short captures; the graph view
//! needs a few windows of history. File-sharing clients are genuine overlay nodes too: their
//! peers mostly answer, which keeps them at a moderate score.

use super::{infrastructure_service, Ctx, Finding};
use crate::config::P2pConfig;
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::{proto, Channel, HostId};
use botnest_flow::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, VecDeque};

/// Ports at or above this are high: chosen by an application rather than assigned to a service
/// of the system range (RFC 6335 section 6).
const HIGH_PORTS: u16 = 1024;
/// Start of the dynamic (ephemeral) range (RFC 6335 section 6).
const EPHEMERAL_PORTS: u16 = 49152;
/// Most packets per request of a short contact.
const SHORT_PACKETS: u32 = 6;
/// Most bytes per request of a short contact.
const SHORT_BYTES: u64 = 2000;
/// Distinct servers one host reaches on one port from which the port is a service it uses
/// (or scans), not a peer's port of its own choosing.
const SERVICE_FANOUT: u32 = 4;

/// Which ports one protocol graph covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortClass {
    /// One port of the system range: one service, one graph.
    WellKnown(u16),
    /// The user (registered) range, 1024 to 49151, as one graph.
    Registered,
    /// The dynamic range, 49152 and up, as one graph.
    Ephemeral,
}

/// Identifies a protocol graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GraphKey {
    /// IP protocol.
    pub proto: u8,
    /// Server ports.
    pub class: PortClass,
}

impl GraphKey {
    /// The graph a channel belongs to; only TCP and UDP have ports to class.
    pub fn of(proto_: u8, port: u16) -> Option<GraphKey> {
        if !matches!(proto_, proto::TCP | proto::UDP) {
            return None;
        }
        let class = match port {
            p if p < HIGH_PORTS => PortClass::WellKnown(p),
            p if p < EPHEMERAL_PORTS => PortClass::Registered,
            _ => PortClass::Ephemeral,
        };
        Some(GraphKey {
            proto: proto_,
            class,
        })
    }

    fn name(&self) -> String {
        let p = if self.proto == proto::TCP {
            "tcp"
        } else {
            "udp"
        };
        match self.class {
            PortClass::WellKnown(port) => format!("{p}/{port}"),
            PortClass::Registered => format!("{p}/registered"),
            PortClass::Ephemeral => format!("{p}/ephemeral"),
        }
    }
}

/// Size of one protocol graph in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    at: Timestamp,
    nodes: u32,
    lcc: u32,
}

/// Sizes of past protocol graphs: one sample per window length, a bounded number per graph.
/// Owned by the engine and handed to [`run`].
#[derive(Debug, Clone, Default)]
pub struct OverlayHistory {
    graphs: BTreeMap<GraphKey, VecDeque<Sample>>,
    /// When samples were taken, oldest first.
    taken: VecDeque<Timestamp>,
}

/// How a graph compares with its history.
#[derive(Debug, Clone, Copy)]
struct Anomaly {
    lcc: bool,
    mean_nodes: f64,
    mean_lcc: f64,
}

impl OverlayHistory {
    /// Graphs with history.
    pub fn graphs(&self) -> usize {
        self.graphs.len()
    }

    /// Samples held, over every graph.
    pub fn samples(&self) -> usize {
        self.graphs.values().map(VecDeque::len).sum::<usize>() + self.taken.len()
    }

    /// Compares a graph's current size with the samples of earlier, disjoint windows.
    fn judge(
        &self,
        key: &GraphKey,
        now: Timestamp,
        window: u64,
        cfg: &P2pConfig,
        s: Sample,
    ) -> Option<Anomaly> {
        // A graph without samples has been empty since sampling began.
        let samples: Vec<Sample> = match self.graphs.get(key) {
            Some(s) => s.iter().copied().collect(),
            None => self
                .taken
                .iter()
                .map(|&at| Sample {
                    at,
                    ..Sample::default()
                })
                .collect(),
        };
        let past: Vec<Sample> = samples
            .into_iter()
            .filter(|p| p.at.as_unix_nanos() + window <= now.as_unix_nanos())
            .collect();
        if past.len() < cfg.min_history.max(1) {
            return None;
        }
        let (mean_nodes, sd_nodes) = mean_sd(past.iter().map(|p| f64::from(p.nodes)));
        let (mean_lcc, sd_lcc) = mean_sd(past.iter().map(|p| f64::from(p.lcc)));
        let beyond = |x: u32, mean: f64, sd: f64| {
            let margin = (cfg.deviations * sd)
                .max(cfg.min_growth as f64)
                .max(0.25 * mean);
            f64::from(x) > mean + margin
        };
        let lcc = beyond(s.lcc, mean_lcc, sd_lcc);
        (lcc || beyond(s.nodes, mean_nodes, sd_nodes)).then_some(Anomaly {
            lcc,
            mean_nodes,
            mean_lcc,
        })
    }

    /// Records the window's graph sizes, at most once per window length. A graph absent from
    /// a window had no hosts in it; one that appears has been empty since sampling began.
    fn record(
        &mut self,
        now: Timestamp,
        window: u64,
        cfg: &P2pConfig,
        sizes: &BTreeMap<GraphKey, Sample>,
    ) {
        let due = self
            .taken
            .back()
            .is_none_or(|t| now.as_unix_nanos() >= t.as_unix_nanos() + window);
        if !due {
            return;
        }
        let keep = cfg.history.max(1);
        for key in sizes.keys() {
            if !self.graphs.contains_key(key) {
                let empty = self.taken.iter().map(|&at| Sample {
                    at,
                    ..Sample::default()
                });
                self.graphs.insert(*key, empty.collect());
            }
        }
        for (key, samples) in &mut self.graphs {
            let s = sizes.get(key).copied().unwrap_or_default();
            samples.push_back(Sample { at: now, ..s });
            while samples.len() > keep {
                samples.pop_front();
            }
        }
        // A graph empty for its whole history is remembered by the sampling times alone.
        self.graphs.retain(|_, s| s.iter().any(|x| x.nodes > 0));
        self.taken.push_back(now);
        while self.taken.len() > keep {
            self.taken.pop_front();
        }
    }
}

fn mean_sd(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count().max(1) as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A host's place in one protocol graph.
#[derive(Debug, Clone, Copy)]
struct Node {
    id: HostId,
    degree: u32,
    initiates: bool,
    accepts: bool,
}

/// One protocol graph of the window, with its components (union-find). Nodes are numbered in
/// the order their hosts first appear in the graph's edges.
#[derive(Debug, Default)]
struct ProtoGraph {
    nodes: Vec<Node>,
    parent: Vec<usize>,
}

/// Node numbers of hosts while one protocol graph is built: an array indexed by host id,
/// shared by the graphs of a window and cleared after each.
#[derive(Debug)]
struct NodeIndex {
    slot: Vec<u32>,
}

impl NodeIndex {
    const ABSENT: u32 = u32::MAX;

    fn new(hosts: usize) -> NodeIndex {
        NodeIndex {
            slot: vec![Self::ABSENT; hosts],
        }
    }

    /// Builds one graph from its edges, in their order.
    fn build(&mut self, edges: &[(HostId, HostId)]) -> ProtoGraph {
        let mut g = ProtoGraph::default();
        for &(client, server) in edges {
            let (c, s) = (self.node(&mut g, client), self.node(&mut g, server));
            g.edge(c, s);
        }
        for n in &g.nodes {
            self.slot[n.id as usize] = Self::ABSENT;
        }
        g
    }

    fn node(&mut self, g: &mut ProtoGraph, id: HostId) -> usize {
        let slot = &mut self.slot[id as usize];
        if *slot == Self::ABSENT {
            *slot = g.nodes.len() as u32;
            g.parent.push(g.nodes.len());
            g.nodes.push(Node {
                id,
                degree: 0,
                initiates: false,
                accepts: false,
            });
        }
        *slot as usize
    }
}

impl ProtoGraph {
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Adds an edge from node `c` (the client) to node `s` (the server).
    fn edge(&mut self, c: usize, s: usize) {
        self.nodes[c].degree += 1;
        self.nodes[c].initiates = true;
        self.nodes[s].degree += 1;
        self.nodes[s].accepts = true;
        let (rc, rs) = (self.find(c), self.find(s));
        if rc != rs {
            self.parent[rc.max(rs)] = rc.min(rs);
        }
    }

    /// Component root of every node, and the size of the component of each root (indexed by
    /// node; 0 for nodes that are not roots).
    fn components(&mut self) -> (Vec<usize>, Vec<u32>) {
        let roots: Vec<usize> = (0..self.nodes.len()).map(|i| self.find(i)).collect();
        let mut sizes = vec![0u32; self.nodes.len()];
        for &r in &roots {
            sizes[r] += 1;
        }
        (roots, sizes)
    }
}

/// Whether a channel belongs to the protocol graphs and the host views: TCP or UDP, not a
/// network service, not to a group address.
fn counted(ctx: &Ctx<'_>, ch: &Channel) -> bool {
    let k = ch.key;
    let server = ctx.graph.host_kind(k.server);
    matches!(k.proto, proto::TCP | proto::UDP)
        && !infrastructure_service(k.proto, k.port)
        && server.present()
        && !server.local_or_group()
        && (ctx.config.resolvers.is_empty()
            || ctx
                .key(k.server)
                .is_some_and(|s| !ctx.config.resolvers.contains(&s.addr)))
}

/// Builds the window's protocol graphs.
fn protocol_graphs(ctx: &Ctx<'_>) -> BTreeMap<GraphKey, ProtoGraph> {
    let mut edges: BTreeMap<GraphKey, Vec<(HostId, HostId)>> = BTreeMap::new();
    for ch in ctx.active().filter(|c| counted(ctx, c)) {
        if let Some(key) = GraphKey::of(ch.key.proto, ch.key.port) {
            edges
                .entry(key)
                .or_default()
                .push((ch.key.client, ch.key.server));
        }
    }
    let mut index = NodeIndex::new(ctx.graph.host_slots());
    edges
        .into_iter()
        .map(|(key, e)| (key, index.build(&e)))
        .collect()
}

/// Internal hosts of graphs that grew beyond their history, with a description of the growth.
fn overlay_members(ctx: &Ctx<'_>, history: &mut OverlayHistory) -> FxHashMap<HostId, String> {
    let cfg = &ctx.config.p2p;
    let window = ctx.config.window_seconds.saturating_mul(1_000_000_000);
    let mut members: FxHashMap<HostId, String> = FxHashMap::default();
    let mut sizes = BTreeMap::new();
    for (key, mut g) in protocol_graphs(ctx) {
        let (roots, comp) = g.components();
        let (lcc_root, lcc) = comp
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .max_by_key(|(r, n)| (**n, std::cmp::Reverse(*r)))
            .map_or((0, 0), |(r, n)| (r, *n));
        let s = Sample {
            at: ctx.to,
            nodes: g.nodes.len() as u32,
            lcc,
        };
        sizes.insert(key, s);
        let Some(a) = history.judge(&key, ctx.to, window, cfg, s) else {
            continue;
        };
        let what = format!(
            "{} graph grew to {} hosts, largest component {} (history {:.0} and {:.0})",
            key.name(),
            s.nodes,
            s.lcc,
            a.mean_nodes,
            a.mean_lcc
        );
        for (i, n) in g.nodes.iter().enumerate() {
            let in_component = if a.lcc {
                roots[i] == lcc_root
            } else {
                comp[roots[i]] >= 3
            };
            if in_component && n.initiates && n.accepts && n.degree >= 3 && ctx.internal(n.id) {
                members.entry(n.id).or_insert_with(|| what.clone());
            }
        }
    }
    history.record(ctx.to, window, cfg, &sizes);
    members
}

/// One internal host's contact with one peer on a high port.
#[derive(Debug, Clone, Copy)]
struct Contact {
    /// The peer's port, when the channel's orientation tells it.
    port: Option<u16>,
    proto: u8,
    answered: bool,
    short: bool,
    flows: u32,
    first: Timestamp,
    last: Timestamp,
}

/// What one internal host did on high ports in the window.
#[derive(Debug, Default)]
struct HostView {
    peers: FxHashMap<HostId, Contact>,
    ports: FxHashSet<u16>,
    accepted: FxHashSet<HostId>,
}

impl HostView {
    fn contact(&mut self, peer: HostId, c: Contact) {
        if let Some(p) = c.port {
            self.ports.insert(p);
        }
        self.peers
            .entry(peer)
            .and_modify(|e| {
                e.answered |= c.answered;
                e.short &= c.short;
                e.port = e.port.or(c.port);
                e.flows += c.flows;
                e.first = e.first.min(c.first);
                e.last = e.last.max(c.last);
            })
            .or_insert(c);
    }
}

/// Gathers each internal host's high-port contacts and the peers it answered. Contacts on a
/// port the host reaches many servers on are left out: that is a service it uses (or scans,
/// which the fan-out detector judges), while overlay peers each listen on a port of their own.
fn host_views(ctx: &Ctx<'_>) -> FxHashMap<HostId, HostView> {
    let high: Vec<&Channel> = ctx
        .active()
        .filter(|c| c.key.port >= HIGH_PORTS && counted(ctx, c))
        .collect();
    let mut servers: FxHashMap<(HostId, u16, u8), u32> = FxHashMap::default();
    for ch in high.iter().filter(|c| c.flows > 0) {
        *servers
            .entry((ch.key.client, ch.key.port, ch.key.proto))
            .or_default() += 1;
    }
    let mut views: FxHashMap<HostId, HostView> = FxHashMap::default();
    for ch in high {
        let k = ch.key;
        let answered = ch.answered > 0 || ch.packets_in > 0;
        let service = servers
            .get(&(k.client, k.port, k.proto))
            .is_some_and(|&n| n >= SERVICE_FANOUT);
        if ch.flows > 0 && ctx.internal(k.client) && !service {
            let short = ch.packets_out <= SHORT_PACKETS * ch.flows
                && ch.bytes_out <= SHORT_BYTES * u64::from(ch.flows);
            let c = Contact {
                port: Some(k.port),
                proto: k.proto,
                answered,
                short,
                flows: ch.flows,
                first: ch.first_seen,
                last: ch.last_seen,
            };
            views.entry(k.client).or_default().contact(k.server, c);
        }
        if ch.flows > 0 && answered && ctx.internal(k.server) {
            views.entry(k.server).or_default().accepted.insert(k.client);
        }
        if ch.flows == 0 && k.proto == proto::UDP && ch.packets_in > 0 && ctx.internal(k.server) {
            // Only the internal side's datagrams were seen, oriented by their ports alone: the
            // internal host sent them and nothing came back. The peer's port is not known.
            let short = ch.packets_in <= SHORT_PACKETS * ch.answered.max(1);
            let c = Contact {
                port: None,
                proto: k.proto,
                answered: false,
                short,
                flows: ch.answered.max(1),
                first: ch.first_seen,
                last: ch.last_seen,
            };
            views.entry(k.server).or_default().contact(k.client, c);
        }
    }
    views
}

/// The numbers behind a host's score.
#[derive(Debug, Clone, Copy, Default)]
struct Measures {
    peers: usize,
    ports: usize,
    unanswered: f64,
    short: f64,
    accepted: usize,
    mutual: usize,
}

/// Scores a host that contacts enough peers on varied ports; `None` when it does not.
fn probe_score(v: &HostView, mutual: usize, cfg: &P2pConfig) -> Option<(f64, Measures)> {
    let peers = v.peers.len();
    let known = v.peers.values().filter(|c| c.port.is_some()).count();
    let min = cfg.min_peers.max(1);
    if peers < min || known * 2 < min {
        return None;
    }
    let diversity = v.ports.len() as f64 / known as f64;
    if diversity < cfg.min_port_diversity {
        return None;
    }
    let n = peers as f64;
    let m = Measures {
        peers,
        ports: v.ports.len(),
        unanswered: v.peers.values().filter(|c| !c.answered).count() as f64 / n,
        short: v.peers.values().filter(|c| c.short).count() as f64 / n,
        accepted: v.accepted.len(),
        mutual,
    };
    // Fan-out alone is weak; fan-out of short, failing contacts to a large list is how a bot
    // walks a stale peer list. Reaching four times the minimum of peers gives the full weight.
    let size = ((n / min as f64).log2() / 2.0).clamp(0.0, 1.0);
    let mut score = 0.15 + 0.15 * size + 0.45 * m.unanswered * m.short * size;
    if m.accepted >= cfg.min_accepted {
        score += 0.1;
    }
    if mutual >= cfg.min_mutual.max(1) {
        score += 0.1 + 0.1 * (mutual as f64 / (4 * cfg.min_mutual.max(1)) as f64).min(1.0);
    }
    Some((score, m))
}

/// Reports members of peer-to-peer overlays, naming the peers that answered them.
pub fn run(ctx: &Ctx<'_>, history: &mut OverlayHistory, out: &mut Vec<Finding>) {
    let cfg = &ctx.config.p2p;
    let members = overlay_members(ctx, history);
    let views = host_views(ctx);
    let discovery = super::discovery::assess(ctx);

    // How many internal hosts contact each peer.
    let mut contacted_by: FxHashMap<HostId, u32> = FxHashMap::default();
    for v in views.values() {
        for peer in v.peers.keys() {
            *contacted_by.entry(*peer).or_default() += 1;
        }
    }

    let mut hosts: Vec<HostId> = views
        .keys()
        .chain(members.keys())
        .chain(discovery.keys())
        .copied()
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let empty = HostView::default();
    for id in hosts {
        let v = views.get(&id).unwrap_or(&empty);
        let mutual = v
            .peers
            .keys()
            .filter(|p| contacted_by.get(p).is_some_and(|&n| n >= 2))
            .count();
        let probe = probe_score(v, mutual, cfg);
        let overlay = members.get(&id);
        let found = discovery.get(&id);
        let score = match (probe, overlay) {
            (Some((s, _)), Some(_)) => s + 0.2,
            (Some((s, _)), None) => s,
            (None, Some(_)) => 0.3,
            (None, None) => 0.0,
        }
        .min(0.9)
        .max(found.map_or(0.0, |d| d.score));
        if score < 0.3 {
            continue;
        }
        let mut detail = describe(probe.map(|p| p.1), overlay);
        if let Some(d) = found {
            detail = if detail.is_empty() {
                d.detail.clone()
            } else {
                format!("{}; {detail}", d.detail)
            };
        }
        report(ctx, id, v, score, detail, out);
    }
}

fn describe(m: Option<Measures>, overlay: Option<&String>) -> String {
    let mut parts = Vec::new();
    if let Some(m) = m {
        parts.push(format!(
            "contacted {} peers on {} distinct high ports ({:.0}% unanswered, {:.0}% short)",
            m.peers,
            m.ports,
            m.unanswered * 100.0,
            m.short * 100.0
        ));
        if m.accepted > 0 {
            parts.push(format!("answered {} peers itself", m.accepted));
        }
        if m.mutual > 0 {
            parts.push(format!(
                "{} peers shared with other internal hosts",
                m.mutual
            ));
        }
    }
    if let Some(o) = overlay {
        parts.push(o.clone());
    }
    parts.join("; ")
}

/// Pushes the host's evidence and names its answering peers.
fn report(
    ctx: &Ctx<'_>,
    id: HostId,
    v: &HostView,
    score: f64,
    detail: String,
    out: &mut Vec<Finding>,
) {
    let Some(host) = ctx.key(id) else {
        return;
    };
    let first = v.peers.values().map(|c| c.first).min().unwrap_or(ctx.from);
    let last = v.peers.values().map(|c| c.last).max().unwrap_or(ctx.to);
    let evidence = Evidence {
        kind: Behaviour::PeerToPeer,
        role: Role::Bot,
        score,
        detail,
        peer: None,
        first_seen: first.max(ctx.from),
        last_seen: last,
    };
    let mut answered: Vec<(&HostId, &Contact)> =
        v.peers.iter().filter(|(_, c)| c.answered).collect();
    answered.sort_by_key(|(p, c)| (std::cmp::Reverse(c.flows), **p));
    for (&p, c) in answered.into_iter().take(ctx.config.p2p.max_named_peers) {
        let Some(peer) = ctx.key(p) else {
            continue;
        };
        out.push(Finding {
            host,
            role: Role::Bot,
            evidence: Evidence {
                detail: match c.flows {
                    1 => "a peer of the overlay: answered the one request sent".to_owned(),
                    n => format!("a peer of the overlay: answered, {n} requests sent"),
                },
                peer: Some(Peer {
                    host: peer,
                    port: c.port,
                    proto: c.proto,
                }),
                first_seen: c.first.max(ctx.from),
                last_seen: c.last,
                ..evidence.clone()
            },
            other: Some((peer, Role::Peer)),
        });
    }
    out.push(Finding {
        host,
        role: Role::Bot,
        evidence,
        other: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000_000;

    fn at(minutes: u64) -> Timestamp {
        Timestamp(1_700_000_000_000_000_000 + minutes * MIN)
    }

    fn sizes(nodes: u32, lcc: u32) -> BTreeMap<GraphKey, Sample> {
        let key = GraphKey::of(proto::UDP, 30000).unwrap();
        BTreeMap::from([(
            key,
            Sample {
                at: Timestamp::default(),
                nodes,
                lcc,
            },
        )])
    }

    /// A history of six ten-minute windows of a graph of about 20 hosts.
    fn steady() -> OverlayHistory {
        let mut h = OverlayHistory::default();
        for (i, n) in [20, 22, 19, 21, 20, 22].into_iter().enumerate() {
            h.record(
                at(10 * i as u64),
                10 * MIN,
                &P2pConfig::default(),
                &sizes(n, 6),
            );
        }
        h
    }

    fn judge(h: &OverlayHistory, now: Timestamp, nodes: u32, lcc: u32) -> Option<Anomaly> {
        let key = GraphKey::of(proto::UDP, 30000).unwrap();
        let s = Sample {
            at: now,
            nodes,
            lcc,
        };
        h.judge(&key, now, 10 * MIN, &P2pConfig::default(), s)
    }

    #[test]
    fn ports_fall_into_their_classes() {
        let class = |p| GraphKey::of(proto::TCP, p).unwrap().class;
        assert_eq!(class(443), PortClass::WellKnown(443));
        assert_eq!(class(1024), PortClass::Registered);
        assert_eq!(class(49151), PortClass::Registered);
        assert_eq!(class(49152), PortClass::Ephemeral);
        assert_eq!(GraphKey::of(proto::ICMP, 2048), None);
    }

    #[test]
    fn a_component_growing_past_its_history_is_anomalous() {
        let h = steady();
        let a = judge(&h, at(60), 24, 40).expect("anomalous");
        assert!(a.lcc);
        assert!((a.mean_lcc - 6.0).abs() < 1e-9);
    }

    #[test]
    fn ordinary_variation_is_not_anomalous() {
        let h = steady();
        assert!(judge(&h, at(60), 23, 8).is_none());
    }

    #[test]
    fn too_short_a_history_judges_nothing() {
        let mut h = OverlayHistory::default();
        for i in 0..3 {
            h.record(at(10 * i), 10 * MIN, &P2pConfig::default(), &sizes(5, 2));
        }
        assert!(judge(&h, at(30), 500, 500).is_none());
    }

    #[test]
    fn samples_are_taken_once_per_window_and_bounded() {
        let mut h = OverlayHistory::default();
        let cfg = P2pConfig {
            history: 4,
            ..P2pConfig::default()
        };
        for m in 0..100 {
            h.record(at(m), 10 * MIN, &cfg, &sizes(5, 2));
        }
        let samples = h.graphs.values().next().unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(h.taken.len(), 4);
        assert_eq!(samples.back().unwrap().at, at(90));
    }

    #[test]
    fn a_graph_new_since_sampling_began_has_an_empty_history() {
        let mut h = OverlayHistory::default();
        let cfg = P2pConfig::default();
        for i in 0..5 {
            h.record(at(10 * i), 10 * MIN, &cfg, &BTreeMap::new());
        }
        assert!(judge(&h, at(50), 30, 30).is_some());
        h.record(at(50), 10 * MIN, &cfg, &sizes(30, 30));
        assert_eq!(h.graphs.values().next().unwrap().len(), 6);
    }

    fn view(peers: usize, answered: usize, short: bool, ports: usize) -> HostView {
        let mut v = HostView::default();
        for i in 0..peers {
            v.contact(
                i as HostId,
                Contact {
                    port: Some(20000 + (i % ports) as u16),
                    proto: proto::UDP,
                    answered: i < answered,
                    short,
                    flows: 1,
                    first: at(0),
                    last: at(1),
                },
            );
        }
        v
    }

    #[test]
    fn many_failing_short_contacts_on_random_ports_make_a_verdict_alone() {
        let cfg = P2pConfig::default();
        let (s, m) = probe_score(&view(120, 6, true, 120), 0, &cfg).unwrap();
        assert!(s >= 0.6, "{s} {m:?}");
    }

    #[test]
    fn few_peers_or_answered_contacts_stay_below_a_verdict() {
        let cfg = P2pConfig::default();
        let (s, _) = probe_score(&view(30, 2, true, 30), 0, &cfg).unwrap();
        assert!(s < 0.6, "{s}");
        let (s, _) = probe_score(&view(200, 160, true, 200), 0, &cfg).unwrap();
        assert!(s < 0.6, "{s}");
        assert!(probe_score(&view(10, 0, true, 10), 0, &cfg).is_none());
    }

    #[test]
    fn one_port_for_every_peer_is_a_service_not_an_overlay() {
        let cfg = P2pConfig::default();
        assert!(probe_score(&view(120, 0, true, 3), 0, &cfg).is_none());
    }
}
