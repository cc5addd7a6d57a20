//! IPFIX message view (RFC 7011): the header, every set, every template record, and every data
//! record of a template defined earlier in the same input.
//!
//! The input is one message, possibly followed by more: a stream or a file holds messages back
//! to back, and templates carry over from one to the next as they do in one session.

#![no_main]

use botnest_fuzz::{walk_data, Templates};
use botnest_wire::ipfix::{self, Message, Set, TemplateRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut templates = Templates::default();
    let mut rest = data;
    while let Ok(message) = Message::parse(rest) {
        assert!(message.len() >= ipfix::HEADER_LEN && message.len() <= rest.len());
        walk_message(&message, &mut templates);
        rest = &rest[message.len()..];
    }
});

fn walk_message(message: &Message<'_>, templates: &mut Templates) {
    for set in message.sets() {
        match set {
            Ok(Set::Template(records)) | Ok(Set::OptionsTemplate(records)) => {
                for record in records {
                    match record {
                        Ok(TemplateRecord::Define(t)) => {
                            assert!(t.id >= ipfix::MIN_DATA_SET_ID, "template id in set range");
                            assert!(usize::from(t.scope_field_count) <= t.fields.len());
                            templates.define(t);
                        }
                        Ok(TemplateRecord::Withdraw { template_id }) => {
                            templates.withdraw(template_id)
                        }
                        Ok(TemplateRecord::WithdrawAll) => templates.clear(),
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
                    offset + body.len() <= message.len(),
                    "set body past its message"
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
}
