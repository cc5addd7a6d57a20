//! The HTTP side of `botnest run`: a JSON API over verdicts, botnests, channels, recent flows
//! and exporters, live events (server-sent events), Prometheus metrics, exports for graph tools
//! and threat-intelligence platforms, and the web console, embedded in the binary.
//!
//! The detection thread owns the engine. Now and then it publishes an immutable [`View`]
//! through a [`Publisher`]; requests read the latest view and never wait for detection. Live
//! events go through a bounded broadcast channel: a client that falls behind misses events
//! (counted) rather than holding anything up.
//!
//! ```no_run
//! use botnest_web::{Publisher, Server, Shared, WebConfig};
//! use botnest_detect::{DetectConfig, Engine, Hosts};
//!
//! let config = DetectConfig::default();
//! let shared = Shared::new(Hosts::new(&config.hosts), 100_000);
//! let server = Server::start(WebConfig::default(), shared.clone()).unwrap();
//! let mut engine = Engine::new(config);
//! let mut publisher = Publisher::new(shared);
//! // ... engine.observe(&flow), engine.advance(now) ...
//! publisher.publish(&engine, false);
//! server.stop();
//! ```

#![forbid(unsafe_code)]

mod api;
mod assets;
mod events;
pub mod export;
pub mod json;
mod metrics;
pub mod security;
mod server;
pub mod state;
pub mod view;

pub use server::{Server, StartError};
pub use state::SocketFigures;
pub use state::{Action, AlertFigures, CollectorFigures, OperatorState, Shared, SinkFigures};
pub use view::View;

/// The OpenAPI 3.1 document of the API, served at `/api/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

use botnest_detect::Engine;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `[web]` table of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where to serve HTTP. A non-loopback address needs a token.
    pub listen: SocketAddr,
    /// Whether to serve at all.
    pub enabled: bool,
    /// Required on every API request when set (`Authorization: Bearer TOKEN`).
    pub token: Option<String>,
    /// Recent flow records kept for `/api/flows`.
    pub recent_flows: usize,
    /// The shortest time between two published views, in milliseconds.
    pub publish_ms: u64,
    /// `Host` names accepted without a token besides the loopback ones (a reverse proxy's).
    pub allowed_hosts: Vec<String>,
    /// How often a `status` event is sent, in seconds.
    pub status_seconds: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            enabled: true,
            token: None,
            recent_flows: 100_000,
            publish_ms: 250,
            allowed_hosts: Vec::new(),
            status_seconds: 5,
        }
    }
}

/// Publishes views of the engine from the detection thread, at most every `publish_ms`.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
    last: Option<Instant>,
    every: Duration,
    /// The engine's evaluations and event count at the last view: a view is rebuilt only when
    /// something may have changed.
    seen: (u64, u64),
    events: u64,
    /// Records waiting for the ring while a request reads it.
    held: Vec<botnest_flow::FlowRecord>,
    capacity: usize,
}

impl Publisher {
    /// A publisher into `shared`, publishing at most every 250 ms.
    pub fn new(shared: Arc<Shared>) -> Publisher {
        Publisher::with_interval(shared, Duration::from_millis(250))
    }

    /// A publisher publishing at most every `every`.
    pub fn with_interval(shared: Arc<Shared>, every: Duration) -> Publisher {
        let capacity = shared.flow_capacity();
        Publisher {
            shared,
            held: Vec::new(),
            capacity,
            last: None,
            every,
            seen: (u64::MAX, u64::MAX),
            events: 0,
        }
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Records received, for `/api/flows`. The detection thread never waits for a request
    /// reading the ring: while one does, records are held here (at most the ring's capacity,
    /// the oldest going first) and added with the next batch.
    pub fn flows(&mut self, flows: &[botnest_flow::FlowRecord]) {
        if self.held.is_empty() && self.shared.try_add_flows(flows) {
            return;
        }
        self.held.extend_from_slice(flows);
        let capacity = self.capacity;
        if self.held.len() > capacity {
            let excess = self.held.len() - capacity;
            self.held.drain(..excess);
        }
        if self.shared.try_add_flows(&self.held) {
            self.held.clear();
        }
    }

    /// An alert, as the alert sinks send it (JSON).
    pub fn alert(&mut self, json: String) {
        self.events += 1;
        self.shared.send_event("alert", json);
    }

    /// A botnest appeared or changed.
    pub fn botnest(&mut self, id: u64, state: botnest_detect::Lifecycle, members: usize) {
        self.events += 1;
        let data = serde_json::json!({"id": id, "state": state, "members": members});
        self.shared.send_event("botnest", data.to_string());
    }

    /// Publishes a new view if the interval has passed (or `force`), and the engine moved.
    /// Counters alone are refreshed as often; the verdicts, botnests and channels are rebuilt
    /// when a window was evaluated or an event went out since the last view.
    pub fn publish(&mut self, engine: &Engine, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return;
        }
        self.last = Some(now);
        self.shared.set_engine(view::EngineFigures::of(engine));
        let key = (engine.stats().evaluations, self.events);
        if key == self.seen && !force {
            return;
        }
        self.seen = key;
        self.shared.set_view(View::build(engine));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botnest_detect::{DetectConfig, Hosts};
    use botnest_flow::FlowRecord;

    fn flows(ports: std::ops::Range<u16>) -> Vec<FlowRecord> {
        ports
            .map(|p| FlowRecord {
                src_port: p,
                ..FlowRecord::default()
            })
            .collect()
    }

    #[test]
    fn records_wait_while_a_request_reads_the_ring() {
        let shared = Shared::new(Hosts::new(&DetectConfig::default().hosts), 4);
        let mut p = Publisher::new(Arc::clone(&shared));
        p.flows(&flows(0..2));
        // A request holds the ring: the batches are kept, the oldest beyond capacity dropped.
        shared.with_flows(|ring| {
            p.flows(&flows(2..5));
            p.flows(&flows(5..7));
            assert_eq!(ring.len(), 2);
        });
        assert_eq!(p.held.len(), 4);
        p.flows(&flows(7..8));
        assert!(p.held.is_empty());
        let ports: Vec<u16> = shared.with_flows(|r| r.newest_first().map(|f| f.src_port).collect());
        assert_eq!(ports, [7, 6, 5, 4]);
    }
}
