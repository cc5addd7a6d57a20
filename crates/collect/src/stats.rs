//! Counters kept per exporter and observation domain.

use serde::Serialize;
use std::collections::BTreeMap;

/// What happened to one exporter's messages in one observation domain (or, for the totals, to
/// all of them). Every record botnest could not decode shows up here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages (IPFIX) or packets (NetFlow) received.
    pub messages: u64,
    /// Flow data records decoded.
    pub records: u64,
    /// Options data records decoded.
    pub options_records: u64,
    /// Template and options template records received (definitions and refreshes).
    pub templates: u64,
    /// Template withdrawals received.
    pub template_withdrawals: u64,
    /// Decoding errors of any kind.
    pub errors: u64,
    /// Data records the exporter sent that never arrived (IPFIX and v5 sequence numbers).
    pub lost_records: u64,
    /// Export packets that never arrived (NetFlow v9 sequence numbers).
    pub lost_packets: u64,
    /// Messages that arrived after a later one.
    pub out_of_order: u64,
    /// Sequence jumps taken as an exporter restart.
    pub sequence_resets: u64,
    /// Data sets held until their template arrives.
    pub pending_sets: u64,
    /// Held data sets that expired or were pushed out before their template came.
    pub pending_dropped: u64,
    /// Templates that expired (UDP template lifetime, RFC 7011 section 8.4).
    pub templates_expired: u64,
    /// Flow records whose times were shifted by their exporter's clock offset.
    pub clock_corrected: u64,
}

impl Counters {
    /// Adds another set of counters to this one.
    pub fn add(&mut self, o: &Counters) {
        self.messages += o.messages;
        self.records += o.records;
        self.options_records += o.options_records;
        self.templates += o.templates;
        self.template_withdrawals += o.template_withdrawals;
        self.errors += o.errors;
        self.lost_records += o.lost_records;
        self.lost_packets += o.lost_packets;
        self.out_of_order += o.out_of_order;
        self.sequence_resets += o.sequence_resets;
        self.pending_sets += o.pending_sets;
        self.pending_dropped += o.pending_dropped;
        self.templates_expired += o.templates_expired;
        self.clock_corrected += o.clock_corrected;
    }
}

/// Errors by fixed reason label (see `botnest_wire::Error::reason` and the collector's own).
pub type ErrorsByReason = BTreeMap<&'static str, u64>;
