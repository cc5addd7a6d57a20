//! The normalised flow record.
//!
//! Whatever the source (IPFIX, NetFlow v9 or v5, a file, a capture), the collector turns each
//! data record into one [`FlowRecord`] with absolute UTC times, raw and sampling-scaled counters,
//! and the context that identifies where it was observed (exporter, observation domain, VLAN,
//! tunnel key). Detection and storage see only this type.
//!
//! ```
//! use botnest_flow::{FlowRecord, Timestamp};
//! let mut r = FlowRecord::default();
//! r.packets = 3;
//! r.sampling_interval = 100;
//! assert_eq!(r.scaled_packets(), 300);
//! assert_eq!(Timestamp::from_unix_millis(1_500).as_unix_nanos(), 1_500_000_000);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// A UTC instant, in nanoseconds since the UNIX epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From whole seconds.
    pub const fn from_unix_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1_000_000_000))
    }
    /// From milliseconds.
    pub const fn from_unix_millis(ms: u64) -> Self {
        Timestamp(ms.saturating_mul(1_000_000))
    }
    /// From microseconds.
    pub const fn from_unix_micros(us: u64) -> Self {
        Timestamp(us.saturating_mul(1_000))
    }
    /// Nanoseconds since the epoch.
    pub const fn as_unix_nanos(self) -> u64 {
        self.0
    }
    /// Milliseconds since the epoch (truncated).
    pub const fn as_unix_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Whether this is the zero instant, used for "not known".
    pub const fn is_unset(self) -> bool {
        self.0 == 0
    }
    /// Adds a signed number of nanoseconds, saturating at the ends of the range.
    pub const fn offset_nanos(self, delta: i64) -> Self {
        Timestamp(self.0.saturating_add_signed(delta))
    }
}

/// Which way the flow crossed the observation point, where the exporter says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Not reported.
    #[default]
    Unknown,
    /// Entering the observation point (flowDirection 0).
    Ingress,
    /// Leaving it (flowDirection 1).
    Egress,
}

/// One flow, normalised from any export format.
///
/// Counters are raw (as exported) and [`FlowRecord::scaled_octets`] and friends multiply by the
/// sampling interval that applied. For RFC 5103 biflows the `reverse_*` counters hold the other
/// direction; for unidirectional flows they are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowRecord {
    /// First packet of the flow.
    pub start: Timestamp,
    /// Last packet of the flow.
    pub end: Timestamp,
    /// Source (initiator for biflows) address.
    pub src: IpAddr,
    /// Destination (responder for biflows) address.
    pub dst: IpAddr,
    /// Source transport port, 0 where the protocol has none.
    pub src_port: u16,
    /// Destination transport port; for ICMP, type * 256 + code.
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Union of TCP flags seen (including the ECN/NS bits where exported).
    pub tcp_flags: u16,
    /// Union of TCP flags of the reverse direction of a biflow.
    pub reverse_tcp_flags: u16,
    /// Octets as exported (unscaled).
    pub octets: u64,
    /// Packets as exported (unscaled).
    pub packets: u64,
    /// Reverse-direction octets of a biflow (unscaled).
    pub reverse_octets: u64,
    /// Reverse-direction packets of a biflow (unscaled).
    pub reverse_packets: u64,
    /// 1-in-N packet sampling that applied to the flow; 1 when unsampled.
    pub sampling_interval: u32,
    /// Direction at the observation point.
    pub direction: Direction,
    /// VLAN id (0 when untagged).
    pub vlan: u16,
    /// Tunnel key or VNI (0 when none).
    pub tunnel_key: u64,
    /// Outer source address of the tunnel, when tunnelled.
    pub tunnel_src: Option<IpAddr>,
    /// Outer destination address of the tunnel, when tunnelled.
    pub tunnel_dst: Option<IpAddr>,
    /// Observation domain (IPFIX), source id (v9) or engine type/id (v5).
    pub observation_domain: u32,
    /// Observation point id, where exported.
    pub observation_point: u64,
    /// Address of the exporter that sent the record.
    pub exporter: IpAddr,
    /// Input interface index.
    pub input_interface: u32,
    /// Output interface index.
    pub output_interface: u32,
}

impl Default for FlowRecord {
    fn default() -> Self {
        let zero = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        FlowRecord {
            start: Timestamp::default(),
            end: Timestamp::default(),
            src: zero,
            dst: zero,
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            tcp_flags: 0,
            reverse_tcp_flags: 0,
            octets: 0,
            packets: 0,
            reverse_octets: 0,
            reverse_packets: 0,
            sampling_interval: 1,
            direction: Direction::Unknown,
            vlan: 0,
            tunnel_key: 0,
            tunnel_src: None,
            tunnel_dst: None,
            observation_domain: 0,
            observation_point: 0,
            exporter: zero,
            input_interface: 0,
            output_interface: 0,
        }
    }
}

impl FlowRecord {
    fn scale(&self, n: u64) -> u64 {
        n.saturating_mul(u64::from(self.sampling_interval.max(1)))
    }
    /// Octets estimated before sampling.
    pub fn scaled_octets(&self) -> u64 {
        self.scale(self.octets)
    }
    /// Packets estimated before sampling.
    pub fn scaled_packets(&self) -> u64 {
        self.scale(self.packets)
    }
    /// Reverse octets estimated before sampling.
    pub fn scaled_reverse_octets(&self) -> u64 {
        self.scale(self.reverse_octets)
    }
    /// Reverse packets estimated before sampling.
    pub fn scaled_reverse_packets(&self) -> u64 {
        self.scale(self.reverse_packets)
    }
    /// Whether this record carries both directions of a conversation (RFC 5103).
    pub fn is_biflow(&self) -> bool {
        self.reverse_packets != 0 || self.reverse_octets != 0
    }
}
