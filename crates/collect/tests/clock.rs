//! Exporter clock correction, driven by IPFIX messages built with the wire encoder: exporters
//! whose clocks run minutes ahead or behind the collector's.

use botnest_collect::{Decoder, DecoderConfig, RecordMeta, SessionKey, Sink, Transport};
use botnest_flow::{FlowRecord, Timestamp};
use botnest_wire::encode::{record, IpfixWriter};
use botnest_wire::{FieldSpec, Record, Template};
use std::net::SocketAddr;

/// Arrival time of the first message (collector's clock): 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

fn template() -> Template {
    let f = FieldSpec::iana;
    Template {
        id: 256,
        scope_field_count: 0,
        fields: vec![
            f(8, 4),   // sourceIPv4Address
            f(12, 4),  // destinationIPv4Address
            f(4, 1),   // protocolIdentifier
            f(1, 8),   // octetDeltaCount
            f(2, 8),   // packetDeltaCount
            f(152, 8), // flowStartMilliseconds
            f(153, 8), // flowEndMilliseconds
        ],
    }
}

/// One message sent at `export` seconds (the exporter's clock), carrying a template and one flow
/// that started 5 s and ended 1 s before.
fn message(export: i64, sequence: u32) -> Vec<u8> {
    let t = template();
    let ms = |s: i64| ((s * 1000) as u64).to_be_bytes();
    let rec = record(
        &t,
        &[
            &[10, 0, 0, 1],
            &[192, 0, 2, 1],
            &[6],
            &500u64.to_be_bytes(),
            &4u64.to_be_bytes(),
            &ms(export - 5),
            &ms(export - 1),
        ],
    )
    .unwrap();
    let mut w = IpfixWriter::new(export as u32, sequence, 1);
    w.template(&t).data_record(256, &rec);
    w.finish().unwrap()
}

#[derive(Default)]
struct Flows(Vec<FlowRecord>);

impl Sink for Flows {
    fn flow(&mut self, _meta: &RecordMeta<'_>, flow: &FlowRecord, _raw: &Record<'_>) {
        self.0.push(*flow);
    }
}

fn key(transport: Transport, port: u16) -> SessionKey {
    SessionKey {
        transport,
        exporter: SocketAddr::from(([192, 0, 2, 100], port)),
        collector: SocketAddr::from(([192, 0, 2, 200], 4739)),
    }
}

/// Sends ten messages, one every 10 s of arrival time, from an exporter whose clock is `skew`
/// seconds ahead of the collector's; returns the decoded flows.
fn exchange(decoder: &mut Decoder, key: &SessionKey, skew: i64) -> Vec<FlowRecord> {
    let mut flows = Flows::default();
    for i in 0..10 {
        let arrival = T0 + 10 * i;
        let bytes = message(arrival + skew, i as u32);
        let now = Timestamp::from_unix_secs(arrival as u64);
        decoder.decode(key, now, &bytes, &mut flows).unwrap();
    }
    flows.0
}

fn secs(t: Timestamp) -> i64 {
    (t.as_unix_nanos() / 1_000_000_000) as i64
}

#[test]
fn records_of_exporters_minutes_ahead_or_behind_read_in_the_collectors_clock() {
    let mut d = Decoder::new(DecoderConfig::default());
    let (right, ahead, behind) = (
        key(Transport::Udp, 1),
        key(Transport::Udp, 2),
        key(Transport::Udp, 3),
    );
    for (k, skew) in [(&right, 0), (&ahead, 300), (&behind, -180)] {
        let flows = exchange(&mut d, k, skew);
        assert_eq!(flows.len(), 10);
        for (i, f) in flows.iter().enumerate() {
            let arrival = T0 + 10 * i as i64;
            assert_eq!(secs(f.start), arrival - 5, "skew {skew}: {f:?}");
            assert_eq!(secs(f.end), arrival - 1, "skew {skew}: {f:?}");
        }
    }
    let clocks = d.clocks();
    let state = |k: &SessionKey| clocks.iter().find(|(s, _)| s == k).unwrap().1;
    assert_eq!(state(&right).correction_ms, 0);
    assert_eq!(state(&ahead).offset_ms, -300_000);
    assert_eq!(state(&ahead).correction_ms, -300_000);
    assert_eq!(state(&behind).correction_ms, 180_000);
    let corrected: Vec<u64> = d
        .per_exporter()
        .iter()
        .map(|(_, _, c)| c.clock_corrected)
        .collect();
    assert_eq!(corrected, vec![0, 10, 10]);
    assert_eq!(d.totals().clock_corrected, 20);
}

#[test]
fn a_few_seconds_of_disagreement_and_files_are_left_as_sent() {
    let mut d = Decoder::new(DecoderConfig::default());
    let near = key(Transport::Udp, 1);
    let flows = exchange(&mut d, &near, 3);
    assert!(flows
        .iter()
        .enumerate()
        .all(|(i, f)| secs(f.start) == T0 + 10 * i as i64 + 3 - 5));
    // An IPFIX file has no arrival time of its own: whatever the reader passes is not a clock.
    let file = key(Transport::File, 2);
    let flows = exchange(&mut d, &file, 600);
    assert_eq!(secs(flows[0].start), T0 + 600 - 5);
    assert_eq!(d.totals().clock_corrected, 0);
}

#[test]
fn correction_turned_off_keeps_what_the_exporter_sent() {
    let mut config = DecoderConfig::default();
    config.clock.correct = false;
    let mut d = Decoder::new(config);
    let ahead = key(Transport::Udp, 2);
    let flows = exchange(&mut d, &ahead, 300);
    assert_eq!(secs(flows[0].start), T0 + 300 - 5);
    assert_eq!(d.totals().clock_corrected, 0);
    assert_eq!(d.clocks()[0].1.offset_ms, -300_000);
    assert_eq!(d.clocks()[0].1.correction_ms, 0);
}
