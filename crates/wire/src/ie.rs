//! Information elements: identifiers, abstract data types and the registry.
//!
//! An element is named by its enterprise number and element id (RFC 7011 section 3.2). Enterprise
//! 0 is IANA's registry (RFC 7012), which [`lookup`] knows in full; enterprise 29305 holds the
//! reverse-direction elements of RFC 5103 biflows, which share the IANA ids and names (prefixed
//! with `reverse`); enterprise 6876 holds the VMware elements that Open vSwitch exports.

mod registry;

pub use registry::{display_name, iana, lookup, vmware, IANA_ELEMENTS};

/// IANA's private enterprise number for reverse-direction elements of RFC 5103 biflows.
pub const REVERSE_PEN: u32 = 29305;
/// VMware's private enterprise number, used by Open vSwitch for tunnel and flow-direction elements.
pub const VMWARE_PEN: u32 = 6876;
/// Pseudo enterprise number for NetFlow v9 options scope types (RFC 3954 section 6.1), which are
/// not information elements. No real enterprise can have it: enterprise numbers fit in 31 bits.
pub const NETFLOW9_SCOPE_PEN: u32 = u32::MAX;

/// Identifies an information element: enterprise number (0 for IANA) and element id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ElementId {
    /// Private enterprise number; 0 for IANA-registered elements.
    pub enterprise: u32,
    /// Element id within the enterprise (15 bits on the wire for IPFIX).
    pub id: u16,
}

impl ElementId {
    /// An IANA-registered element.
    pub const fn iana(id: u16) -> Self {
        ElementId { enterprise: 0, id }
    }

    /// An enterprise-specific element.
    pub const fn enterprise(enterprise: u32, id: u16) -> Self {
        ElementId { enterprise, id }
    }
}

impl std::fmt::Display for ElementId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.enterprise == 0 {
            write!(f, "{}", self.id)
        } else {
            write!(f, "{}/{}", self.enterprise, self.id)
        }
    }
}

/// Abstract data types of RFC 7012 section 3.1 (and RFC 6313 structured data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `octetArray`
    OctetArray,
    /// `unsigned8`
    Unsigned8,
    /// `unsigned16`
    Unsigned16,
    /// `unsigned32`
    Unsigned32,
    /// `unsigned64`
    Unsigned64,
    /// `signed8`
    Signed8,
    /// `signed16`
    Signed16,
    /// `signed32`
    Signed32,
    /// `signed64`
    Signed64,
    /// `float32`
    Float32,
    /// `float64`
    Float64,
    /// `boolean` (1 is true, 2 is false)
    Boolean,
    /// `macAddress`
    MacAddress,
    /// `string` (UTF-8)
    String,
    /// `dateTimeSeconds`
    DateTimeSeconds,
    /// `dateTimeMilliseconds`
    DateTimeMilliseconds,
    /// `dateTimeMicroseconds` (NTP format)
    DateTimeMicroseconds,
    /// `dateTimeNanoseconds` (NTP format)
    DateTimeNanoseconds,
    /// `ipv4Address`
    Ipv4Address,
    /// `ipv6Address`
    Ipv6Address,
    /// `basicList` (RFC 6313)
    BasicList,
    /// `subTemplateList` (RFC 6313)
    SubTemplateList,
    /// `subTemplateMultiList` (RFC 6313)
    SubTemplateMultiList,
}

impl DataType {
    /// The registry's name of the type, as written in RFC 7012.
    pub fn name(self) -> &'static str {
        match self {
            DataType::OctetArray => "octetArray",
            DataType::Unsigned8 => "unsigned8",
            DataType::Unsigned16 => "unsigned16",
            DataType::Unsigned32 => "unsigned32",
            DataType::Unsigned64 => "unsigned64",
            DataType::Signed8 => "signed8",
            DataType::Signed16 => "signed16",
            DataType::Signed32 => "signed32",
            DataType::Signed64 => "signed64",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::Boolean => "boolean",
            DataType::MacAddress => "macAddress",
            DataType::String => "string",
            DataType::DateTimeSeconds => "dateTimeSeconds",
            DataType::DateTimeMilliseconds => "dateTimeMilliseconds",
            DataType::DateTimeMicroseconds => "dateTimeMicroseconds",
            DataType::DateTimeNanoseconds => "dateTimeNanoseconds",
            DataType::Ipv4Address => "ipv4Address",
            DataType::Ipv6Address => "ipv6Address",
            DataType::BasicList => "basicList",
            DataType::SubTemplateList => "subTemplateList",
            DataType::SubTemplateMultiList => "subTemplateMultiList",
        }
    }

    /// Every abstract data type, in the order of RFC 7012 section 3.1 and RFC 6313.
    pub const ALL: [DataType; 23] = [
        DataType::OctetArray,
        DataType::Unsigned8,
        DataType::Unsigned16,
        DataType::Unsigned32,
        DataType::Unsigned64,
        DataType::Signed8,
        DataType::Signed16,
        DataType::Signed32,
        DataType::Signed64,
        DataType::Float32,
        DataType::Float64,
        DataType::Boolean,
        DataType::MacAddress,
        DataType::String,
        DataType::DateTimeSeconds,
        DataType::DateTimeMilliseconds,
        DataType::DateTimeMicroseconds,
        DataType::DateTimeNanoseconds,
        DataType::Ipv4Address,
        DataType::Ipv6Address,
        DataType::BasicList,
        DataType::SubTemplateList,
        DataType::SubTemplateMultiList,
    ];

    /// Parses a registry type name.
    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One element's definition in a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementDef {
    /// Enterprise number and id.
    pub id: ElementId,
    /// The registered name, such as `sourceIPv4Address`.
    pub name: &'static str,
    /// The abstract data type.
    pub data_type: DataType,
}
