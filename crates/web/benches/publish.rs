//! What publishing for the API costs the detection thread, and what answering costs the server,
//! on a synthetic cloud: 2,000 internal hosts browsing 50,000 external servers (1 million flows
//! over 30 minutes), 200 of them beaconing every minute to one of five C2 endpoints.

use botnest_detect::{DetectConfig, Engine};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_web::state::FlowRing;
use botnest_web::View;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const T0: u64 = 1_700_000_000_000_000_000;
const SECONDS: u64 = 1800;

fn flow(src: IpAddr, dst: IpAddr, sp: u16, dp: u16, t: Timestamp, octets: u64) -> FlowRecord {
    FlowRecord {
        start: t,
        end: t.offset_nanos(300_000_000),
        src,
        dst,
        src_port: sp,
        dst_port: dp,
        protocol: 6,
        tcp_flags: 0x1b,
        octets,
        packets: 5,
        ..Default::default()
    }
}

/// Background browsing and beacons, in start order.
fn traffic(n: usize) -> Vec<FlowRecord> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let step = SECONDS * 1_000_000_000 / n as u64;
    let mut out: Vec<FlowRecord> = (0..n)
        .map(|i| {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (rng.next() % 2000) as u32));
            let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
            let server = IpAddr::V4(Ipv4Addr::from(0xc633_0000 + (u * u * 50_000.0) as u32));
            let sp = 40000 + (rng.next() % 20000) as u16;
            let t = Timestamp(T0 + i as u64 * step);
            flow(client, server, sp, 443, t, 200 + rng.next() % 20_000)
        })
        .collect();
    for bot in 0..200u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + bot));
        let c2 = IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + bot % 5));
        for k in 0..SECONDS / 60 {
            let t = Timestamp(T0 + (k * 60 + u64::from(bot % 50)) * 1_000_000_000);
            out.push(flow(src, c2, 40000 + k as u16, 8443, t, 310));
        }
    }
    out.sort_by_key(|f| f.start);
    out
}

fn bench(c: &mut Criterion) {
    let input = traffic(1_000_000);
    let mut engine = Engine::new(DetectConfig::default());
    for (i, f) in input.iter().enumerate() {
        engine.observe(f);
        if i % 4096 == 0 {
            let t = engine.newest();
            engine.advance(t);
        }
    }
    engine.finish();
    let view = View::build(&engine);
    let (hosts, channels) = engine.graph().size();
    eprintln!(
        "graph: {hosts} hosts, {channels} channels; view: {} verdicts, {} botnests, {} channels",
        view.verdicts.len(),
        view.botnests.len(),
        view.channels.len()
    );

    let mut group = c.benchmark_group("web");
    group.sample_size(10);
    // The detection thread's cost of one new view (after a window, at most every 250 ms).
    group.bench_function("view_build", |b| b.iter(|| View::build(&engine)));
    // An answer of /api/hosts: every accused host's JSON.
    group.bench_function("hosts_answer", |b| {
        b.iter(|| {
            let list: Vec<&serde_json::Value> = view.accused().map(|h| &h.json).collect();
            serde_json::to_vec(&serde_json::json!({ "hosts": list }))
                .unwrap()
                .len()
        })
    });
    // Handing a batch of 1,024 records to the ring of recent flows, full at 100,000.
    let mut ring = FlowRing::new(100_000);
    ring.extend(&input[..100_000]);
    group.throughput(Throughput::Elements(1024));
    group.bench_function("flow_ring_batch_1024", |b| {
        b.iter(|| ring.extend(&input[200_000..201_024]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
