//! Address and endpoint sets: threat-intelligence blocklists and the allow-list.
//!
//! A set holds networks (CIDRs, single addresses as /32 or /128) and endpoints (address and
//! port). Lookups find an endpoint entry first, then the longest matching prefix: one hash probe
//! per prefix length present, so a lookup costs a handful of probes whatever the list's size.
//! Reading list files is the caller's business; this module holds what was read.

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// One entry of a list: a network or an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Target {
    /// A network; a single address is a /32 or /128.
    Net(IpNet),
    /// One address and port.
    Endpoint(IpAddr, u16),
}

/// Why a target did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTarget(pub String);

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an address, network or address:port: {:?}", self.0)
    }
}

impl std::error::Error for BadTarget {}

impl FromStr for Target {
    type Err = BadTarget;

    fn from_str(s: &str) -> Result<Target, BadTarget> {
        let s = s.trim();
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Target::Endpoint(unmap(sa.ip()), sa.port()));
        }
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(Target::Net(IpNet::from(unmap(a))));
        }
        match s.parse::<IpNet>() {
            // "1.2.3.4/24" names the network 1.2.3.0/24.
            Ok(n) => Ok(Target::Net(n.trunc())),
            Err(_) => Err(BadTarget(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Target {
    type Error = BadTarget;
    fn try_from(s: String) -> Result<Target, BadTarget> {
        s.parse()
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Net(n) if n.prefix_len() == n.max_prefix_len() => write!(f, "{}", n.addr()),
            Target::Net(n) => write!(f, "{n}"),
            Target::Endpoint(a, p) => write!(f, "{}", SocketAddr::new(*a, *p)),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address it carries.
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// Why a target is in a set: the list and the entry as the list wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    list: Arc<str>,
    entry: Arc<str>,
    target: Target,
}

impl Listing {
    /// Name of the list (usually its file name).
    pub fn list(&self) -> &str {
        &self.list
    }

    /// The entry with its comment, as the list wrote it (e.g. `1.2.3.0/24 ; SBL123`).
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// What the entry covers.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Whether the entry names an endpoint (address and port) rather than a network.
    pub fn is_endpoint(&self) -> bool {
        matches!(self.target, Target::Endpoint(..))
    }
}

/// A set of networks and endpoints, each with the listing that put it there.
#[derive(Debug, Clone, Default)]
pub struct Intel {
    v4: BTreeMap<u8, FxHashMap<u32, Listing>>,
    v6: BTreeMap<u8, FxHashMap<u128, Listing>>,
    endpoints: FxHashMap<(IpAddr, u16), Listing>,
    lists: Vec<Arc<str>>,
    len: usize,
}

fn mask4(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Fills a vacant entry; an occupied one keeps its listing.
fn vacant<K>(e: Entry<'_, K, Listing>, listing: Listing) -> bool {
    match e {
        Entry::Vacant(v) => {
            v.insert(listing);
            true
        }
        Entry::Occupied(_) => false,
    }
}

impl Intel {
    /// An empty set.
    pub fn new() -> Intel {
        Intel::default()
    }

    /// A set of the given targets, all from one list.
    pub fn from_targets<'a>(list: &str, targets: impl IntoIterator<Item = &'a Target>) -> Intel {
        let mut set = Intel::new();
        for t in targets {
            set.insert(*t, list, &t.to_string());
        }
        set
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn list_name(&mut self, list: &str) -> Arc<str> {
        if let Some(l) = self.lists.iter().find(|l| &***l == list) {
            return l.clone();
        }
        let l: Arc<str> = Arc::from(list);
        self.lists.push(l.clone());
        l
    }

    /// Adds a target; returns false when it was already listed (the first listing stays).
    pub fn insert(&mut self, target: Target, list: &str, entry: &str) -> bool {
        let listing = Listing {
            list: self.list_name(list),
            entry: Arc::from(entry),
            target,
        };
        let added = match target {
            Target::Endpoint(a, p) => vacant(self.endpoints.entry((unmap(a), p)), listing),
            Target::Net(IpNet::V4(n)) => {
                let len = n.prefix_len();
                let key = mask4(u32::from(n.addr()), len);
                vacant(self.v4.entry(len).or_default().entry(key), listing)
            }
            Target::Net(IpNet::V6(n)) => {
                let len = n.prefix_len();
                let key = mask6(u128::from(n.addr()), len);
                vacant(self.v6.entry(len).or_default().entry(key), listing)
            }
        };
        self.len += usize::from(added);
        added
    }

    /// Adds a network.
    pub fn insert_net(&mut self, net: IpNet, list: &str, entry: &str) -> bool {
        self.insert(Target::Net(net.trunc()), list, entry)
    }

    /// Adds an endpoint.
    pub fn insert_endpoint(&mut self, addr: IpAddr, port: u16, list: &str, entry: &str) -> bool {
        self.insert(Target::Endpoint(addr, port), list, entry)
    }

    /// The listing covering `addr` (on `port`, when the port is known): an endpoint entry for
    /// exactly that address and port, else the most specific network containing the address.
    pub fn lookup(&self, addr: IpAddr, port: Option<u16>) -> Option<&Listing> {
        let addr = unmap(addr);
        if let Some(p) = port {
            if let Some(l) = self.endpoints.get(&(addr, p)) {
                return Some(l);
            }
        }
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .rev()
                    .find_map(|(len, map)| map.get(&mask4(a, *len)))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .rev()
                    .find_map(|(len, map)| map.get(&mask6(a, *len)))
            }
        }
    }

    /// Whether `addr` (on `port`, when known) is covered.
    pub fn contains(&self, addr: IpAddr, port: Option<u16>) -> bool {
        self.lookup(addr, port).is_some()
    }

    /// Whether any network entry covers `addr`; endpoint entries do not count.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        self.lookup(addr, None).is_some()
    }

    /// Whether any endpoint entries are held.
    pub fn has_endpoints(&self) -> bool {
        !self.endpoints.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn targets_parse_in_every_written_form() {
        assert_eq!(
            "10.1.2.3".parse::<Target>().unwrap().to_string(),
            "10.1.2.3"
        );
        assert_eq!(
            "198.51.100.7/24".parse::<Target>().unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(
            "203.0.113.5:443".parse::<Target>().unwrap(),
            Target::Endpoint(ip("203.0.113.5"), 443)
        );
        assert_eq!(
            "[2001:db8::1]:8443".parse::<Target>().unwrap(),
            Target::Endpoint(ip("2001:db8::1"), 8443)
        );
        assert_eq!(
            "2001:db8::/32".parse::<Target>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!("example.com".parse::<Target>().is_err());
        assert!("1.2.3.4:99999".parse::<Target>().is_err());
    }

    #[test]
    fn the_most_specific_network_answers() {
        let mut set = Intel::new();
        set.insert_net("10.0.0.0/8".parse().unwrap(), "wide", "10.0.0.0/8");
        set.insert_net("10.1.0.0/16".parse().unwrap(), "narrow", "10.1.0.0/16");
        assert_eq!(set.lookup(ip("10.1.2.3"), None).unwrap().list(), "narrow");
        assert_eq!(set.lookup(ip("10.2.2.3"), None).unwrap().list(), "wide");
        assert!(!set.contains(ip("11.0.0.1"), None));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn endpoints_match_only_their_port() {
        let mut set = Intel::new();
        set.insert_endpoint(ip("203.0.113.5"), 443, "feodo", "203.0.113.5:443");
        assert!(set.contains(ip("203.0.113.5"), Some(443)));
        assert!(!set.contains(ip("203.0.113.5"), Some(80)));
        assert!(!set.contains(ip("203.0.113.5"), None));
        assert!(set
            .lookup(ip("203.0.113.5"), Some(443))
            .unwrap()
            .is_endpoint());
    }

    #[test]
    fn whole_address_space_and_mapped_addresses_match() {
        let mut set = Intel::new();
        set.insert_net("0.0.0.0/0".parse().unwrap(), "all", "0.0.0.0/0");
        set.insert_net("2001:db8::/32".parse().unwrap(), "doc", "2001:db8::/32");
        assert!(set.contains(ip("192.0.2.1"), None));
        assert!(set.contains(ip("::ffff:192.0.2.1"), None));
        assert!(set.contains(ip("2001:db8:1::5"), Some(80)));
        assert!(!set.contains(ip("2001:db9::5"), None));
    }

    #[test]
    fn a_duplicate_keeps_the_first_listing() {
        let mut set = Intel::new();
        assert!(set.insert_net("192.0.2.0/24".parse().unwrap(), "a", "first"));
        assert!(!set.insert_net("192.0.2.9/24".parse().unwrap(), "b", "second"));
        assert_eq!(set.lookup(ip("192.0.2.1"), None).unwrap().entry(), "first");
        assert_eq!(set.len(), 1);
    }
}
