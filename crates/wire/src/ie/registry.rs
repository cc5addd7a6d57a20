//! Placeholder replaced by the generated registry.
use super::{ElementDef, ElementId};

/// Every IANA element.
pub static IANA_ELEMENTS: &[ElementDef] = &[];

/// Looks up an element's definition.
pub fn lookup(_id: ElementId) -> Option<&'static ElementDef> {
    None
}

/// IANA element ids.
pub mod iana {}
/// VMware element ids.
pub mod vmware {}
