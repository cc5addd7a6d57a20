//! Templates: the layout of data records, shared by IPFIX and NetFlow v9.

use crate::ie::ElementId;

/// Field length meaning "variable length, encoded in the record" (RFC 7011 section 7).
pub const VARIABLE_LENGTH: u16 = 0xffff;

/// One field of a template: which element, and how many bytes it takes in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// The information element carried.
    pub element: ElementId,
    /// Length in bytes, or [`VARIABLE_LENGTH`].
    pub length: u16,
}

impl FieldSpec {
    /// A field of an IANA element.
    pub const fn iana(id: u16, length: u16) -> Self {
        FieldSpec {
            element: ElementId::iana(id),
            length,
        }
    }

    /// Whether the record carries this field's length itself.
    pub const fn is_variable(&self) -> bool {
        self.length == VARIABLE_LENGTH
    }
}

/// A template or options template: the fields of the data records of one set id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// Template id, 256 or higher; data sets with this id use this layout.
    pub id: u16,
    /// Number of leading fields that are scope fields; 0 for a plain template.
    pub scope_field_count: u16,
    /// The fields, in record order.
    pub fields: Vec<FieldSpec>,
}

impl Template {
    /// Whether this is an options template (one with scope fields).
    pub fn is_options(&self) -> bool {
        self.scope_field_count > 0
    }

    /// The scope fields of an options template (empty for a plain template).
    pub fn scope_fields(&self) -> &[FieldSpec] {
        &self.fields[..usize::from(self.scope_field_count).min(self.fields.len())]
    }

    /// The smallest number of bytes a record of this template takes: fixed fields at their length,
    /// variable-length fields at one byte (their shortest length prefix).
    pub fn min_record_length(&self) -> usize {
        self.fields
            .iter()
            .map(|f| {
                if f.is_variable() {
                    1
                } else {
                    usize::from(f.length)
                }
            })
            .sum()
    }

    /// The length of every record if no field has variable length.
    pub fn fixed_record_length(&self) -> Option<usize> {
        if self.fields.iter().any(FieldSpec::is_variable) {
            None
        } else {
            Some(self.min_record_length())
        }
    }

    /// Splits the data records of a data set body using this template.
    pub fn records<'a>(&'a self, body: &'a [u8]) -> Records<'a> {
        self.records_with(&self.layout(), body)
    }

    /// How records of this template are measured, worked out once so that splitting a data set
    /// costs nothing per set: a collector keeps it beside the template.
    pub fn layout(&self) -> Layout {
        Layout {
            min_len: self.min_record_length(),
            fixed_len: self.fixed_record_length(),
            runs: Runs::of(self),
        }
    }

    /// Splits the data records of a data set body with a layout from [`Template::layout`] of
    /// this same template.
    pub fn records_with<'a>(&'a self, layout: &Layout, body: &'a [u8]) -> Records<'a> {
        Records {
            template: self,
            body,
            pos: 0,
            layout: *layout,
        }
    }
}

/// What splitting records of one template needs to know: their smallest length, their length
/// when every field is fixed, and the fixed stretches between variable-length fields.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    min_len: usize,
    /// Set when every record has the same length, so records are split without measuring them.
    fixed_len: Option<usize>,
    /// How to measure records of templates with variable-length fields.
    runs: Option<Runs>,
}

/// The fixed-length stretches between a template's variable-length fields, so a record's
/// length is found from its few length prefixes instead of a walk over every field.
#[derive(Debug, Clone, Copy)]
struct Runs {
    /// Bytes of fixed fields before each variable-length field, then after the last one.
    lens: [usize; MAX_RUNS + 1],
    /// Number of variable-length fields.
    count: usize,
}

/// Most variable-length fields measured by runs; templates with more are walked field by field.
const MAX_RUNS: usize = 8;

impl Runs {
    fn of(template: &Template) -> Option<Runs> {
        let mut runs = Runs {
            lens: [0; MAX_RUNS + 1],
            count: 0,
        };
        for f in &template.fields {
            if f.is_variable() {
                if runs.count == MAX_RUNS {
                    return None;
                }
                runs.count += 1;
            } else {
                runs.lens[runs.count] += usize::from(f.length);
            }
        }
        Some(runs)
    }

    /// The length of the record at the start of `bytes`, or `None` if it does not fit.
    #[inline]
    fn measure(&self, bytes: &[u8]) -> Option<usize> {
        let mut pos = 0usize;
        for &run in &self.lens[..self.count] {
            pos += run;
            let (len, skip) = varlen_prefix(bytes.get(pos..)?)?;
            pos += skip + len;
        }
        pos += self.lens[self.count];
        (pos <= bytes.len()).then_some(pos)
    }
}

/// One data record: the template and the record's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    template: &'a Template,
    bytes: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The template the record was split with.
    pub fn template(&self) -> &'a Template {
        self.template
    }

    /// The record's fields with their values. Lengths were checked when the record was split, so
    /// this yields exactly one value per template field.
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            specs: self.template.fields.iter(),
            bytes: self.bytes,
        }
    }
}

/// Iterator over a record's `(field, value)` pairs.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    specs: std::slice::Iter<'a, FieldSpec>,
    bytes: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = (FieldSpec, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let spec = *self.specs.next()?;
        // The record was measured by `record_length`, so every slice below is in bounds; the
        // `get` calls keep that a checked fact rather than an assumption.
        let (len, skip) = if spec.is_variable() {
            varlen_prefix(self.bytes)?
        } else {
            (usize::from(spec.length), 0)
        };
        let value = self.bytes.get(skip..skip + len)?;
        self.bytes = &self.bytes[skip + len..];
        Some((spec, value))
    }
}

/// Reads a variable-length field's length prefix (RFC 7011 section 7): one byte, or 255 followed
/// by two bytes. Returns the value length and the prefix length.
#[inline]
fn varlen_prefix(bytes: &[u8]) -> Option<(usize, usize)> {
    match *bytes.first()? {
        255 => {
            let b = bytes.get(1..3)?;
            Some((usize::from(u16::from_be_bytes([b[0], b[1]])), 3))
        }
        n => Some((usize::from(n), 1)),
    }
}

/// Measures the record starting at `bytes[0]`, or `None` if it does not fit.
#[inline]
fn record_length(template: &Template, bytes: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    for f in &template.fields {
        if f.is_variable() {
            let (len, skip) = varlen_prefix(bytes.get(pos..)?)?;
            pos += skip + len;
        } else {
            pos += usize::from(f.length);
        }
        if pos > bytes.len() {
            return None;
        }
    }
    Some(pos)
}

/// Iterator over the data records in a data set body.
///
/// Stops when the rest of the body is shorter than the smallest possible record: RFC 7011 section
/// 3.3.1 lets exporters pad a set, and the padding is not a record. A record whose variable-length
/// fields run past the set is reported once as an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    template: &'a Template,
    body: &'a [u8],
    pos: usize,
    layout: Layout,
}

/// A data set body ended inside a record (its variable-length fields ran past the set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOverrun {
    /// Byte offset of the bad record from the start of the set body.
    pub offset: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordOverrun>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.body[self.pos..];
        // A zero-length template would loop forever; such templates are refused when parsed, but
        // a template built by hand could still have only zero-length fields.
        if rest.len() < self.layout.min_len.max(1) {
            return None;
        }
        if let Some(len) = self.layout.fixed_len.filter(|&l| l > 0) {
            self.pos += len;
            return Some(Ok(Record {
                template: self.template,
                bytes: &rest[..len],
            }));
        }
        let measured = match &self.layout.runs {
            Some(runs) => runs.measure(rest),
            None => record_length(self.template, rest),
        };
        match measured {
            Some(len) if len > 0 => {
                self.pos += len;
                Some(Ok(Record {
                    template: self.template,
                    bytes: &rest[..len],
                }))
            }
            Some(_) => None,
            None => {
                let offset = self.pos;
                // Trailing bytes that are all zero are padding even where they could start a
                // variable-length record (a zero length prefix); anything else is an overrun.
                self.pos = self.body.len();
                if rest.iter().all(|&b| b == 0) {
                    None
                } else {
                    Some(Err(RecordOverrun { offset }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(fields: &[(u16, u16)]) -> Template {
        Template {
            id: 256,
            scope_field_count: 0,
            fields: fields
                .iter()
                .map(|&(id, len)| FieldSpec::iana(id, len))
                .collect(),
        }
    }

    #[test]
    fn fixed_records_split_and_padding_is_ignored() {
        let t = tpl(&[(8, 4), (7, 2)]);
        // two records of 6 bytes and 3 bytes of padding
        let body = [10, 0, 0, 1, 0, 80, 10, 0, 0, 2, 1, 187, 0, 0, 0];
        let recs: Vec<_> = t.records(&body).map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        let f: Vec<_> = recs[1].fields().collect();
        assert_eq!(f[0].1, &[10, 0, 0, 2]);
        assert_eq!(f[1].1, &[1, 187]);
    }

    #[test]
    fn variable_length_fields_with_one_and_three_byte_prefixes() {
        let t = tpl(&[(82, VARIABLE_LENGTH), (83, VARIABLE_LENGTH)]);
        let mut body = vec![3, b'e', b't', b'h'];
        body.extend_from_slice(&[255, 0, 2, b'h', b'i']);
        let recs: Vec<_> = t.records(&body).map(Result::unwrap).collect();
        assert_eq!(recs.len(), 1);
        let f: Vec<_> = recs[0].fields().map(|(_, v)| v).collect();
        assert_eq!(f, vec![&b"eth"[..], &b"hi"[..]]);
    }

    #[test]
    fn variable_length_running_past_the_set_is_an_overrun() {
        let t = tpl(&[(82, VARIABLE_LENGTH)]);
        let body = [1, b'a', 9, b'b'];
        let out: Vec<_> = t.records(&body).collect();
        assert!(out[0].is_ok());
        assert!(matches!(out[1], Err(RecordOverrun { offset: 2 })));
        assert_eq!(out.len(), 2);
    }

    proptest::proptest! {
        /// Measuring by runs between variable-length fields finds the same record ends as
        /// walking every field.
        #[test]
        fn runs_measure_records_like_the_field_walk(
            layout in proptest::collection::vec((0u16..20, proptest::bool::ANY), 1..30),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let fields = layout
                .iter()
                .map(|&(len, var)| FieldSpec::iana(1, if var { VARIABLE_LENGTH } else { len }))
                .collect();
            let t = Template { id: 256, scope_field_count: 0, fields };
            if let Some(runs) = Runs::of(&t) {
                for start in 0..body.len() {
                    let rest = &body[start..];
                    proptest::prop_assert_eq!(runs.measure(rest), record_length(&t, rest));
                }
            }
        }
    }
}
