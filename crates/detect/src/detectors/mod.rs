//! Behaviour detectors. Each reads the graph over the current window and reports findings.
//! Only the peer-to-peer detector remembers anything between windows: the sizes of past
//! protocol graphs, held by the engine in [`p2p::OverlayHistory`]. Every other detector's
//! verdict on a window depends on that window's flows only.

pub mod beacon;
pub mod discovery;
pub mod fanout;
pub mod flood;
pub mod intel;
pub mod p2p;

use crate::config::DetectConfig;
use crate::evidence::{Evidence, Role};
use crate::graph::{proto, Channel, Graph};
use crate::host::{HostKey, Hosts};
use crate::intel::Intel;
use botnest_flow::Timestamp;
use std::net::IpAddr;

/// What a detector sees.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// Host identity and internal networks.
    pub hosts: &'a Hosts,
    /// Settings.
    pub config: &'a DetectConfig,
    /// Blocklisted addresses and endpoints.
    pub intel: &'a Intel,
    /// Allowed addresses and endpoints: their channels are invisible to detectors.
    pub allow: &'a Intel,
    /// Start of the window.
    pub from: Timestamp,
    /// End of the window.
    pub to: Timestamp,
}

impl Ctx<'_> {
    /// Channels active in the window, less those the allow-list covers.
    pub fn active(&self) -> impl Iterator<Item = &Channel> {
        let from = self.from;
        self.graph
            .channels()
            .filter(move |c| c.last_seen >= from && !self.allowed_channel(c))
    }

    /// Whether the allow-list covers either end of a channel.
    pub fn allowed_channel(&self, c: &Channel) -> bool {
        if self.allow.is_empty() {
            return false;
        }
        let addr = |id| self.graph.host(id).map(|h| h.key.addr);
        addr(c.key.client).is_some_and(|a| self.allow.contains(a, None))
            || addr(c.key.server).is_some_and(|a| self.allow.contains(a, Some(c.key.port)))
    }

    /// The host key of a host id.
    pub fn key(&self, id: crate::graph::HostId) -> Option<HostKey> {
        self.graph.host(id).map(|h| h.key)
    }

    /// Whether a host id is internal.
    pub fn internal(&self, id: crate::graph::HostId) -> bool {
        self.graph.host_kind(id).internal()
    }

    /// Whether a host id is a multicast, broadcast or link-local address
    /// ([`local_or_group`]); false for an id not in use.
    pub fn local_or_group(&self, id: crate::graph::HostId) -> bool {
        self.graph.host_kind(id).local_or_group()
    }
}

/// One conclusion about a host.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The host suspected.
    pub host: HostKey,
    /// Its role.
    pub role: Role,
    /// Why.
    pub evidence: Evidence,
    /// The other end and the role it plays (a C2, a victim), if any.
    pub other: Option<(HostKey, Role)>,
}

/// Services whose periodic use is part of a network working normally: name resolution, time,
/// address configuration, local discovery, and the NAT traversal and tunnels whose keepalives
/// are periodic by specification (STUN/TURN consent and refresh, IPsec NAT-T and WireGuard
/// keepalives). Regular contact with them is not beaconing.
pub fn infrastructure_service(proto_: u8, port: u16) -> bool {
    match proto_ {
        proto::UDP => matches!(
            port,
            53 | 67 | 68 | 123 | 137 | 138 | 1900 | 3478 | 3479 | 4500 | 5349 | 5353 | 5355 | 19302
                ..=19309 | 51820
        ),
        proto::TCP => matches!(port, 53 | 853 | 3478 | 5349),
        _ => false,
    }
}

/// Multicast, broadcast and link-local destinations are never a C2 or a victim.
pub fn local_or_group(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            a.is_multicast() || a.is_broadcast() || a.is_link_local() || a.octets()[3] == 255
        }
        IpAddr::V6(a) => a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Runs every detector over the window. Findings about an allowed host, or naming an allowed
/// peer, are dropped.
pub fn run_all(ctx: &Ctx<'_>, overlays: &mut p2p::OverlayHistory) -> Vec<Finding> {
    let mut out = Vec::new();
    beacon::run(ctx, &mut out);
    fanout::run(ctx, &mut out);
    flood::run(ctx, &mut out);
    p2p::run(ctx, overlays, &mut out);
    intel::run(ctx, &mut out);
    if !ctx.allow.is_empty() {
        out.retain(|f| !allowed_finding(ctx.allow, f));
    }
    out
}

/// Whether a finding concerns an allowed host or names an allowed peer.
fn allowed_finding(allow: &Intel, f: &Finding) -> bool {
    allow.contains(f.host.addr, None)
        || f.evidence
            .peer
            .is_some_and(|p| allow.contains(p.host.addr, p.port))
        || f.other.is_some_and(|(o, _)| {
            let port = f.evidence.peer.filter(|p| p.host == o).and_then(|p| p.port);
            allow.contains(o.addr, port)
        })
}

/// Formats seconds for explanations.
pub fn secs(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s >= 100.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}
