//! Element ids the collector interprets.
//!
//! Numbers from IANA's IPFIX registry (RFC 7012 and later assignments); NetFlow v9 field types
//! 1..=127 are the same numbers. The VMware ids are those Open vSwitch exports under enterprise
//! 6876.

#![allow(missing_docs)]

pub const OCTET_DELTA_COUNT: u16 = 1;
pub const PACKET_DELTA_COUNT: u16 = 2;
pub const PROTOCOL_IDENTIFIER: u16 = 4;
pub const TCP_CONTROL_BITS: u16 = 6;
pub const SOURCE_TRANSPORT_PORT: u16 = 7;
pub const SOURCE_IPV4_ADDRESS: u16 = 8;
pub const INGRESS_INTERFACE: u16 = 10;
pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
pub const EGRESS_INTERFACE: u16 = 14;
pub const FLOW_END_SYS_UP_TIME: u16 = 21;
pub const FLOW_START_SYS_UP_TIME: u16 = 22;
pub const POST_OCTET_DELTA_COUNT: u16 = 23;
pub const POST_PACKET_DELTA_COUNT: u16 = 24;
pub const SOURCE_IPV6_ADDRESS: u16 = 27;
pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
pub const ICMP_TYPE_CODE_IPV4: u16 = 32;
pub const SAMPLING_INTERVAL: u16 = 34;
pub const SAMPLER_ID: u16 = 48;
pub const SAMPLER_RANDOM_INTERVAL: u16 = 50;
pub const VLAN_ID: u16 = 58;
pub const FLOW_DIRECTION: u16 = 61;
pub const INTERFACE_NAME: u16 = 82;
pub const INTERFACE_DESCRIPTION: u16 = 83;
pub const OCTET_TOTAL_COUNT: u16 = 85;
pub const PACKET_TOTAL_COUNT: u16 = 86;
pub const OBSERVATION_POINT_ID: u16 = 138;
pub const ICMP_TYPE_CODE_IPV6: u16 = 139;
pub const OBSERVATION_DOMAIN_ID: u16 = 149;
pub const FLOW_START_SECONDS: u16 = 150;
pub const FLOW_END_SECONDS: u16 = 151;
pub const FLOW_START_MILLISECONDS: u16 = 152;
pub const FLOW_END_MILLISECONDS: u16 = 153;
pub const FLOW_START_MICROSECONDS: u16 = 154;
pub const FLOW_END_MICROSECONDS: u16 = 155;
pub const FLOW_START_NANOSECONDS: u16 = 156;
pub const FLOW_END_NANOSECONDS: u16 = 157;
pub const FLOW_START_DELTA_MICROSECONDS: u16 = 158;
pub const FLOW_END_DELTA_MICROSECONDS: u16 = 159;
pub const SYSTEM_INIT_TIME_MILLISECONDS: u16 = 160;
pub const FLOW_DURATION_MILLISECONDS: u16 = 161;
pub const FLOW_DURATION_MICROSECONDS: u16 = 162;
pub const TCP_FIN_TOTAL_COUNT: u16 = 219;
pub const TCP_SYN_TOTAL_COUNT: u16 = 218;
pub const TCP_RST_TOTAL_COUNT: u16 = 220;
pub const TCP_PSH_TOTAL_COUNT: u16 = 221;
pub const TCP_ACK_TOTAL_COUNT: u16 = 222;
pub const TCP_URG_TOTAL_COUNT: u16 = 223;
pub const INITIATOR_OCTETS: u16 = 231;
pub const RESPONDER_OCTETS: u16 = 232;
pub const DOT1Q_VLAN_ID: u16 = 243;
pub const INITIATOR_PACKETS: u16 = 298;
pub const RESPONDER_PACKETS: u16 = 299;
pub const SELECTOR_ID: u16 = 302;
pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
pub const SAMPLING_PACKET_SPACE: u16 = 306;
pub const SAMPLING_SIZE: u16 = 309;
pub const SAMPLING_POPULATION: u16 = 310;
pub const SAMPLING_PROBABILITY: u16 = 311;
pub const LAYER2_SEGMENT_ID: u16 = 351;

pub const VMWARE_TUNNEL_KEY: u16 = 892;
pub const VMWARE_TUNNEL_SOURCE_IPV4: u16 = 893;
pub const VMWARE_TUNNEL_DESTINATION_IPV4: u16 = 894;
