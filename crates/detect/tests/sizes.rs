//! The engine's state sizes, as a metrics endpoint reads them: they follow what the engine
//! holds, grow with it and shrink when idle state expires.

use botnest_detect::{DetectConfig, Engine};
use botnest_flow::{FlowRecord, Timestamp};

const T0: u64 = 1_700_000_000;

/// One connection attempt from `client` to `server` on `port` at `t` seconds, unanswered.
fn attempt(client: u32, server: u32, port: u16, t: u64) -> FlowRecord {
    FlowRecord {
        start: Timestamp::from_unix_secs(T0 + t),
        end: Timestamp::from_unix_secs(T0 + t),
        src: std::net::Ipv4Addr::from(client).into(),
        dst: std::net::Ipv4Addr::from(server).into(),
        src_port: 40000,
        dst_port: port,
        protocol: 6,
        tcp_flags: 0x02,
        packets: 1,
        octets: 60,
        ..Default::default()
    }
}

#[test]
fn sizes_follow_the_state_the_engine_holds() {
    let mut engine = Engine::new(DetectConfig::default());
    let empty = engine.sizes();
    assert_eq!((empty.hosts, empty.channels, empty.verdicts), (0, 0, 0));

    // 10.0.0.5 probes 200 addresses on port 23, none answering: a scanner.
    let scanner = u32::from(std::net::Ipv4Addr::new(10, 0, 0, 5));
    let targets = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 0));
    for i in 0..200 {
        engine.observe(&attempt(scanner, targets + i, 23, i as u64));
    }
    engine.advance(Timestamp::from_unix_secs(T0 + 600));
    let busy = engine.sizes();
    assert_eq!((busy.hosts, busy.channels), (201, 200));
    assert_eq!(busy.channel_slots, 200);
    assert!(busy.verdicts >= 1 && busy.evidence >= 1, "{busy:?}");
    assert!(busy.alerted >= 1, "{busy:?}");
    assert_eq!(busy.botnests, engine.botnests().len());
    assert!(busy.pending_events >= 1);
    // The graph's allocations hold at least its 200 channels.
    assert!(busy.graph_bytes >= 200 * 184, "{busy:?}");
    assert!(busy.memory_bytes > busy.graph_bytes);
    while engine.poll().is_some() {}
    assert_eq!(engine.sizes().pending_events, 0);

    // Three hours later everything idle has expired.
    engine.advance(Timestamp::from_unix_secs(T0 + 3 * 3600 + 600));
    let idle = engine.sizes();
    assert_eq!((idle.hosts, idle.channels), (0, 0));
    assert!(idle.overlay_samples > 0, "{idle:?}");
}
