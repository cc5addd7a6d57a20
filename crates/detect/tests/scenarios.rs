//! Detection on generated scenarios: each builds flows the way an exporter would report them
//! (a request record and, where the server answers, a reply record), runs the engine over them
//! and checks the botnests and verdicts.

use botnest_detect::{Behaviour, DetectConfig, Engine, HostVerdict, Lifecycle, Role};
use botnest_flow::{FlowRecord, Timestamp};
use std::net::IpAddr;

const T0: u64 = 1_700_000_000;

/// A small deterministic generator, so scenarios are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(secs: f64) -> Timestamp {
    Timestamp(((T0 as f64 + secs) * 1e9) as u64)
}

/// A TCP connection: the client's record and, if `answered`, the server's.
#[allow(clippy::too_many_arguments)]
fn tcp(
    out: &mut Vec<FlowRecord>,
    t: f64,
    c: &str,
    cport: u16,
    s: &str,
    sport: u16,
    bytes: u64,
    answered: bool,
) {
    let req = FlowRecord {
        start: at(t),
        end: at(t + 0.2),
        src: ip(c),
        dst: ip(s),
        src_port: cport,
        dst_port: sport,
        protocol: 6,
        tcp_flags: if answered { 0x1b } else { 0x02 },
        octets: bytes,
        packets: if answered { 5 } else { 1 },
        ..Default::default()
    };
    out.push(req);
    if answered {
        out.push(FlowRecord {
            src: ip(s),
            dst: ip(c),
            src_port: sport,
            dst_port: cport,
            tcp_flags: 0x1b,
            octets: 400,
            packets: 4,
            ..req
        });
    }
}

fn udp(out: &mut Vec<FlowRecord>, t: f64, c: &str, cport: u16, s: &str, sport: u16, bytes: u64) {
    let req = FlowRecord {
        start: at(t),
        end: at(t + 0.01),
        src: ip(c),
        dst: ip(s),
        src_port: cport,
        dst_port: sport,
        protocol: 17,
        octets: bytes,
        packets: 1,
        ..Default::default()
    };
    out.push(req);
    out.push(FlowRecord {
        src: ip(s),
        dst: ip(c),
        src_port: sport,
        dst_port: cport,
        ..req
    });
}

/// Benign background: web browsing at random times to many servers, DNS to the resolver,
/// NTP every 64 s, a metrics push to an internal collector every 60 s.
fn benign(out: &mut Vec<FlowRecord>, rng: &mut Rng, host: &str, hours: f64) {
    let mut t = rng.unit() * 30.0;
    while t < hours * 3600.0 {
        let server = format!("93.184.{}.{}", rng.next() % 200, 1 + rng.next() % 250);
        let n = 1 + rng.next() % 6;
        for i in 0..n {
            tcp(
                out,
                t + i as f64 * 0.3,
                host,
                40000 + (rng.next() % 20000) as u16,
                &server,
                443,
                500 + rng.next() % 30000,
                true,
            );
        }
        udp(
            out,
            t - 0.05,
            host,
            50000 + (rng.next() % 10000) as u16,
            "10.0.0.2",
            53,
            70,
        );
        t += -((1.0 - rng.unit()).ln()) * 90.0;
    }
    let mut t = 5.0;
    while t < hours * 3600.0 {
        udp(out, t, host, 123, "162.159.200.1", 123, 76);
        t += 64.0;
    }
    let mut t = 11.0;
    while t < hours * 3600.0 {
        tcp(
            out,
            t,
            host,
            30000 + (t as u16 % 1000),
            "10.0.0.3",
            9100,
            1200,
            true,
        );
        t += 60.0;
    }
}

fn run(mut flows: Vec<FlowRecord>, config: DetectConfig) -> Engine {
    flows.sort_by_key(|f| f.end);
    let mut e = Engine::new(config);
    for (i, f) in flows.iter().enumerate() {
        e.observe(f);
        if i % 256 == 0 {
            let n = e.newest();
            e.advance(n);
        }
    }
    e.finish();
    e
}

fn verdict<'a>(e: &'a Engine, addr: &str) -> Option<&'a HostVerdict> {
    e.verdicts().find(|v| v.host.addr == ip(addr))
}

fn is_bot(e: &Engine, addr: &str) -> bool {
    verdict(e, addr).is_some_and(|v| v.roles.contains(&Role::Bot))
}

#[test]
fn jittered_beacons_of_two_bots_form_one_botnest_with_their_c2() {
    let mut rng = Rng(7);
    let mut flows = Vec::new();
    for host in ["10.0.1.10", "10.0.1.11", "10.0.1.12"] {
        benign(&mut flows, &mut rng, host, 2.0);
    }
    for bot in ["10.0.1.20", "10.0.1.21"] {
        benign(&mut flows, &mut rng, bot, 2.0);
        let mut t = rng.unit() * 60.0;
        while t < 7200.0 {
            // 60 s period with +-10% jitter, 1 beacon in 6 missing
            if rng.next() % 6 != 0 {
                tcp(
                    &mut flows,
                    t,
                    bot,
                    45000 + (rng.next() % 1000) as u16,
                    "203.0.113.66",
                    8080,
                    310 + rng.next() % 20,
                    true,
                );
            }
            t += 60.0 * (0.9 + 0.2 * rng.unit());
        }
    }
    let e = run(flows, DetectConfig::default());
    assert!(
        is_bot(&e, "10.0.1.20") && is_bot(&e, "10.0.1.21"),
        "{:#?}",
        e.verdicts().collect::<Vec<_>>()
    );
    for benign in ["10.0.1.10", "10.0.1.11", "10.0.1.12"] {
        assert!(
            !verdict(&e, benign).is_some_and(|v| v.flagged()),
            "{benign} flagged: {:?}",
            verdict(&e, benign)
        );
    }
    let nests: Vec<_> = e.botnests().iter().collect();
    assert_eq!(nests.len(), 1, "{nests:#?}");
    let b = nests[0];
    assert!(b.c2.contains("203.0.113.66:8080"));
    assert!(b.members.keys().any(|h| h.addr == ip("10.0.1.20")));
    assert!(b.members.keys().any(|h| h.addr == ip("10.0.1.21")));
    assert_ne!(b.state, Lifecycle::Closed);
}

#[test]
fn retry_loop_to_a_refusing_c2_is_a_bot() {
    let mut rng = Rng(11);
    let mut flows = Vec::new();
    benign(&mut flows, &mut rng, "192.168.1.50", 0.2);
    let mut t = 0.0;
    while t < 600.0 {
        tcp(
            &mut flows,
            t,
            "192.168.1.107",
            60000 + (t as u16 % 500),
            "66.63.168.35",
            5888,
            52,
            false,
        );
        t += 0.5 + 0.05 * rng.unit();
    }
    let e = run(flows, DetectConfig::default());
    let v = verdict(&e, "192.168.1.107").expect("verdict");
    assert!(v.roles.contains(&Role::Bot), "{v:?}");
    let beacon = v
        .evidence
        .iter()
        .find(|e| e.kind == Behaviour::Beaconing)
        .unwrap();
    assert!(beacon.detail.contains("retry loop"), "{}", beacon.detail);
    assert_eq!(beacon.peer.unwrap().endpoint(), "66.63.168.35:5888");
    assert!(!verdict(&e, "192.168.1.50").is_some_and(|v| v.flagged()));
}

#[test]
fn a_scanner_and_the_host_it_infected_are_one_botnest() {
    let mut rng = Rng(3);
    let mut flows = Vec::new();
    // 10.0.2.5 scans telnet across 10.0.3.0/24; 10.0.3.77 answers, then scans 10.0.4.0/24
    for i in 0..200u32 {
        let target = format!("10.0.3.{}", i % 254 + 1);
        let answered = target == "10.0.3.77";
        tcp(
            &mut flows,
            10.0 + f64::from(i) * 0.5,
            "10.0.2.5",
            50000 + i as u16,
            &target,
            23,
            60,
            answered,
        );
    }
    for i in 0..200u32 {
        let target = format!("10.0.4.{}", i % 254 + 1);
        tcp(
            &mut flows,
            300.0 + f64::from(i) * 0.5,
            "10.0.3.77",
            40000 + i as u16,
            &target,
            23,
            60,
            rng.next() % 50 == 0,
        );
    }
    let e = run(flows, DetectConfig::default());
    assert!(is_bot(&e, "10.0.2.5"));
    let infected = verdict(&e, "10.0.3.77").expect("verdict");
    assert!(
        infected
            .evidence
            .iter()
            .any(|x| x.kind == Behaviour::WormSpread),
        "{infected:?}"
    );
    let nest = infected.botnest.expect("in a botnest");
    assert_eq!(verdict(&e, "10.0.2.5").unwrap().botnest, Some(nest));
}

#[test]
fn same_addresses_in_two_tenants_are_not_confused() {
    use botnest_detect::TenantSource;
    let mut rng = Rng(5);
    let mut flows = Vec::new();
    let tag = |records: Vec<FlowRecord>, vlan: u16, flows: &mut Vec<FlowRecord>| {
        flows.extend(records.into_iter().map(|r| FlowRecord { vlan, ..r }));
    };
    // Tenant 100: two bots beaconing to one C2. Tenant 200: the same two addresses, benign.
    for bot in ["10.0.0.5", "10.0.0.6"] {
        let mut f = Vec::new();
        let mut t = rng.unit() * 30.0;
        while t < 3600.0 {
            tcp(&mut f, t, bot, 50000, "203.0.113.9", 443, 300, true);
            t += 30.0 * (0.95 + 0.1 * rng.unit());
        }
        tag(f, 100, &mut flows);
        let mut g = Vec::new();
        benign(&mut g, &mut rng, bot, 1.0);
        tag(g, 200, &mut flows);
    }
    let mut config = DetectConfig::default();
    config.hosts.tenant_from = TenantSource::Vlan;
    let e = run(flows, config);
    let mut flagged: Vec<_> = e
        .verdicts()
        .filter(|v| v.roles.contains(&Role::Bot))
        .map(|v| (v.host.tenant, v.host.addr.to_string()))
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [(100, "10.0.0.5".to_owned()), (100, "10.0.0.6".to_owned())]
    );
    let nest = e.botnests().iter().next().expect("a botnest");
    assert!(
        nest.tenants.contains(&100) && !nest.tenants.contains(&200),
        "{nest:?}"
    );
}

#[test]
fn hosts_flooding_one_victim_together_are_flooders() {
    let mut flows = Vec::new();
    for (i, bot) in ["10.0.5.1", "10.0.5.2", "10.0.5.3"].iter().enumerate() {
        for s in 0..60u32 {
            flows.push(FlowRecord {
                start: at(100.0 + f64::from(s) + i as f64 * 0.1),
                end: at(101.0 + f64::from(s)),
                src: ip(bot),
                dst: ip("198.51.100.80"),
                src_port: 1024 + s as u16,
                dst_port: 80,
                protocol: 17,
                octets: 1_200_000,
                packets: 1000,
                ..Default::default()
            });
        }
    }
    let e = run(flows, DetectConfig::default());
    for bot in ["10.0.5.1", "10.0.5.2", "10.0.5.3"] {
        let v = verdict(&e, bot).expect("verdict");
        assert!(v.roles.contains(&Role::Flooder), "{v:?}");
    }
    let victim = verdict(&e, "198.51.100.80").expect("victim named");
    assert!(victim.roles.contains(&Role::Victim));
    assert_eq!(e.botnests().len(), 1);
}

#[test]
fn replay_gives_the_same_findings() {
    let mut rng = Rng(9);
    let mut flows = Vec::new();
    benign(&mut flows, &mut rng, "10.0.1.10", 1.0);
    let mut t = 0.0;
    while t < 3600.0 {
        tcp(
            &mut flows,
            t,
            "10.0.1.20",
            45000,
            "203.0.113.66",
            8080,
            310,
            true,
        );
        t += 45.0;
    }
    let a = run(flows.clone(), DetectConfig::default());
    let b = run(flows, DetectConfig::default());
    assert_eq!(a.snapshot().verdicts, b.snapshot().verdicts);
    assert_eq!(a.botnests(), b.botnests());
}

#[test]
fn snapshot_survives_a_round_trip_through_json() {
    let mut rng = Rng(13);
    let mut flows = Vec::new();
    for bot in ["10.0.1.20", "10.0.1.21"] {
        let mut t = rng.unit() * 60.0;
        while t < 3600.0 {
            tcp(&mut flows, t, bot, 45000, "203.0.113.66", 8080, 310, true);
            t += 60.0 * (0.95 + 0.1 * rng.unit());
        }
    }
    let e = run(flows, DetectConfig::default());
    let snapshot = e.snapshot();
    assert!(!e.botnests().is_empty());
    let text = serde_json::to_string(&snapshot).expect("snapshot serialises");
    let mut restored = Engine::new(DetectConfig::default());
    restored.restore(serde_json::from_str(&text).expect("snapshot parses"));
    assert_eq!(restored.snapshot().verdicts, snapshot.verdicts);
    assert_eq!(restored.botnests(), e.botnests());
}

/// One UDP exchange: the request and, if `answered`, the reply.
#[allow(clippy::too_many_arguments)]
fn udp_probe(
    out: &mut Vec<FlowRecord>,
    t: f64,
    c: &str,
    cport: u16,
    s: &str,
    sport: u16,
    bytes: u64,
    answered: bool,
) {
    let req = FlowRecord {
        start: at(t),
        end: at(t + 0.01),
        src: ip(c),
        dst: ip(s),
        src_port: cport,
        dst_port: sport,
        protocol: 17,
        octets: bytes,
        packets: 1,
        ..Default::default()
    };
    out.push(req);
    if answered {
        out.push(FlowRecord {
            src: ip(s),
            dst: ip(c),
            src_port: sport,
            dst_port: cport,
            octets: bytes + 40,
            ..req
        });
    }
}

/// A random port of the user and dynamic ranges.
fn high_port(rng: &mut Rng) -> u16 {
    1024 + (rng.next() % (65535 - 1024)) as u16
}

fn p2p_evidence(e: &Engine, addr: &str) -> Option<f64> {
    verdict(e, addr)?
        .evidence
        .iter()
        .filter(|x| x.kind == Behaviour::PeerToPeer)
        .map(|x| x.score)
        .reduce(f64::max)
}

/// Ten internal bots gossip with each other and with fifty external peers, each listening on
/// a random high UDP port; half of the external peers are gone and never answer. Each bot walks
/// its peer list in its own order, about one peer every ten seconds.
fn p2p_overlay(flows: &mut Vec<FlowRecord>, rng: &mut Rng, bots: &[String], hours: f64) {
    let external: Vec<(String, u16, bool)> = (0..50)
        .map(|i| {
            let addr = format!(
                "{}.{}.{}.{}",
                20 + i,
                rng.next() % 250,
                rng.next() % 250,
                1 + i
            );
            (addr, high_port(rng), i % 2 == 0)
        })
        .collect();
    let ports: Vec<u16> = bots.iter().map(|_| high_port(rng)).collect();
    for (b, bot) in bots.iter().enumerate() {
        let mut list: Vec<(String, u16, bool)> = external.clone();
        for (o, other) in bots.iter().enumerate().filter(|(o, _)| *o != b) {
            list.push((other.clone(), ports[o], true));
        }
        let mut t = rng.unit() * 10.0;
        while t < hours * 3600.0 {
            let (peer, port, alive) = &list[(rng.next() % list.len() as u64) as usize];
            let bytes = 60 + rng.next() % 80;
            udp_probe(flows, t, bot, ports[b], peer, *port, bytes, *alive);
            t += 10.0 * (0.5 + rng.unit());
        }
    }
}

#[test]
fn a_peer_to_peer_overlay_of_internal_bots_is_one_botnest_and_bystanders_stay_clean() {
    let mut rng = Rng(21);
    let mut flows = Vec::new();
    let bots: Vec<String> = (1..=10).map(|i| format!("10.0.7.{i}")).collect();
    p2p_overlay(&mut flows, &mut rng, &bots, 1.0);
    let bystanders = ["10.0.8.1", "10.0.8.2", "10.0.8.3"];
    for host in bystanders {
        benign(&mut flows, &mut rng, host, 1.0);
    }
    let e = run(flows, DetectConfig::default());
    for bot in &bots {
        let v = verdict(&e, bot).expect("verdict");
        assert!(v.roles.contains(&Role::Bot), "{v:#?}");
        assert!(p2p_evidence(&e, bot).is_some(), "{v:#?}");
    }
    for host in bystanders {
        assert!(
            !verdict(&e, host).is_some_and(|v| v.flagged()),
            "{host} flagged: {:?}",
            verdict(&e, host)
        );
        assert_eq!(p2p_evidence(&e, host), None, "{host}");
    }
    // Bots answer each other, so their overlay is one botnest, with answering peers in it.
    let nests: Vec<_> = e.botnests().iter().collect();
    assert_eq!(nests.len(), 1, "{nests:#?}");
    let members = &nests[0].members;
    assert!(bots.iter().all(|b| members.keys().any(|h| h.addr == ip(b))));
    assert!(members
        .iter()
        .any(|(h, roles)| !h.addr.to_string().starts_with("10.") && roles.contains(&Role::Peer)));
}

#[test]
fn browsing_quic_and_busy_service_clients_are_not_peer_to_peer() {
    let mut flows = Vec::new();
    // Many HTTPS servers over TCP and QUIC, all answering.
    for i in 0..300u32 {
        let t = f64::from(i) * 10.0;
        let server = format!("93.184.{}.{}", i % 200, 1 + i % 250);
        tcp(
            &mut flows,
            t,
            "10.0.9.1",
            40000 + i as u16,
            &server,
            443,
            900,
            true,
        );
        udp_probe(
            &mut flows,
            t + 1.0,
            "10.0.9.2",
            50000 + i as u16,
            &server,
            443,
            1200,
            true,
        );
    }
    // A client of one service spread over many servers on one high port, some unreachable.
    for i in 0..200u32 {
        let server = format!("198.51.{}.{}", i % 100, 1 + i % 200);
        let answered = i % 3 != 0;
        tcp(
            &mut flows,
            f64::from(i) * 15.0,
            "10.0.9.3",
            40000 + i as u16,
            &server,
            8443,
            700,
            answered,
        );
    }
    let e = run(flows, DetectConfig::default());
    for host in ["10.0.9.1", "10.0.9.2", "10.0.9.3"] {
        assert_eq!(
            p2p_evidence(&e, host),
            None,
            "{host}: {:?}",
            verdict(&e, host)
        );
        assert!(!verdict(&e, host).is_some_and(|v| v.flagged()), "{host}");
    }
}

#[test]
fn a_file_sharing_client_whose_peers_answer_stays_below_a_verdict() {
    let mut rng = Rng(29);
    let mut flows = Vec::new();
    let client = "10.0.10.5";
    for i in 0..150u32 {
        let peer = format!(
            "{}.{}.{}.{}",
            30 + i % 150,
            rng.next() % 250,
            rng.next() % 250,
            7
        );
        let port = high_port(&mut rng);
        let t = f64::from(i) * 20.0;
        // Most peers answer and send data; some are gone.
        let answered = i % 5 != 0;
        tcp(&mut flows, t, client, 51413, &peer, port, 60_000, answered);
        // Other peers connect to it on its listening port.
        if i % 10 == 0 {
            tcp(
                &mut flows,
                t + 3.0,
                &peer,
                40000 + i as u16,
                client,
                51413,
                800,
                true,
            );
        }
    }
    let e = run(flows, DetectConfig::default());
    let score = p2p_evidence(&e, client).expect("peer-to-peer evidence");
    assert!(score < 0.6, "{score}");
    assert!(!verdict(&e, client).unwrap().flagged());
}

#[test]
fn an_overlay_growing_beyond_its_history_marks_its_members() {
    let mut rng = Rng(31);
    let mut flows = Vec::new();
    let config = DetectConfig {
        window_seconds: 600,
        retention_seconds: 1200,
        ..DetectConfig::default()
    };
    // Two hours of ordinary traffic, then twelve hosts start gossiping among themselves on
    // random high UDP ports: too few peers each for the host view to speak.
    let members: Vec<String> = (1..=12).map(|i| format!("10.0.11.{i}")).collect();
    for host in members.iter().take(4) {
        benign(&mut flows, &mut rng, host, 3.0);
    }
    let ports: Vec<u16> = members.iter().map(|_| high_port(&mut rng)).collect();
    for (a, host) in members.iter().enumerate() {
        let mut t = 7200.0 + rng.unit() * 30.0;
        while t < 3.0 * 3600.0 {
            let b = (a + 1 + (rng.next() % 11) as usize) % 12;
            udp_probe(
                &mut flows,
                t,
                host,
                ports[a],
                &members[b],
                ports[b],
                90,
                true,
            );
            t += 30.0 * (0.5 + rng.unit());
        }
    }
    let e = run(flows, config);
    let grown = members
        .iter()
        .filter(|m| {
            verdict(&e, m).is_some_and(|v| {
                v.evidence
                    .iter()
                    .any(|x| x.kind == Behaviour::PeerToPeer && x.detail.contains("grew"))
            })
        })
        .count();
    assert!(grown >= 6, "{grown} members marked");
    // Growth alone is a suspicion, not a verdict.
    assert!(members
        .iter()
        .all(|m| !verdict(&e, m).is_some_and(|v| v.flagged())));
}

#[test]
fn a_bot_reaching_a_listed_endpoint_is_flagged_with_the_c2_named() {
    use botnest_detect::Intel;
    let mut rng = Rng(37);
    let mut flows = Vec::new();
    benign(&mut flows, &mut rng, "10.0.12.1", 0.5);
    benign(&mut flows, &mut rng, "10.0.12.2", 0.5);
    for i in 0..3u32 {
        let t = 100.0 + f64::from(i) * 400.0;
        tcp(
            &mut flows,
            t,
            "10.0.12.2",
            41000 + i as u16,
            "198.51.100.23",
            8443,
            900,
            true,
        );
    }
    // A listed network reached on any port.
    tcp(
        &mut flows,
        700.0,
        "10.0.12.3",
        42000,
        "192.0.2.77",
        80,
        500,
        true,
    );
    // A listed scanner probing a host that does not answer says nothing about the host.
    for i in 0..20u32 {
        tcp(
            &mut flows,
            50.0 + f64::from(i),
            "203.0.113.99",
            50000 + i as u16,
            "10.0.12.1",
            22,
            60,
            false,
        );
    }
    let mut intel = Intel::new();
    intel.insert_endpoint(
        ip("198.51.100.23"),
        8443,
        "feodo.csv",
        "198.51.100.23,8443,Dridex",
    );
    intel.insert_net(
        "192.0.2.0/24".parse().unwrap(),
        "drop.txt",
        "192.0.2.0/24 ; SBL1",
    );
    intel.insert_net(
        "203.0.113.0/24".parse().unwrap(),
        "drop.txt",
        "203.0.113.0/24 ; SBL2",
    );
    flows.sort_by_key(|f| f.end);
    let mut e = Engine::new(DetectConfig::default());
    e.set_intel(intel);
    for f in &flows {
        e.observe(f);
    }
    e.finish();

    let v = verdict(&e, "10.0.12.2").expect("verdict");
    assert!(v.roles.contains(&Role::Bot), "{v:?}");
    let b = v
        .evidence
        .iter()
        .find(|x| x.kind == Behaviour::Blocklisted)
        .unwrap();
    assert_eq!(b.score, 0.7);
    assert!(
        b.detail.contains("feodo.csv") && b.detail.contains("Dridex"),
        "{}",
        b.detail
    );
    assert!(verdict(&e, "198.51.100.23")
        .unwrap()
        .roles
        .contains(&Role::C2));
    let nest = e.botnests().get(v.botnest.expect("in a botnest")).unwrap();
    assert!(nest.c2.contains("198.51.100.23:8443"), "{nest:?}");

    let v3 = verdict(&e, "10.0.12.3").expect("verdict");
    let b3 = v3
        .evidence
        .iter()
        .find(|x| x.kind == Behaviour::Blocklisted)
        .unwrap();
    assert_eq!(b3.score, 0.6);
    assert!(b3.detail.contains("SBL1"), "{}", b3.detail);

    assert!(!verdict(&e, "10.0.12.1").is_some_and(|v| v.flagged()));
}

#[test]
fn allowed_endpoints_and_hosts_produce_no_findings() {
    let beacon_loop = || {
        let mut flows = Vec::new();
        let mut t = 0.0;
        while t < 600.0 {
            tcp(
                &mut flows,
                t,
                "192.168.1.107",
                60000 + (t as u16 % 500),
                "66.63.168.35",
                5888,
                52,
                false,
            );
            t += 0.5;
        }
        flows
    };
    assert!(is_bot(
        &run(beacon_loop(), DetectConfig::default()),
        "192.168.1.107"
    ));
    for allow in ["66.63.168.35:5888", "66.63.168.0/24", "192.168.1.107"] {
        let config = DetectConfig {
            allow: vec![allow.parse().unwrap()],
            ..DetectConfig::default()
        };
        let e = run(beacon_loop(), config);
        assert_eq!(
            e.verdicts().count(),
            0,
            "{allow}: {:?}",
            e.verdicts().collect::<Vec<_>>()
        );
    }
    // An endpoint entry covers its port only.
    let config = DetectConfig {
        allow: vec!["66.63.168.35:443".parse().unwrap()],
        ..DetectConfig::default()
    };
    assert!(is_bot(&run(beacon_loop(), config), "192.168.1.107"));
}

#[test]
fn scan_targets_on_fixed_high_ports_are_not_named_as_overlay_peers() {
    let mut rng = Rng(41);
    let mut flows = Vec::new();
    let bot = "10.0.13.7";
    // Exploit scanning on three fixed ports, a few targets answering...
    for i in 0..120u32 {
        let target = format!("198.18.{}.{}", i / 200, 1 + i % 200);
        let port = [8080, 2323, 9527][(i % 3) as usize];
        let t = f64::from(i) * 0.5;
        tcp(
            &mut flows,
            t,
            bot,
            40000 + i as u16,
            &target,
            port,
            60,
            i % 40 == 0,
        );
    }
    // ...and peer discovery to random addresses and ports, none answering.
    for i in 0..100u32 {
        let peer = format!("{}.{}.{}.9", 30 + i, rng.next() % 250, rng.next() % 250);
        let port = high_port(&mut rng);
        udp_probe(
            &mut flows,
            f64::from(i) * 0.7,
            bot,
            11694,
            &peer,
            port,
            37,
            false,
        );
    }
    let e = run(flows, DetectConfig::default());
    assert!(is_bot(&e, bot));
    let v = verdict(&e, bot).unwrap();
    let p2p = v
        .evidence
        .iter()
        .find(|x| x.kind == Behaviour::PeerToPeer)
        .expect("peer-to-peer evidence");
    assert!(p2p.detail.contains("100% unanswered"), "{}", p2p.detail);
    assert!(e.verdicts().all(|v| !v.roles.contains(&Role::Peer)));
}

#[test]
fn many_hosts_uploading_fast_to_one_answering_server_are_not_a_flood() {
    let mut flows = Vec::new();
    for h in 1..=5u32 {
        let client = format!("10.0.6.{h}");
        for s in 0..60u32 {
            let req = FlowRecord {
                start: at(100.0 + f64::from(s)),
                end: at(101.0 + f64::from(s)),
                src: ip(&client),
                dst: ip("198.51.100.44"),
                src_port: 40000 + h as u16,
                dst_port: 443,
                protocol: 6,
                tcp_flags: 0x18,
                octets: 1_400_000,
                packets: 1000,
                ..Default::default()
            };
            // the server acknowledges about every other packet
            let reply = FlowRecord {
                src: req.dst,
                dst: req.src,
                src_port: 443,
                dst_port: req.src_port,
                octets: 26_000,
                packets: 500,
                ..req
            };
            flows.push(req);
            flows.push(reply);
        }
    }
    let e = run(flows, DetectConfig::default());
    assert!(
        e.verdicts().all(|v| !v.flagged()),
        "{:#?}",
        e.verdicts().collect::<Vec<_>>()
    );
}

fn discovery_evidence<'a>(e: &'a Engine, addr: &str) -> Option<&'a botnest_detect::Evidence> {
    verdict(e, addr)?
        .evidence
        .iter()
        .find(|x| x.kind == Behaviour::PeerToPeer && x.detail.starts_with("peer discovery"))
}

/// A random public address outside the ranges the scenarios use for servers.
fn random_peer(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        100 + rng.next() % 100,
        rng.next() % 256,
        rng.next() % 256,
        1 + rng.next() % 254
    )
}

#[test]
fn sparse_peer_discovery_probes_over_minutes_make_a_bot() {
    let mut rng = Rng(37);
    let mut flows = Vec::new();
    let bot = "10.0.12.1";
    benign(&mut flows, &mut rng, bot, 1.0);
    benign(&mut flows, &mut rng, "10.0.12.2", 1.0);
    // One to four lone datagrams a minute to random peers on random high ports; one peer in
    // ten is alive and answers. The first probe goes out at minute 5.
    let start = 300.0;
    for minute in 5..60u32 {
        for _ in 0..1 + rng.next() % 4 {
            let t = f64::from(minute) * 60.0 + rng.unit() * 60.0;
            let peer = random_peer(&mut rng);
            let port = high_port(&mut rng);
            let alive = rng.next() % 10 == 0;
            udp_probe(&mut flows, t, bot, 11694, &peer, port, 37, alive);
        }
    }
    let mut e = run(flows, DetectConfig::default());
    assert!(is_bot(&e, bot), "{:?}", verdict(&e, bot));
    let ev = discovery_evidence(&e, bot).expect("peer discovery evidence");
    assert!(
        ev.detail.contains("external peers over UDP"),
        "{}",
        ev.detail
    );
    assert!(!verdict(&e, "10.0.12.2").is_some_and(|v| v.flagged()));
    // Found within a quarter of an hour of the first probe (the window, not the whole input).
    let mut first_alert = None;
    while let Some(ev) = e.poll() {
        if let botnest_detect::Event::Alert { at, host, .. } = ev {
            if host.addr == ip(bot) && first_alert.is_none() {
                first_alert = Some(at);
            }
        }
    }
    let first = first_alert.expect("an alert about the bot");
    assert!(first <= at(start + 15.0 * 60.0), "{first:?}");
}

#[test]
fn benign_udp_software_is_not_peer_discovery() {
    let mut rng = Rng(41);
    let mut flows = Vec::new();
    let hosts = [
        "10.0.13.1",
        "10.0.13.2",
        "10.0.13.3",
        "10.0.13.4",
        "10.0.13.5",
    ];
    for h in hosts {
        benign(&mut flows, &mut rng, h, 1.0);
    }
    for i in 0..120u32 {
        let t = f64::from(i) * 30.0;
        // A video-call client: STUN and TURN servers, then media to the call's peer, answered.
        udp_probe(
            &mut flows,
            t,
            hosts[0],
            50000,
            "74.125.250.129",
            19302,
            60,
            true,
        );
        udp_probe(
            &mut flows,
            t + 1.0,
            hosts[0],
            50001,
            "192.0.2.40",
            3478,
            100,
            i % 4 != 0,
        );
        let peer = format!("198.18.{}.{}", i % 40, 1 + i % 250);
        udp_probe(
            &mut flows,
            t + 2.0,
            hosts[0],
            50002,
            &peer,
            high_port(&mut rng),
            180,
            true,
        );
        // Local discovery to group addresses, unanswered.
        udp_probe(
            &mut flows,
            t + 3.0,
            hosts[1],
            5353,
            "224.0.0.251",
            5353,
            90,
            false,
        );
        udp_probe(
            &mut flows,
            t + 4.0,
            hosts[1],
            51000,
            "239.255.255.250",
            1900,
            120,
            false,
        );
        udp_probe(
            &mut flows,
            t + 5.0,
            hosts[1],
            52000,
            "224.0.0.252",
            5355,
            70,
            false,
        );
        // QUIC to many servers on 443, DNS to public resolvers, NTP to pool servers.
        let server = random_peer(&mut rng);
        udp_probe(
            &mut flows,
            t + 6.0,
            hosts[2],
            53000 + i as u16,
            &server,
            443,
            1200,
            true,
        );
        let resolver = ["1.1.1.1", "8.8.8.8", "9.9.9.9"][(i % 3) as usize];
        udp_probe(
            &mut flows,
            t + 7.0,
            hosts[2],
            54000 + i as u16,
            resolver,
            53,
            70,
            i % 20 != 0,
        );
        let ntp = random_peer(&mut rng);
        udp_probe(
            &mut flows,
            t + 8.0,
            hosts[3],
            123,
            &ntp,
            123,
            76,
            i % 5 != 0,
        );
        // A VPN client retrying a dead endpoint (IPsec NAT traversal, WireGuard).
        udp_probe(
            &mut flows,
            t + 9.0,
            hosts[3],
            4500,
            "203.0.113.9",
            4500,
            200,
            false,
        );
        udp_probe(
            &mut flows,
            t + 10.0,
            hosts[3],
            40000,
            "203.0.113.10",
            51820,
            148,
            false,
        );
        // A DHT client: one query per peer, most peers answer.
        let peer = random_peer(&mut rng);
        let port = high_port(&mut rng);
        udp_probe(
            &mut flows,
            t + 11.0,
            hosts[4],
            6881,
            &peer,
            port,
            110,
            i % 3 != 0,
        );
    }
    let e = run(flows, DetectConfig::default());
    for h in hosts {
        assert!(
            discovery_evidence(&e, h).is_none(),
            "{h}: {:?}",
            verdict(&e, h)
        );
    }
    // The DHT client is a genuine overlay node: the peer-list view gives it a moderate score
    // that other weak evidence can lift to a verdict (README, "Known limitations").
    for h in &hosts[..4] {
        assert!(
            !verdict(&e, h).is_some_and(|v| v.flagged()),
            "{h}: {:?}",
            verdict(&e, h)
        );
    }
}

#[test]
fn a_jump_of_event_time_skips_the_windows_in_between() {
    use botnest_detect::{DetectConfig, Engine};
    use botnest_flow::{FlowRecord, Timestamp};
    let mut engine = Engine::new(DetectConfig::default());
    let flow = |secs: u64| FlowRecord {
        start: Timestamp::from_unix_secs(secs),
        end: Timestamp::from_unix_secs(secs + 1),
        src: "10.0.0.1".parse().unwrap(),
        dst: "198.51.100.1".parse().unwrap(),
        src_port: 40000,
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        octets: 500,
        packets: 5,
        ..FlowRecord::default()
    };
    let t0 = 1_700_000_000;
    for i in 0..600 {
        engine.observe(&flow(t0 + i * 10));
        let newest = engine.newest();
        engine.advance(newest);
    }
    let before = engine.stats().evaluations;
    assert!((90..=100).contains(&before), "{before}");
    // Three years later, in one step.
    let later = t0 + 3 * 365 * 86_400;
    engine.observe(&flow(later));
    engine.advance(Timestamp::from_unix_secs(later + 3600));
    let s = engine.stats();
    assert!(s.windows_skipped > 1_500_000, "{s:?}");
    assert!(s.evaluations - before <= 200, "{s:?}");
    // Evaluation goes on window by window from there.
    engine.advance(Timestamp::from_unix_secs(later + 3600 + 600));
    assert_eq!(engine.stats().evaluations, s.evaluations + 10);
}

#[test]
fn records_inside_a_jump_of_event_time_are_still_evaluated() {
    use botnest_detect::{DetectConfig, Engine};
    use botnest_flow::{FlowRecord, Timestamp};
    let mut engine = Engine::new(DetectConfig::default());
    let flow = |src: &str, secs: u64| FlowRecord {
        start: Timestamp::from_unix_secs(secs),
        end: Timestamp::from_unix_secs(secs + 1),
        src: src.parse().unwrap(),
        dst: "198.51.100.1".parse().unwrap(),
        src_port: 40000,
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        octets: 500,
        packets: 5,
        ..FlowRecord::default()
    };
    let t0 = 1_700_000_000;
    engine.observe(&flow("10.0.0.1", t0));
    engine.advance(Timestamp::from_unix_secs(t0));
    // One batch, years later: an hour of contacts, then a record three hours on.
    let later = t0 + 3 * 365 * 86_400;
    for i in 0..60 {
        engine.observe(&flow("10.0.0.2", later + i * 60));
    }
    engine.observe(&flow("10.0.0.3", later + 3 * 3600));
    let before = engine.stats().evaluations;
    engine.advance(Timestamp::from_unix_secs(later + 3 * 3600));
    let s = engine.stats();
    assert!(s.windows_skipped > 1_500_000, "{s:?}");
    // Every window from the first contact to the watermark is evaluated: none of the quiet
    // stretches there is long enough to pass over.
    let evaluated = s.evaluations - before;
    assert!((170..=250).contains(&evaluated), "{s:?}");
}
