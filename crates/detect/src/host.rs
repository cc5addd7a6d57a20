//! Host identity: a tenant and an address.
//!
//! Tenants of one cloud reuse the same private ranges, so an internal address alone does not
//! name a machine: `10.0.0.5` of one customer and `10.0.0.5` of another are different hosts.
//! The tenant is read from the flow's context (VLAN, tunnel key, observation domain or
//! exporter, as configured). Addresses outside the internal networks are the same host for
//! everyone and carry no tenant.

use botnest_flow::FlowRecord;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A tenant number: the VLAN, tunnel key, observation domain or exporter-derived value that
/// tells tenants apart; 0 for external hosts and when tenants are not told apart.
pub type Tenant = u64;

/// One host of the property graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostKey {
    /// The tenant (0 for external hosts).
    pub tenant: Tenant,
    /// The address.
    pub addr: IpAddr,
}

/// Where the tenant of a flow comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantSource {
    /// One tenant for everything.
    #[default]
    None,
    /// The VLAN id.
    Vlan,
    /// The tunnel key or VNI.
    TunnelKey,
    /// The observation domain.
    Domain,
    /// The exporter's address (one tenant per switch or router).
    Exporter,
    /// The tunnel key when there is one, else the VLAN (overlay and VLAN tenants side by side).
    TunnelKeyOrVlan,
}

/// How hosts are identified.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Networks whose addresses are internal (tenants' machines). Default: the private and
    /// unique-local ranges.
    pub internal: Vec<IpNet>,
    /// Where the tenant of an internal address comes from.
    pub tenant_from: TenantSource,
    /// Names shown for tenant numbers (`"100" = "acme"`).
    pub tenant_names: BTreeMap<String, String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            internal: default_internal(),
            tenant_from: TenantSource::None,
            tenant_names: BTreeMap::new(),
        }
    }
}

/// RFC 1918 private ranges, shared address space (RFC 6598), and IPv6 unique-local addresses.
pub fn default_internal() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    ]
    .iter()
    .map(|s| s.parse().expect("valid network"))
    .collect()
}

/// Resolves hosts of flows.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// The internal IPv4 networks as (network, mask), and the IPv6 ones: every flow asks
    /// twice, so the test is a mask and a compare.
    internal_v4: Vec<(u32, u32)>,
    internal_v6: Vec<(u128, u128)>,
    tenant_from: TenantSource,
    names: BTreeMap<Tenant, String>,
}

impl Hosts {
    /// Builds a resolver from its configuration.
    pub fn new(config: &HostConfig) -> Hosts {
        let names = config
            .tenant_names
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
            .collect();
        let mut internal_v4 = Vec::new();
        let mut internal_v6 = Vec::new();
        for net in &config.internal {
            match net {
                IpNet::V4(n) => internal_v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => {
                    internal_v6.push((u128::from(n.network()), u128::from(n.netmask())))
                }
            }
        }
        Hosts {
            internal_v4,
            internal_v6,
            tenant_from: config.tenant_from,
            names,
        }
    }

    /// Whether an address belongs to the internal networks.
    pub fn is_internal(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.internal_v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.internal_v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }

    /// The tenant a flow belongs to.
    pub fn tenant_of(&self, f: &FlowRecord) -> Tenant {
        match self.tenant_from {
            TenantSource::None => 0,
            TenantSource::Vlan => u64::from(f.vlan),
            TenantSource::TunnelKey => f.tunnel_key,
            TenantSource::Domain => u64::from(f.observation_domain),
            TenantSource::Exporter => match f.exporter {
                IpAddr::V4(v4) => u64::from(u32::from(v4)),
                IpAddr::V6(v6) => (u128::from(v6) & u128::from(u64::MAX)) as u64,
            },
            TenantSource::TunnelKeyOrVlan if f.tunnel_key != 0 => f.tunnel_key,
            TenantSource::TunnelKeyOrVlan => u64::from(f.vlan),
        }
    }

    /// The host an address of a flow stands for.
    pub fn host(&self, tenant: Tenant, addr: IpAddr) -> HostKey {
        let tenant = if self.is_internal(addr) { tenant } else { 0 };
        HostKey { tenant, addr }
    }

    /// The name of a tenant: the configured one, else its number.
    pub fn tenant_name(&self, tenant: Tenant) -> String {
        self.names
            .get(&tenant)
            .cloned()
            .unwrap_or_else(|| tenant.to_string())
    }
}

/// Serde for maps keyed by hosts: a list of `[key, value]` pairs, since JSON object keys must be
/// strings. Use with `#[serde(with = "crate::host::key_pairs")]`.
pub mod key_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    /// Writes the map as a list of pairs.
    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    /// Reads a list of pairs into a map.
    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_private_address_in_two_tenants_is_two_hosts() {
        let hosts = Hosts::new(&HostConfig {
            tenant_from: TenantSource::Vlan,
            ..Default::default()
        });
        let addr: IpAddr = "10.0.0.5".parse().unwrap();
        let a = FlowRecord {
            vlan: 100,
            src: addr,
            ..Default::default()
        };
        let b = FlowRecord {
            vlan: 200,
            src: addr,
            ..Default::default()
        };
        assert_ne!(
            hosts.host(hosts.tenant_of(&a), addr),
            hosts.host(hosts.tenant_of(&b), addr)
        );
    }

    #[test]
    fn external_addresses_have_no_tenant() {
        let hosts = Hosts::new(&HostConfig {
            tenant_from: TenantSource::Vlan,
            ..Default::default()
        });
        let ext: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(hosts.host(100, ext), hosts.host(200, ext));
        assert!(!hosts.is_internal(ext));
        assert!(hosts.is_internal("fd00::1".parse().unwrap()));
    }

    #[test]
    fn internal_test_agrees_with_the_networks() {
        let nets: Vec<IpNet> = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.1.0/24",
            "fd00::/8",
            "0.0.0.0/0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let addrs = [
            "10.0.0.0",
            "9.255.255.255",
            "10.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "172.32.0.0",
            "192.168.1.7",
            "192.168.2.7",
            "fd12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ];
        for n in 0..=nets.len() {
            let config = HostConfig {
                internal: nets[..n].to_vec(),
                ..Default::default()
            };
            let hosts = Hosts::new(&config);
            for a in addrs {
                let addr: IpAddr = a.parse().unwrap();
                let expected = config.internal.iter().any(|net| net.contains(&addr));
                assert_eq!(hosts.is_internal(addr), expected, "{a} with {n} networks");
            }
        }
    }
}
