//! The property graph: hosts and the channels between them.
//!
//! A channel is one client host talking to one server host on one port and protocol. Flow
//! records are oriented first (which side initiated), so a request and its reply, exported as
//! two unidirectional records, land on the same channel: the reply fills the channel's inbound
//! counters and tells whether the connection succeeded.
//!
//! Counters cover roughly one window: when a channel's counting period grows past the window,
//! its counters are halved and the period restarts at half a window ago, a cheap stand-in for an
//! exact sliding window that keeps a channel's state at a fixed size. Channels and hosts idle for
//! longer than the retention are removed.

use crate::host::{HostKey, Hosts};
use botnest_flow::{FlowRecord, Timestamp};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;

/// Index of a host in the graph.
pub type HostId = u32;

/// IP protocol numbers the graph interprets.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits.
pub mod tcp {
    /// FIN.
    pub const FIN: u16 = 0x01;
    /// SYN.
    pub const SYN: u16 = 0x02;
    /// RST.
    pub const RST: u16 = 0x04;
    /// PSH.
    pub const PSH: u16 = 0x08;
    /// ACK.
    pub const ACK: u16 = 0x10;
}

/// Identifies a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    /// The initiating host.
    pub client: HostId,
    /// The answering host.
    pub server: HostId,
    /// The server's port (ICMP: type * 256 of the request).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
}

/// Most recent contact times kept per channel, for interval analysis.
pub const CONTACTS: usize = 24;

/// What is known about a channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Which channel.
    pub key: ChannelKey,
    /// First flow start seen (in the current counting period).
    pub since: Timestamp,
    /// First flow start ever seen while the channel was kept.
    pub first_seen: Timestamp,
    /// Last flow end seen.
    pub last_seen: Timestamp,
    /// Requests (client to server flows) in the counting period.
    pub flows: u32,
    /// Requests known to have failed: no answer, or refused.
    pub failed: u32,
    /// Requests known to have been answered.
    pub answered: u32,
    /// Bytes client to server (scaled by sampling).
    pub bytes_out: u64,
    /// Bytes server to client (scaled by sampling).
    pub bytes_in: u64,
    /// Packets client to server (scaled).
    pub packets_out: u32,
    /// Packets server to client (scaled).
    pub packets_in: u32,
    /// TCP flags seen client to server.
    pub flags_out: u16,
    /// TCP flags seen server to client.
    pub flags_in: u16,
    /// Mean bytes per request.
    pub size_mean: f32,
    /// Sum of squared deviations of bytes per request (Welford).
    pub size_m2: f32,
    /// Start times of the last requests, ms after `first_seen`, oldest first.
    contacts: [u32; CONTACTS],
    contacts_len: u8,
    contacts_head: u8,
    /// Expired: left in place until the slab is compacted, invisible to everyone.
    expired: bool,
}

impl Channel {
    fn new(key: ChannelKey, at: Timestamp) -> Channel {
        Channel {
            key,
            since: at,
            first_seen: at,
            last_seen: at,
            flows: 0,
            failed: 0,
            answered: 0,
            bytes_out: 0,
            bytes_in: 0,
            packets_out: 0,
            packets_in: 0,
            flags_out: 0,
            flags_in: 0,
            size_mean: 0.0,
            size_m2: 0.0,
            contacts: [0; CONTACTS],
            contacts_len: 0,
            contacts_head: 0,
            expired: false,
        }
    }

    /// Start times of the most recent requests, oldest first.
    pub fn contacts(&self) -> impl Iterator<Item = Timestamp> + '_ {
        let len = usize::from(self.contacts_len);
        let start = (usize::from(self.contacts_head) + CONTACTS - len) % CONTACTS;
        (0..len).map(move |i| {
            let ms = self.contacts[(start + i) % CONTACTS];
            self.first_seen.offset_nanos(i64::from(ms) * 1_000_000)
        })
    }

    /// How many contact times are kept (at most [`CONTACTS`]).
    pub fn contacts_kept(&self) -> usize {
        usize::from(self.contacts_len)
    }

    fn push_contact(&mut self, at: Timestamp) {
        let ms = at
            .as_unix_nanos()
            .saturating_sub(self.first_seen.as_unix_nanos())
            / 1_000_000;
        self.contacts[usize::from(self.contacts_head)] = ms.min(u64::from(u32::MAX)) as u32;
        self.contacts_head = ((usize::from(self.contacts_head) + 1) % CONTACTS) as u8;
        self.contacts_len = (usize::from(self.contacts_len) + 1).min(CONTACTS) as u8;
    }

    /// Coefficient of variation of bytes per request (0 for identical sizes).
    pub fn size_cv(&self) -> f64 {
        if self.flows < 2 || self.size_mean <= 0.0 {
            return 0.0;
        }
        let var = f64::from(self.size_m2) / f64::from(self.flows - 1);
        var.sqrt() / f64::from(self.size_mean)
    }

    fn halve(&mut self, since: Timestamp) {
        self.since = since;
        self.flows /= 2;
        self.failed /= 2;
        self.answered /= 2;
        self.bytes_out /= 2;
        self.bytes_in /= 2;
        self.packets_out /= 2;
        self.packets_in /= 2;
    }
}

/// What a host did, kept per host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Tenant and address.
    pub key: HostKey,
    /// Whether the address is internal.
    pub internal: bool,
    /// First activity seen.
    pub first_seen: Timestamp,
    /// Last activity seen.
    pub last_seen: Timestamp,
    /// ICMP errors (unreachable, time exceeded) received: answers to failed probes.
    pub icmp_errors_received: u32,
}

/// Facts about a host that follow from its address, kept apart from [`Host`] in one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostKind(u8);

impl HostKind {
    /// No host has the id.
    pub const ABSENT: HostKind = HostKind(0);
    const PRESENT: u8 = 1;
    const INTERNAL: u8 = 2;
    const LOCAL_OR_GROUP: u8 = 4;

    fn of(h: &Host) -> HostKind {
        let mut bits = Self::PRESENT;
        if h.internal {
            bits |= Self::INTERNAL;
        }
        if crate::detectors::local_or_group(h.key.addr) {
            bits |= Self::LOCAL_OR_GROUP;
        }
        HostKind(bits)
    }

    /// Whether a host has the id.
    pub fn present(self) -> bool {
        self.0 & Self::PRESENT != 0
    }

    /// Whether the host is internal.
    pub fn internal(self) -> bool {
        self.0 & Self::INTERNAL != 0
    }

    /// Whether the address is multicast, broadcast or link-local
    /// ([`crate::detectors::local_or_group`]).
    pub fn local_or_group(self) -> bool {
        self.0 & Self::LOCAL_OR_GROUP != 0
    }
}

/// Counters of the graph's own work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GraphStats {
    /// Flow records applied.
    pub flows: u64,
    /// Records taken as replies on an existing channel.
    pub replies: u64,
    /// Channels removed after idling past the retention.
    pub channels_expired: u64,
    /// Hosts removed after idling past the retention.
    pub hosts_expired: u64,
    /// Channels not created because the channel limit was reached.
    pub channels_refused: u64,
    /// Hosts not created because the host limit was reached.
    pub hosts_refused: u64,
}

/// Hosts and channels.
#[derive(Debug)]
pub struct Graph {
    hosts: Vec<Option<Host>>,
    /// What detectors ask of a host on every channel they read ([`HostKind`]), one byte per
    /// host id: dense, so a pass over a million channels finds it in the cache.
    kinds: Vec<HostKind>,
    host_index: FxHashMap<HostKey, HostId>,
    free_hosts: Vec<HostId>,
    /// Live channels each host is an end of, by host id: a host in use is never expired.
    links: Vec<u32>,
    /// Channel positions in `slab`: the table moves only these small entries when it grows.
    channel_index: FxHashMap<ChannelKey, u32>,
    /// The channels, densely packed, in the order they were created. Expired channels stay
    /// (marked) until they are a quarter of the slab, then the slab is compacted in order:
    /// expiry costs a look at each channel, not a rebuilt index, on most windows.
    slab: Vec<Channel>,
    /// Expired channels still in the slab.
    expired: usize,
    window_ns: u64,
    max_hosts: usize,
    max_channels: usize,
    stats: GraphStats,
}

/// How a record maps onto a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Oriented {
    /// The channel's port: the server's port (ICMP: the request's type * 256).
    port: u16,
    /// The record describes the server's answer, not the client's request.
    reply: bool,
    /// The channel's position in the slab, when orienting found it.
    slot: Option<u32>,
}

/// Ports at or below this are services; above, a port is taken as a client's.
const SERVICE_PORTS: u16 = 1023;
/// The start of the range operating systems pick client ports from (RFC 6335 section 6).
const EPHEMERAL_PORTS: u16 = 49152;

impl Graph {
    /// An empty graph whose counters cover `window_ns`, holding at most the given numbers of
    /// hosts and channels.
    pub fn new(window_ns: u64, max_hosts: usize, max_channels: usize) -> Graph {
        Graph {
            hosts: Vec::new(),
            kinds: Vec::new(),
            host_index: FxHashMap::default(),
            free_hosts: Vec::new(),
            links: Vec::new(),
            channel_index: FxHashMap::default(),
            slab: Vec::new(),
            expired: 0,
            window_ns: window_ns.max(1),
            max_hosts,
            max_channels,
            stats: GraphStats::default(),
        }
    }

    /// Counters of the graph's work.
    pub fn stats(&self) -> GraphStats {
        self.stats
    }

    /// Hosts and channels held.
    pub fn size(&self) -> (usize, usize) {
        (self.host_index.len(), self.slab.len() - self.expired)
    }

    /// Channel places in the slab, expired channels awaiting compaction included.
    pub fn channel_slots(&self) -> usize {
        self.slab.len()
    }

    /// Bytes the graph has allocated (capacities, not only what is in use): the slab, the
    /// host table, and the two hash indexes with their control bytes.
    pub fn memory_bytes(&self) -> u64 {
        use std::mem::size_of;
        let index = |entries: usize, entry: usize| entries * (entry + 1);
        let bytes = self.slab.capacity() * size_of::<Channel>()
            + self.hosts.capacity() * size_of::<Option<Host>>()
            + self.kinds.capacity() * size_of::<HostKind>()
            + self.links.capacity() * size_of::<u32>()
            + self.free_hosts.capacity() * size_of::<HostId>()
            + index(
                self.channel_index.capacity(),
                size_of::<(ChannelKey, u32)>(),
            )
            + index(self.host_index.capacity(), size_of::<(HostKey, HostId)>());
        bytes as u64
    }

    /// A host by id.
    pub fn host(&self, id: HostId) -> Option<&Host> {
        self.hosts.get(id as usize).and_then(Option::as_ref)
    }

    /// What kind of host an id is ([`HostKind::ABSENT`] for an id not in use).
    pub fn host_kind(&self, id: HostId) -> HostKind {
        self.kinds
            .get(id as usize)
            .copied()
            .unwrap_or(HostKind::ABSENT)
    }

    /// A host's id.
    pub fn host_id(&self, key: &HostKey) -> Option<HostId> {
        self.host_index.get(key).copied()
    }

    /// One more than the largest host id in use: the length of an array indexed by host id.
    pub fn host_slots(&self) -> usize {
        self.hosts.len()
    }

    /// Every host.
    pub fn hosts(&self) -> impl Iterator<Item = (HostId, &Host)> {
        self.hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some((i as HostId, h.as_ref()?)))
    }

    /// Every channel.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.slab.iter().filter(|c| !c.expired)
    }

    /// A channel by key.
    pub fn channel(&self, key: &ChannelKey) -> Option<&Channel> {
        self.channel_index.get(key).map(|&i| &self.slab[i as usize])
    }

    /// The id of a host, created if new; `known` is its id when the caller already looked it up.
    fn intern(
        &mut self,
        key: HostKey,
        known: Option<HostId>,
        internal: bool,
        at: Timestamp,
    ) -> Option<HostId> {
        if let Some(id) = known {
            let h = self.hosts[id as usize]
                .as_mut()
                .expect("indexed hosts exist");
            h.last_seen = h.last_seen.max(at);
            h.first_seen = h.first_seen.min(at);
            return Some(id);
        }
        if self.host_index.len() >= self.max_hosts {
            self.stats.hosts_refused += 1;
            return None;
        }
        let host = Host {
            key,
            internal,
            first_seen: at,
            last_seen: at,
            icmp_errors_received: 0,
        };
        let kind = HostKind::of(&host);
        let id = match self.free_hosts.pop() {
            Some(id) => {
                self.hosts[id as usize] = Some(host);
                self.kinds[id as usize] = kind;
                self.links[id as usize] = 0;
                id
            }
            None => {
                self.hosts.push(Some(host));
                self.kinds.push(kind);
                self.links.push(0);
                (self.hosts.len() - 1) as HostId
            }
        };
        self.host_index.insert(key, id);
        Some(id)
    }

    /// Applies one flow record.
    pub fn observe(&mut self, hosts: &Hosts, f: &FlowRecord) {
        self.stats.flows += 1;
        let tenant = hosts.tenant_of(f);
        let start = if f.start.is_unset() { f.end } else { f.start };
        let end = f.end.max(start);

        if matches!(f.protocol, proto::ICMP | proto::ICMPV6) && is_icmp_error(f) {
            // An error about a probe: the probe's sender receives it.
            let key = hosts.host(tenant, f.dst);
            let known = self.host_index.get(&key).copied();
            if let Some(id) = self.intern(key, known, hosts.is_internal(f.dst), end) {
                let h = self.hosts[id as usize].as_mut().expect("just interned");
                h.icmp_errors_received = h.icmp_errors_received.saturating_add(1);
            }
            return;
        }

        // Internal or not is decided once per address: host keys carry the tenant only for
        // internal addresses.
        let (src_in, dst_in) = (hosts.is_internal(f.src), hosts.is_internal(f.dst));
        let src_key = HostKey {
            tenant: if src_in { tenant } else { 0 },
            addr: f.src,
        };
        let dst_key = HostKey {
            tenant: if dst_in { tenant } else { 0 },
            addr: f.dst,
        };
        let src_id = self.host_index.get(&src_key).copied();
        let dst_id = self.host_index.get(&dst_key).copied();
        let o = self.orient(src_id, dst_id, f);
        // A reply runs from the server to the client: its source is the channel's server.
        let (src, dst) = ((src_key, src_id, src_in), (dst_key, dst_id, dst_in));
        let (c, s) = if o.reply { (dst, src) } else { (src, dst) };
        let Some(client) = self.intern(c.0, c.1, c.2, end) else {
            return;
        };
        let Some(server) = self.intern(s.0, s.1, s.2, end) else {
            return;
        };
        let slot = match o.slot {
            // Orientation already found the channel (both hosts were known).
            Some(slot) => slot as usize,
            None => {
                let key = ChannelKey {
                    client,
                    server,
                    port: o.port,
                    proto: f.protocol,
                };
                let full = self.slab.len() - self.expired >= self.max_channels;
                match self.channel_index.entry(key) {
                    Entry::Occupied(e) => *e.get() as usize,
                    Entry::Vacant(_) if full => {
                        self.stats.channels_refused += 1;
                        return;
                    }
                    Entry::Vacant(e) => {
                        e.insert(self.slab.len() as u32);
                        self.slab.push(Channel::new(key, start));
                        self.links[client as usize] += 1;
                        self.links[server as usize] += 1;
                        self.slab.len() - 1
                    }
                }
            }
        };
        let window = self.window_ns;
        let ch = &mut self.slab[slot];
        if end.as_unix_nanos().saturating_sub(ch.since.as_unix_nanos()) > window {
            ch.halve(end.offset_nanos(-((window / 2) as i64)));
        }
        ch.last_seen = ch.last_seen.max(end);
        if o.reply {
            self.stats.replies += 1;
            apply_reply(ch, f);
        } else {
            apply_request(ch, f, start);
        }
    }

    /// Which side of a record is the channel's client, and the channel's port. When telling
    /// needed a look at the channels already held and one was found, its position comes along,
    /// so the channel is not looked up twice.
    fn orient(&self, src_id: Option<HostId>, dst_id: Option<HostId>, f: &FlowRecord) -> Oriented {
        let forward = Oriented {
            port: f.dst_port,
            reply: false,
            slot: None,
        };
        let backward = Oriented {
            port: f.src_port,
            reply: true,
            slot: None,
        };
        if matches!(f.protocol, proto::ICMP | proto::ICMPV6) {
            return orient_icmp(f);
        }
        // RFC 5103: a biflow's source is the initiator.
        if f.is_biflow() || f.reverse_tcp_flags != 0 {
            return forward;
        }
        // A SYN without any ACK can only come from the side that opened the connection. (A
        // union of flags with SYN and ACK says nothing: both sides' records carry both.)
        if f.protocol == proto::TCP && f.tcp_flags & tcp::SYN != 0 && f.tcp_flags & tcp::ACK == 0 {
            return forward;
        }
        // A channel in the other direction already exists: this is its reply.
        if let (Some(src), Some(dst)) = (src_id, dst_id) {
            let reverse = ChannelKey {
                client: dst,
                server: src,
                port: f.src_port,
                proto: f.protocol,
            };
            if let Some(&slot) = self.channel_index.get(&reverse) {
                return Oriented {
                    slot: Some(slot),
                    ..backward
                };
            }
            let same = ChannelKey {
                client: src,
                server: dst,
                port: f.dst_port,
                proto: f.protocol,
            };
            if let Some(&slot) = self.channel_index.get(&same) {
                return Oriented {
                    slot: Some(slot),
                    ..forward
                };
            }
        }
        if is_service(f.src_port, f.dst_port) {
            backward
        } else {
            forward
        }
    }

    /// Removes channels and hosts idle since before `cutoff`.
    pub fn expire(&mut self, cutoff: Timestamp) {
        let mut expired = 0;
        for c in self.slab.iter_mut().filter(|c| !c.expired) {
            if c.last_seen < cutoff {
                c.expired = true;
                self.channel_index.remove(&c.key);
                self.links[c.key.client as usize] -= 1;
                self.links[c.key.server as usize] -= 1;
                expired += 1;
            }
        }
        self.expired += expired;
        self.stats.channels_expired += expired as u64;
        if self.expired > 0 && self.expired >= self.slab.len() / 4 {
            self.compact();
        }
        for (id, slot) in self.hosts.iter_mut().enumerate() {
            let idle = slot
                .as_ref()
                .is_some_and(|h| h.last_seen < cutoff && self.links[id] == 0);
            if idle {
                let h = slot.take().expect("checked");
                self.kinds[id] = HostKind::ABSENT;
                self.host_index.remove(&h.key);
                self.free_hosts.push(id as HostId);
                self.stats.hosts_expired += 1;
            }
        }
    }

    /// Drops expired channels from the slab, keeping the order of the others.
    fn compact(&mut self) {
        self.slab.retain(|c| !c.expired);
        self.expired = 0;
        for (i, c) in self.slab.iter().enumerate() {
            *self
                .channel_index
                .get_mut(&c.key)
                .expect("live channels are indexed") = i as u32;
        }
    }
}

/// Whether `src` looks like the service and `dst` like the client's port.
fn is_service(src: u16, dst: u16) -> bool {
    let service = |p: u16| p != 0 && p <= SERVICE_PORTS;
    if service(src) != service(dst) {
        return service(src);
    }
    // Two registered or two ephemeral ports: the one in the ephemeral range is the client's.
    (src < EPHEMERAL_PORTS) && (dst >= EPHEMERAL_PORTS)
}

fn is_icmp_error(f: &FlowRecord) -> bool {
    let ty = (f.dst_port >> 8) as u8;
    match f.protocol {
        proto::ICMP => matches!(ty, 3 | 11 | 12),
        _ => matches!(ty, 1..=4),
    }
}

fn orient_icmp(f: &FlowRecord) -> Oriented {
    let ty = (f.dst_port >> 8) as u8;
    let (echo_request, echo_reply): (u8, u8) = if f.protocol == proto::ICMP {
        (8, 0)
    } else {
        (128, 129)
    };
    if ty == echo_reply {
        return Oriented {
            port: u16::from(echo_request) << 8,
            reply: true,
            slot: None,
        };
    }
    Oriented {
        port: u16::from(ty) << 8,
        reply: false,
        slot: None,
    }
}

fn apply_request(ch: &mut Channel, f: &FlowRecord, start: Timestamp) {
    ch.flows = ch.flows.saturating_add(1);
    let bytes = f.scaled_octets();
    ch.bytes_out = ch.bytes_out.saturating_add(bytes);
    ch.packets_out = ch
        .packets_out
        .saturating_add(f.scaled_packets().min(u64::from(u32::MAX)) as u32);
    ch.flags_out |= f.tcp_flags;
    ch.push_contact(start);

    // Welford's running mean and variance of request sizes.
    let x = bytes as f32;
    let n = ch.flows as f32;
    let delta = x - ch.size_mean;
    ch.size_mean += delta / n;
    ch.size_m2 += delta * (x - ch.size_mean);

    if f.is_biflow() || f.reverse_tcp_flags != 0 {
        ch.bytes_in = ch.bytes_in.saturating_add(f.scaled_reverse_octets());
        ch.packets_in = ch
            .packets_in
            .saturating_add(f.scaled_reverse_packets().min(u64::from(u32::MAX)) as u32);
        ch.flags_in |= f.reverse_tcp_flags;
        if biflow_succeeded(f) {
            ch.answered = ch.answered.saturating_add(1);
        } else {
            ch.failed = ch.failed.saturating_add(1);
        }
    } else if f.protocol == proto::TCP && is_failed_attempt(f) {
        // A client flow that never got past its SYN: no handshake completed in it.
        ch.failed = ch.failed.saturating_add(1);
    } else if f.protocol == proto::TCP && f.tcp_flags & tcp::ACK != 0 && f.packets >= 2 {
        // The client acknowledged something: the server answered, even if its own flow record
        // never reaches us (one direction exported, or sampled away).
        ch.answered = ch.answered.saturating_add(1);
    }
}

fn apply_reply(ch: &mut Channel, f: &FlowRecord) {
    ch.bytes_in = ch.bytes_in.saturating_add(f.scaled_octets());
    ch.packets_in = ch
        .packets_in
        .saturating_add(f.scaled_packets().min(u64::from(u32::MAX)) as u32);
    ch.flags_in |= f.tcp_flags;
    let refused = f.protocol == proto::TCP
        && f.tcp_flags & tcp::RST != 0
        && f.tcp_flags & tcp::SYN == 0
        && f.packets <= 2;
    if refused {
        ch.failed = ch.failed.saturating_add(1);
    } else {
        ch.answered = ch.answered.saturating_add(1);
        // A reply means the attempt was not a failure after all.
        if ch.failed > 0 && ch.flags_in & tcp::SYN != 0 {
            ch.failed -= 1;
        }
    }
}

/// A TCP flow with SYN and no ACK and at most a few packets: a connection attempt that no
/// handshake followed (retransmitted SYNs included).
fn is_failed_attempt(f: &FlowRecord) -> bool {
    f.tcp_flags & tcp::SYN != 0 && f.tcp_flags & tcp::ACK == 0 && f.packets <= 3
}

fn biflow_succeeded(f: &FlowRecord) -> bool {
    if f.protocol == proto::TCP {
        let r = f.reverse_tcp_flags;
        return r & tcp::SYN != 0 && r & tcp::ACK != 0
            || (f.reverse_packets > 0 && r & tcp::RST == 0 && r != 0);
    }
    f.reverse_packets > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostConfig;

    #[test]
    fn a_channel_costs_at_most_256_bytes() {
        // The channel in the slab, and its index entry (key, position and one control byte) in
        // a hash table that keeps at least one eighth of its slots free.
        let index = (std::mem::size_of::<(ChannelKey, u32)>() + 1) * 8 / 7;
        let entry = std::mem::size_of::<Channel>() + index;
        assert!(entry <= 256, "{entry} bytes per channel");
    }

    fn flow(src: &str, sp: u16, dst: &str, dp: u16, flags: u16, t: u64) -> FlowRecord {
        FlowRecord {
            start: Timestamp::from_unix_secs(t),
            end: Timestamp::from_unix_secs(t),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: sp,
            dst_port: dp,
            protocol: proto::TCP,
            tcp_flags: flags,
            packets: 3,
            octets: 200,
            ..Default::default()
        }
    }

    #[test]
    fn a_request_and_its_reply_share_one_channel() {
        let hosts = Hosts::new(&HostConfig::default());
        let mut g = Graph::new(3_600_000_000_000, 100, 100);
        g.observe(
            &hosts,
            &flow("10.0.0.1", 40000, "192.0.2.1", 443, 0x1b, 100),
        );
        g.observe(
            &hosts,
            &flow("192.0.2.1", 443, "10.0.0.1", 40000, 0x1b, 100),
        );
        assert_eq!(g.size(), (2, 1));
        let ch = g.channels().next().unwrap();
        assert_eq!(ch.key.port, 443);
        assert_eq!((ch.flows, ch.bytes_out, ch.bytes_in), (1, 200, 200));
        assert!(ch.answered >= 1);
    }

    #[test]
    fn a_reply_seen_first_is_oriented_by_its_ports() {
        let hosts = Hosts::new(&HostConfig::default());
        let mut g = Graph::new(3_600_000_000_000, 100, 100);
        g.observe(&hosts, &flow("192.0.2.1", 22, "10.0.0.1", 51000, 0x1b, 100));
        let ch = g.channels().next().unwrap();
        assert_eq!(ch.key.port, 22);
        assert_eq!(
            g.host(ch.key.client).unwrap().key.addr.to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn idle_state_expires_and_limits_hold() {
        let hosts = Hosts::new(&HostConfig::default());
        let mut g = Graph::new(3_600_000_000_000, 3, 2);
        for i in 0..10u16 {
            g.observe(
                &hosts,
                &flow(
                    "10.0.0.1",
                    40000 + i,
                    &format!("192.0.2.{i}"),
                    80,
                    0x02,
                    100,
                ),
            );
        }
        assert!(g.size().0 <= 3 && g.size().1 <= 2);
        assert!(g.stats().hosts_refused + g.stats().channels_refused > 0);
        g.expire(Timestamp::from_unix_secs(1000));
        assert_eq!(g.size(), (0, 0));
    }

    #[test]
    fn expiry_keeps_the_order_and_the_index_of_the_others() {
        let hosts = Hosts::new(&HostConfig::default());
        let mut g = Graph::new(3_600_000_000_000, 1000, 1000);
        let touch = |g: &mut Graph, servers: &[u16], t: u64| {
            for i in servers {
                let server = format!("192.0.2.{i}");
                g.observe(&hosts, &flow("10.0.0.1", 40000, &server, 80, 0x02, t));
            }
        };
        let check = |g: &Graph, expected: &[u16]| {
            let order: Vec<String> = g
                .channels()
                .map(|c| g.host(c.key.server).unwrap().key.addr.to_string())
                .collect();
            let expected: Vec<String> = expected.iter().map(|i| format!("192.0.2.{i}")).collect();
            assert_eq!(order, expected);
            assert_eq!(g.size(), (1 + expected.len(), expected.len()));
            for c in g.channels() {
                assert_eq!(g.channel(&c.key).map(|x| x.key), Some(c.key));
            }
        };
        let all: Vec<u16> = (0..20).collect();
        touch(&mut g, &all, 100);
        // Three of twenty go idle: marked, not yet compacted.
        touch(&mut g, &all[..17], 1100);
        g.expire(Timestamp::from_unix_secs(1090));
        check(&g, &all[..17]);
        touch(&mut g, &[20], 1200);
        let mut expected = all[..17].to_vec();
        expected.push(20);
        check(&g, &expected);
        // Seven more: a quarter of the slab is expired, which compacts it.
        touch(&mut g, &all[..10], 2200);
        touch(&mut g, &[20], 2200);
        g.expire(Timestamp::from_unix_secs(2190));
        let mut expected = all[..10].to_vec();
        expected.push(20);
        check(&g, &expected);
        // An expired channel that comes back is a new one, at the end.
        touch(&mut g, &[15], 2300);
        expected.push(15);
        check(&g, &expected);
        assert_eq!(g.stats().channels_expired, 10);
        assert_eq!(g.stats().hosts_expired, 10);
    }
}
