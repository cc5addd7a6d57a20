//! The collector's decode path: session and template lookup, sequence tracking, splitting and
//! normalising every data record into a `FlowRecord` handed to a sink, as a live collector does
//! for each datagram.

use botnest_collect::{Decoder, DecoderConfig, RecordMeta, SessionKey, Sink};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::Record;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

#[path = "../../wire/benches/common/mod.rs"]
mod common;

use common::cpu::ThreadCpu;

/// Hands records on the way the collector's reader threads do: into a batch that is emptied
/// when full.
struct Batch {
    flows: Vec<FlowRecord>,
}

impl Sink for Batch {
    fn flow(&mut self, _meta: &RecordMeta<'_>, flow: &FlowRecord, _raw: &Record<'_>) {
        if self.flows.len() == self.flows.capacity() {
            black_box(&self.flows);
            self.flows.clear();
        }
        self.flows.push(*flow);
    }
}

fn decode(c: &mut Criterion<ThreadCpu>) {
    let key = SessionKey::udp(
        "192.0.2.1:50000".parse().unwrap(),
        "127.0.0.1:4739".parse().unwrap(),
    );
    let now = Timestamp::from_unix_secs(u64::from(common::EXPORT_SECS));
    let mut group = c.benchmark_group("decode");
    for case in common::all() {
        let mut decoder = Decoder::new(DecoderConfig::default());
        let mut sink = Batch {
            flows: Vec::with_capacity(1024),
        };
        if !case.templates.is_empty() {
            decoder
                .decode(&key, now, &case.templates, &mut sink)
                .unwrap();
        }
        let mut data = case.data.clone();
        decoder.decode(&key, now, &data, &mut sink).unwrap();
        assert_eq!(decoder.totals().records, case.records, "{}", case.name);

        group.throughput(Throughput::Elements(case.records));
        group.bench_function(case.name, |b| {
            b.iter(|| {
                case.next_sequence(&mut data);
                decoder.decode(&key, now, black_box(&data), &mut sink)
            })
        });
        let t = decoder.totals();
        assert_eq!(
            t.errors + t.lost_records + t.lost_packets,
            0,
            "{}",
            case.name
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpu)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode
}
criterion_main!(benches);
