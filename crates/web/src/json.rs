//! The JSON shapes of hosts, botnests, channels and flows, shared by `botnest analyze --format
//! json` and the HTTP API so both speak the same language.

use botnest_detect::graph::{tcp, Channel};
use botnest_detect::{Botnest, Engine, HostKey, HostVerdict, Role};
use botnest_flow::{FlowRecord, Timestamp};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: Timestamp) -> String {
    let st = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.as_unix_nanos());
    humantime::format_rfc3339_millis(st).to_string()
}

/// Parses an RFC 3339 time (as [`rfc3339`] writes it, or with any fraction or none).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let st = humantime::parse_rfc3339_weak(s).ok()?;
    let d = st.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(Timestamp(u64::try_from(d.as_nanos()).ok()?))
}

/// The snake_case name of a role.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Bot => "bot",
        Role::C2 => "c2",
        Role::Peer => "peer",
        Role::Victim => "victim",
        Role::Scanner => "scanner",
        Role::Spammer => "spammer",
        Role::Flooder => "flooder",
        Role::Bruteforcer => "bruteforcer",
    }
}

/// The most telling role of a host, for a one-word column.
pub fn primary_role(roles: &BTreeSet<Role>) -> Option<Role> {
    roles.iter().next().copied()
}

/// Rounds a score to three decimals for display.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Whether a verdict is reported as an accused host: flagged and over the bot threshold, or a
/// C2 endpoint.
pub fn accused(engine: &Engine, v: &HostVerdict) -> bool {
    v.flagged() && (v.score >= engine.config().bot_threshold || v.roles.contains(&Role::C2))
}

/// A host's verdict: an entry of `hosts`.
pub fn host_json(engine: &Engine, v: &HostVerdict) -> Value {
    json!({
        "address": v.host.addr.to_string(),
        "tenant": engine.hosts().tenant_name(v.host.tenant),
        "roles": v.roles.iter().map(|r| role_name(*r)).collect::<Vec<_>>(),
        "score": round3(v.score),
        "first_seen": rfc3339(v.first_seen),
        "last_seen": rfc3339(v.last_seen),
        "botnest": v.botnest,
        "evidence": v.evidence.iter().map(|e| json!({
            "kind": e.kind.name(),
            "score": round3(e.score),
            "detail": e.detail,
            "peer": e.peer.map(|p| p.endpoint()),
            "first_seen": rfc3339(e.first_seen),
            "last_seen": rfc3339(e.last_seen),
        })).collect::<Vec<_>>(),
    })
}

fn member_json(engine: &Engine, host: &HostKey, roles: &BTreeSet<Role>) -> Value {
    json!({
        "address": host.addr.to_string(),
        "tenant": engine.hosts().tenant_name(host.tenant),
        "role": primary_role(roles).map(role_name),
        "roles": roles.iter().map(|r| role_name(*r)).collect::<Vec<_>>(),
    })
}

/// A host named by address and tenant: tenants reuse private addresses, so an address alone is
/// ambiguous.
fn host_ref(engine: &Engine, k: &HostKey) -> Value {
    json!({"address": k.addr.to_string(), "tenant": engine.hosts().tenant_name(k.tenant)})
}

/// A botnest: an entry of `botnests`.
pub fn botnest_json(engine: &Engine, b: &Botnest) -> Value {
    json!({
        "id": b.id,
        "state": b.state,
        "score": round3(b.score),
        "members": b.members.iter().map(|(h, r)| member_json(engine, h, r)).collect::<Vec<_>>(),
        "c2": b.c2.iter().collect::<Vec<_>>(),
        "tenants": b.tenants.iter().map(|t| engine.hosts().tenant_name(*t)).collect::<Vec<_>>(),
        "first_seen": rfc3339(b.first_seen),
        "last_seen": rfc3339(b.last_seen),
        "flows": b.flows.iter().map(|f| json!({
            "client": host_ref(engine, &f.client),
            "server": host_ref(engine, &f.server),
            "port": f.port,
            "proto": f.proto,
            "flows": f.flows,
            "failed": f.failed,
            "bytes_out": f.bytes_out,
            "bytes_in": f.bytes_in,
            "first_seen": rfc3339(f.first_seen),
            "last_seen": rfc3339(f.last_seen),
        })).collect::<Vec<_>>(),
    })
}

/// The engine's counters and state sizes.
pub fn stats_json(engine: &Engine) -> Value {
    let s = engine.stats();
    let (hosts, channels) = engine.graph().size();
    let g = engine.graph().stats();
    json!({
        "flows": s.flows, "late": s.late, "too_late": s.too_late, "windows": s.evaluations,
        "hosts": hosts, "channels": channels,
        "hosts_refused": g.hosts_refused,
        "channels_refused": g.channels_refused,
    })
}

/// The JSON document of `analyze --format json`.
pub fn report(engine: &Engine) -> Value {
    let hosts: Vec<Value> = engine
        .verdicts()
        .filter(|v| accused(engine, v))
        .map(|v| host_json(engine, v))
        .collect();
    let botnests: Vec<Value> = engine
        .botnests()
        .iter()
        .map(|b| botnest_json(engine, b))
        .collect();
    json!({
        "hosts": hosts,
        "botnests": botnests,
        "stats": stats_json(engine),
    })
}

/// TCP flags as letters, in the order tcpdump prints them: `S` SYN, `A` ACK, `F` FIN, `R` RST,
/// `P` PSH, `U` URG, `E` ECE, `C` CWR.
pub fn tcp_flags(flags: u16) -> String {
    const LETTERS: [(u16, char); 8] = [
        (tcp::SYN, 'S'),
        (tcp::ACK, 'A'),
        (tcp::FIN, 'F'),
        (tcp::RST, 'R'),
        (tcp::PSH, 'P'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'C'),
    ];
    LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Mean and coefficient of variation of the intervals between a channel's recent requests, in
/// seconds; none with fewer than three requests.
pub fn intervals(c: &Channel) -> Option<(f64, f64)> {
    let times: Vec<u64> = c.contacts().map(|t| t.as_unix_nanos()).collect();
    if times.len() < 3 {
        return None;
    }
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e9)
        .collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    let cv = if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
    Some((mean, cv))
}

/// A channel between two hosts of the graph.
pub fn channel_json(engine: &Engine, c: &Channel) -> Option<Value> {
    let graph = engine.graph();
    let client = graph.host(c.key.client)?.key;
    let server = graph.host(c.key.server)?.key;
    let (mean, cv) = match intervals(c) {
        Some((m, cv)) => (Some(round3(m)), Some(round3(cv))),
        None => (None, None),
    };
    Some(json!({
        "client": host_ref(engine, &client),
        "server": host_ref(engine, &server),
        "port": c.key.port,
        "proto": c.key.proto,
        "flows": c.flows,
        "failed": c.failed,
        "bytes_out": c.bytes_out,
        "bytes_in": c.bytes_in,
        "packets_out": c.packets_out,
        "packets_in": c.packets_in,
        "first_seen": rfc3339(c.first_seen),
        "last_seen": rfc3339(c.last_seen),
        "interval_mean_s": mean,
        "interval_cv": cv,
        "size_mean": round3(f64::from(c.size_mean)),
        "size_cv": round3(c.size_cv()),
        "tcp_flags": tcp_flags(c.flags_out),
        "tcp_flags_in": tcp_flags(c.flags_in),
    }))
}

/// A normalised flow record, as `botnest decode` prints its `flow` object, with times in
/// RFC 3339.
pub fn flow_json(f: &FlowRecord) -> Value {
    json!({
        "start": rfc3339(f.start),
        "end": rfc3339(f.end),
        "src": f.src.to_string(),
        "dst": f.dst.to_string(),
        "src_port": f.src_port,
        "dst_port": f.dst_port,
        "protocol": f.protocol,
        "tcp_flags": tcp_flags(f.tcp_flags),
        "reverse_tcp_flags": tcp_flags(f.reverse_tcp_flags),
        "octets": f.octets,
        "packets": f.packets,
        "reverse_octets": f.reverse_octets,
        "reverse_packets": f.reverse_packets,
        "sampling_interval": f.sampling_interval,
        "vlan": f.vlan,
        "observation_domain": f.observation_domain,
        "exporter": f.exporter.to_string(),
        "input_interface": f.input_interface,
        "output_interface": f.output_interface,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_like_tcpdump() {
        assert_eq!(tcp_flags(tcp::SYN | tcp::ACK), "SA");
        assert_eq!(tcp_flags(tcp::FIN | tcp::PSH | tcp::ACK), "AFP");
        assert_eq!(tcp_flags(0), "");
    }

    #[test]
    fn times_round_trip() {
        let t = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(Timestamp::from_unix_secs(1_700_000_000))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
