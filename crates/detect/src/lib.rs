//! Botnet detection: the host property graph, behaviour detectors and botnest assembly.
//!
//! The engine is a deterministic state machine: flow records go in with
//! [`Engine::observe`], time moves with [`Engine::advance`], and findings come out of
//! [`Engine::poll`]. It reads no clock and owns no thread, so a replay of recorded flows gives
//! exactly the findings the live run gave.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod evidence;
pub mod graph;
pub mod host;
pub mod intel;

pub use evidence::{Behaviour, Evidence, Peer, Role};
pub use host::{HostConfig, HostKey, Hosts, Tenant, TenantSource};
pub use intel::{Intel, Listing, Target};

pub mod botnest;
pub mod config;
pub mod detectors;
pub mod engine;

pub use botnest::{Botnest, Botnests, Lifecycle};
pub use config::DetectConfig;
pub use engine::{Engine, EngineSizes, EngineSnapshot, EngineStats, Event, HostVerdict};
