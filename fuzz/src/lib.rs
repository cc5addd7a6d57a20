//! Helpers shared by the fuzz targets: walking decoded records the way the collector does, and
//! splitting one fuzz input into a sequence of messages.
//!
//! Every check here is an `assert!`: libFuzzer reports a panic as a crash and keeps the input.

use botnest_wire::{ie, value, Record, Template};

/// Decodes and renders every field of a record, as `botnest decode` would, and checks that the
/// record yields exactly one value per template field.
pub fn walk_record(record: &Record<'_>) {
    let mut fields = 0;
    let mut out = String::new();
    for (spec, bytes) in record.fields() {
        fields += 1;
        assert!(
            bytes.len() <= record.bytes().len(),
            "field longer than its record"
        );
        let _ = ie::display_name(spec.element);
        if let Some(def) = ie::lookup(spec.element) {
            value::decode(def.data_type, bytes).write_json(&mut out);
            out.clear();
        }
    }
    assert_eq!(
        fields,
        record.template().fields.len(),
        "a record must yield one value per template field"
    );
}

/// Splits a data set body with `template` and walks every record, checking that the records
/// never claim more bytes than the body holds.
pub fn walk_data(template: &Template, body: &[u8]) {
    let mut used = 0;
    for record in template.records(body) {
        let Ok(record) = record else { break };
        used += record.bytes().len();
        assert!(used <= body.len(), "records overrun their set body");
        walk_record(&record);
    }
}

/// Remembers templates by id, with a bound so a hostile message cannot grow it without limit.
#[derive(Debug, Default)]
pub struct Templates {
    by_id: std::collections::HashMap<u16, Template>,
}

impl Templates {
    /// Most templates kept; more than a message can usefully define.
    const MAX: usize = 256;

    /// Adds or replaces a template.
    pub fn define(&mut self, template: Template) {
        if self.by_id.len() < Self::MAX || self.by_id.contains_key(&template.id) {
            self.by_id.insert(template.id, template);
        }
    }

    /// Forgets one template.
    pub fn withdraw(&mut self, id: u16) {
        self.by_id.remove(&id);
    }

    /// Forgets every template.
    pub fn clear(&mut self) {
        self.by_id.clear();
    }

    /// The template with this id.
    pub fn get(&self, id: u16) -> Option<&Template> {
        self.by_id.get(&id)
    }
}

/// One message cut from a fuzz input by [`Chunks`].
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// A byte the target reads as it likes (session, time step, chunk size...).
    pub control: u8,
    /// The message bytes.
    pub bytes: &'a [u8],
}

/// Splits a fuzz input into chunks laid out as `control: u8, length: u16 (big endian), bytes`.
///
/// scripts/fuzz.sh writes seeds in this layout from the datagrams of real captures. A length
/// past the end of the input takes what is left, so every input splits into something.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

impl<'a> Chunks<'a> {
    /// Chunks of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Chunks { rest: input }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        let (&[control, hi, lo], rest) = self.rest.split_first_chunk::<3>()?;
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(rest.len());
        let (bytes, rest) = rest.split_at(len);
        self.rest = rest;
        Some(Chunk { control, bytes })
    }
}
