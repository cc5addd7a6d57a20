//! State shared between the pipeline's threads and the HTTP server. The pipeline writes, the
//! server reads; every lock is held only to swap a pointer or copy a few records, so the
//! detection thread never waits on a request.

use crate::view::{EngineFigures, View};
use botnest_collect::decoder::InterfaceNames;
use botnest_collect::{Counters, Decoder, SessionKey};
use botnest_detect::Hosts;
use botnest_flow::FlowRecord;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Locks a mutex, carrying on with the data if a thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One server-sent event: its name and its JSON data.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// Counts up by one per event since the start.
    pub id: u64,
    /// `alert`, `botnest` or `status`.
    pub name: &'static str,
    /// One line of JSON.
    pub data: String,
}

/// The most recent flow records, newest last, at most `capacity`.
#[derive(Debug)]
pub struct FlowRing {
    flows: VecDeque<FlowRecord>,
    capacity: usize,
}

impl FlowRing {
    /// An empty ring holding at most `capacity` records.
    pub fn new(capacity: usize) -> FlowRing {
        FlowRing {
            flows: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    /// Adds records, pushing the oldest out.
    pub fn extend(&mut self, flows: &[FlowRecord]) {
        if self.capacity == 0 {
            return;
        }
        let skip = flows.len().saturating_sub(self.capacity);
        for f in &flows[skip..] {
            if self.flows.len() == self.capacity {
                self.flows.pop_front();
            }
            self.flows.push_back(*f);
        }
    }

    /// The newest records first.
    pub fn newest_first(&self) -> impl Iterator<Item = &FlowRecord> {
        self.flows.iter().rev()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// One exporter's observation domain as the collector counts it.
#[derive(Debug, Clone)]
pub struct DomainFigures {
    /// The transport session.
    pub session: SessionKey,
    /// Observation domain.
    pub domain: u32,
    /// Its counters.
    pub counters: Counters,
    /// Interface names from options data, by index.
    pub interfaces: InterfaceNames,
}

/// One listening socket's counters.
#[derive(Debug, Clone, Default)]
pub struct SocketFigures {
    /// `udp://ADDR:PORT` or `tcp://ADDR:PORT`.
    pub endpoint: String,
    /// Datagrams or messages received.
    pub messages: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Messages from exporters outside the allow-list.
    pub not_allowed: u64,
    /// Datagrams the kernel dropped.
    pub kernel_drops: u64,
}

/// What the collector has counted, as of `at`.
#[derive(Debug, Clone)]
pub struct CollectorFigures {
    /// When the figures were taken.
    pub at: Instant,
    /// Per exporter and domain.
    pub domains: Vec<DomainFigures>,
    /// Totals over every session, closed ones included.
    pub totals: Counters,
    /// Errors by reason.
    pub errors_by_reason: BTreeMap<&'static str, u64>,
    /// Listening sockets.
    pub sockets: Vec<SocketFigures>,
    /// Records dropped because the detection queue was full.
    pub queue_drops: u64,
    /// Records per second per exporter address and domain, over the last interval.
    pub rates: BTreeMap<(SocketAddr, u32), f64>,
    /// Records per second over all exporters.
    pub rate: f64,
}

impl Default for CollectorFigures {
    fn default() -> Self {
        CollectorFigures {
            at: Instant::now(),
            domains: Vec::new(),
            totals: Counters::default(),
            errors_by_reason: BTreeMap::new(),
            sockets: Vec::new(),
            queue_drops: 0,
            rates: BTreeMap::new(),
            rate: 0.0,
        }
    }
}

impl CollectorFigures {
    /// Reads the figures of one or more decoders (the live collector's, a replay's).
    pub fn read(decoders: &[&Decoder], sockets: Vec<SocketFigures>, queue_drops: u64) -> Self {
        let mut domains = Vec::new();
        let mut totals = Counters::default();
        let mut errors_by_reason = BTreeMap::new();
        for d in decoders {
            let mut names: BTreeMap<(SessionKey, u32), InterfaceNames> = d
                .interface_names()
                .into_iter()
                .map(|(k, dom, n)| ((k, dom), n))
                .collect();
            for (session, domain, counters) in d.per_exporter() {
                domains.push(DomainFigures {
                    session,
                    domain,
                    counters,
                    interfaces: names.remove(&(session, domain)).unwrap_or_default(),
                });
            }
            totals.add(&d.totals());
            for (reason, n) in d.errors_by_reason() {
                *errors_by_reason.entry(*reason).or_insert(0) += n;
            }
        }
        CollectorFigures {
            at: Instant::now(),
            domains,
            totals,
            errors_by_reason,
            sockets,
            queue_drops,
            rates: BTreeMap::new(),
            rate: 0.0,
        }
    }

    /// Fills in the rates from the figures taken before.
    fn rates_since(&mut self, before: &CollectorFigures) {
        let dt = self.at.saturating_duration_since(before.at).as_secs_f64();
        if dt < 0.1 {
            self.rates.clone_from(&before.rates);
            self.rate = before.rate;
            return;
        }
        let old: BTreeMap<(SocketAddr, u32), u64> = before
            .domains
            .iter()
            .map(|d| ((d.session.exporter, d.domain), d.counters.records))
            .collect();
        for d in &self.domains {
            let key = (d.session.exporter, d.domain);
            let was = old.get(&key).copied().unwrap_or(0);
            let rate = d.counters.records.saturating_sub(was) as f64 / dt;
            *self.rates.entry(key).or_insert(0.0) += rate;
        }
        self.rate = self.totals.records.saturating_sub(before.totals.records) as f64 / dt;
    }
}

/// Totals of one alert sink, as the pipeline reports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkFigures {
    /// Alerts and notices delivered.
    pub sent: u64,
    /// Deliveries that failed.
    pub failed: u64,
    /// Alerts dropped at a full queue.
    pub dropped: u64,
    /// Alerts held back by the rate limit.
    pub suppressed: u64,
}

/// Alert figures: identical repeats not sent, and each sink's totals.
#[derive(Debug, Clone, Default)]
pub struct AlertFigures {
    /// Identical alerts not sent again.
    pub repeats: u64,
    /// Per sink.
    pub sinks: Vec<(&'static str, SinkFigures)>,
}

/// Something an operator asked for through the API, carried out by the detection thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Never report this host again: add it to the allow list.
    AllowHost {
        /// Tenant name.
        tenant: String,
        /// Address.
        address: std::net::IpAddr,
    },
}

/// What operators decided through the API, kept across restarts in the state directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OperatorState {
    /// Botnests acknowledged.
    pub acknowledged: std::collections::BTreeSet<u64>,
    /// Addresses marked benign (added to the allow list), in the order given.
    pub allowed: Vec<std::net::IpAddr>,
}

/// Counters of the HTTP server.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests answered, by route and status class.
    pub requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Requests refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
    /// State-changing requests refused by the CSRF or origin check.
    pub forbidden: AtomicU64,
    /// Live-event clients that fell behind and missed events.
    pub events_lagged: AtomicU64,
    /// Live-event clients connected now.
    pub events_clients: AtomicU64,
}

/// Live events waiting for slow clients; past this a client misses events (counted).
pub const EVENT_BUFFER: usize = 1024;

/// Everything the server reads.
#[derive(Debug)]
pub struct Shared {
    view: Mutex<Arc<View>>,
    flows: Mutex<FlowRing>,
    collector: Mutex<Arc<CollectorFigures>>,
    alerts: Mutex<Arc<AlertFigures>>,
    actions: Mutex<VecDeque<Action>>,
    events: broadcast::Sender<Arc<LiveEvent>>,
    event_ids: AtomicU64,
    hosts: Hosts,
    started: Instant,
    /// Counters of the HTTP server.
    pub http: HttpCounters,
    engine: Mutex<EngineFigures>,
    /// Engine flows when the rate was last taken, for the flow rate.
    flow_rate: Mutex<(Instant, u64, f64)>,
    acknowledged: Mutex<std::collections::BTreeSet<u64>>,
}

/// Actions waiting for the detection thread; past this new ones are refused.
pub const MAX_ACTIONS: usize = 1024;

impl Shared {
    /// Empty shared state; `hosts` resolves the tenants of flows, `flows` is how many recent
    /// records are kept.
    pub fn new(hosts: Hosts, flows: usize) -> Arc<Shared> {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Arc::new(Shared {
            view: Mutex::new(Arc::new(View::default())),
            flows: Mutex::new(FlowRing::new(flows)),
            collector: Mutex::new(Arc::new(CollectorFigures::default())),
            alerts: Mutex::new(Arc::new(AlertFigures::default())),
            actions: Mutex::new(VecDeque::new()),
            events,
            event_ids: AtomicU64::new(0),
            hosts,
            started: Instant::now(),
            http: HttpCounters::default(),
            engine: Mutex::new(EngineFigures::default()),
            flow_rate: Mutex::new((Instant::now(), 0, 0.0)),
            acknowledged: Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&lock(&self.view))
    }

    /// Publishes a new view.
    pub fn set_view(&self, view: View) {
        *lock(&self.view) = Arc::new(view);
    }

    /// The engine's counters.
    pub fn engine(&self) -> EngineFigures {
        *lock(&self.engine)
    }

    /// Publishes the engine's counters.
    pub fn set_engine(&self, figures: EngineFigures) {
        {
            let mut r = lock(&self.flow_rate);
            let now = Instant::now();
            let dt = now.saturating_duration_since(r.0).as_secs_f64();
            if dt >= 1.0 {
                let rate = figures.flows.saturating_sub(r.1) as f64 / dt;
                *r = (now, figures.flows, rate);
            }
        }
        *lock(&self.engine) = figures;
    }

    /// Marks a botnest acknowledged by an operator; false if it already was.
    pub fn acknowledge(&self, id: u64) -> bool {
        lock(&self.acknowledged).insert(id)
    }

    /// Every botnest acknowledged so far.
    pub fn acknowledged_ids(&self) -> std::collections::BTreeSet<u64> {
        lock(&self.acknowledged).clone()
    }

    /// Whether an operator acknowledged a botnest.
    pub fn acknowledged(&self, id: u64) -> bool {
        lock(&self.acknowledged).contains(&id)
    }

    /// Flows per second through the engine, over the last second or so.
    pub fn flow_rate(&self) -> f64 {
        lock(&self.flow_rate).2
    }

    /// Adds records to the ring of recent flows.
    pub fn add_flows(&self, flows: &[FlowRecord]) {
        lock(&self.flows).extend(flows);
    }

    /// Adds records unless a request is reading the ring right now; false then.
    pub fn try_add_flows(&self, flows: &[FlowRecord]) -> bool {
        match self.flows.try_lock() {
            Ok(mut ring) => {
                ring.extend(flows);
                true
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                p.into_inner().extend(flows);
                true
            }
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    /// How many recent records the ring keeps.
    pub fn flow_capacity(&self) -> usize {
        lock(&self.flows).capacity
    }

    /// Runs `f` over the ring of recent flows.
    pub fn with_flows<T>(&self, f: impl FnOnce(&FlowRing) -> T) -> T {
        f(&lock(&self.flows))
    }

    /// The collector's figures.
    pub fn collector(&self) -> Arc<CollectorFigures> {
        Arc::clone(&lock(&self.collector))
    }

    /// Publishes the collector's figures; rates come from the difference with the last ones.
    pub fn set_collector(&self, mut figures: CollectorFigures) {
        let mut slot = lock(&self.collector);
        figures.rates_since(&slot);
        *slot = Arc::new(figures);
    }

    /// The alert sinks' figures.
    pub fn alerts(&self) -> Arc<AlertFigures> {
        Arc::clone(&lock(&self.alerts))
    }

    /// Publishes the alert sinks' figures.
    pub fn set_alerts(&self, figures: AlertFigures) {
        *lock(&self.alerts) = Arc::new(figures);
    }

    /// Sends a live event to every connected client; never waits.
    pub fn send_event(&self, name: &'static str, data: String) {
        let id = self.event_ids.fetch_add(1, Relaxed) + 1;
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(Arc::new(LiveEvent { id, name, data }));
    }

    /// A receiver of live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.events.subscribe()
    }

    /// The tenant resolver.
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// How long the server has been up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Queues an action for the detection thread; false when too many wait.
    pub fn push_action(&self, action: Action) -> bool {
        let mut q = lock(&self.actions);
        if q.len() >= MAX_ACTIONS {
            return false;
        }
        q.push_back(action);
        true
    }

    /// Takes the actions waiting.
    pub fn take_actions(&self) -> Vec<Action> {
        lock(&self.actions).drain(..).collect()
    }

    /// Counts one answered request.
    pub fn count_request(&self, route: &str, status: u16) {
        let mut m = lock(&self.http.requests);
        if let Some(n) = m.get_mut(&(route.to_owned(), status)) {
            *n += 1;
        } else if m.len() < 4096 {
            m.insert((route.to_owned(), status), 1);
        }
    }

    /// Counts a refused request.
    pub fn count_unauthorized(&self) {
        self.http.unauthorized.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest() {
        let mut r = FlowRing::new(3);
        let flows: Vec<FlowRecord> = (1..=5)
            .map(|i| FlowRecord {
                src_port: i,
                ..FlowRecord::default()
            })
            .collect();
        r.extend(&flows[..2]);
        r.extend(&flows[2..]);
        let ports: Vec<u16> = r.newest_first().map(|f| f.src_port).collect();
        assert_eq!(ports, [5, 4, 3]);
        let mut big = FlowRing::new(2);
        big.extend(&flows);
        assert_eq!(
            big.newest_first().map(|f| f.src_port).collect::<Vec<_>>(),
            [5, 4]
        );
        let mut none = FlowRing::new(0);
        none.extend(&flows);
        assert!(none.is_empty());
    }
}
