//! IPFIX messages (RFC 7011).
//!
//! [`Message::parse`] checks the message header and length once; [`Message::sets`] then walks the
//! sets, each checked against the message, and template sets are read with [`TemplateRecords`].
//! Data set bodies are split into records with [`Template::records`] once the collector has found
//! the template in its per-session state.
//!
//! ```
//! use botnest_wire::ipfix::{Message, Set};
//! // header: version 10, length 20, export time, sequence, domain 7; one empty-bodied data set
//! let bytes = [0, 10, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 0, 0, 4];
//! let msg = Message::parse(&bytes).unwrap();
//! assert_eq!(msg.header().domain, 7);
//! assert!(matches!(msg.sets().next(), Some(Ok(Set::Data { set_id: 256, .. }))));
//! ```

use crate::error::{need, Error};
use crate::ie::ElementId;
use crate::template::{FieldSpec, Template};

/// The version number of IPFIX messages.
pub const VERSION: u16 = 10;
/// Length of the message header.
pub const HEADER_LEN: usize = 16;
/// Length of a set header.
pub const SET_HEADER_LEN: usize = 4;
/// Set id of template sets.
pub const TEMPLATE_SET_ID: u16 = 2;
/// Set id of options template sets.
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 3;
/// Lowest set id of data sets, and lowest valid template id.
pub const MIN_DATA_SET_ID: u16 = 256;
/// Bit of a field specifier's element id saying an enterprise number follows (RFC 7011 3.2).
const ENTERPRISE_BIT: u16 = 0x8000;

/// The fixed header of an IPFIX message (RFC 7011 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Always [`VERSION`].
    pub version: u16,
    /// Total length of the message in bytes, header included.
    pub length: u16,
    /// Seconds since the UNIX epoch at which the message left the exporter.
    pub export_time: u32,
    /// Data records sent in this transport session and domain before this message (mod 2^32).
    pub sequence: u32,
    /// Observation domain id.
    pub domain: u32,
}

impl Header {
    /// Reads a header without checking the message length against the buffer.
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        need(buf, HEADER_LEN, "ipfix header", 0)?;
        let version = be16(buf, 0);
        if version != VERSION {
            return Err(Error::Version(version));
        }
        Ok(Header {
            version,
            length: be16(buf, 2),
            export_time: be32(buf, 4),
            sequence: be32(buf, 8),
            domain: be32(buf, 12),
        })
    }
}

/// A checked view of one IPFIX message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    header: Header,
    /// The whole message, header included, exactly `header.length` bytes.
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks the header and that the buffer holds the whole message. Bytes after the message
    /// (a datagram longer than the message it carries, or the next message of a stream) are not
    /// part of it; [`Message::len`] says where it ends.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, Error> {
        let header = Header::parse(buf)?;
        let len = usize::from(header.length);
        if len < HEADER_LEN {
            return Err(Error::BadLength {
                what: "ipfix message",
                offset: 0,
                length: len,
            });
        }
        need(buf, len, "ipfix message", 0)?;
        Ok(Message {
            header,
            bytes: &buf[..len],
        })
    }

    /// The message header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Length of the message in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the message carries no sets.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == HEADER_LEN
    }

    /// The raw bytes of the message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The sets of the message, in order.
    pub fn sets(&self) -> Sets<'a> {
        Sets {
            bytes: self.bytes,
            pos: HEADER_LEN,
        }
    }
}

/// One set of an IPFIX message.
#[derive(Debug, Clone, Copy)]
pub enum Set<'a> {
    /// A template set: read it with [`TemplateRecords`].
    Template(TemplateRecords<'a>),
    /// An options template set: read it with [`TemplateRecords`].
    OptionsTemplate(TemplateRecords<'a>),
    /// A data set: records laid out by the template whose id is `set_id`.
    Data {
        /// The set id, which is the template id.
        set_id: u16,
        /// Offset of the set body from the start of the message.
        offset: usize,
        /// The set body (records and padding).
        body: &'a [u8],
    },
}

/// Iterator over the sets of a message.
///
/// A set whose header is broken ends the iteration after one error, because the rest of the
/// message cannot be framed. A set with a reserved id is reported and skipped: its length is
/// still good, so the sets after it are decoded (RFC 7011 section 3.3.2).
#[derive(Debug, Clone)]
pub struct Sets<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Sets<'a> {
    type Item = Result<Set<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.pos;
        let rest = self.bytes.get(offset..)?;
        if rest.is_empty() {
            return None;
        }
        if rest.len() < SET_HEADER_LEN {
            self.pos = self.bytes.len();
            return Some(Err(Error::Truncated {
                what: "set header",
                offset,
                needed: SET_HEADER_LEN,
                available: rest.len(),
            }));
        }
        let set_id = be16(rest, 0);
        let len = usize::from(be16(rest, 2));
        if len < SET_HEADER_LEN || len > rest.len() {
            self.pos = self.bytes.len();
            // Some exporters fill the end of a message with zeros; that is padding, not a set.
            if rest.iter().all(|&b| b == 0) {
                return None;
            }
            if len < SET_HEADER_LEN {
                return Some(Err(Error::BadLength {
                    what: "set",
                    offset,
                    length: len,
                }));
            }
            return Some(Err(Error::Truncated {
                what: "set",
                offset,
                needed: len,
                available: rest.len(),
            }));
        }
        self.pos += len;
        let body = &rest[SET_HEADER_LEN..len];
        let body_offset = offset + SET_HEADER_LEN;
        Some(Ok(match set_id {
            TEMPLATE_SET_ID => Set::Template(TemplateRecords::new(body, body_offset, false)),
            OPTIONS_TEMPLATE_SET_ID => {
                Set::OptionsTemplate(TemplateRecords::new(body, body_offset, true))
            }
            id if id >= MIN_DATA_SET_ID => Set::Data {
                set_id: id,
                offset: body_offset,
                body,
            },
            id => return Some(Err(Error::ReservedSetId { set_id: id, offset })),
        }))
    }
}

/// What one template record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRecord {
    /// Defines (or redefines) a template.
    Define(Template),
    /// Withdraws one template (RFC 7011 section 8.1: field count 0).
    Withdraw {
        /// The template withdrawn.
        template_id: u16,
    },
    /// Withdraws every template of this kind (template id equal to the set id).
    WithdrawAll,
}

/// Iterator over the records of a template or options template set.
///
/// A record with a reserved template id or a bad scope count is reported and skipped, since its
/// length is known; a record that runs past the set ends the iteration after one error.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRecords<'a> {
    body: &'a [u8],
    pos: usize,
    base: usize,
    options: bool,
}

impl<'a> TemplateRecords<'a> {
    fn new(body: &'a [u8], base: usize, options: bool) -> Self {
        TemplateRecords {
            body,
            pos: 0,
            base,
            options,
        }
    }

    /// Whether these are options template records.
    pub fn is_options(&self) -> bool {
        self.options
    }

    fn parse_one(&mut self) -> Result<TemplateRecord, Error> {
        let rest = &self.body[self.pos..];
        let offset = self.base + self.pos;
        let template_id = be16(rest, 0);
        let field_count = be16(rest, 2);
        let set_id = if self.options {
            OPTIONS_TEMPLATE_SET_ID
        } else {
            TEMPLATE_SET_ID
        };
        if field_count == 0 {
            self.pos += 4;
            return Ok(match template_id {
                id if id == set_id => TemplateRecord::WithdrawAll,
                id if id >= MIN_DATA_SET_ID => TemplateRecord::Withdraw { template_id: id },
                id => {
                    return Err(Error::ReservedTemplateId {
                        template_id: id,
                        offset,
                    })
                }
            });
        }

        let mut pos = 4;
        let mut scope_field_count = 0;
        if self.options {
            need(rest, 6, "options template record", offset)?;
            scope_field_count = be16(rest, 4);
            pos = 6;
        }
        let mut fields = Vec::with_capacity(usize::from(field_count));
        for _ in 0..field_count {
            need(
                &rest[pos.min(rest.len())..],
                4,
                "field specifier",
                offset + pos,
            )?;
            let raw_id = be16(rest, pos);
            let length = be16(rest, pos + 2);
            pos += 4;
            let element = if raw_id & ENTERPRISE_BIT != 0 {
                need(&rest[pos..], 4, "enterprise number", offset + pos)?;
                let pen = be32(rest, pos);
                pos += 4;
                ElementId::enterprise(pen, raw_id & !ENTERPRISE_BIT)
            } else {
                ElementId::iana(raw_id)
            };
            fields.push(FieldSpec { element, length });
        }
        self.pos += pos;

        if template_id < MIN_DATA_SET_ID {
            return Err(Error::ReservedTemplateId {
                template_id,
                offset,
            });
        }
        if self.options && (scope_field_count == 0 || scope_field_count > field_count) {
            return Err(Error::BadScopeCount {
                template_id,
                scope_count: scope_field_count,
            });
        }
        let template = Template {
            id: template_id,
            scope_field_count,
            fields,
        };
        check_template(&template, HEADER_LEN + SET_HEADER_LEN)?;
        Ok(TemplateRecord::Define(template))
    }
}

/// Refuses templates that could never carry a record: no bytes at all, or records longer than
/// the largest message after its headers.
pub(crate) fn check_template(template: &Template, overhead: usize) -> Result<(), Error> {
    let min = template.min_record_length();
    if min == 0 {
        return Err(Error::EmptyTemplate {
            template_id: template.id,
            offset: 0,
        });
    }
    if min > usize::from(u16::MAX) - overhead {
        return Err(Error::OversizedTemplate {
            template_id: template.id,
            length: min,
        });
    }
    Ok(())
}

impl Iterator for TemplateRecords<'_> {
    type Item = Result<TemplateRecord, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.body[self.pos..];
        // RFC 7011 section 3.3.1: a set may end in padding shorter than a record; a template
        // record is at least 4 bytes, and template id 0 can only be padding.
        if rest.len() < 4 || rest.iter().all(|&b| b == 0) {
            self.pos = self.body.len();
            return None;
        }
        let result = self.parse_one();
        if let Err(Error::Truncated { .. }) = result {
            self.pos = self.body.len();
        }
        Some(result)
    }
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a message from set bodies given as (set id, body).
    fn message(domain: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![0, 10, 0, 0, 0x5f, 0, 0, 0, 0, 0, 0, 1];
        out.extend_from_slice(&domain.to_be_bytes());
        for (id, body) in sets {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
        let len = out.len() as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        out
    }

    #[test]
    fn header_fields_are_read() {
        let m = message(99, &[]);
        let msg = Message::parse(&m).unwrap();
        assert_eq!(msg.header().export_time, 0x5f00_0000);
        assert_eq!(msg.header().sequence, 1);
        assert_eq!(msg.header().domain, 99);
        assert!(msg.is_empty());
    }

    #[test]
    fn wrong_version_and_short_buffers_are_errors() {
        assert_eq!(
            Message::parse(&[0, 9, 0, 16]).unwrap_err().reason(),
            "truncated"
        );
        let mut m = message(1, &[]);
        m[1] = 9;
        assert_eq!(Message::parse(&m).unwrap_err(), Error::Version(9));
        let mut m = message(1, &[]);
        m[3] = 40; // claims 40 bytes, has 16
        assert!(matches!(
            Message::parse(&m),
            Err(Error::Truncated { needed: 40, .. })
        ));
        m[3] = 8; // shorter than a header
        assert!(matches!(
            Message::parse(&m),
            Err(Error::BadLength { length: 8, .. })
        ));
    }

    #[test]
    fn template_with_enterprise_field_and_varlen() {
        let body = vec![
            1, 0, 0, 3, // template 256, 3 fields
            0, 8, 0, 4, // sourceIPv4Address, 4 bytes
            0x80, 1, 0xff, 0xff, 0, 0, 0x72, 0x79, // enterprise 29305 element 1, variable
            0, 82, 0xff, 0xff, // interfaceName, variable
        ];
        let m = message(1, &[(2, body)]);
        let msg = Message::parse(&m).unwrap();
        let Some(Ok(Set::Template(mut recs))) = msg.sets().next() else {
            panic!()
        };
        let TemplateRecord::Define(t) = recs.next().unwrap().unwrap() else {
            panic!()
        };
        assert!(recs.next().is_none());
        assert_eq!(t.id, 256);
        assert_eq!(t.fields[1].element, ElementId::enterprise(29305, 1));
        assert!(t.fields[1].is_variable());
        assert_eq!(t.min_record_length(), 6);
    }

    #[test]
    fn withdrawals_single_and_all() {
        let body = vec![1, 1, 0, 0, 0, 2, 0, 0];
        let m = message(1, &[(2, body)]);
        let msg = Message::parse(&m).unwrap();
        let Some(Ok(Set::Template(recs))) = msg.sets().next() else {
            panic!()
        };
        let got: Vec<_> = recs.map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                TemplateRecord::Withdraw { template_id: 257 },
                TemplateRecord::WithdrawAll
            ]
        );
    }

    #[test]
    fn options_template_scope_counts_are_checked() {
        // template 300: 2 fields, 1 scope field (observationDomainId), samplingInterval
        let good = vec![1, 44, 0, 2, 0, 1, 0, 149, 0, 4, 0, 34, 0, 4];
        let zero_scope = vec![1, 45, 0, 1, 0, 0, 0, 34, 0, 4];
        let m = message(1, &[(3, zero_scope), (3, good)]);
        let msg = Message::parse(&m).unwrap();
        let sets: Vec<_> = msg.sets().map(Result::unwrap).collect();
        let Set::OptionsTemplate(mut bad) = sets[0] else {
            panic!()
        };
        assert!(matches!(
            bad.next(),
            Some(Err(Error::BadScopeCount {
                template_id: 301,
                ..
            }))
        ));
        let Set::OptionsTemplate(mut ok) = sets[1] else {
            panic!()
        };
        let TemplateRecord::Define(t) = ok.next().unwrap().unwrap() else {
            panic!()
        };
        assert_eq!(t.scope_field_count, 1);
        assert_eq!(t.scope_fields()[0].element, ElementId::iana(149));
    }

    #[test]
    fn reserved_template_id_is_skipped_and_the_next_record_read() {
        let body = vec![0, 5, 0, 1, 0, 8, 0, 4, 1, 0, 0, 1, 0, 8, 0, 4];
        let m = message(1, &[(2, body)]);
        let msg = Message::parse(&m).unwrap();
        let Some(Ok(Set::Template(recs))) = msg.sets().next() else {
            panic!()
        };
        let got: Vec<_> = recs.collect();
        assert!(matches!(
            got[0],
            Err(Error::ReservedTemplateId { template_id: 5, .. })
        ));
        assert!(matches!(got[1], Ok(TemplateRecord::Define(ref t)) if t.id == 256));
    }

    #[test]
    fn zero_field_and_truncated_templates() {
        // zero-length fields only: no record can be carried
        let m = message(1, &[(2, vec![1, 0, 0, 1, 0, 8, 0, 0])]);
        let msg = Message::parse(&m).unwrap();
        let Some(Ok(Set::Template(mut recs))) = msg.sets().next() else {
            panic!()
        };
        assert!(matches!(
            recs.next(),
            Some(Err(Error::EmptyTemplate { .. }))
        ));
        // declares 2 fields, carries one
        let m = message(1, &[(2, vec![1, 0, 0, 2, 0, 8, 0, 4])]);
        let msg = Message::parse(&m).unwrap();
        let Some(Ok(Set::Template(mut recs))) = msg.sets().next() else {
            panic!()
        };
        assert!(matches!(recs.next(), Some(Err(Error::Truncated { .. }))));
        assert!(recs.next().is_none());
    }

    #[test]
    fn set_past_the_message_ends_iteration_with_one_error() {
        let mut m = message(1, &[(256, vec![1, 2, 3, 4]), (257, vec![5, 6, 7, 8])]);
        // second set claims 200 bytes
        m[26..28].copy_from_slice(&200u16.to_be_bytes());
        let msg = Message::parse(&m).unwrap();
        let got: Vec<_> = msg.sets().collect();
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0], Ok(Set::Data { set_id: 256, .. })));
        assert!(matches!(
            got[1],
            Err(Error::Truncated {
                what: "set",
                offset: 24,
                ..
            })
        ));
    }

    #[test]
    fn reserved_set_ids_are_reported_and_skipped() {
        let m = message(1, &[(7, vec![0; 4]), (256, vec![9; 4])]);
        let msg = Message::parse(&m).unwrap();
        let got: Vec<_> = msg.sets().collect();
        assert!(matches!(
            got[0],
            Err(Error::ReservedSetId { set_id: 7, .. })
        ));
        assert!(matches!(got[1], Ok(Set::Data { set_id: 256, .. })));
    }

    #[test]
    fn zero_filled_tail_is_padding() {
        let mut m = message(1, &[(256, vec![1, 2, 3, 4])]);
        m.extend_from_slice(&[0; 6]);
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let msg = Message::parse(&m).unwrap();
        assert_eq!(msg.sets().count(), 1);
    }
}
