//! Detection settings. Every value has a default; the configuration file's `[detect]` table
//! overrides them.

use crate::host::HostConfig;
use crate::intel::Target;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;

/// Settings of the detection engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Length of the evaluation window, in seconds.
    pub window_seconds: u64,
    /// How often the window slides (and detectors run), in seconds.
    pub slide_seconds: u64,
    /// How late a record may arrive (behind the newest event time seen) and still count.
    pub lateness_seconds: u64,
    /// Hosts and channels idle for this many seconds are forgotten.
    pub retention_seconds: u64,
    /// Most hosts held at once.
    pub max_hosts: usize,
    /// Most channels held at once.
    pub max_channels: usize,
    /// How hosts and tenants are identified.
    pub hosts: HostConfig,
    /// DNS resolvers of the network; periodic DNS to them is normal. DNS to any server on port
    /// 53 that answers is treated the same way.
    pub resolvers: Vec<IpAddr>,
    /// Score (0 to 1) from which an internal host is reported as a bot.
    pub bot_threshold: f64,
    /// Beaconing.
    pub beacon: BeaconConfig,
    /// Scanning, brute force and spam.
    pub fanout: FanoutConfig,
    /// Flood participation.
    pub flood: FloodConfig,
    /// Peer-to-peer overlays.
    pub p2p: P2pConfig,
    /// Addresses, networks and endpoints (`"203.0.113.5:443"`) that never produce findings:
    /// findings about them or naming them are dropped, and their channels are not counted.
    pub allow: Vec<Target>,
    /// Blocklist files (plain lists or abuse.ch-style CSV) of addresses, networks and
    /// endpoints; contact with a listed one is evidence. The engine is given their contents.
    pub blocklists: Vec<PathBuf>,
    /// Windows without new evidence after which a botnest is dormant.
    pub dormant_after_windows: u32,
    /// Windows without new evidence after which a botnest is closed.
    pub close_after_windows: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            window_seconds: 3600,
            slide_seconds: 60,
            lateness_seconds: 120,
            retention_seconds: 2 * 3600,
            max_hosts: 2_000_000,
            max_channels: 8_000_000,
            hosts: HostConfig::default(),
            resolvers: Vec::new(),
            bot_threshold: 0.6,
            beacon: BeaconConfig::default(),
            fanout: FanoutConfig::default(),
            flood: FloodConfig::default(),
            p2p: P2pConfig::default(),
            allow: Vec::new(),
            blocklists: Vec::new(),
            dormant_after_windows: 1,
            close_after_windows: 24,
        }
    }
}

/// Beaconing detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconConfig {
    /// Fewest contacts in the window to judge regularity.
    pub min_contacts: usize,
    /// How far an interval may stray from a multiple of the period, as a share of the period.
    pub tolerance: f64,
    /// Share of intervals that must fit the period.
    pub min_regular_share: f64,
    /// Most consecutive beacons that may be missing between two contacts (sampling, loss).
    pub max_missed: u32,
    /// Shortest period considered, in seconds.
    pub min_period_seconds: f64,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            min_contacts: 8,
            tolerance: 0.15,
            min_regular_share: 0.75,
            max_missed: 3,
            min_period_seconds: 0.2,
        }
    }
}

/// Fan-out detection: scanning, brute force, spam.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutConfig {
    /// Fewest distinct targets on one port for scanning.
    pub scan_min_targets: usize,
    /// Largest share of answered attempts for scanning.
    pub scan_max_success: f64,
    /// Ports where repeated short sessions are login attempts.
    pub login_ports: Vec<u16>,
    /// Fewest attempts on one target's login port for brute force.
    pub bruteforce_min_attempts: u32,
    /// Mail submission and relay ports.
    pub mail_ports: Vec<u16>,
    /// Fewest distinct mail servers for spam.
    pub spam_min_servers: usize,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            scan_min_targets: 32,
            scan_max_success: 0.3,
            login_ports: vec![22, 23, 2222, 2323, 3389, 5900],
            bruteforce_min_attempts: 20,
            mail_ports: vec![25, 465, 587],
            spam_min_servers: 10,
        }
    }
}

/// Flood detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodConfig {
    /// Fewest internal hosts sending to one victim at once.
    pub min_sources: usize,
    /// Fewest packets per second each of them sends.
    pub min_packets_per_second: f64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            min_sources: 2,
            min_packets_per_second: 100.0,
        }
    }
}

/// Peer-to-peer overlay detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Fewest distinct peers contacted on high ports for a host to look like an overlay node.
    pub min_peers: usize,
    /// Smallest share of distinct destination ports among those peers: overlay nodes listen on
    /// ports of their own choosing, services on well-known ones.
    pub min_port_diversity: f64,
    /// Fewest distinct peers a host must answer on a high port to count as an acceptor too.
    pub min_accepted: usize,
    /// Fewest peers shared with other internal hosts that count as mutual contacts.
    pub min_mutual: usize,
    /// Windows of history a protocol graph needs before it is compared with its past.
    pub min_history: usize,
    /// Windows of history kept per protocol graph.
    pub history: usize,
    /// Standard deviations above its mean at which a graph's size is anomalous.
    pub deviations: f64,
    /// Smallest growth, in hosts, that counts as anomalous (a quiet graph has no deviation).
    pub min_growth: usize,
    /// Most answering peers named per host.
    pub max_named_peers: usize,
    /// Peer discovery: lone UDP datagrams to many external peers over minutes.
    pub discovery: DiscoveryConfig,
}

/// Peer-discovery probing: a node of a peer-to-peer overlay sending small, mostly unanswered
/// UDP datagrams to many external peers, each on a port of its own, minute after minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Fewest distinct external peers probed (a few datagrams, no answer) for a verdict.
    pub min_peers: usize,
    /// Fewest distinct minutes in which a new peer was probed: discovery goes on over time.
    pub min_minutes: usize,
    /// Smallest share of the host's UDP peers on high ports that were probed and never
    /// answered.
    pub min_unanswered_share: f64,
    /// Smallest share of distinct ports among the probed peers whose port is known.
    pub min_port_diversity: f64,
    /// Most requests to one peer for the contact to count as a probe.
    pub max_requests_per_peer: u32,
    /// Most bytes per datagram of a probe.
    pub max_datagram_bytes: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            min_peers: 16,
            min_minutes: 3,
            min_unanswered_share: 0.75,
            min_port_diversity: 0.75,
            max_requests_per_peer: 3,
            max_datagram_bytes: 600,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            min_peers: 20,
            min_port_diversity: 0.5,
            min_accepted: 3,
            min_mutual: 5,
            min_history: 4,
            history: 24,
            deviations: 3.0,
            min_growth: 8,
            max_named_peers: 8,
            discovery: DiscoveryConfig::default(),
        }
    }
}
