//! NetFlow version 9 export packets (RFC 3954).
//!
//! The layout follows IPFIX closely: a header, then FlowSets. FlowSet id 0 carries templates,
//! 1 options templates, 256 and above data. Field types 1..=127 are the same numbers as the IANA
//! IPFIX elements, and exporters use the IANA numbers beyond that, so fields map to IANA element
//! ids; options scope types (RFC 3954 section 6.1) map to [`NETFLOW9_SCOPE_PEN`].

use crate::error::{need, Error};
use crate::ie::{ElementId, NETFLOW9_SCOPE_PEN};
use crate::ipfix::{be16, be32, check_template};
use crate::template::{FieldSpec, Template};

/// The version number of NetFlow v9 packets.
pub const VERSION: u16 = 9;
/// Length of the packet header.
pub const HEADER_LEN: usize = 20;
/// FlowSet id of template FlowSets.
pub const TEMPLATE_SET_ID: u16 = 0;
/// FlowSet id of options template FlowSets.
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 1;
/// Lowest FlowSet id of data FlowSets, and lowest valid template id.
pub const MIN_DATA_SET_ID: u16 = 256;

/// Options scope types of RFC 3954 section 6.1.
pub mod scope {
    /// The exporting system.
    pub const SYSTEM: u16 = 1;
    /// An interface (by SNMP index).
    pub const INTERFACE: u16 = 2;
    /// A line card.
    pub const LINE_CARD: u16 = 3;
    /// A NetFlow cache.
    pub const CACHE: u16 = 4;
    /// A template.
    pub const TEMPLATE: u16 = 5;

    /// The name of a scope type, as shown to users.
    pub const fn name(kind: u16) -> Option<&'static str> {
        Some(match kind {
            SYSTEM => "scopeSystem",
            INTERFACE => "scopeInterface",
            LINE_CARD => "scopeLineCard",
            CACHE => "scopeCache",
            TEMPLATE => "scopeTemplate",
            _ => return None,
        })
    }
}

/// The fixed header of a NetFlow v9 packet (RFC 3954 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Always [`VERSION`].
    pub version: u16,
    /// Records (template, options template and data) in the packet, by the exporter's count.
    pub count: u16,
    /// Milliseconds since the exporting device booted.
    pub sys_uptime_ms: u32,
    /// Seconds since the UNIX epoch when the packet was sent.
    pub unix_secs: u32,
    /// Export packets sent by this exporter and source id before this one (mod 2^32).
    pub sequence: u32,
    /// The exporter's source id, which scopes templates like an IPFIX observation domain.
    pub source_id: u32,
}

/// A checked view of one NetFlow v9 packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    header: Header,
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the header. A v9 packet has no length field: it is the whole datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, Error> {
        need(buf, HEADER_LEN, "netflow9 header", 0)?;
        let version = be16(buf, 0);
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let header = Header {
            version,
            count: be16(buf, 2),
            sys_uptime_ms: be32(buf, 4),
            unix_secs: be32(buf, 8),
            sequence: be32(buf, 12),
            source_id: be32(buf, 16),
        };
        Ok(Packet { header, bytes: buf })
    }

    /// The packet header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The raw bytes of the packet.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The FlowSets of the packet, in order.
    pub fn sets(&self) -> Sets<'a> {
        Sets {
            bytes: self.bytes,
            pos: HEADER_LEN,
        }
    }
}

/// One FlowSet of a v9 packet.
#[derive(Debug, Clone, Copy)]
pub enum Set<'a> {
    /// A template FlowSet.
    Template(TemplateRecords<'a>),
    /// An options template FlowSet.
    OptionsTemplate(TemplateRecords<'a>),
    /// A data FlowSet laid out by template `set_id`.
    Data {
        /// FlowSet id, which is the template id.
        set_id: u16,
        /// Offset of the body from the start of the packet.
        offset: usize,
        /// The FlowSet body (records and padding).
        body: &'a [u8],
    },
}

/// Iterator over the FlowSets of a packet; framing errors end it after one error, FlowSets with
/// reserved ids (2..=255) are reported and skipped.
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
        // Exporters pad the datagram; zeros after the last FlowSet are not a FlowSet.
        if rest.iter().all(|&b| b == 0) {
            self.pos = self.bytes.len();
            return None;
        }
        if rest.len() < 4 {
            self.pos = self.bytes.len();
            return Some(Err(Error::Truncated {
                what: "flowset header",
                offset,
                needed: 4,
                available: rest.len(),
            }));
        }
        let set_id = be16(rest, 0);
        let len = usize::from(be16(rest, 2));
        if len < 4 {
            self.pos = self.bytes.len();
            return Some(Err(Error::BadLength {
                what: "flowset",
                offset,
                length: len,
            }));
        }
        if len > rest.len() {
            self.pos = self.bytes.len();
            return Some(Err(Error::Truncated {
                what: "flowset",
                offset,
                needed: len,
                available: rest.len(),
            }));
        }
        self.pos += len;
        let body = &rest[4..len];
        let base = offset + 4;
        Some(Ok(match set_id {
            TEMPLATE_SET_ID => Set::Template(TemplateRecords {
                body,
                pos: 0,
                base,
                options: false,
            }),
            OPTIONS_TEMPLATE_SET_ID => Set::OptionsTemplate(TemplateRecords {
                body,
                pos: 0,
                base,
                options: true,
            }),
            id if id >= MIN_DATA_SET_ID => Set::Data {
                set_id: id,
                offset: base,
                body,
            },
            id => return Some(Err(Error::ReservedSetId { set_id: id, offset })),
        }))
    }
}

/// Iterator over the templates of a template or options template FlowSet. NetFlow v9 has no
/// template withdrawal, so every record defines a template.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRecords<'a> {
    body: &'a [u8],
    pos: usize,
    base: usize,
    options: bool,
}

impl TemplateRecords<'_> {
    /// Whether these are options template records.
    pub fn is_options(&self) -> bool {
        self.options
    }

    fn parse_plain(&mut self, rest: &[u8], offset: usize) -> Result<Template, Error> {
        let id = be16(rest, 0);
        let count = usize::from(be16(rest, 2));
        let len = 4 + 4 * count;
        need(rest, len, "template record", offset)?;
        self.pos += len;
        if count == 0 {
            return Err(Error::EmptyTemplate {
                template_id: id,
                offset,
            });
        }
        let fields = (0..count)
            .map(|i| FieldSpec::iana(be16(rest, 4 + 4 * i), be16(rest, 6 + 4 * i)))
            .collect();
        Ok(Template {
            id,
            scope_field_count: 0,
            fields,
        })
    }

    fn parse_options(&mut self, rest: &[u8], offset: usize) -> Result<Template, Error> {
        need(rest, 6, "options template record", offset)?;
        let id = be16(rest, 0);
        let scope_len = usize::from(be16(rest, 2));
        let option_len = usize::from(be16(rest, 4));
        if scope_len % 4 != 0 || option_len % 4 != 0 {
            self.pos = self.body.len();
            let length = if scope_len % 4 != 0 {
                scope_len
            } else {
                option_len
            };
            return Err(Error::BadLength {
                what: "options template scope/option",
                offset,
                length,
            });
        }
        let len = 6 + scope_len + option_len;
        need(rest, len, "options template record", offset)?;
        // RFC 3954 section 6.1: the record is followed by padding to a 4-byte boundary.
        self.pos += len + (4 - len % 4) % 4;
        let scope_count = scope_len / 4;
        let fields: Vec<_> = (0..(scope_len + option_len) / 4)
            .map(|i| {
                let kind = be16(rest, 6 + 4 * i);
                let length = be16(rest, 8 + 4 * i);
                if i < scope_count {
                    FieldSpec {
                        element: ElementId::enterprise(NETFLOW9_SCOPE_PEN, kind),
                        length,
                    }
                } else {
                    FieldSpec::iana(kind, length)
                }
            })
            .collect();
        if scope_count == 0 {
            return Err(Error::BadScopeCount {
                template_id: id,
                scope_count: 0,
            });
        }
        Ok(Template {
            id,
            scope_field_count: scope_count as u16,
            fields,
        })
    }
}

impl Iterator for TemplateRecords<'_> {
    type Item = Result<Template, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.body[self.pos.min(self.body.len())..];
        if rest.len() < 4 || rest.iter().all(|&b| b == 0) {
            self.pos = self.body.len();
            return None;
        }
        let offset = self.base + self.pos;
        let result = if self.options {
            self.parse_options(rest, offset)
        } else {
            self.parse_plain(rest, offset)
        };
        let result = result.and_then(|t| {
            if t.id < MIN_DATA_SET_ID {
                return Err(Error::ReservedTemplateId {
                    template_id: t.id,
                    offset,
                });
            }
            check_template(&t, HEADER_LEN + 4)?;
            Ok(t)
        });
        if let Err(Error::Truncated { .. }) = result {
            self.pos = self.body.len();
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![
            0, 9, 0, 1, 0, 0, 0x03, 0xe8, 0x60, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 42,
        ];
        for (id, body) in sets {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    #[test]
    fn header_is_read() {
        let p = packet(&[]);
        let h = *Packet::parse(&p).unwrap().header();
        assert_eq!(
            (h.count, h.sys_uptime_ms, h.sequence, h.source_id),
            (1, 1000, 5, 42)
        );
    }

    #[test]
    fn template_and_options_template() {
        let tpl = vec![1, 0, 0, 2, 0, 8, 0, 4, 0, 12, 0, 4];
        // options template 257: scope interface (4 bytes), option samplingInterval (34), padded
        let opt = vec![1, 1, 0, 4, 0, 4, 0, 2, 0, 4, 0, 34, 0, 4, 0, 0];
        let p = packet(&[(0, tpl), (1, opt)]);
        let pk = Packet::parse(&p).unwrap();
        let sets: Vec<_> = pk.sets().map(Result::unwrap).collect();
        let Set::Template(mut t) = sets[0] else {
            panic!()
        };
        let t = t.next().unwrap().unwrap();
        assert_eq!(
            t.fields,
            vec![FieldSpec::iana(8, 4), FieldSpec::iana(12, 4)]
        );
        let Set::OptionsTemplate(mut o) = sets[1] else {
            panic!()
        };
        let o1 = o.next().unwrap().unwrap();
        assert!(o.next().is_none());
        assert_eq!(o1.scope_field_count, 1);
        assert_eq!(
            o1.fields[0].element,
            ElementId::enterprise(NETFLOW9_SCOPE_PEN, 2)
        );
        assert_eq!(o1.fields[1], FieldSpec::iana(34, 4));
    }

    #[test]
    fn bad_flowset_length_is_one_error() {
        let mut p = packet(&[(256, vec![1, 2, 3, 4])]);
        p[22..24].copy_from_slice(&2u16.to_be_bytes());
        let got: Vec<_> = Packet::parse(&p).unwrap().sets().collect();
        assert_eq!(got.len(), 1);
        assert!(matches!(
            got[0],
            Err(Error::BadLength {
                what: "flowset",
                ..
            })
        ));
    }

    #[test]
    fn zero_length_fields_are_allowed_but_not_alone() {
        let tpl = vec![1, 0, 0, 2, 0, 8, 0, 4, 0, 99, 0, 0, 1, 1, 0, 1, 0, 99, 0, 0];
        let p = packet(&[(0, tpl)]);
        let pk = Packet::parse(&p).unwrap();
        let Some(Ok(Set::Template(recs))) = pk.sets().next() else {
            panic!()
        };
        let got: Vec<_> = recs.collect();
        assert_eq!(got[0].as_ref().unwrap().min_record_length(), 4);
        assert!(matches!(
            got[1],
            Err(Error::EmptyTemplate {
                template_id: 257,
                ..
            })
        ));
    }
}
