//! Detection settings. Every value has a default; the configuration file's `[detect]` table
//! overrides them.

use crate::host::HostConfig;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

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
