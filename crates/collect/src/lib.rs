//! Flow collection: exporter sessions, template state, normalisation, sockets and files.

#![forbid(unsafe_code)]
pub mod capture;
pub mod ipfix_file;
