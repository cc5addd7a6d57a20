//! Ground truth: which hosts of a capture are infected, and their C2 endpoints.
//!
//! Truth comes from two places. Labelled flow files (Zeek `label`, Argus `Label`) mark flows;
//! a host is infected when it originates a flow labelled malicious between unicast hosts (see
//! [`counts_as_infection`]) whose destination does not itself originate such flows: datasets
//! label an infected machine's conversations whichever end starts them. A truth file (TOML) names machines
//! outright, with their C2 endpoints, which labels do not carry:
//!
//! ```toml
//! description = "RemcosRAT reconnect loop"
//!
//! [[infected]]
//! addresses = ["192.168.1.107"]
//! c2 = ["66.63.168.35:5888/tcp"]
//!
//! [[benign]]
//! addresses = ["192.168.1.132"]
//! ```
//!
//! A machine may have several addresses (an IPv4 and an IPv6 address of one computer); it is
//! found when any of them is. When a truth file is given, its `infected` list is the whole set
//! of infected machines and labels only date the infection; internal hosts it does not name are
//! benign.

use anyhow::{bail, Context, Result};
use botnest_collect::sources::Label;
use botnest_flow::FlowRecord;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// A truth file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthFile {
    /// What the capture holds (free text).
    #[serde(default)]
    pub description: String,
    /// Infected machines.
    #[serde(default)]
    pub infected: Vec<InfectedEntry>,
    /// Machines known to be clean.
    #[serde(default)]
    pub benign: Vec<BenignEntry>,
}

/// An infected machine of a truth file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfectedEntry {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Its C2 endpoints: `addr:port/proto`, `addr:port` or `addr` (IPv6 in brackets with a
    /// port). Naming any one of them counts.
    #[serde(default)]
    pub c2: Vec<String>,
}

/// A clean machine of a truth file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenignEntry {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
}

impl TruthFile {
    /// Reads and checks a truth file.
    pub fn load(path: &Path) -> Result<TruthFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read truth file {}", path.display()))?;
        let truth: TruthFile =
            toml::from_str(&text).with_context(|| format!("bad truth file {}", path.display()))?;
        for entry in &truth.infected {
            if entry.addresses.is_empty() {
                bail!("{}: an infected machine without addresses", path.display());
            }
            for c2 in &entry.c2 {
                C2::parse(c2).with_context(|| format!("{}: bad c2 {c2:?}", path.display()))?;
            }
        }
        Ok(truth)
    }
}

/// A C2 endpoint of the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct C2 {
    /// Its address.
    pub addr: IpAddr,
    /// Its port, when the truth names one.
    pub port: Option<u16>,
    /// Its IP protocol, when the truth names one.
    pub proto: Option<u8>,
}

impl C2 {
    /// Reads `addr:port/proto`, `addr:port`, `[v6]:port` or a bare address.
    pub fn parse(text: &str) -> Result<C2> {
        let (endpoint, proto) = match text.rsplit_once('/') {
            Some((e, "tcp")) => (e, Some(6)),
            Some((e, "udp")) => (e, Some(17)),
            Some((_, other)) => bail!("unknown protocol {other:?}"),
            None => (text, None),
        };
        if let Ok(addr) = endpoint.parse::<IpAddr>() {
            return Ok(C2 {
                addr,
                port: None,
                proto,
            });
        }
        let sock: SocketAddr = endpoint.parse().context("not an address or address:port")?;
        Ok(C2 {
            addr: sock.ip(),
            port: Some(sock.port()),
            proto,
        })
    }

    /// Whether a flow goes to this endpoint.
    pub fn contacted_by(&self, f: &FlowRecord) -> bool {
        f.dst == self.addr
            && self.port.is_none_or(|p| p == f.dst_port)
            && self.proto.is_none_or(|p| p == f.protocol)
    }

    /// Whether an endpoint a detector named (`port` where it gave one) is this one.
    pub fn matches(&self, addr: IpAddr, port: Option<u16>) -> bool {
        addr == self.addr && (self.port.is_none() || port.is_none() || self.port == port)
    }
}

impl std::fmt::Display for C2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.addr, self.port) {
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}")?,
            (a, Some(p)) => write!(f, "{a}:{p}")?,
            (a, None) => write!(f, "{a}")?,
        }
        match self.proto {
            Some(6) => write!(f, "/tcp"),
            Some(17) => write!(f, "/udp"),
            _ => Ok(()),
        }
    }
}

/// Whether an address can stand for one machine: not unspecified, multicast, broadcast or
/// link-local. Datasets label neighbour discovery, mDNS and DHCP chatter along with the
/// infected machine's traffic; those flows come from or go to everyone on the link and say
/// nothing about which machine is infected.
pub fn is_unicast_host(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_link_local())
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_unicast_link_local()),
    }
}

/// The rule that turns flow labels into host truth: a flow labelled malicious makes its source
/// infected when both its ends are unicast hosts ([`is_unicast_host`]). Flows between
/// multicast or link-local addresses that a dataset labels malicious (Hide'n'Seek marks some)
/// are set aside, neither malicious nor benign.
pub fn counts_as_infection(f: &FlowRecord, label: &Label) -> bool {
    label.malicious && is_unicast_host(f.src) && is_unicast_host(f.dst)
}

/// The class of one flow's source, for the time-window metric: a botnet flow, a normal flow,
/// or background (unknown, or set aside by the rule above). Ordered by precedence: within one
/// window an address takes the highest class of its flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlowClass {
    /// Not known either way; not counted.
    Background,
    /// Benign.
    Normal,
    /// Malicious.
    Botnet,
}

/// The class of a labelled flow: botnet by [`counts_as_infection`], normal when the label says
/// benign or normal, background otherwise ("Unknown", "Background", set-aside malicious).
pub fn label_class(f: &FlowRecord, label: &Label) -> FlowClass {
    if counts_as_infection(f, label) {
        return FlowClass::Botnet;
    }
    let text = label.text.to_ascii_lowercase();
    if !label.malicious && (text.contains("benign") || text.contains("normal")) {
        FlowClass::Normal
    } else {
        FlowClass::Background
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: &str, dst: &str) -> FlowRecord {
        FlowRecord {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            dst_port: 5888,
            protocol: 6,
            ..Default::default()
        }
    }

    #[test]
    fn c2_endpoints_parse_with_and_without_port_and_protocol() {
        let c = C2::parse("66.63.168.35:5888/tcp").unwrap();
        assert_eq!(c.port, Some(5888));
        assert_eq!(c.proto, Some(6));
        assert_eq!(c.to_string(), "66.63.168.35:5888/tcp");
        let c = C2::parse("[2001:db8::1]:443").unwrap();
        assert_eq!(c.to_string(), "[2001:db8::1]:443");
        assert_eq!(C2::parse("23.253.126.58").unwrap().port, None);
        assert!(C2::parse("1.2.3.4:80/sctp").is_err());
        assert!(C2::parse("example.com:80").is_err());
    }

    #[test]
    fn c2_matches_a_named_endpoint_by_address_and_port() {
        let c = C2::parse("66.63.168.35:5888/tcp").unwrap();
        let a: IpAddr = "66.63.168.35".parse().unwrap();
        assert!(c.matches(a, Some(5888)));
        assert!(c.matches(a, None));
        assert!(!c.matches(a, Some(80)));
        assert!(c.contacted_by(&flow("192.168.1.107", "66.63.168.35")));
        assert!(!c.contacted_by(&flow("192.168.1.107", "66.63.168.36")));
    }

    #[test]
    fn malicious_labels_on_multicast_and_link_local_flows_do_not_infect_their_source() {
        let bad = Label::new("Malicious", None);
        assert!(counts_as_infection(
            &flow("192.168.2.16", "31.31.74.35"),
            &bad
        ));
        assert!(!counts_as_infection(
            &flow("192.168.2.1", "224.0.0.251"),
            &bad
        ));
        assert!(!counts_as_infection(&flow("fe80::1", "ff02::fb"), &bad));
        assert!(!counts_as_infection(
            &flow("169.254.242.182", "10.0.0.1"),
            &bad
        ));
        assert!(!counts_as_infection(
            &flow("0.0.0.0", "255.255.255.255"),
            &bad
        ));
        let f = flow("192.168.2.1", "224.0.0.251");
        assert_eq!(label_class(&f, &bad), FlowClass::Background);
    }

    #[test]
    fn label_classes_follow_the_label_text() {
        let f = flow("192.168.1.109", "91.189.94.4");
        assert_eq!(
            label_class(&f, &Label::new("Benign", None)),
            FlowClass::Normal
        );
        assert_eq!(
            label_class(&f, &Label::new("Unknown", None)),
            FlowClass::Background
        );
        let b = Label::new("flow=From-Botnet-V42-TCP-CC", None);
        assert_eq!(label_class(&f, &b), FlowClass::Botnet);
        assert_eq!(
            label_class(&f, &Label::new("flow=From-Normal-V42-Grill", None)),
            FlowClass::Normal
        );
    }

    #[test]
    fn truth_files_parse_and_reject_unknown_keys() {
        let t: TruthFile = toml::from_str(
            "[[infected]]\naddresses = [\"10.0.0.1\", \"fd00::1\"]\nc2 = [\"1.2.3.4:80\"]\n\
             [[benign]]\naddresses = [\"10.0.0.2\"]\n",
        )
        .unwrap();
        assert_eq!(t.infected[0].addresses.len(), 2);
        assert_eq!(t.benign.len(), 1);
        assert!(toml::from_str::<TruthFile>("bots = []").is_err());
    }
}
