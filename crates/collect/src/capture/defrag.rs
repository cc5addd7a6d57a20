//! Bounded IPv4 and IPv6 fragment reassembly, timed by capture time.

use std::collections::HashMap;
use std::net::IpAddr;

use botnest_flow::Timestamp;
use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber};

use super::{CaptureLimits, CaptureStats};

/// What identifies the fragments of one datagram (RFC 791 section 2.3, RFC 8200 section 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub protocol: u8,
}

/// One fragment's place in its datagram.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fragment<'a> {
    pub offset: IpFragOffset,
    pub more: bool,
    pub data: &'a [u8],
}

#[derive(Debug)]
struct Pending {
    buf: IpDefragBuf,
    first_seen: Timestamp,
}

/// Partial datagrams, bounded in count, bytes and age.
#[derive(Debug)]
pub(super) struct Defragmenter {
    pending: HashMap<FragKey, Pending>,
    bytes: usize,
    limits: CaptureLimits,
}

impl Defragmenter {
    pub fn new(limits: CaptureLimits) -> Self {
        Defragmenter {
            pending: HashMap::new(),
            bytes: 0,
            limits,
        }
    }

    /// Adds a fragment; returns the transport payload once the datagram is complete.
    pub fn add(
        &mut self,
        now: Timestamp,
        key: FragKey,
        fragment: Fragment<'_>,
        stats: &mut CaptureStats,
    ) -> Option<Vec<u8>> {
        self.expire(now, stats);
        if !self.pending.contains_key(&key) {
            self.make_room(fragment.data.len(), stats);
        }
        let pending = self.pending.entry(key).or_insert_with(|| Pending {
            buf: IpDefragBuf::new(IpNumber(key.protocol), Vec::new(), Vec::new()),
            first_seen: now,
        });
        let before = pending.buf.data().len();
        let added = pending
            .buf
            .add(fragment.offset, fragment.more, fragment.data);
        let after = pending.buf.data().len();
        self.bytes = self.bytes + after - before.min(after);
        if added.is_err() {
            self.remove(&key);
            stats.fragments_invalid += 1;
            return None;
        }
        if !pending.buf.is_complete() {
            return None;
        }
        let done = self.remove(&key)?;
        stats.fragments_reassembled += 1;
        Some(done.buf.take_bufs().0)
    }

    /// Counts the datagrams still incomplete at the end of the capture.
    pub fn finish(&mut self, stats: &mut CaptureStats) {
        stats.fragments_incomplete += self.pending.len() as u64;
        self.pending.clear();
        self.bytes = 0;
    }

    fn remove(&mut self, key: &FragKey) -> Option<Pending> {
        let pending = self.pending.remove(key)?;
        self.bytes = self.bytes.saturating_sub(pending.buf.data().len());
        Some(pending)
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    fn expire(&mut self, now: Timestamp, stats: &mut CaptureStats) {
        let timeout = self.limits.fragment_timeout_nanos;
        let old: Vec<FragKey> = self
            .pending
            .iter()
            .filter(|(_, p)| now.0.saturating_sub(p.first_seen.0) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            self.remove(&key);
            stats.fragments_expired += 1;
        }
    }

    /// Evicts the oldest datagrams until a new one with `len` bytes fits.
    fn make_room(&mut self, len: usize, stats: &mut CaptureStats) {
        while !self.pending.is_empty()
            && (self.pending.len() >= self.limits.max_fragment_datagrams
                || self.bytes + len > self.limits.max_fragment_bytes)
        {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(k, p)| (p.first_seen, **k))
                .map(|(k, _)| *k);
            if let Some(key) = oldest {
                self.remove(&key);
                stats.fragments_evicted += 1;
            }
        }
    }
}
