//! Flow collection: exporter sessions, template state, normalisation, sockets and files.
//!
//! [`Decoder`] is the heart: it keeps templates per transport session and observation domain,
//! tracks sequence numbers and sampling, holds data that arrives before its template, and turns
//! every data record into a [`botnest_flow::FlowRecord`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod clock;
pub mod decoder;
pub mod export;
pub mod framing;
mod ids;
pub mod ipfix_file;
pub mod listen;
pub mod plan;
pub mod sequence;
pub mod sources;
pub mod stats;

pub use decoder::{
    DecodeError, Decoder, DecoderConfig, RecordMeta, SessionKey, Sink, TemplateSnapshot, Transport,
};
pub use listen::{Collector, Endpoint, ListenConfig};
pub use stats::Counters;
