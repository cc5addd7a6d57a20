//! What detectors conclude: behaviours, roles and the evidence behind them.

use crate::host::HostKey;
use botnest_flow::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A behaviour botnest recognises. Each is one set of the Euler diagram of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Regular contact with an endpoint, or a steady loop of failed attempts to reach it.
    Beaconing,
    /// Several internal hosts talk to the same external endpoint in the same way.
    SharedC2,
    /// Membership in a peer-to-peer overlay.
    PeerToPeer,
    /// Fan-out to many addresses on one port with little success.
    Scanning,
    /// Scanning that started after the host was itself scanned or contacted by a scanner.
    WormSpread,
    /// Sending to a victim at the same time as other internal hosts.
    Flooding,
    /// Mail fan-out to many mail servers.
    Spam,
    /// Many short login attempts on SSH, Telnet or RDP.
    BruteForce,
    /// Contact with a blocklisted address or endpoint.
    Blocklisted,
}

impl Behaviour {
    /// Every behaviour, in display order.
    pub const ALL: [Behaviour; 9] = [
        Behaviour::Beaconing,
        Behaviour::SharedC2,
        Behaviour::PeerToPeer,
        Behaviour::Scanning,
        Behaviour::WormSpread,
        Behaviour::Flooding,
        Behaviour::Spam,
        Behaviour::BruteForce,
        Behaviour::Blocklisted,
    ];

    /// The snake_case name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Beaconing => "beaconing",
            Behaviour::SharedC2 => "shared_c2",
            Behaviour::PeerToPeer => "peer_to_peer",
            Behaviour::Scanning => "scanning",
            Behaviour::WormSpread => "worm_spread",
            Behaviour::Flooding => "flooding",
            Behaviour::Spam => "spam",
            Behaviour::BruteForce => "brute_force",
            Behaviour::Blocklisted => "blocklisted",
        }
    }
}

/// A host's part in a botnest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An infected internal host.
    Bot,
    /// A command-and-control endpoint.
    C2,
    /// A peer of a peer-to-peer botnet.
    Peer,
    /// A target of scanning, flooding or brute force.
    Victim,
    /// A host that scans.
    Scanner,
    /// A host that sends spam.
    Spammer,
    /// A host that takes part in a flood.
    Flooder,
    /// A host that brute-forces logins.
    Bruteforcer,
}

/// The other end of a piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Peer {
    /// The other host.
    pub host: HostKey,
    /// Its port, where one matters.
    pub port: Option<u16>,
    /// IP protocol.
    pub proto: u8,
}

impl Peer {
    /// `address:port` (brackets around IPv6), or the address alone.
    pub fn endpoint(&self) -> String {
        match (self.host.addr, self.port) {
            (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
            (a, Some(p)) => format!("{a}:{p}"),
            (a, None) => a.to_string(),
        }
    }
}

/// One reason to suspect a host, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Which behaviour.
    pub kind: Behaviour,
    /// The role the evidence gives the host.
    pub role: Role,
    /// How strongly it points at a bot, 0 to 1.
    pub score: f64,
    /// A sentence a person can check against the flows.
    pub detail: String,
    /// The other end, where there is one (the C2, the victim, the scanned port).
    pub peer: Option<Peer>,
    /// First flow behind the evidence.
    pub first_seen: Timestamp,
    /// Last flow behind the evidence.
    pub last_seen: Timestamp,
}
