//! Contact with blocklisted addresses and endpoints.
//!
//! An internal host that reaches a listed endpoint, or sends to a listed address, is suspect;
//! the listed host is named as its C2. Being reached by a listed address is weaker: listed
//! scanners touch every network, so an unanswered contact from one says nothing about the host,
//! and an answered one is a suspicion that needs other evidence. Internal addresses are never
//! taken as listed: some lists carry the private ranges as bogons.

use super::{local_or_group, Ctx, Finding};
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::Channel;
use crate::host::HostKey;
use crate::intel::Listing;
use botnest_flow::Timestamp;
use std::collections::BTreeMap;

/// Score of contact with a listed endpoint (address and port).
pub const ENDPOINT_SCORE: f64 = 0.7;
/// Score of contact with a listed address or network.
pub const ADDRESS_SCORE: f64 = 0.6;
/// Score of answering a listed address that made contact.
pub const ANSWERED_SCORE: f64 = 0.3;

/// What one internal host did with one listed peer.
struct Hit<'a> {
    listing: &'a Listing,
    score: f64,
    flows: u64,
    outbound: bool,
    first: Timestamp,
    last: Timestamp,
}

type HitKey = (HostKey, HostKey, Option<u16>, u8);

/// Reports internal hosts in contact with listed hosts.
pub fn run(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if ctx.intel.is_empty() {
        return;
    }
    let mut hits: BTreeMap<HitKey, Hit<'_>> = BTreeMap::new();
    for ch in ctx.active() {
        let (Some(client), Some(server)) =
            (ctx.graph.host(ch.key.client), ctx.graph.host(ch.key.server))
        else {
            continue;
        };
        if client.internal && !server.internal && ch.flows > 0 {
            // The internal host initiated: the server's port tells an endpoint entry apart.
            let port = ch.key.port;
            if let Some(l) = ctx.intel.lookup(server.key.addr, Some(port)) {
                let score = if l.is_endpoint() {
                    ENDPOINT_SCORE
                } else {
                    ADDRESS_SCORE
                };
                record(
                    &mut hits,
                    (client.key, server.key, Some(port)),
                    ch,
                    l,
                    score,
                    true,
                );
            }
        }
        if server.internal && !client.internal {
            let Some(l) = ctx.intel.lookup(client.key.addr, None) else {
                continue;
            };
            if ch.flows == 0 && ch.packets_in > 0 {
                // Only the internal side's packets were seen, oriented by ports alone: it sent
                // them. The listed side's port is not known.
                record(
                    &mut hits,
                    (server.key, client.key, None),
                    ch,
                    l,
                    ADDRESS_SCORE,
                    true,
                );
            } else if ch.flows > 0 && (ch.answered > 0 || ch.packets_in > 0) {
                let key = (server.key, client.key, Some(ch.key.port));
                record(&mut hits, key, ch, l, ANSWERED_SCORE, false);
            }
        }
    }
    for ((host, listed, port, proto), h) in hits {
        if local_or_group(listed.addr) {
            continue;
        }
        let peer = Peer {
            host: listed,
            port,
            proto,
        };
        let what = if h.outbound {
            format!("contacted {} ({} flows)", peer.endpoint(), h.flows)
        } else {
            format!("answered {} on port {}", listed.addr, port.unwrap_or(0))
        };
        out.push(Finding {
            host,
            role: Role::Bot,
            evidence: Evidence {
                kind: Behaviour::Blocklisted,
                role: Role::Bot,
                score: h.score,
                detail: format!(
                    "{what}, listed by {}: {}",
                    h.listing.list(),
                    h.listing.entry()
                ),
                peer: Some(peer),
                first_seen: h.first.max(ctx.from),
                last_seen: h.last,
            },
            other: Some((listed, Role::C2)),
        });
    }
}

fn record<'a>(
    hits: &mut BTreeMap<HitKey, Hit<'a>>,
    (host, listed, port): (HostKey, HostKey, Option<u16>),
    ch: &Channel,
    listing: &'a Listing,
    score: f64,
    outbound: bool,
) {
    let h = hits
        .entry((host, listed, port, ch.key.proto))
        .or_insert(Hit {
            listing,
            score,
            flows: 0,
            outbound,
            first: ch.first_seen,
            last: ch.last_seen,
        });
    h.flows += u64::from(ch.flows.max(1));
    h.first = h.first.min(ch.first_seen);
    h.last = h.last.max(ch.last_seen);
    if score > h.score {
        h.score = score;
        h.listing = listing;
        h.outbound = outbound;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::graph::Graph;
    use crate::host::Hosts;
    use crate::intel::Intel;
    use botnest_flow::FlowRecord;

    fn flow(src: &str, sport: u16, dst: &str, dport: u16, flags: u16) -> FlowRecord {
        FlowRecord {
            start: Timestamp(1_700_000_000_000_000_000),
            end: Timestamp(1_700_000_000_100_000_000),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: sport,
            dst_port: dport,
            protocol: 6,
            tcp_flags: flags,
            packets: 3,
            octets: 200,
            ..Default::default()
        }
    }

    fn findings(flows: &[FlowRecord], intel: &Intel) -> Vec<Finding> {
        let config = DetectConfig::default();
        let hosts = Hosts::new(&config.hosts);
        let mut graph = Graph::new(3_600_000_000_000, 1000, 1000);
        for f in flows {
            graph.observe(&hosts, f);
        }
        let allow = Intel::new();
        let ctx = Ctx {
            graph: &graph,
            hosts: &hosts,
            config: &config,
            intel,
            allow: &allow,
            from: Timestamp(1_699_999_000_000_000_000),
            to: Timestamp(1_700_000_100_000_000_000),
        };
        let mut out = Vec::new();
        run(&ctx, &mut out);
        out
    }

    fn listed(target: &str) -> Intel {
        let mut i = Intel::new();
        i.insert(target.parse().unwrap(), "list", target);
        i
    }

    #[test]
    fn private_ranges_on_a_list_do_not_accuse_internal_traffic() {
        let f = [flow("10.0.0.5", 40000, "10.0.0.9", 8080, 0x02)];
        assert!(findings(&f, &listed("10.0.0.0/8")).is_empty());
    }

    #[test]
    fn answering_a_listed_address_is_only_a_suspicion() {
        let f = [
            flow("192.0.2.10", 40000, "10.0.0.5", 22, 0x02),
            flow("10.0.0.5", 22, "192.0.2.10", 40000, 0x12),
        ];
        let out = findings(&f, &listed("192.0.2.0/24"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence.score, ANSWERED_SCORE);
        assert!(findings(&f[..1], &listed("192.0.2.0/24")).is_empty());
    }

    #[test]
    fn an_endpoint_entry_outweighs_its_address() {
        let f = [flow("10.0.0.5", 40000, "192.0.2.10", 443, 0x02)];
        let out = findings(&f, &listed("192.0.2.10:443"));
        assert_eq!(out[0].evidence.score, ENDPOINT_SCORE);
        assert_eq!(out[0].other.unwrap().1, Role::C2);
        assert!(findings(&f, &listed("192.0.2.10:80")).is_empty());
        let out = findings(&f, &listed("192.0.2.10"));
        assert_eq!(out[0].evidence.score, ADDRESS_SCORE);
    }
}
