//! Random templates and records, written by the encoders and read back by the decoders, come
//! back unchanged: IPFIX (with enterprise elements, variable-length fields, options templates),
//! NetFlow v9 (options templates with scope types) and NetFlow v5.

use botnest_wire::encode::{record, IpfixWriter, Netflow9Writer};
use botnest_wire::ie::NETFLOW9_SCOPE_PEN;
use botnest_wire::ipfix::{self, TemplateRecord};
use botnest_wire::{netflow5, netflow9, ElementId, FieldSpec, Template, VARIABLE_LENGTH};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// A template with the records to send with it, each record as one value per field.
#[derive(Debug, Clone)]
struct Case {
    template: Template,
    records: Vec<Vec<Vec<u8>>>,
}

fn ipfix_field() -> impl Strategy<Value = FieldSpec> {
    let element = prop_oneof![
        (0u16..0x8000).prop_map(ElementId::iana),
        (1u32.., 0u16..0x8000).prop_map(|(pen, id)| ElementId::enterprise(pen, id)),
    ];
    let length = prop_oneof![3 => 0u16..=20, 1 => Just(VARIABLE_LENGTH)];
    (element, length).prop_map(|(element, length)| FieldSpec { element, length })
}

fn netflow9_field() -> impl Strategy<Value = FieldSpec> {
    (any::<u16>(), 0u16..=16).prop_map(|(id, length)| FieldSpec::iana(id, length))
}

fn netflow9_scope_field() -> impl Strategy<Value = FieldSpec> {
    (any::<u16>(), 0u16..=8).prop_map(|(kind, length)| FieldSpec {
        element: ElementId::enterprise(NETFLOW9_SCOPE_PEN, kind),
        length,
    })
}

/// Values for one record: fixed fields at their length, variable ones from empty to past the
/// one-byte prefix limit of 254.
fn values(fields: Vec<FieldSpec>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    fields
        .into_iter()
        .map(|f| {
            let len = if f.is_variable() {
                prop_oneof![0usize..8, 250usize..270].boxed()
            } else {
                Just(usize::from(f.length)).boxed()
            };
            len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
        })
        .collect::<Vec<_>>()
}

/// A template (options template when `scope` yields fields) and up to four records for it.
/// Templates whose records would be empty are replaced by one 4-byte field, as decoders refuse
/// them.
fn case(
    scope: BoxedStrategy<Vec<FieldSpec>>,
    field: BoxedStrategy<FieldSpec>,
) -> impl Strategy<Value = Case> {
    (scope, proptest::collection::vec(field, 0..8))
        .prop_map(|(scope, rest)| {
            let scope_field_count = scope.len() as u16;
            let mut fields: Vec<FieldSpec> = scope.into_iter().chain(rest).collect();
            if fields.iter().all(|f| f.length == 0) {
                fields.push(FieldSpec::iana(1, 4));
            }
            Template {
                id: 0,
                scope_field_count,
                fields,
            }
        })
        .prop_flat_map(|template| {
            let records = proptest::collection::vec(values(template.fields.clone()), 0..4);
            (Just(template), records)
        })
        .prop_map(|(template, records)| Case { template, records })
}

/// Gives the cases distinct template ids from 256 up.
fn numbered(mut cases: Vec<Case>) -> Vec<Case> {
    for (i, c) in cases.iter_mut().enumerate() {
        c.template.id = 256 + i as u16;
    }
    cases
}

fn ipfix_cases() -> impl Strategy<Value = Vec<Case>> {
    let plain = case(Just(Vec::new()).boxed(), ipfix_field().boxed());
    let options = case(
        proptest::collection::vec(ipfix_field(), 1..3).boxed(),
        ipfix_field().boxed(),
    );
    proptest::collection::vec(prop_oneof![plain, options], 1..5).prop_map(numbered)
}

fn netflow9_cases() -> impl Strategy<Value = Vec<Case>> {
    let plain = case(Just(Vec::new()).boxed(), netflow9_field().boxed());
    let options = case(
        proptest::collection::vec(netflow9_scope_field(), 1..3).boxed(),
        netflow9_field().boxed(),
    );
    proptest::collection::vec(prop_oneof![plain, options], 1..5).prop_map(numbered)
}

fn encoded_records(case: &Case) -> Vec<Vec<u8>> {
    case.records
        .iter()
        .map(|values| {
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            record(&case.template, &values).expect("values fit their fields")
        })
        .collect()
}

/// Splits data set bodies with the templates read back and returns each record's values.
fn decode_records(
    templates: &HashMap<u16, Template>,
    data: &[(u16, &[u8])],
) -> HashMap<u16, Vec<Vec<Vec<u8>>>> {
    let mut out: HashMap<u16, Vec<Vec<Vec<u8>>>> = HashMap::new();
    for &(set_id, body) in data {
        let template = &templates[&set_id];
        for rec in template.records(body) {
            let rec = rec.expect("records fit their set");
            let values = rec.fields().map(|(_, v)| v.to_vec()).collect();
            out.entry(set_id).or_default().push(values);
        }
    }
    out
}

fn expected_records(cases: &[Case]) -> HashMap<u16, Vec<Vec<Vec<u8>>>> {
    cases
        .iter()
        .filter(|c| !c.records.is_empty())
        .map(|c| (c.template.id, c.records.clone()))
        .collect()
}

fn write_ipfix(cases: &[Case]) -> Vec<u8> {
    let mut w = IpfixWriter::new(1_700_000_000, 77, 5);
    for c in cases {
        if c.template.is_options() {
            w.options_template(&c.template);
        } else {
            w.template(&c.template);
        }
    }
    for c in cases {
        for r in encoded_records(c) {
            w.data_record(c.template.id, &r);
        }
    }
    w.finish().expect("cases are small enough for one message")
}

fn write_netflow9(cases: &[Case]) -> Vec<u8> {
    let mut w = Netflow9Writer::new(123_456, 1_700_000_000, 9, 3);
    for c in cases {
        if c.template.is_options() {
            w.options_template(&c.template);
        } else {
            w.template(&c.template);
        }
        for r in encoded_records(c) {
            w.data_record(c.template.id, &r);
        }
    }
    w.finish().expect("cases are small enough for one packet")
}

proptest! {
    #[test]
    fn ipfix_templates_and_records_round_trip(cases in ipfix_cases()) {
        let bytes = write_ipfix(&cases);
        let msg = ipfix::Message::parse(&bytes).unwrap();
        prop_assert_eq!(msg.len(), bytes.len());
        prop_assert_eq!(msg.header().sequence, 77);
        prop_assert_eq!(msg.header().domain, 5);
        let mut templates = HashMap::new();
        let mut data = Vec::new();
        for set in msg.sets() {
            match set.unwrap() {
                ipfix::Set::Template(recs) | ipfix::Set::OptionsTemplate(recs) => {
                    for r in recs {
                        let TemplateRecord::Define(t) = r.unwrap() else {
                            panic!("only definitions were written");
                        };
                        templates.insert(t.id, t);
                    }
                }
                ipfix::Set::Data { set_id, body, .. } => data.push((set_id, body)),
            }
        }
        for c in &cases {
            prop_assert_eq!(templates.get(&c.template.id), Some(&c.template));
        }
        prop_assert_eq!(templates.len(), cases.len());
        prop_assert_eq!(decode_records(&templates, &data), expected_records(&cases));
    }

    #[test]
    fn netflow9_templates_and_records_round_trip(cases in netflow9_cases()) {
        let bytes = write_netflow9(&cases);
        let packet = netflow9::Packet::parse(&bytes).unwrap();
        let written: usize = cases.iter().map(|c| 1 + c.records.len()).sum();
        prop_assert_eq!(usize::from(packet.header().count), written);
        prop_assert_eq!(packet.header().source_id, 3);
        let mut templates = HashMap::new();
        let mut data = Vec::new();
        for set in packet.sets() {
            match set.unwrap() {
                netflow9::Set::Template(recs) | netflow9::Set::OptionsTemplate(recs) => {
                    for t in recs {
                        let t = t.unwrap();
                        templates.insert(t.id, t);
                    }
                }
                netflow9::Set::Data { set_id, body, .. } => data.push((set_id, body)),
            }
        }
        for c in &cases {
            prop_assert_eq!(templates.get(&c.template.id), Some(&c.template));
        }
        prop_assert_eq!(templates.len(), cases.len());
        prop_assert_eq!(decode_records(&templates, &data), expected_records(&cases));
    }

    #[test]
    fn netflow5_packets_round_trip(
        header in netflow5_header(),
        records in proptest::collection::vec(netflow5_record(), 1..=30),
    ) {
        let header = netflow5::Header { count: records.len() as u16, ..header };
        let bytes = netflow5::encode(&header, &records);
        prop_assert_eq!(bytes.len(), netflow5::HEADER_LEN + records.len() * netflow5::RECORD_LEN);
        let packet = netflow5::Packet::parse(&bytes).unwrap();
        prop_assert_eq!(packet.header(), &header);
        prop_assert_eq!(packet.records().collect::<Vec<_>>(), records);
    }
}

fn netflow5_header() -> impl Strategy<Value = netflow5::Header> {
    (any::<[u32; 4]>(), any::<[u8; 2]>(), any::<u16>()).prop_map(|(w, engine, sampling)| {
        netflow5::Header {
            version: netflow5::VERSION,
            count: 0,
            sys_uptime_ms: w[0],
            unix_secs: w[1],
            unix_nsecs: w[2],
            flow_sequence: w[3],
            engine_type: engine[0],
            engine_id: engine[1],
            sampling,
        }
    })
}

fn netflow5_record() -> impl Strategy<Value = netflow5::Record> {
    (any::<[u32; 7]>(), any::<[u16; 6]>(), any::<[u8; 5]>()).prop_map(|(w, h, b)| {
        netflow5::Record {
            src_addr: Ipv4Addr::from(w[0]),
            dst_addr: Ipv4Addr::from(w[1]),
            next_hop: Ipv4Addr::from(w[2]),
            input: h[0],
            output: h[1],
            packets: w[3],
            octets: w[4],
            first: w[5],
            last: w[6],
            src_port: h[2],
            dst_port: h[3],
            tcp_flags: b[0],
            protocol: b[1],
            tos: b[2],
            src_as: h[4],
            dst_as: h[5],
            src_mask: b[3],
            dst_mask: b[4],
        }
    })
}
