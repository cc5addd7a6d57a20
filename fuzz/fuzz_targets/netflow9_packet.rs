//! NetFlow v9 packet view (RFC 3954): the header, every FlowSet, every template and options
//! template, and every data record of a template defined earlier in the same input.
//!
//! The input is one packet; templates found in it decode its data FlowSets, as they would for
//! the next packets of the exporter.

#![no_main]

use botnest_fuzz::{walk_data, Templates};
use botnest_wire::netflow9::{self, Packet, Set};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    assert_eq!(packet.header().version, netflow9::VERSION);
    let mut templates = Templates::default();
    for set in packet.sets() {
        match set {
            Ok(Set::Template(records)) | Ok(Set::OptionsTemplate(records)) => {
                for record in records {
                    match record {
                        Ok(t) => {
                            assert!(
                                t.id >= netflow9::MIN_DATA_SET_ID,
                                "template id in set range"
                            );
                            assert!(usize::from(t.scope_field_count) <= t.fields.len());
                            templates.define(t);
                        }
                        Err(e) => {
                            let _ = (e.reason(), e.to_string());
                        }
                    }
                }
            }
            Ok(Set::Data {
                set_id,
                offset,
                body,
            }) => {
                assert!(
                    offset + body.len() <= data.len(),
                    "FlowSet body past its packet"
                );
                if let Some(t) = templates.get(set_id) {
                    walk_data(t, body);
                }
            }
            Err(e) => {
                let _ = (e.reason(), e.to_string());
            }
        }
    }
});
