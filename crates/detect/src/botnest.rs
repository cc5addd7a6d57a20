//! Botnests: connected groups of the suspicion graph.
//!
//! Flagged hosts are joined through the hosts their evidence names: the C2 endpoints they beacon
//! to, their peers, the scanner that infected them, the victim they flood together. Victims of
//! scanning and brute force are attached to the group of their attacker but join nothing, so
//! two botnets probing the same server stay two botnests.
//!
//! A botnest keeps its id as it grows; when two merge, the older id survives. Its lifecycle
//! follows its newest evidence: new when it appears, active while evidence keeps arriving,
//! dormant after a quiet window, closed after many.

use crate::config::DetectConfig;
use crate::engine::HostVerdict;
use crate::evidence::{Behaviour, Role};
use crate::host::{HostKey, Tenant};
use botnest_flow::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where a botnest is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Found in the latest window.
    New,
    /// Evidence in the current window.
    Active,
    /// No evidence for a window or more.
    Dormant,
    /// No evidence for a long time.
    Closed,
}

/// A group of bots, their C2 endpoints and their peers or victims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Botnest {
    /// Stable id.
    pub id: u64,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// How sure botnest is, 0 to 1.
    pub score: f64,
    /// Members and their roles.
    #[serde(with = "crate::host::key_pairs")]
    pub members: BTreeMap<HostKey, BTreeSet<Role>>,
    /// C2 endpoints (`address:port`).
    pub c2: BTreeSet<String>,
    /// Tenants of internal members.
    pub tenants: BTreeSet<Tenant>,
    /// First evidence.
    pub first_seen: Timestamp,
    /// Last evidence.
    pub last_seen: Timestamp,
    /// When botnest first reported it.
    pub created: Timestamp,
    /// Ids of botnests merged into this one.
    pub merged: Vec<u64>,
    /// Representative flows: the channels behind the members' evidence, busiest first.
    #[serde(default)]
    pub flows: Vec<FlowSummary>,
}

/// One channel, summarised, as evidence a person can look up in the flow records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSummary {
    /// The initiating host.
    pub client: HostKey,
    /// The answering host.
    pub server: HostKey,
    /// The server's port.
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Requests in the counting period.
    pub flows: u32,
    /// Requests that failed.
    pub failed: u32,
    /// Bytes client to server.
    pub bytes_out: u64,
    /// Bytes server to client.
    pub bytes_in: u64,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
}

/// Most representative flows kept per botnest.
pub const REPRESENTATIVE_FLOWS: usize = 10;

/// Every botnest, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Botnests {
    next_id: u64,
    list: BTreeMap<u64, Botnest>,
}

/// A small union-find over host keys.
struct Groups {
    index: BTreeMap<HostKey, usize>,
    parent: Vec<usize>,
}

impl Groups {
    fn new() -> Self {
        Groups {
            index: BTreeMap::new(),
            parent: Vec::new(),
        }
    }
    fn id(&mut self, h: HostKey) -> usize {
        let n = self.parent.len();
        let i = *self.index.entry(h).or_insert(n);
        if i == n {
            self.parent.push(n);
        }
        i
    }
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
    fn union(&mut self, a: HostKey, b: HostKey) {
        let (a, b) = (self.id(a), self.id(b));
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller root wins, so the result does not depend on the order of links.
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
        }
    }
}

impl Botnests {
    /// Every botnest.
    pub fn iter(&self) -> impl Iterator<Item = &Botnest> {
        self.list.values()
    }

    /// Every botnest, to update.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Botnest> {
        self.list.values_mut()
    }

    /// A botnest by id.
    pub fn get(&self, id: u64) -> Option<&Botnest> {
        self.list.get(&id)
    }

    /// Number of botnests.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Rebuilds the groups from the verdicts and links; returns botnests that are new or
    /// changed (id, state, member count).
    pub fn assemble(
        &mut self,
        verdicts: &mut BTreeMap<HostKey, HostVerdict>,
        links: &[(HostKey, HostKey, bool)],
        at: Timestamp,
        config: &DetectConfig,
    ) -> Vec<(u64, Lifecycle, usize)> {
        let threshold = config.bot_threshold;
        let mut groups = Groups::new();
        for v in verdicts.values().filter(|v| v.score >= threshold) {
            groups.id(v.host);
        }
        for &(a, b, joins) in links {
            if joins {
                groups.union(a, b);
            }
        }
        let mut components: BTreeMap<usize, BTreeSet<HostKey>> = BTreeMap::new();
        let keys: Vec<HostKey> = groups.index.keys().copied().collect();
        for h in keys {
            let i = groups.id(h);
            let root = groups.find(i);
            components.entry(root).or_default().insert(h);
        }
        for &(a, b, joins) in links {
            if !joins {
                let root = {
                    let i = groups.id(a);
                    groups.find(i)
                };
                components.entry(root).or_default().insert(b);
            }
        }

        let mut changes = Vec::new();
        for members in components.values() {
            changes.extend(self.place(members, verdicts, at, config));
        }
        let window = config.window_seconds * 1_000_000_000;
        for b in self.list.values_mut() {
            let quiet = at
                .as_unix_nanos()
                .saturating_sub(b.last_seen.as_unix_nanos());
            let state = if b.created == at {
                Lifecycle::New
            } else if quiet <= u64::from(config.dormant_after_windows) * window {
                Lifecycle::Active
            } else if quiet <= u64::from(config.close_after_windows) * window {
                Lifecycle::Dormant
            } else {
                Lifecycle::Closed
            };
            if state != b.state {
                b.state = state;
                if !changes
                    .iter()
                    .any(|c: &(u64, Lifecycle, usize)| c.0 == b.id)
                {
                    changes.push((b.id, state, b.members.len()));
                }
            }
        }
        changes
    }

    /// Gives one component its botnest (existing, merged, or new).
    fn place(
        &mut self,
        members: &BTreeSet<HostKey>,
        verdicts: &mut BTreeMap<HostKey, HostVerdict>,
        at: Timestamp,
        config: &DetectConfig,
    ) -> Option<(u64, Lifecycle, usize)> {
        // Only groups with an accused internal member are botnests.
        let accused = members.iter().any(|m| {
            verdicts
                .get(m)
                .is_some_and(|v| v.score >= config.bot_threshold && v.roles.contains(&Role::Bot))
        });
        if !accused {
            return None;
        }
        let existing: BTreeSet<u64> = members
            .iter()
            .filter_map(|m| verdicts.get(m).and_then(|v| v.botnest))
            .filter(|id| self.list.contains_key(id))
            .collect();
        let id = match existing.iter().next() {
            Some(&id) => id,
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        let mut merged = Vec::new();
        for &other in existing.iter().skip(1) {
            if let Some(b) = self.list.remove(&other) {
                merged.push(b.id);
                merged.extend(b.merged);
            }
        }

        let mut b = self.list.remove(&id).unwrap_or(Botnest {
            id,
            state: Lifecycle::New,
            score: 0.0,
            members: BTreeMap::new(),
            c2: BTreeSet::new(),
            tenants: BTreeSet::new(),
            first_seen: at,
            last_seen: Timestamp::default(),
            created: at,
            merged: Vec::new(),
            flows: Vec::new(),
        });
        let before = b.members.len();
        b.merged.extend(merged);
        b.members.clear();
        b.c2.clear();
        b.tenants.clear();
        let mut first = None::<Timestamp>;
        let mut survival = 1.0;
        for m in members {
            let Some(v) = verdicts.get_mut(m) else {
                continue;
            };
            v.botnest = Some(id);
            b.members.insert(*m, v.roles.clone());
            if m.tenant != 0 || v.roles.contains(&Role::Bot) {
                b.tenants.insert(m.tenant);
            }
            if v.score >= config.bot_threshold {
                survival *= 1.0 - v.score.clamp(0.0, 1.0);
            }
            for e in &v.evidence {
                first = Some(first.map_or(e.first_seen, |f: Timestamp| f.min(e.first_seen)));
                b.last_seen = b.last_seen.max(e.last_seen);
                if let (Some(p), true) = (
                    e.peer,
                    matches!(
                        e.kind,
                        Behaviour::Beaconing | Behaviour::SharedC2 | Behaviour::Blocklisted
                    ),
                ) {
                    b.c2.insert(p.endpoint());
                }
            }
        }
        if let Some(f) = first {
            b.first_seen = f;
        }
        b.score = 1.0 - survival;
        let changed = b.members.len() != before || b.created == at;
        let result = changed.then_some((id, b.state, b.members.len()));
        self.list.insert(id, b);
        result
    }
}
