//! Flood participation: several internal hosts sending hard to one victim at the same time, for
//! long enough, and mostly unanswered.

use super::{local_or_group, Ctx, Finding};
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::{Channel, HostId};
use std::collections::BTreeMap;

/// Seconds a channel has been active in its counting period.
fn span(ch: &Channel) -> f64 {
    ch.last_seen
        .as_unix_nanos()
        .saturating_sub(ch.since.as_unix_nanos()) as f64
        / 1e9
}

/// Packets per second a channel sent while it was active.
fn rate(ch: &Channel) -> f64 {
    f64::from(ch.packets_out) / span(ch).max(1.0)
}

/// Shortest time a source must keep sending hard for its traffic to count as a flood: bursts
/// of a second or two are ordinary transfers.
const MIN_FLOOD_SECONDS: f64 = 10.0;

/// Whether a channel carries attack traffic: a sustained high packet rate that the victim does
/// not answer in kind (a server under a flood drops, refuses or ignores most of it; an upload
/// or a download, however fast, is acknowledged packet for packet or close to it).
fn attacking(ch: &Channel, min_pps: f64) -> bool {
    span(ch) >= MIN_FLOOD_SECONDS
        && rate(ch) >= min_pps
        && (u64::from(ch.packets_in) * 4 < u64::from(ch.packets_out)
            || u64::from(ch.failed) * 2 > u64::from(ch.flows))
}

/// Reports hosts taking part in a flood.
pub fn run(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let cfg = &ctx.config.flood;
    // In victim order, so a replay reports the same evidence in the same order.
    let mut by_victim: BTreeMap<HostId, Vec<&Channel>> = BTreeMap::new();
    for ch in ctx.active() {
        if attacking(ch, cfg.min_packets_per_second) && ctx.internal(ch.key.client) {
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
