//! Beaconing: a host contacting an endpoint at regular intervals.
//!
//! The period is found as the interval that most gaps between contacts are whole multiples of,
//! so missed beacons (sampling, loss, a bot skipping a turn) and jitter around the period do not
//! hide it. Regular request sizes and persistence over the window strengthen the case. A steady
//! loop of failed attempts (a bot retrying a dead or refusing C2) counts as beaconing too, and
//! weighs more: software working normally backs off when its server does not answer.

use super::{infrastructure_service, local_or_group, secs, Ctx, Finding};
use crate::config::BeaconConfig;
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::Channel;
use crate::host::HostKey;
use botnest_flow::Timestamp;

/// The regularity found in a series of contact times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Periodicity {
    /// The period, in nanoseconds.
    pub period_ns: u64,
    /// Share of gaps that are a whole multiple (up to the allowed misses) of the period.
    pub regular_share: f64,
    /// Beacons that were missing between the contacts seen.
    pub missed: u32,
    /// Number of gaps examined.
    pub gaps: usize,
}

/// Finds the period of contact times (sorted or not).
pub fn periodicity(times: &[Timestamp], cfg: &BeaconConfig) -> Option<Periodicity> {
    let mut t: Vec<u64> = times.iter().map(|t| t.as_unix_nanos()).collect();
    t.sort_unstable();
    let gaps: Vec<u64> = t
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&g| g > 0)
        .collect();
    if gaps.len() + 1 < cfg.min_contacts {
        return None;
    }
    let min_period = (cfg.min_period_seconds * 1e9) as u64;
    let mut best: Option<Periodicity> = None;
    // Fewest fitting gaps that can pass `min_regular_share`. A candidate is only worth
    // finishing while it can still reach that and the best fit so far: one that cannot would
    // neither be chosen nor change the choice, so its remaining gaps are not examined.
    let n = gaps.len();
    let needed = (0..=n)
        .find(|&f| f as f64 / n as f64 >= cfg.min_regular_share)
        .unwrap_or(n + 1);
    let mut best_fit = 0usize;
    let candidates = gaps
        .iter()
        .flat_map(|&g| (1..=u64::from(cfg.max_missed) + 1).map(move |k| g / k));
    'candidates: for p in candidates.filter(|&p| p >= min_period) {
        let bound = needed.max(best_fit);
        let (mut fit, mut missed) = (0usize, 0u32);
        for (i, &g) in gaps.iter().enumerate() {
            if fit + (n - i) < bound {
                continue 'candidates;
            }
            let k = (g as f64 / p as f64).round();
            if k >= 1.0 && k <= f64::from(cfg.max_missed + 1) {
                let off = (g as f64 - k * p as f64).abs();
                if off <= cfg.tolerance * p as f64 {
                    fit += 1;
                    missed += k as u32 - 1;
                }
            }
        }
        if fit < bound {
            continue;
        }
        let share = fit as f64 / gaps.len() as f64;
        let better = match best {
            None => true,
            // Prefer the better fit; at an equal fit, the longer period (its divisors fit as well
            // but claim missed beacons that never were).
            Some(b) => {
                share > b.regular_share + 1e-9
                    || (share >= b.regular_share - 1e-9 && p > b.period_ns && missed <= b.missed)
            }
        };
        if better {
            best_fit = fit;
            best = Some(Periodicity {
                period_ns: p,
                regular_share: share,
                missed,
                gaps: gaps.len(),
            });
        }
    }
    best.filter(|b| b.regular_share >= cfg.min_regular_share)
}

/// Scores one channel's regularity; `None` when it is not beaconing.
fn judge(ch: &Channel, ctx: &Ctx<'_>) -> Option<(f64, String, Periodicity)> {
    let cfg = &ctx.config.beacon;
    // Contacts after the window's end are flows already seen (the window closes behind the
    // newest flow by the allowed lateness); a fast beacon's kept contacts may all be that recent,
    // and leaving them out would hide the beacon for as long as it keeps going.
    let times: Vec<Timestamp> = ch.contacts().filter(|t| *t >= ctx.from).collect();
    let p = periodicity(&times, cfg)?;
    let span = times.iter().max()?.as_unix_nanos() - times.iter().min()?.as_unix_nanos();
    let failures = if ch.flows > 0 {
        f64::from(ch.failed) / f64::from(ch.flows)
    } else {
        0.0
    };

    // Regular contact alone is common in benign software (update checks, keep-alives,
    // telemetry), so by itself it stays below a verdict (at most 0.55): it takes a retry loop,
    // the same beacon from other hosts, or other behaviour to make a bot.
    let evidence_weight = 1.0 - (-(p.gaps as f64) / 12.0).exp();
    let mut score = 0.45 * p.regular_share * evidence_weight;
    let size_cv = ch.size_cv();
    if size_cv < 0.25 {
        score += 0.05;
    }
    let retry_loop = failures >= 0.8 && ch.answered == 0;
    if retry_loop {
        score += 0.35;
    }
    // Persistence: contact kept up over a good part of the window.
    let window = ctx.to.as_unix_nanos() - ctx.from.as_unix_nanos();
    if span as f64 >= 0.5 * window as f64 {
        score += 0.05;
    }
    let mut detail = format!(
        "{} contacts every {} ({:.0}% of {} gaps fit, {} missed), request size {:.0} B \u{b1}{:.0}%",
        times.len(),
        secs(p.period_ns),
        p.regular_share * 100.0,
        p.gaps,
        p.missed,
        ch.size_mean,
        size_cv * 100.0
    );
    if retry_loop {
        detail.push_str(&format!(
            ", {:.0}% of attempts failed: a retry loop",
            failures * 100.0
        ));
    }
    Some((score.min(1.0), detail, p))
}

/// Whether a server is the client's own tenant's machine: periodic traffic inside a tenant
/// (monitoring, backups, health checks) is how tenants run their services.
fn same_tenant_internal(ctx: &Ctx<'_>, client: HostKey, server: HostKey) -> bool {
    ctx.hosts.is_internal(server.addr) && server.tenant == client.tenant
}

/// A channel found beaconing.
struct Beacon<'a> {
    ch: &'a Channel,
    client: HostKey,
    server: HostKey,
    period_ns: u64,
}

/// Reports beaconing channels from internal hosts, and endpoints several of them beacon to
/// alike (shared C2).
pub fn run(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let mut beacons = Vec::new();
    for ch in ctx.active() {
        // Regularity is judged on `min_contacts` contacts or more: a channel keeping fewer
        // cannot beacon, and most channels are such (checked first, it is the cheapest test).
        if ch.contacts_kept() < ctx.config.beacon.min_contacts {
            continue;
        }
        let k = ch.key;
        if !ctx.internal(k.client) || infrastructure_service(k.proto, k.port) {
            continue;
        }
        let (Some(client), Some(server)) = (ctx.key(k.client), ctx.key(k.server)) else {
            continue;
        };
        if local_or_group(server.addr) || ctx.config.resolvers.contains(&server.addr) {
            continue;
        }
        let Some((mut score, detail, p)) = judge(ch, ctx) else {
            continue;
        };
        let inside = same_tenant_internal(ctx, client, server);
        if inside {
            score *= 0.5;
        }
        let peer = Peer {
            host: server,
            port: Some(k.port),
            proto: k.proto,
        };
        out.push(Finding {
            host: client,
            role: Role::Bot,
            evidence: Evidence {
                role: Role::Bot,
                kind: Behaviour::Beaconing,
                score,
                detail,
                peer: Some(peer),
                first_seen: ch.first_seen.max(ctx.from),
                last_seen: ch.last_seen,
            },
            other: Some((server, Role::C2)),
        });
        if !inside {
            beacons.push(Beacon {
                ch,
                client,
                server,
                period_ns: p.period_ns,
            });
        }
    }
    shared(ctx, &beacons, out);
}

/// Several internal hosts beaconing to one endpoint with similar periods: a shared C2, in the
/// manner of BotMiner's communication plane. An endpoint that nearly every active internal host
/// reaches alike is the network's own infrastructure (an agent every machine runs), not a C2.
fn shared(ctx: &Ctx<'_>, beacons: &[Beacon<'_>], out: &mut Vec<Finding>) {
    use std::collections::BTreeMap;
    let mut by_endpoint: BTreeMap<(crate::host::HostKey, u16, u8), Vec<&Beacon<'_>>> =
        BTreeMap::new();
    for b in beacons {
        by_endpoint
            .entry((b.server, b.ch.key.port, b.ch.key.proto))
            .or_default()
            .push(b);
    }
    let active_internal = ctx
        .graph
        .hosts()
        .filter(|(_, h)| h.internal && h.last_seen >= ctx.from)
        .count();
    for ((server, port, proto), group) in by_endpoint {
        let mut periods: Vec<u64> = group.iter().map(|b| b.period_ns).collect();
        periods.sort_unstable();
        let median = periods[periods.len() / 2] as f64;
        let alike: Vec<&&Beacon<'_>> = group
            .iter()
            .filter(|b| (b.period_ns as f64 - median).abs() <= 0.25 * median)
            .collect();
        if alike.len() < 2 {
            continue;
        }
        if active_internal >= 5 && alike.len() as f64 >= 0.8 * active_internal as f64 {
            continue;
        }
        let score = (0.5 + 0.1 * (alike.len() as f64 - 2.0)).min(0.8);
        for b in &alike {
            out.push(Finding {
                host: b.client,
                role: Role::Bot,
                evidence: Evidence {
                    role: Role::Bot,
                    kind: Behaviour::SharedC2,
                    score,
                    detail: format!(
                        "{} internal hosts beacon to this endpoint every {} or so",
                        alike.len(),
                        secs(median as u64)
                    ),
                    peer: Some(Peer {
                        host: server,
                        port: Some(port),
                        proto,
                    }),
                    first_seen: b.ch.first_seen.max(ctx.from),
                    last_seen: b.ch.last_seen,
                },
                other: Some((server, Role::C2)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(secs: &[f64]) -> Vec<Timestamp> {
        secs.iter()
            .map(|s| Timestamp((1_700_000_000.0 * 1e9 + s * 1e9) as u64))
            .collect()
    }

    #[test]
    fn regular_contacts_have_their_period() {
        let t: Vec<f64> = (0..20).map(|i| i as f64 * 30.0).collect();
        let p = periodicity(&times(&t), &BeaconConfig::default()).unwrap();
        assert!((p.period_ns as f64 / 1e9 - 30.0).abs() < 0.01);
        assert_eq!(p.missed, 0);
        assert!(p.regular_share > 0.99);
    }

    #[test]
    fn jitter_and_missed_beacons_keep_the_period() {
        // 60 s period, +-5 s jitter, every third beacon missing
        let jitter = [3.0, -4.0, 1.0, 5.0, -2.0, 0.0, -5.0, 2.0, 4.0, -1.0];
        let t: Vec<f64> = (0..30)
            .filter(|i| i % 3 != 2)
            .map(|i| i as f64 * 60.0 + jitter[i % jitter.len()])
            .collect();
        let p = periodicity(&times(&t), &BeaconConfig::default()).unwrap();
        assert!((p.period_ns as f64 / 1e9 - 60.0).abs() < 6.0, "{p:?}");
        assert!(p.missed >= 8);
    }

    #[test]
    fn random_contacts_have_no_period() {
        // a fixed pseudo-random sequence (xorshift), exponential-ish gaps
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut t = 0.0;
        let mut v = Vec::new();
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 10_000) as f64 / 10_000.0;
            t += -((1.0 - u).ln()) * 40.0 + 0.5;
            v.push(t);
        }
        assert_eq!(periodicity(&times(&v), &BeaconConfig::default()), None);
    }

    #[test]
    fn too_few_contacts_are_not_judged() {
        let t: Vec<f64> = (0..5).map(|i| i as f64 * 10.0).collect();
        assert_eq!(periodicity(&times(&t), &BeaconConfig::default()), None);
    }

    /// The search without its shortcut: every candidate period judged on every gap.
    fn periodicity_in_full(times: &[Timestamp], cfg: &BeaconConfig) -> Option<Periodicity> {
        let mut t: Vec<u64> = times.iter().map(|t| t.as_unix_nanos()).collect();
        t.sort_unstable();
        let gaps: Vec<u64> = t
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&g| g > 0)
            .collect();
        if gaps.len() + 1 < cfg.min_contacts {
            return None;
        }
        let min_period = (cfg.min_period_seconds * 1e9) as u64;
        let mut best: Option<Periodicity> = None;
        for &g in &gaps {
            for k in 1..=u64::from(cfg.max_missed) + 1 {
                let p = g / k;
                if p < min_period {
                    continue;
                }
                let (mut fit, mut missed) = (0usize, 0u32);
                for &g in &gaps {
                    let k = (g as f64 / p as f64).round();
                    if k >= 1.0 && k <= f64::from(cfg.max_missed + 1) {
                        let off = (g as f64 - k * p as f64).abs();
                        if off <= cfg.tolerance * p as f64 {
                            fit += 1;
                            missed += k as u32 - 1;
                        }
                    }
                }
                let share = fit as f64 / gaps.len() as f64;
                let better = best.is_none_or(|b| {
                    share > b.regular_share + 1e-9
                        || (share >= b.regular_share - 1e-9
                            && p > b.period_ns
                            && missed <= b.missed)
                });
                if better {
                    best = Some(Periodicity {
                        period_ns: p,
                        regular_share: share,
                        missed,
                        gaps: gaps.len(),
                    });
                }
            }
        }
        best.filter(|b| b.regular_share >= cfg.min_regular_share)
    }

    #[test]
    fn the_shortcut_finds_what_the_full_search_finds() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let configs = [
            BeaconConfig::default(),
            BeaconConfig {
                min_regular_share: 0.5,
                tolerance: 0.3,
                ..BeaconConfig::default()
            },
            BeaconConfig {
                min_regular_share: 0.0,
                min_contacts: 0,
                max_missed: 0,
                ..BeaconConfig::default()
            },
        ];
        let (mut found, mut cases) = (0, 0);
        for case in 0..3000u64 {
            let n = 2 + (next() % 24) as usize;
            let period = 1.0 + (next() % 600) as f64;
            let jitter = [0.0, 0.02, 0.1, 0.3, 1.0][(case % 5) as usize];
            let skip = next() % 4;
            let mut t = 0.0;
            let mut v = Vec::new();
            while v.len() < n {
                let u = (next() % 2001) as f64 / 1000.0 - 1.0;
                t += period * (1.0 + jitter * u);
                if skip == 0 || next() % (skip + 1) != 0 {
                    v.push(t);
                }
            }
            for cfg in &configs {
                let expected = periodicity_in_full(&times(&v), cfg);
                assert_eq!(periodicity(&times(&v), cfg), expected, "case {case}: {v:?}");
                found += usize::from(expected.is_some());
                cases += 1;
            }
        }
        // Both kinds of series occur: the comparison is not only of empty answers.
        assert!(
            found > cases / 10 && found < cases * 9 / 10,
            "{found} of {cases}"
        );
    }
}
