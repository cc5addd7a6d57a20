//! Writers for IPFIX messages and NetFlow v9 packets (v5 is [`crate::netflow5::encode`]).
//!
//! Used for test fixtures, benchmarks, fuzz seeds and RFC 5655 files. The writers open a set
//! when the kind of record changes and continue it otherwise; [`IpfixWriter::finish`] and
//! [`Netflow9Writer::finish`] fix every length and count. Mistakes that cannot be written (an
//! enterprise element in NetFlow v9, a message over 65535 bytes) are kept and reported by
//! `finish`, so the builder methods can be chained.
//!
//! ```
//! use botnest_wire::encode::IpfixWriter;
//! use botnest_wire::{ipfix, FieldSpec, Template};
//! let t = Template { id: 256, scope_field_count: 0, fields: vec![FieldSpec::iana(8, 4)] };
//! let mut w = IpfixWriter::new(1_700_000_000, 0, 1);
//! w.template(&t).data_record(256, &[192, 0, 2, 1]);
//! let bytes = w.finish().unwrap();
//! assert_eq!(ipfix::Message::parse(&bytes).unwrap().sets().count(), 2);
//! ```

use crate::ie::{ElementId, NETFLOW9_SCOPE_PEN};
use crate::template::{FieldSpec, Template};
use crate::{ipfix, netflow9};

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message or packet would be longer than its 16-bit length allows.
    #[error("message of {length} bytes is longer than 65535")]
    MessageTooLong {
        /// The length it would have had.
        length: usize,
    },
    /// A variable-length value is longer than a 16-bit length prefix can say.
    #[error("variable-length value of {length} bytes is longer than 65535")]
    ValueTooLong {
        /// The value's length.
        length: usize,
    },
    /// The format has no way to write this element (an enterprise element in NetFlow v9, a
    /// scope type outside an options template's scope, or an id wider than 15 bits in IPFIX).
    #[error("element {element} cannot be written in this format")]
    Unencodable {
        /// The element.
        element: ElementId,
    },
    /// A record was given a different number of values than its template has fields.
    #[error("template {template_id} has {expected} fields, got {actual} values")]
    FieldCount {
        /// The template id.
        template_id: u16,
        /// Fields in the template.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// A value's length differs from its fixed-length field.
    #[error("field {index} of template {template_id} is {expected} bytes, got {actual}")]
    FieldLength {
        /// The template id.
        template_id: u16,
        /// Position of the field in the template.
        index: usize,
        /// The field's length.
        expected: u16,
        /// The value's length.
        actual: usize,
    },
}

/// Appends a variable-length value with its length prefix (RFC 7011 section 7): one byte below
/// 255, otherwise 255 followed by two bytes.
pub fn encode_varlen(value: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let len = value.len();
    if len < 255 {
        out.push(len as u8);
    } else {
        let len16 = u16::try_from(len).map_err(|_| EncodeError::ValueTooLong { length: len })?;
        out.push(255);
        out.extend_from_slice(&len16.to_be_bytes());
    }
    out.extend_from_slice(value);
    Ok(())
}

/// Builds one data record of `template` from one value per field: fixed-length values must
/// have the field's length, variable-length ones get their prefix.
pub fn record(template: &Template, values: &[&[u8]]) -> Result<Vec<u8>, EncodeError> {
    if values.len() != template.fields.len() {
        return Err(EncodeError::FieldCount {
            template_id: template.id,
            expected: template.fields.len(),
            actual: values.len(),
        });
    }
    let mut out = Vec::with_capacity(template.min_record_length());
    for (index, (field, value)) in template.fields.iter().zip(values).enumerate() {
        if field.is_variable() {
            encode_varlen(value, &mut out)?;
        } else if usize::from(field.length) == value.len() {
            out.extend_from_slice(value);
        } else {
            return Err(EncodeError::FieldLength {
                template_id: template.id,
                index,
                expected: field.length,
                actual: value.len(),
            });
        }
    }
    Ok(out)
}

/// A byte buffer of sets: a fixed header, then sets of (id, length, body). Shared by both
/// writers, whose sets have the same 4-byte header.
#[derive(Debug)]
struct SetBuffer {
    buf: Vec<u8>,
    /// Id and start offset of the set being written.
    open: Option<(u16, usize)>,
    /// Length of the last data record, which decides whether padding is safe.
    last_record_len: usize,
    error: Option<EncodeError>,
}

impl SetBuffer {
    fn new(header: Vec<u8>) -> Self {
        SetBuffer {
            buf: header,
            open: None,
            last_record_len: 0,
            error: None,
        }
    }

    /// Continues the open set if it has this id, otherwise closes it and opens a new one.
    fn set(&mut self, id: u16, pad: bool) -> &mut Vec<u8> {
        if self.open.map(|(open, _)| open) != Some(id) {
            self.close(pad);
            self.open = Some((id, self.buf.len()));
            self.buf.extend_from_slice(&id.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
        }
        &mut self.buf
    }

    /// Closes the open set: optional zero padding to 4 bytes, then its length. Padding is only
    /// written when it is shorter than the set's records, so a reader cannot take it for one
    /// (RFC 3954 section 5.3, RFC 7011 section 3.3.1).
    fn close(&mut self, pad: bool) {
        let Some((_, start)) = self.open.take() else {
            return;
        };
        let padding = (4 - (self.buf.len() - start) % 4) % 4;
        if pad && padding < self.last_record_len {
            self.buf.resize(self.buf.len() + padding, 0);
        }
        self.last_record_len = 0;
        let len = self.buf.len() - start;
        // An over-long set makes the whole message over-long, which `finish` reports.
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
    }

    fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }

    fn finish(mut self, pad: bool) -> Result<Vec<u8>, EncodeError> {
        self.close(pad);
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.buf.len() > usize::from(u16::MAX) {
            return Err(EncodeError::MessageTooLong {
                length: self.buf.len(),
            });
        }
        Ok(self.buf)
    }
}

/// Builds one IPFIX message (RFC 7011). Sets are not padded, which RFC 7011 section 3.3.1
/// allows, so no reader can take padding for a record.
#[derive(Debug)]
pub struct IpfixWriter {
    sets: SetBuffer,
}

impl IpfixWriter {
    /// Starts a message with this header.
    pub fn new(export_time: u32, sequence: u32, domain: u32) -> Self {
        let mut header = Vec::with_capacity(512);
        header.extend_from_slice(&ipfix::VERSION.to_be_bytes());
        header.extend_from_slice(&[0, 0]);
        header.extend_from_slice(&export_time.to_be_bytes());
        header.extend_from_slice(&sequence.to_be_bytes());
        header.extend_from_slice(&domain.to_be_bytes());
        IpfixWriter {
            sets: SetBuffer::new(header),
        }
    }

    /// Writes a template record (RFC 7011 section 3.4.1) into a template set.
    pub fn template(&mut self, template: &Template) -> &mut Self {
        let buf = self.sets.set(ipfix::TEMPLATE_SET_ID, false);
        buf.extend_from_slice(&template.id.to_be_bytes());
        buf.extend_from_slice(&(template.fields.len() as u16).to_be_bytes());
        self.field_specifiers(&template.fields);
        self
    }

    /// Writes an options template record (RFC 7011 section 3.4.2.2) into an options template
    /// set; its first `scope_field_count` fields are the scope.
    pub fn options_template(&mut self, template: &Template) -> &mut Self {
        let buf = self.sets.set(ipfix::OPTIONS_TEMPLATE_SET_ID, false);
        buf.extend_from_slice(&template.id.to_be_bytes());
        buf.extend_from_slice(&(template.fields.len() as u16).to_be_bytes());
        buf.extend_from_slice(&template.scope_field_count.to_be_bytes());
        self.field_specifiers(&template.fields);
        self
    }

    fn field_specifiers(&mut self, fields: &[FieldSpec]) {
        for field in fields {
            let ElementId { enterprise, id } = field.element;
            if id & 0x8000 != 0 {
                self.sets.fail(EncodeError::Unencodable {
                    element: field.element,
                });
            }
            let buf = &mut self.sets.buf;
            // RFC 7011 section 3.2: the top bit of the id says an enterprise number follows.
            let raw_id = if enterprise == 0 { id } else { id | 0x8000 };
            buf.extend_from_slice(&raw_id.to_be_bytes());
            buf.extend_from_slice(&field.length.to_be_bytes());
            if enterprise != 0 {
                buf.extend_from_slice(&enterprise.to_be_bytes());
            }
        }
    }

    /// Withdraws a template (RFC 7011 section 8.1: a template record with no fields).
    pub fn withdraw(&mut self, template_id: u16) -> &mut Self {
        self.withdrawal(ipfix::TEMPLATE_SET_ID, template_id)
    }

    /// Withdraws every template (template id equal to the template set id).
    pub fn withdraw_all(&mut self) -> &mut Self {
        self.withdrawal(ipfix::TEMPLATE_SET_ID, ipfix::TEMPLATE_SET_ID)
    }

    /// Withdraws an options template.
    pub fn withdraw_options(&mut self, template_id: u16) -> &mut Self {
        self.withdrawal(ipfix::OPTIONS_TEMPLATE_SET_ID, template_id)
    }

    /// Withdraws every options template.
    pub fn withdraw_all_options(&mut self) -> &mut Self {
        let id = ipfix::OPTIONS_TEMPLATE_SET_ID;
        self.withdrawal(id, id)
    }

    fn withdrawal(&mut self, set_id: u16, template_id: u16) -> &mut Self {
        let buf = self.sets.set(set_id, false);
        buf.extend_from_slice(&template_id.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        self
    }

    /// Appends a data record (bytes laid out by template `template_id`, see [`record`]) to the
    /// open data set of that template, or to a new one.
    pub fn data_record(&mut self, template_id: u16, record: &[u8]) -> &mut Self {
        self.sets.set(template_id, false).extend_from_slice(record);
        self
    }

    /// Bytes written so far, headers included.
    pub fn len(&self) -> usize {
        self.sets.buf.len()
    }

    /// Whether no set has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == ipfix::HEADER_LEN
    }

    /// Closes the last set and writes the message length.
    pub fn finish(self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = self.sets.finish(false)?;
        let len = buf.len() as u16;
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf)
    }
}

/// Builds one NetFlow v9 export packet (RFC 3954). The header's record count is filled in by
/// [`Netflow9Writer::finish`].
#[derive(Debug)]
pub struct Netflow9Writer {
    sets: SetBuffer,
    count: u16,
}

impl Netflow9Writer {
    /// Starts a packet with this header.
    pub fn new(sys_uptime_ms: u32, unix_secs: u32, sequence: u32, source_id: u32) -> Self {
        let mut header = Vec::with_capacity(512);
        header.extend_from_slice(&netflow9::VERSION.to_be_bytes());
        header.extend_from_slice(&[0, 0]);
        header.extend_from_slice(&sys_uptime_ms.to_be_bytes());
        header.extend_from_slice(&unix_secs.to_be_bytes());
        header.extend_from_slice(&sequence.to_be_bytes());
        header.extend_from_slice(&source_id.to_be_bytes());
        Netflow9Writer {
            sets: SetBuffer::new(header),
            count: 0,
        }
    }

    /// Writes a template into a template FlowSet (id 0). Every field must be an IANA element.
    pub fn template(&mut self, template: &Template) -> &mut Self {
        self.count = self.count.wrapping_add(1);
        let buf = self.sets.set(netflow9::TEMPLATE_SET_ID, true);
        buf.extend_from_slice(&template.id.to_be_bytes());
        buf.extend_from_slice(&(template.fields.len() as u16).to_be_bytes());
        for field in &template.fields {
            self.field(field, 0);
        }
        self
    }

    /// Writes an options template in a FlowSet of its own (id 1), padded to 4 bytes as RFC 3954
    /// section 6.1 asks. Scope fields must use [`NETFLOW9_SCOPE_PEN`], the others IANA ids.
    pub fn options_template(&mut self, template: &Template) -> &mut Self {
        self.count = self.count.wrapping_add(1);
        // A FlowSet of its own: the padding then ends the FlowSet, where every reader expects it.
        self.sets.close(true);
        let scope = template.scope_fields();
        let scope_len = (scope.len() * 4) as u16;
        let option_len = ((template.fields.len() - scope.len()) * 4) as u16;
        let buf = self.sets.set(netflow9::OPTIONS_TEMPLATE_SET_ID, true);
        buf.extend_from_slice(&template.id.to_be_bytes());
        buf.extend_from_slice(&scope_len.to_be_bytes());
        buf.extend_from_slice(&option_len.to_be_bytes());
        for (i, field) in template.fields.iter().enumerate() {
            let enterprise = if i < scope.len() {
                NETFLOW9_SCOPE_PEN
            } else {
                0
            };
            self.field(field, enterprise);
        }
        // Always pad: a template record is never mistaken for padding.
        let buf = &mut self.sets.buf;
        buf.resize(buf.len().next_multiple_of(4), 0);
        self.sets.close(false);
        self
    }

    fn field(&mut self, field: &FieldSpec, enterprise: u32) {
        if field.element.enterprise != enterprise {
            self.sets.fail(EncodeError::Unencodable {
                element: field.element,
            });
        }
        let buf = &mut self.sets.buf;
        buf.extend_from_slice(&field.element.id.to_be_bytes());
        buf.extend_from_slice(&field.length.to_be_bytes());
    }

    /// Appends a data record to the open data FlowSet of that template, or to a new one. Data
    /// FlowSets are padded to 4 bytes when the padding is shorter than a record.
    pub fn data_record(&mut self, template_id: u16, record: &[u8]) -> &mut Self {
        self.count = self.count.wrapping_add(1);
        self.sets.set(template_id, true).extend_from_slice(record);
        self.sets.last_record_len = record.len();
        self
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> usize {
        self.sets.buf.len()
    }

    /// Whether no FlowSet has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == netflow9::HEADER_LEN
    }

    /// Closes the last FlowSet and writes the record count.
    pub fn finish(self) -> Result<Vec<u8>, EncodeError> {
        let count = self.count;
        let mut buf = self.sets.finish(true)?;
        buf[2..4].copy_from_slice(&count.to_be_bytes());
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfix::{Message, Set, TemplateRecord};

    fn template(id: u16, fields: &[(u16, u16)]) -> Template {
        Template {
            id,
            scope_field_count: 0,
            fields: fields
                .iter()
                .map(|&(e, len)| FieldSpec::iana(e, len))
                .collect(),
        }
    }

    #[test]
    fn varlen_prefix_is_one_or_three_bytes() {
        let mut out = Vec::new();
        encode_varlen(&[7; 254], &mut out).unwrap();
        assert_eq!((out[0], out.len()), (254, 255));
        out.clear();
        encode_varlen(&[7; 255], &mut out).unwrap();
        assert_eq!(&out[..3], &[255, 0, 255]);
        assert_eq!(out.len(), 258);
        assert_eq!(
            encode_varlen(&vec![0; 70_000], &mut out),
            Err(EncodeError::ValueTooLong { length: 70_000 })
        );
    }

    #[test]
    fn ipfix_header_and_set_lengths_are_fixed_up() {
        let t = template(256, &[(8, 4), (7, 2)]);
        let mut w = IpfixWriter::new(0x5f00_0000, 9, 42);
        assert!(w.is_empty());
        w.template(&t)
            .data_record(256, &[10, 0, 0, 1, 0, 80])
            .data_record(256, &[10, 0, 0, 2, 1, 187]);
        let bytes = w.finish().unwrap();
        // header 16 + template set (4 + 4 + 2 * 4) + data set (4 + 2 * 6)
        assert_eq!(bytes.len(), 16 + 16 + 16);
        assert_eq!(&bytes[..4], &[0, 10, 0, 48]);
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!((msg.header().sequence, msg.header().domain), (9, 42));
        let sets: Vec<_> = msg.sets().map(Result::unwrap).collect();
        assert_eq!(sets.len(), 2, "both records share one data set");
        let Set::Data { body, .. } = sets[1] else {
            panic!("expected a data set")
        };
        assert_eq!(t.records(body).count(), 2);
    }

    #[test]
    fn withdrawals_are_read_back() {
        let mut w = IpfixWriter::new(0, 0, 1);
        w.withdraw(300).withdraw_all();
        let bytes = w.finish().unwrap();
        let msg = Message::parse(&bytes).unwrap();
        let Some(Ok(Set::Template(recs))) = msg.sets().next() else {
            panic!("expected a template set")
        };
        let got: Vec<_> = recs.map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                TemplateRecord::Withdraw { template_id: 300 },
                TemplateRecord::WithdrawAll
            ]
        );
    }

    #[test]
    fn oversized_message_is_an_error() {
        let mut w = IpfixWriter::new(0, 0, 1);
        for _ in 0..3 {
            w.data_record(256, &[0; 30_000]);
        }
        assert!(matches!(
            w.finish(),
            Err(EncodeError::MessageTooLong { .. })
        ));
    }

    #[test]
    fn record_checks_lengths_and_prefixes_variable_fields() {
        let t = template(256, &[(8, 4), (82, crate::VARIABLE_LENGTH)]);
        let r = record(&t, &[&[1, 2, 3, 4], b"eth0"]).unwrap();
        assert_eq!(r, vec![1, 2, 3, 4, 4, b'e', b't', b'h', b'0']);
        assert!(matches!(
            record(&t, &[&[1, 2, 3], b""]),
            Err(EncodeError::FieldLength { index: 0, .. })
        ));
        assert!(matches!(
            record(&t, &[&[1, 2, 3, 4]]),
            Err(EncodeError::FieldCount { .. })
        ));
    }

    #[test]
    fn netflow9_rejects_enterprise_elements() {
        let mut t = template(256, &[(8, 4)]);
        t.fields[0].element = ElementId::enterprise(6876, 891);
        let mut w = Netflow9Writer::new(0, 0, 0, 0);
        w.template(&t);
        assert!(matches!(w.finish(), Err(EncodeError::Unencodable { .. })));
    }

    #[test]
    fn netflow9_pads_data_flowsets_only_when_padding_cannot_be_a_record() {
        // 6-byte records: 2 bytes of padding are shorter than a record
        let mut w = Netflow9Writer::new(0, 0, 0, 0);
        w.data_record(256, &[1; 6]);
        assert_eq!(w.finish().unwrap().len(), 20 + 4 + 6 + 2);
        // 1-byte records: padding of 3 would read as three more records, so none is written
        let mut w = Netflow9Writer::new(0, 0, 0, 0);
        w.data_record(256, &[1]);
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), 20 + 4 + 1);
        assert_eq!(&bytes[2..4], &[0, 1], "count covers the one record");
    }
}
