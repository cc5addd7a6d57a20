//! Flows per second into the detection engine's graph, on a synthetic cloud: 2,000 internal
//! hosts talking to 50,000 external servers with Zipf-like popularity, replies included, time
//! moving forward so windows are evaluated as they would be live.
//!
//! Times are the benchmark thread's CPU time (the machine is shared), so throughputs read as
//! flows per CPU second of one core.

#[path = "../../wire/benches/common/mod.rs"]
mod common;

use botnest_detect::detectors::p2p::OverlayHistory;
use botnest_detect::detectors::{run_all, Ctx};
use botnest_detect::graph::Graph;
use botnest_detect::{DetectConfig, Engine, Hosts, Intel};
use botnest_flow::{FlowRecord, Timestamp};
use common::cpu::ThreadCpu;
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

/// `n` flows over `seconds` of event time, in end order.
fn flows(n: usize, seconds: u64) -> Vec<FlowRecord> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = 1_700_000_000_000_000_000u64;
    let step = seconds * 1_000_000_000 / n as u64;
    let ports = [443u16, 443, 443, 80, 53, 123, 22, 8080, 3306, 25];
    (0..n)
        .map(|i| {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (rng.next() % 2000) as u32));
            // squaring a uniform draw favours low server numbers: popular servers
            let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
            let server = IpAddr::V4(Ipv4Addr::from(0xc633_0000 + (u * u * 50_000.0) as u32));
            let port = ports[(rng.next() % ports.len() as u64) as usize];
            let t = Timestamp(t0 + i as u64 * step);
            let reply = rng.next() % 2 == 0;
            let (src, dst, sp, dp) = if reply {
                (server, client, port, 40000 + (rng.next() % 20000) as u16)
            } else {
                (client, server, 40000 + (rng.next() % 20000) as u16, port)
            };
            FlowRecord {
                start: t.offset_nanos(-2_000_000_000),
                end: t,
                src,
                dst,
                src_port: sp,
                dst_port: dp,
                protocol: if port == 53 || port == 123 { 17 } else { 6 },
                tcp_flags: 0x1b,
                octets: 200 + rng.next() % 20_000,
                packets: 2 + rng.next() % 20,
                ..Default::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion<ThreadCpu>) {
    let n = 1_000_000;
    let input = flows(n, 1800);
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);

    // Flows into the property graph alone: orientation, hosts, channels, counters.
    group.bench_function("graph_observe_1M_flows", |b| {
        let config = DetectConfig::default();
        let hosts = Hosts::new(&config.hosts);
        b.iter(|| {
            let mut graph = Graph::new(3_600_000_000_000, config.max_hosts, config.max_channels);
            for f in &input {
                graph.observe(&hosts, f);
            }
            graph.size()
        })
    });

    // The whole engine over 30 minutes of event time: the graph plus every detector run once
    // per minute of event time (30 windows) and botnest assembly.
    group.bench_function("engine_1M_flows_30_windows", |b| {
        b.iter(|| {
            let mut engine = Engine::new(DetectConfig::default());
            for (i, f) in input.iter().enumerate() {
                engine.observe(f);
                if i % 4096 == 0 {
                    let t = engine.newest();
                    engine.advance(t);
                }
            }
            engine.finish();
            engine.graph().size()
        })
    });
    group.finish();

    // One detector pass over the graph those flows leave: every detector reads the window.
    let config = DetectConfig::default();
    let hosts = Hosts::new(&config.hosts);
    let mut graph = Graph::new(
        config.window_seconds * 1_000_000_000,
        config.max_hosts,
        config.max_channels,
    );
    for f in &input {
        graph.observe(&hosts, f);
    }
    let channels = graph.size().1;
    let to = input.last().expect("flows").end;
    let (intel, allow) = (Intel::new(), Intel::new());
    let ctx = Ctx {
        graph: &graph,
        hosts: &hosts,
        config: &config,
        intel: &intel,
        allow: &allow,
        from: Timestamp(to.as_unix_nanos() - config.window_seconds * 1_000_000_000),
        to,
    };
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(channels as u64));
    group.sample_size(10);
    group.bench_function(
        format!("detector_pass_{}k_channels", channels / 1000),
        |b| {
            b.iter(|| {
                let mut history = OverlayHistory::default();
                run_all(&ctx, &mut history).len()
            })
        },
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench
}
criterion_main!(benches);
