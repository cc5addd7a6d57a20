//! Flood participation: several internal hosts sending hard to one victim at the same time.

use super::{local_or_group, Ctx, Finding};
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::{Channel, HostId};
use std::collections::HashMap;

/// Packets per second a channel sent while it was active.
fn rate(ch: &Channel) -> f64 {
    let span = ch
        .last_seen
        .as_unix_nanos()
        .saturating_sub(ch.since.as_unix_nanos()) as f64
        / 1e9;
    f64::from(ch.packets_out) / span.max(1.0)
}

/// Reports hosts taking part in a flood.
pub fn run(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let cfg = &ctx.config.flood;
    let mut by_victim: HashMap<HostId, Vec<&Channel>> = HashMap::new();
    for ch in ctx.active() {
        if ctx.internal(ch.key.client) && rate(ch) >= cfg.min_packets_per_second {
            by_victim.entry(ch.key.server).or_default().push(ch);
        }
    }
    for (victim, mut chans) in by_victim {
        let Some(victim_key) = ctx.key(victim) else {
            continue;
        };
        if local_or_group(victim_key.addr) {
            continue;
        }
        // One source per host (a host may flood several ports), and only sources whose floods
        // overlap in time with another's.
        chans.sort_by_key(|c| (c.key.client, std::cmp::Reverse(c.packets_out)));
        chans.dedup_by_key(|c| c.key.client);
        let overlapping: Vec<&Channel> = chans
            .iter()
            .filter(|a| {
                chans.iter().any(|b| {
                    b.key.client != a.key.client && a.since <= b.last_seen && b.since <= a.last_seen
                })
            })
            .copied()
            .collect();
        if overlapping.len() < cfg.min_sources {
            continue;
        }
        for ch in &overlapping {
            let Some(src) = ctx.key(ch.key.client) else {
                continue;
            };
            out.push(Finding {
                host: src,
                role: Role::Flooder,
                evidence: Evidence {
                    role: Role::Flooder,
                    kind: Behaviour::Flooding,
                    score: 0.8,
                    detail: format!(
                        "{:.0} packets/s to {} port {} together with {} other internal hosts",
                        rate(ch),
                        victim_key.addr,
                        ch.key.port,
                        overlapping.len() - 1
                    ),
                    peer: Some(Peer {
                        host: victim_key,
                        port: Some(ch.key.port),
                        proto: ch.key.proto,
                    }),
                    first_seen: ch.since,
                    last_seen: ch.last_seen,
                },
                other: Some((victim_key, Role::Victim)),
            });
        }
    }
}
