//! Fan-out behaviours: scanning (and worm spread), brute force, spam.

use super::{Ctx, Finding};
use crate::config::FanoutConfig;
use crate::evidence::{Behaviour, Evidence, Peer, Role};
use crate::graph::{Channel, HostId};
use crate::host::HostKey;
use botnest_flow::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// What one client did on one port over the window.
#[derive(Debug, Default)]
struct PortActivity<'a> {
    channels: Vec<&'a Channel>,
    flows: u64,
    answered: u64,
    first: Option<Timestamp>,
    last: Timestamp,
}

/// The window's channels of internal clients, grouped by client and (port, protocol).
struct Clients<'a> {
    /// Clients with enough channels to scan or spam, by port.
    busy: FxHashMap<HostId, BTreeMap<(u16, u8), PortActivity<'a>>>,
    /// Of the other clients, only the channels that may be brute force, by client (their
    /// order is the graph's).
    few: FxHashMap<HostId, Vec<&'a Channel>>,
    /// Hosts that accept mail (mail servers, whose job is fan-out to other servers).
    mail_servers: FxHashSet<HostId>,
}

/// Whether a channel of an internal client counts toward its fan-out.
fn fans_out(ctx: &Ctx<'_>, ch: &Channel) -> bool {
    ctx.internal(ch.key.client) && !ctx.local_or_group(ch.key.server)
}

/// Whether one channel has the attempts brute force needs.
fn login_attempts(cfg: &FanoutConfig, ch: &Channel) -> bool {
    ch.key.proto == 6
        && cfg.login_ports.contains(&ch.key.port)
        && ch.flows >= cfg.bruteforce_min_attempts
        && (ch.bytes_out as f64 / f64::from(ch.flows.max(1))) < 4096.0
}

/// Groups the channels. A client needs at least as many channels as the smaller of the scan
/// and spam thresholds to scan or spam: fewer, and only its channels that may be brute force
/// are kept, which spares grouping the channels of the many quiet hosts.
fn by_client<'a>(ctx: &'a Ctx<'_>) -> Clients<'a> {
    let cfg = &ctx.config.fanout;
    let need = cfg.scan_min_targets.min(cfg.spam_min_servers);
    let mut count = vec![0u32; ctx.graph.host_slots()];
    let mut mail_servers = FxHashSet::default();
    for ch in ctx.active() {
        if fans_out(ctx, ch) {
            count[ch.key.client as usize] += 1;
        }
        if ch.key.proto == 6 && cfg.mail_ports.contains(&ch.key.port) && ch.answered > 0 {
            mail_servers.insert(ch.key.server);
        }
    }
    let mut clients = Clients {
        busy: FxHashMap::default(),
        few: FxHashMap::default(),
        mail_servers,
    };
    for ch in ctx.active() {
        let n = count.get(ch.key.client as usize).copied().unwrap_or(0);
        if n == 0 || !fans_out(ctx, ch) {
            continue;
        }
        if (n as usize) < need {
            if login_attempts(cfg, ch) {
                clients.few.entry(ch.key.client).or_default().push(ch);
            }
            continue;
        }
        let a = clients
            .busy
            .entry(ch.key.client)
            .or_default()
            .entry((ch.key.port, ch.key.proto))
            .or_default();
        a.flows += u64::from(ch.flows);
        a.answered += u64::from(ch.answered.min(ch.flows));
        a.first = Some(a.first.map_or(ch.first_seen, |f| f.min(ch.first_seen)));
        a.last = a.last.max(ch.last_seen);
        a.channels.push(ch);
    }
    clients
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 | 58 => "icmp",
        _ => "ip",
    }
}

/// Reports scanning, worm spread, brute force and spam.
pub fn run(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let cfg = &ctx.config.fanout;
    let clients = by_client(ctx);
    let mail_servers_seen = &clients.mail_servers;
    let mut scanners: FxHashMap<HostId, (Timestamp, Vec<u16>)> = FxHashMap::default();

    // Quiet clients: brute force is all they can show, in port order as for the others.
    for (&client, chans) in &clients.few {
        let Some(client_key) = ctx.key(client) else {
            continue;
        };
        let mut chans = chans.clone();
        chans.sort_by_key(|c| c.key.port);
        for ch in chans {
            brute_force(ctx, client_key, ch, out);
        }
    }

    for (&client, ports) in &clients.busy {
        let Some(client_key) = ctx.key(client) else {
            continue;
        };

        // Scanning: many targets, little success, on a port or across the probed ports.
        let mut probed = Vec::new();
        let (mut targets, mut flows, mut answered) = (0usize, 0u64, 0u64);
        let mut first = None::<Timestamp>;
        let mut last = Timestamp::default();
        for (&(port, proto), a) in ports {
            let success = a.answered as f64 / a.flows.max(1) as f64;
            if success <= cfg.scan_max_success && a.channels.len() >= 2 {
                probed.push((port, proto, a.channels.len(), success));
                targets += a.channels.len();
                flows += a.flows;
                answered += a.answered;
                first = Some(first.map_or(a.first.unwrap_or(a.last), |f: Timestamp| {
                    f.min(a.first.unwrap_or(a.last))
                }));
                last = last.max(a.last);
            }
        }
        if targets >= cfg.scan_min_targets {
            probed.sort_by_key(|p| std::cmp::Reverse(p.2));
            let ports_text: Vec<String> = probed
                .iter()
                .take(6)
                .map(|(p, pr, n, _)| format!("{p}/{} ({n})", proto_name(*pr)))
                .collect();
            let success = answered as f64 / flows.max(1) as f64;
            let score =
                (0.55 + 0.1 * (targets as f64 / cfg.scan_min_targets as f64).log2()).min(0.95);
            let first = first.unwrap_or(last);
            out.push(Finding {
                host: client_key,
                role: Role::Scanner,
                evidence: Evidence {
                    role: Role::Scanner,
                    kind: Behaviour::Scanning,
                    score,
                    detail: format!(
                        "probed {targets} targets on {} ({:.0}% answered)",
                        ports_text.join(", "),
                        success * 100.0
                    ),
                    peer: None,
                    first_seen: first,
                    last_seen: last,
                },
                other: None,
            });
            scanners.insert(client, (first, probed.iter().map(|p| p.0).collect()));
        }

        // Brute force: many short attempts on one target's login port.
        for (&(port, proto), a) in ports {
            if !cfg.login_ports.contains(&port) || proto != 6 {
                continue;
            }
            for ch in &a.channels {
                if login_attempts(cfg, ch) {
                    brute_force(ctx, client_key, ch, out);
                }
            }
        }

        // Spam: mail to many servers from a host that is not itself a mail server.
        let mail_servers: usize = ports
            .iter()
            .filter(|((port, proto), _)| *proto == 6 && cfg.mail_ports.contains(port))
            .map(|(_, a)| a.channels.len())
            .sum();
        if mail_servers >= cfg.spam_min_servers && !mail_servers_seen.contains(&client) {
            out.push(Finding {
                host: client_key,
                role: Role::Spammer,
                evidence: Evidence {
                    role: Role::Spammer,
                    kind: Behaviour::Spam,
                    score: (0.5 + mail_servers as f64 / 100.0).min(0.9),
                    detail: format!("sent mail to {mail_servers} servers and receives none itself"),
                    peer: None,
                    first_seen: ctx.from,
                    last_seen: ctx.to,
                },
                other: None,
            });
        }
    }

    worm_spread(ctx, &scanners, out);
}

/// Reports many short login attempts on one channel.
fn brute_force(ctx: &Ctx<'_>, client_key: HostKey, ch: &Channel, out: &mut Vec<Finding>) {
    let (port, proto) = (ch.key.port, ch.key.proto);
    let mean = ch.bytes_out as f64 / f64::from(ch.flows.max(1));
    let Some(server) = ctx.key(ch.key.server) else {
        return;
    };
    out.push(Finding {
        host: client_key,
        role: Role::Bruteforcer,
        evidence: Evidence {
            role: Role::Bruteforcer,
            kind: Behaviour::BruteForce,
            score: (0.5 + f64::from(ch.flows) / 400.0).min(0.9),
            detail: format!(
                "{} login attempts on port {port}, {mean:.0} B each on average",
                ch.flows
            ),
            peer: Some(Peer {
                host: server,
                port: Some(port),
                proto,
            }),
            first_seen: ch.first_seen,
            last_seen: ch.last_seen,
        },
        other: Some((server, Role::Victim)),
    });
}

/// A scanner that was contacted by another scanner on a port it now scans, before it began:
/// a propagation chain.
fn worm_spread(
    ctx: &Ctx<'_>,
    scanners: &FxHashMap<HostId, (Timestamp, Vec<u16>)>,
    out: &mut Vec<Finding>,
) {
    if scanners.is_empty() {
        return;
    }
    for ch in ctx.active() {
        let (src, dst) = (ch.key.client, ch.key.server);
        let (Some(_), Some((started, ports))) = (scanners.get(&src), scanners.get(&dst)) else {
            continue;
        };
        if ch.first_seen >= *started || !ports.contains(&ch.key.port) {
            continue;
        }
        let (Some(infected), Some(infector)) = (ctx.key(dst), ctx.key(src)) else {
            continue;
        };
        out.push(Finding {
            host: infected,
            role: Role::Scanner,
            evidence: Evidence {
                role: Role::Scanner,
                kind: Behaviour::WormSpread,
                score: 0.8,
                detail: format!(
                    "began scanning port {} after {} reached it on that port",
                    ch.key.port, infector.addr
                ),
                peer: Some(Peer {
                    host: infector,
                    port: Some(ch.key.port),
                    proto: ch.key.proto,
                }),
                first_seen: ch.first_seen,
                last_seen: ch.last_seen,
            },
            other: Some((infector, Role::Scanner)),
        });
    }
}
