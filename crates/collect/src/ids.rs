//! Element ids the collector interprets, from the generated registry.
//!
//! NetFlow v9 field types 1..=127 are the same numbers as these IANA ids; the VMware ids are
//! those Open vSwitch exports under enterprise 6876.

pub use botnest_wire::ie::iana::*;
pub use botnest_wire::ie::vmware::{
    TUNNEL_DESTINATION_IPV4_ADDRESS as VMWARE_TUNNEL_DESTINATION_IPV4,
    TUNNEL_KEY as VMWARE_TUNNEL_KEY, TUNNEL_SOURCE_IPV4_ADDRESS as VMWARE_TUNNEL_SOURCE_IPV4,
};
