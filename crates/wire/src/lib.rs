//! IPFIX (RFC 7011) and NetFlow v5/v9 (RFC 3954) wire formats, without I/O.
//!
//! Each format has a checked view over the bytes ([`ipfix::Message`], [`netflow9::Packet`],
//! [`netflow5::Packet`]) whose constructor validates the header and length; iterators then walk
//! sets and records, checking every length before any slice is taken, so no accessor can panic on
//! hostile input. Templates ([`Template`]) are plain data: keeping them per transport session and
//! observation domain is the collector's work. [`ie`] is the information-element registry.
//!
//! ```
//! use botnest_wire::{ipfix, Template, FieldSpec};
//! let template = Template { id: 256, scope_field_count: 0, fields: vec![FieldSpec::iana(8, 4)] };
//! let records: Vec<_> = template.records(&[10, 0, 0, 1, 10, 0, 0, 2]).collect();
//! assert_eq!(records.len(), 2);
//! assert_eq!(ipfix::VERSION, 10);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod encode;
pub mod error;
pub mod ie;
pub mod ipfix;
pub mod netflow5;
pub mod netflow9;
pub mod template;
pub mod value;

pub use error::Error;
pub use ie::{DataType, ElementDef, ElementId};
pub use template::{FieldSpec, Layout, Record, Records, Template, VARIABLE_LENGTH};
pub use value::Value;

/// The export protocol version of a datagram, read from its first two bytes.
pub fn version(buf: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]))
}
