//! Wire-only cost: framing a message into sets and records and walking every field, with no
//! template state and no normalisation. Compare with the collector's decode benchmark to see
//! what sessions and normalisation add.

use botnest_wire::ipfix::{self, TemplateRecord};
use botnest_wire::{netflow5, netflow9, Template};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::collections::HashMap;
use std::time::Duration;

mod common;

use common::cpu::ThreadCpu;

/// Templates by id, read once from a case's template message.
fn templates(case: &common::Case) -> HashMap<u16, Template> {
    let mut out = HashMap::new();
    match botnest_wire::version(&case.templates) {
        Some(ipfix::VERSION) => {
            for set in ipfix::Message::parse(&case.templates).unwrap().sets() {
                if let Ok(ipfix::Set::Template(recs)) = set {
                    for rec in recs {
                        if let Ok(TemplateRecord::Define(t)) = rec {
                            out.insert(t.id, t);
                        }
                    }
                }
            }
        }
        Some(netflow9::VERSION) => {
            for set in netflow9::Packet::parse(&case.templates).unwrap().sets() {
                if let Ok(netflow9::Set::Template(recs)) = set {
                    for t in recs.flatten() {
                        out.insert(t.id, t);
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// Splits every record of one data set and sums the lengths of its field values.
fn walk_set(template: Option<&Template>, body: &[u8], n: &mut u64, bytes: &mut usize) {
    let Some(t) = template else {
        return;
    };
    for rec in t.records(body).flatten() {
        *n += 1;
        *bytes += rec.fields().map(|(_, v)| v.len()).sum::<usize>();
    }
}

/// Frames a message and walks every field of every record, so nothing is optimised away;
/// returns the number of records and the bytes of their values.
fn walk(data: &[u8], templates: &HashMap<u16, Template>) -> (u64, usize) {
    let (mut n, mut bytes) = (0, 0);
    match botnest_wire::version(data) {
        Some(ipfix::VERSION) => {
            for set in ipfix::Message::parse(data).unwrap().sets() {
                if let Ok(ipfix::Set::Data { set_id, body, .. }) = set {
                    walk_set(templates.get(&set_id), body, &mut n, &mut bytes);
                }
            }
        }
        Some(netflow9::VERSION) => {
            for set in netflow9::Packet::parse(data).unwrap().sets() {
                if let Ok(netflow9::Set::Data { set_id, body, .. }) = set {
                    walk_set(templates.get(&set_id), body, &mut n, &mut bytes);
                }
            }
        }
        _ => {
            let pkt = netflow5::Packet::parse(data).unwrap();
            n = pkt.records().len() as u64;
            bytes = pkt.records().map(|r| usize::from(r.src_port)).sum();
        }
    }
    (n, bytes)
}

fn split(c: &mut Criterion<ThreadCpu>) {
    let mut group = c.benchmark_group("wire_split");
    for case in common::all() {
        let templates = templates(&case);
        assert_eq!(
            walk(&case.data, &templates).0,
            case.records,
            "{}",
            case.name
        );
        group.throughput(Throughput::Elements(case.records));
        group.bench_function(case.name, |b| {
            b.iter(|| walk(black_box(&case.data), &templates))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ThreadCpu)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = split
}
criterion_main!(benches);
