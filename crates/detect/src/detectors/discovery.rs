//! Peer discovery: how a node of a peer-to-peer botnet finds its overlay.
//!
//! Hide'n'Seek, Mozi, Sality, ZeroAccess and Storm nodes keep sending small UDP datagrams to
//! addresses from a peer list or picked at random, each peer on a port of its own choosing,
//! and most of those peers never answer: the list is stale, or the address was a guess. The
//! probing goes on minute after minute, however slowly. Taken together that is rare for benign
//! software, whose UDP goes to services (DNS, NTP, QUIC on 443, STUN/TURN, local discovery) or
//! to a few peers that answer (a call, a game).
//!
//! A host probes a peer when it sends it at most a few small datagrams over UDP, on a high port
//! that is not a known UDP service, and gets nothing back. The detector counts, per internal
//! host, the distinct external peers probed, the distinct minutes in which a new one was probed,
//! the share of its high-port UDP peers that never answered and the diversity of their ports.
//! It complements the peer-list view of [`super::p2p`], which needs more peers in the window.

use super::{local_or_group, Ctx};
use crate::graph::{proto, HostId};
use botnest_flow::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};

/// Ports at or above this are high: chosen by an application rather than assigned to a service
/// of the system range (RFC 6335 section 6).
const HIGH_PORTS: u16 = 1024;
/// Distinct servers one host reaches on one UDP port from which the port is a service it uses
/// (or scans, which the fan-out detector judges), not a peer's port of its own choosing.
const SERVICE_FANOUT: usize = 4;
/// Peers named as examples in the explanation.
const EXAMPLES: usize = 3;

/// UDP services on high ports whose traffic is part of a network working normally: local
/// discovery, NAT traversal, VPN tunnels and telephony signalling.
pub fn known_udp_service(port: u16) -> bool {
    matches!(
        port,
        1194 // OpenVPN
            | 1900 // SSDP
            | 3478..=3479 // STUN, TURN
            | 3544 // Teredo
            | 3702 // WS-Discovery
            | 4500 // IPsec NAT traversal
            | 5060..=5061 // SIP
            | 5349..=5350 // STUN, TURN over DTLS; NAT-PMP
            | 5351 // PCP
            | 5353 // mDNS
            | 5355 // LLMNR
            | 19302..=19309 // STUN of WebRTC
            | 51820 // WireGuard
    )
}

/// One internal host's UDP contact with one external peer.
#[derive(Debug, Clone, Copy)]
struct Contact {
    /// The peer's port, when the records' orientation tells it.
    port: Option<u16>,
    requests: u32,
    packets: u64,
    bytes: u64,
    answered: bool,
    first: Timestamp,
    last: Timestamp,
}

/// What peer discovery a host showed, with the numbers behind the score.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// How strongly it points at a bot.
    pub score: f64,
    /// The explanation.
    pub detail: String,
}

/// The measures of one host.
#[derive(Debug, Clone, Default, PartialEq)]
struct Measures {
    /// Distinct external UDP peers on high ports.
    peers: usize,
    /// Of them, probed: a few small datagrams, never answered.
    probed: usize,
    /// Distinct minutes in which a new peer was probed.
    minutes: usize,
    /// Distinct ports among probed peers with a known port.
    ports: usize,
    /// Probed peers whose port is known.
    known: usize,
    /// Datagrams sent to probed peers, and their bytes.
    datagrams: u64,
    bytes: u64,
}

/// Judges every internal host; only hosts that probe enough peers are returned.
pub fn assess(ctx: &Ctx<'_>) -> FxHashMap<HostId, Discovery> {
    let cfg = &ctx.config.p2p.discovery;
    let contacts = contacts(ctx);
    let mut out = FxHashMap::default();
    for (host, peers) in contacts {
        let m = measure(&peers, cfg);
        let Some(score) = score(&m, cfg) else {
            continue;
        };
        let probes: Vec<(&HostId, &Contact)> =
            peers.iter().filter(|(_, c)| is_probe(c, cfg)).collect();
        let first = probes
            .iter()
            .map(|(_, c)| c.first)
            .min()
            .unwrap_or(ctx.from);
        let last = probes.iter().map(|(_, c)| c.last).max().unwrap_or(ctx.to);
        let mut examples: Vec<(&HostId, &Contact)> = probes
            .iter()
            .copied()
            .filter(|(_, c)| c.port.is_some())
            .collect();
        examples.sort_by_key(|(p, c)| (c.first, **p));
        let examples: Vec<String> = examples
            .iter()
            .take(EXAMPLES)
            .filter_map(|(p, c)| {
                let peer = crate::evidence::Peer {
                    host: ctx.key(**p)?,
                    port: c.port,
                    proto: proto::UDP,
                };
                Some(peer.endpoint())
            })
            .collect();
        out.insert(
            host,
            Discovery {
                score,
                detail: describe(&m, first, last, &examples),
            },
        );
    }
    out
}

/// Each internal host's UDP contacts with external peers on high ports that are not services.
fn contacts(ctx: &Ctx<'_>) -> FxHashMap<HostId, FxHashMap<HostId, Contact>> {
    let external = |id: HostId| {
        ctx.key(id).is_some_and(|k| {
            !ctx.internal(id)
                && !local_or_group(k.addr)
                && !k.addr.is_unspecified()
                && !ctx.config.resolvers.contains(&k.addr)
        })
    };
    let udp = || {
        ctx.active().filter(|c| {
            c.key.proto == proto::UDP && c.key.port >= HIGH_PORTS && !known_udp_service(c.key.port)
        })
    };
    // Ports a host reaches on many servers are services it uses.
    let mut servers: FxHashMap<(HostId, u16), usize> = FxHashMap::default();
    for ch in udp().filter(|c| c.flows > 0) {
        *servers.entry((ch.key.client, ch.key.port)).or_default() += 1;
    }
    let mut out: FxHashMap<HostId, FxHashMap<HostId, Contact>> = FxHashMap::default();
    for ch in udp() {
        let k = ch.key;
        let (host, peer, c) = if ch.flows > 0 {
            // The internal host sent requests to the peer's port.
            let service = servers
                .get(&(k.client, k.port))
                .is_some_and(|&n| n >= SERVICE_FANOUT);
            if service || !ctx.internal(k.client) || !external(k.server) {
                continue;
            }
            let c = Contact {
                port: Some(k.port),
                requests: ch.flows,
                packets: u64::from(ch.packets_out),
                bytes: ch.bytes_out,
                answered: ch.answered > 0 || ch.packets_in > 0,
                first: ch.first_seen,
                last: ch.last_seen,
            };
            (k.client, k.server, c)
        } else if ch.packets_in > 0 && ctx.internal(k.server) && external(k.client) {
            // Only the internal host's datagrams were seen, taken for replies by their ports
            // alone (the peer's port looked like a client's): nothing came back from the peer.
            let c = Contact {
                port: None,
                requests: ch.answered.max(1),
                packets: u64::from(ch.packets_in),
                bytes: ch.bytes_in,
                answered: false,
                first: ch.first_seen,
                last: ch.last_seen,
            };
            (k.server, k.client, c)
        } else {
            continue;
        };
        out.entry(host)
            .or_default()
            .entry(peer)
            .and_modify(|e| {
                e.port = e.port.or(c.port);
                e.requests += c.requests;
                e.packets += c.packets;
                e.bytes += c.bytes;
                e.answered |= c.answered;
                e.first = e.first.min(c.first);
                e.last = e.last.max(c.last);
            })
            .or_insert(c);
    }
    out
}

/// A few small datagrams to a peer that never answered.
fn is_probe(c: &Contact, cfg: &crate::config::DiscoveryConfig) -> bool {
    !c.answered
        && c.requests <= cfg.max_requests_per_peer
        && c.bytes <= cfg.max_datagram_bytes * c.packets.max(1)
}

fn measure(peers: &FxHashMap<HostId, Contact>, cfg: &crate::config::DiscoveryConfig) -> Measures {
    let mut minutes = FxHashSet::default();
    let mut ports = FxHashSet::default();
    let mut m = Measures {
        peers: peers.len(),
        ..Measures::default()
    };
    for c in peers.values().filter(|c| is_probe(c, cfg)) {
        m.probed += 1;
        m.datagrams += c.packets.max(1);
        m.bytes += c.bytes;
        minutes.insert(c.first.as_unix_nanos() / 60_000_000_000);
        if let Some(p) = c.port {
            m.known += 1;
            ports.insert(p);
        }
    }
    m.minutes = minutes.len();
    m.ports = ports.len();
    m
}

/// The score of a host's probing, `None` below the thresholds: at the fewest peers it is a
/// verdict (0.6), rising to 0.8 at four times as many.
fn score(m: &Measures, cfg: &crate::config::DiscoveryConfig) -> Option<f64> {
    let min = cfg.min_peers.max(1);
    if m.probed < min || m.minutes < cfg.min_minutes {
        return None;
    }
    if (m.probed as f64) < cfg.min_unanswered_share * m.peers as f64 {
        return None;
    }
    // Ports must be known for most probes, and differ: peers listen on ports of their own.
    if m.known * 2 < m.probed || (m.ports as f64) < cfg.min_port_diversity * m.known as f64 {
        return None;
    }
    let size = ((m.probed as f64 / min as f64).log2() / 2.0).clamp(0.0, 1.0);
    Some(0.6 + 0.2 * size)
}

fn describe(m: &Measures, first: Timestamp, last: Timestamp, examples: &[String]) -> String {
    let span = last.as_unix_nanos().saturating_sub(first.as_unix_nanos());
    let mut s = format!(
        "peer discovery: probed {} external peers over UDP, on {} distinct high ports among \
         the {} whose port is known, new peers in {} distinct minutes over {}; {} datagrams of \
         {:.0} bytes on average, none answered; {} of its {} UDP peers on high ports \
         ({:.0}%) never answered",
        m.probed,
        m.ports,
        m.known,
        m.minutes,
        super::secs(span),
        m.datagrams,
        m.bytes as f64 / m.datagrams.max(1) as f64,
        m.probed,
        m.peers,
        100.0 * m.probed as f64 / m.peers.max(1) as f64,
    );
    if !examples.is_empty() {
        s.push_str(&format!("; first probes to {}", examples.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DiscoveryConfig;

    fn contact(minute: u64, port: Option<u16>, answered: bool, requests: u32) -> Contact {
        let t = Timestamp(1_700_000_000_000_000_000 + minute * 60_000_000_000);
        Contact {
            port,
            requests,
            packets: u64::from(requests),
            bytes: 40 * u64::from(requests),
            answered,
            first: t,
            last: t,
        }
    }

    fn peers(n: u32, f: impl Fn(u32) -> Contact) -> FxHashMap<HostId, Contact> {
        (0..n).map(|i| (i, f(i))).collect()
    }

    fn judge(p: &FxHashMap<HostId, Contact>) -> Option<f64> {
        let cfg = DiscoveryConfig::default();
        score(&measure(p, &cfg), &cfg)
    }

    #[test]
    fn sparse_unanswered_probes_over_minutes_are_a_verdict() {
        // Two probes a minute for ten minutes, each peer on its own port.
        let p = peers(20, |i| {
            contact(u64::from(i / 2), Some(20000 + i as u16 * 7), false, 1)
        });
        let s = judge(&p).expect("discovery");
        assert!((0.6..0.7).contains(&s), "{s}");
        let p = peers(64, |i| {
            contact(u64::from(i / 4), Some(1100 + i as u16), false, 1)
        });
        assert!((judge(&p).unwrap() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_burst_within_a_minute_or_too_few_peers_is_not_enough() {
        let burst = peers(40, |i| contact(0, Some(20000 + i as u16), false, 1));
        assert_eq!(judge(&burst), None);
        let few = peers(15, |i| {
            contact(u64::from(i), Some(20000 + i as u16), false, 1)
        });
        assert_eq!(judge(&few), None);
    }

    #[test]
    fn peers_that_answer_or_share_a_port_are_not_discovery() {
        // A DHT-like client: most of its peers answer.
        let answered = peers(60, |i| {
            contact(u64::from(i), Some(20000 + i as u16), i % 3 != 0, 1)
        });
        assert_eq!(judge(&answered), None);
        // Long conversations are not probes.
        let talks = peers(30, |i| {
            contact(u64::from(i), Some(20000 + i as u16), false, 40)
        });
        assert_eq!(judge(&talks), None);
        // Peers on a handful of ports: a service's servers, not peers of their own choosing.
        let ports = peers(30, |i| {
            contact(u64::from(i), Some(27015 + (i % 3) as u16), false, 1)
        });
        assert_eq!(judge(&ports), None);
    }

    #[test]
    fn service_ports_of_nat_traversal_and_discovery_are_known() {
        for p in [1900, 3478, 5353, 5355, 19302, 4500, 51820] {
            assert!(known_udp_service(p), "{p}");
        }
        assert!(!known_udp_service(13749));
    }
}
