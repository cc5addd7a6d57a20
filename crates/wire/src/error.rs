//! Decoding errors.
//!
//! Errors are small and `Copy` so that the hot path can return them without allocating. They say
//! what was being read, at which byte offset of the message, and what length was needed and
//! available. The collector adds the exporter, observation domain and template id.

/// Why a message, set or record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes were available than the structure needs.
    #[error("truncated {what} at offset {offset}: need {needed} bytes, have {available}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset of the structure from the start of the message.
        offset: usize,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// The version field names a protocol this decoder does not handle.
    #[error("unsupported export version {0}")]
    Version(u16),
    /// A length field disagrees with the structure around it.
    #[error("{what} at offset {offset} has invalid length {length}")]
    BadLength {
        /// Which length field.
        what: &'static str,
        /// Byte offset of the structure carrying the length.
        offset: usize,
        /// The length it claimed.
        length: usize,
    },
    /// A template defines no fields (RFC 7011 section 3.4.1 needs at least one).
    #[error("template {template_id} at offset {offset} has no fields")]
    EmptyTemplate {
        /// The template id.
        template_id: u16,
        /// Byte offset of the template record.
        offset: usize,
    },
    /// A template or options template record uses an id below 256 (RFC 7011 section 3.4.1).
    #[error("template id {template_id} at offset {offset} is reserved")]
    ReservedTemplateId {
        /// The template id.
        template_id: u16,
        /// Byte offset of the template record.
        offset: usize,
    },
    /// An options template declares more scope fields than fields, or none at all.
    #[error("options template {template_id} has invalid scope field count {scope_count}")]
    BadScopeCount {
        /// The template id.
        template_id: u16,
        /// The scope field count it claimed.
        scope_count: u16,
    },
    /// A template's records could never fit in a message (longer than 65535 bytes).
    #[error("template {template_id} describes records of {length} bytes, longer than a message")]
    OversizedTemplate {
        /// The template id.
        template_id: u16,
        /// The minimum record length it describes.
        length: usize,
    },
    /// A set id that no version of the protocol assigns (RFC 7011 section 3.3.2: 4..255).
    #[error("reserved set id {set_id} at offset {offset}")]
    ReservedSetId {
        /// The set id.
        set_id: u16,
        /// Byte offset of the set header.
        offset: usize,
    },
}

impl Error {
    /// A short, fixed reason for counters and log fields (no numbers, few distinct values).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::Version(_) => "unsupported_version",
            Error::BadLength { .. } => "bad_length",
            Error::EmptyTemplate { .. } => "empty_template",
            Error::ReservedTemplateId { .. } => "reserved_template_id",
            Error::BadScopeCount { .. } => "bad_scope_count",
            Error::OversizedTemplate { .. } => "oversized_template",
            Error::ReservedSetId { .. } => "reserved_set_id",
        }
    }
}

/// Returns the first `n` bytes of `buf`, or a [`Error::Truncated`] describing what was missing.
#[inline]
pub(crate) fn need(buf: &[u8], n: usize, what: &'static str, offset: usize) -> Result<(), Error> {
    if buf.len() < n {
        Err(Error::Truncated {
            what,
            offset,
            needed: n,
            available: buf.len(),
        })
    } else {
        Ok(())
    }
}
