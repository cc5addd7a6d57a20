//! The JSON endpoints under `/api`.

use crate::json::{self, parse_rfc3339};
use crate::security::SESSION_COOKIE;
use crate::server::{self, botnest_channels, host_matches, member_hosts, ApiError, App};
use crate::state::{Action, CollectorFigures, Shared};
use crate::view::{BotnestEntry, HostEntry, HostName, View};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use botnest_detect::Lifecycle;
use botnest_flow::{FlowRecord, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Flows answered when no `limit` is given.
const DEFAULT_FLOWS: usize = 100;
/// The most flows one answer holds.
const MAX_FLOWS: usize = 10_000;

type Answer = Result<Response, ApiError>;

/// An empty query value is no filter: `?tenant=&min_score=` filters nothing.
fn empty_none<'de, D: Deserializer<'de>, T: std::str::FromStr>(d: D) -> Result<Option<T>, D::Error>
where
    T::Err: std::fmt::Display,
{
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A time given as RFC 3339 or as seconds since 1970.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Time(pub(crate) Timestamp);

impl std::str::FromStr for Time {
    type Err = String;

    fn from_str(s: &str) -> Result<Time, String> {
        if let Ok(secs) = s.parse::<f64>() {
            if (0.0..1e11).contains(&secs) {
                return Ok(Time(Timestamp((secs * 1e9) as u64)));
            }
        }
        parse_rfc3339(s)
            .map(Time)
            .ok_or_else(|| format!("{s:?} is not an RFC 3339 time or seconds since 1970"))
    }
}

/// A lifecycle state named in a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LifecycleName(pub(crate) Lifecycle);

impl std::str::FromStr for LifecycleName {
    type Err = String;

    fn from_str(s: &str) -> Result<LifecycleName, String> {
        Ok(LifecycleName(match s {
            "new" => Lifecycle::New,
            "active" => Lifecycle::Active,
            "dormant" => Lifecycle::Dormant,
            "closed" => Lifecycle::Closed,
            _ => {
                return Err(format!(
                    "unknown state {s:?} (new, active, dormant, closed)"
                ))
            }
        }))
    }
}

/// Filters of `/api/botnests`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BotnestFilter {
    #[serde(default, deserialize_with = "empty_none")]
    pub(crate) tenant: Option<String>,
    #[serde(default, deserialize_with = "empty_none")]
    pub(crate) since: Option<Time>,
    #[serde(default, deserialize_with = "empty_none")]
    pub(crate) until: Option<Time>,
    #[serde(default, deserialize_with = "empty_none")]
    pub(crate) min_score: Option<f64>,
    #[serde(default, deserialize_with = "empty_none")]
    pub(crate) state: Option<LifecycleName>,
}

impl BotnestFilter {
    pub(crate) fn matches(&self, b: &BotnestEntry) -> bool {
        self.tenant.as_ref().is_none_or(|t| b.tenants.contains(t))
            && self.since.is_none_or(|t| b.last_seen >= t.0)
            && self.until.is_none_or(|t| b.first_seen <= t.0)
            && self.min_score.is_none_or(|s| b.score >= s)
            && self.state.is_none_or(|s| b.state == s.0)
    }
}

/// Filters of `/api/hosts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostFilter {
    #[serde(default, deserialize_with = "empty_none")]
    tenant: Option<String>,
    #[serde(default, deserialize_with = "empty_none")]
    since: Option<Time>,
    #[serde(default, deserialize_with = "empty_none")]
    until: Option<Time>,
    #[serde(default, deserialize_with = "empty_none")]
    min_score: Option<f64>,
    #[serde(default, deserialize_with = "empty_none")]
    role: Option<String>,
}

impl HostFilter {
    fn matches(&self, h: &HostEntry) -> bool {
        self.tenant.as_ref().is_none_or(|t| &h.name.0 == t)
            && self.since.is_none_or(|t| h.last_seen >= t.0)
            && self.until.is_none_or(|t| h.first_seen <= t.0)
            && self.min_score.is_none_or(|s| h.score >= s)
            && self
                .role
                .as_ref()
                .is_none_or(|r| h.roles.contains(&r.as_str()))
    }
}

/// Filters of `/api/channels` and `/api/flows`: a host (tenant and address) or a botnest, and
/// how many entries at most.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeFilter {
    #[serde(default, deserialize_with = "empty_none")]
    tenant: Option<String>,
    #[serde(default, deserialize_with = "empty_none")]
    address: Option<IpAddr>,
    #[serde(default, deserialize_with = "empty_none")]
    botnest: Option<u64>,
    #[serde(default, deserialize_with = "empty_none")]
    limit: Option<usize>,
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
}

/// A botnest listed with whether an operator acknowledged it.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    json: &'a Value,
    acknowledged: bool,
}

fn ok<T: Serialize>(body: &T) -> Answer {
    Ok(Json(body).into_response())
}

pub(crate) async fn botnests(
    State(app): State<Arc<App>>,
    q: Result<Query<BotnestFilter>, QueryRejection>,
) -> Answer {
    let filter = query(q)?;
    let view = app.shared.view();
    let list: Vec<Listed<'_>> = view
        .botnests
        .values()
        .filter(|b| filter.matches(b))
        .map(|b| Listed {
            json: &b.json,
            acknowledged: app.shared.acknowledged(b.id),
        })
        .collect();
    ok(&json!({ "botnests": list }))
}

fn botnest_id(p: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let id = path(p)?;
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a botnest id")))
}

pub(crate) async fn botnest(
    State(app): State<Arc<App>>,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = botnest_id(p)?;
    let view = app.shared.view();
    let b = view
        .botnests
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no botnest {id}")))?;
    let mut doc = b.json.clone();
    doc["acknowledged"] = json!(app.shared.acknowledged(id));
    doc["hosts"] = member_hosts(&view, b)
        .iter()
        .map(|h| h.json.clone())
        .collect();
    doc["channels"] = botnest_channels(&view, b)
        .iter()
        .map(|c| c.json.clone())
        .collect();
    ok(&doc)
}

pub(crate) async fn acknowledge(
    State(app): State<Arc<App>>,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = botnest_id(p)?;
    if !app.shared.view().botnests.contains_key(&id) {
        return Err(ApiError::not_found(format!("no botnest {id}")));
    }
    app.shared.acknowledge(id);
    ok(&json!({"id": id, "acknowledged": true}))
}

pub(crate) async fn hosts(
    State(app): State<Arc<App>>,
    q: Result<Query<HostFilter>, QueryRejection>,
) -> Answer {
    let filter = query(q)?;
    let view = app.shared.view();
    let list: Vec<&Value> = view
        .accused()
        .filter(|h| filter.matches(h))
        .map(|h| &h.json)
        .collect();
    ok(&json!({ "hosts": list }))
}

fn host_name(p: Result<Path<(String, String)>, PathRejection>) -> Result<HostName, ApiError> {
    let (tenant, address) = path(p)?;
    let addr: IpAddr = address
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{address:?} is not an IP address")))?;
    Ok((tenant, addr))
}

/// Hosts to match flows against: by address first, the tenant only for a matching address.
struct HostSet<'a> {
    hosts: &'a BTreeSet<HostName>,
    addresses: BTreeSet<IpAddr>,
}

impl<'a> HostSet<'a> {
    fn new(hosts: &'a BTreeSet<HostName>) -> Self {
        HostSet {
            hosts,
            addresses: hosts.iter().map(|h| h.1).collect(),
        }
    }

    /// Whether a flow touches one of the hosts (either end, tenant resolved as detection
    /// does).
    fn touched_by(&self, shared: &Shared, f: &FlowRecord) -> bool {
        let r = shared.hosts();
        [f.src, f.dst].into_iter().any(|a| {
            self.addresses.contains(&a) && {
                let k = r.host(r.tenant_of(f), a);
                self.hosts.contains(&(r.tenant_name(k.tenant), a))
            }
        })
    }
}

/// Interface names by exporter address and domain, each list sorted by index.
type NameIndex<'a> = BTreeMap<(IpAddr, u32), &'a [(u32, Box<str>)]>;

/// Interface names by exporter address, domain and index.
fn interface_names(c: &CollectorFigures) -> NameIndex<'_> {
    c.domains
        .iter()
        .filter(|d| !d.interfaces.is_empty())
        .map(|d| ((d.session.exporter.ip(), d.domain), &d.interfaces[..]))
        .collect()
}

fn flow_with_names(f: &FlowRecord, names: &NameIndex<'_>) -> Value {
    let mut v = json::flow_json(f);
    if let Some(list) = names.get(&(f.exporter, f.observation_domain)) {
        let find = |i: u32| {
            list.binary_search_by_key(&i, |(k, _)| *k)
                .ok()
                .map(|p| &*list[p].1)
        };
        if let Some(n) = find(f.input_interface) {
            v["input_interface_name"] = json!(n);
        }
        if let Some(n) = find(f.output_interface) {
            v["output_interface_name"] = json!(n);
        }
    }
    v
}

/// The most recent flows matching a filter, newest first.
pub(crate) fn recent_flows(
    shared: &Shared,
    tenant: Option<&str>,
    hosts: Option<&BTreeSet<HostName>>,
    limit: usize,
) -> Vec<Value> {
    let collector = shared.collector();
    let names = interface_names(&collector);
    let r = shared.hosts();
    let hosts = hosts.map(HostSet::new);
    shared.with_flows(|ring| {
        ring.newest_first()
            .filter(|f| hosts.as_ref().is_none_or(|h| h.touched_by(shared, f)))
            .filter(|f| {
                tenant.is_none_or(|t| {
                    let tf = r.tenant_of(f);
                    [f.src, f.dst]
                        .into_iter()
                        .any(|a| r.tenant_name(r.host(tf, a).tenant) == t)
                })
            })
            .take(limit)
            .map(|f| flow_with_names(f, &names))
            .collect()
    })
}

pub(crate) async fn host(
    State(app): State<Arc<App>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let name = host_name(p)?;
    let view = app.shared.view();
    let channels: Vec<Value> = view.channels_of(&name).map(|c| c.json.clone()).collect();
    let one = BTreeSet::from([name.clone()]);
    let flows = recent_flows(&app.shared, None, Some(&one), DEFAULT_FLOWS);
    let mut doc = match view.verdicts.get(&name) {
        Some(h) => {
            let mut d = h.json.clone();
            d["accused"] = json!(h.accused);
            d
        }
        None if channels.is_empty() && flows.is_empty() => {
            return Err(ApiError::not_found(format!(
                "nothing is known of {} in tenant {}",
                name.1, name.0
            )))
        }
        None => {
            // A member without evidence of its own (a victim, a peer) still has its part.
            let membership = view.botnests.values().find_map(|b| {
                b.members
                    .iter()
                    .find(|(m, _)| *m == name)
                    .map(|(_, roles)| (b.id, roles.clone()))
            });
            let (botnest, roles) = match membership {
                Some((id, roles)) => (Some(id), roles),
                None => (None, Vec::new()),
            };
            json!({
                "address": name.1.to_string(),
                "tenant": name.0,
                "roles": roles,
                "score": 0.0,
                "first_seen": null,
                "last_seen": null,
                "botnest": botnest,
                "evidence": [],
                "accused": false,
            })
        }
    };
    doc["channels"] = Value::Array(channels);
    doc["flows"] = Value::Array(flows);
    ok(&doc)
}

pub(crate) async fn allow_host(
    State(app): State<Arc<App>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let (tenant, address) = host_name(p)?;
    server::queue(
        &app,
        Action::AllowHost {
            tenant: tenant.clone(),
            address,
        },
    )?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"address": address.to_string(), "tenant": tenant, "allowed": true})),
    )
        .into_response())
}

pub(crate) async fn channels(
    State(app): State<Arc<App>>,
    q: Result<Query<ScopeFilter>, QueryRejection>,
) -> Answer {
    let f = query(q)?;
    let view = app.shared.view();
    let limit = f.limit.unwrap_or(MAX_FLOWS).min(MAX_FLOWS);
    let members: Option<BTreeSet<HostName>> = match f.botnest {
        Some(id) => Some(
            view.botnests
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("no botnest {id}")))?
                .members
                .iter()
                .map(|(h, _)| h.clone())
                .collect(),
        ),
        None => None,
    };
    let list: Vec<&Value> = view
        .channels
        .iter()
        .filter(|c| {
            [&c.client, &c.server]
                .iter()
                .any(|h| host_matches(h, f.tenant.as_deref(), f.address))
        })
        .filter(|c| {
            members
                .as_ref()
                .is_none_or(|m| m.contains(&c.client) || m.contains(&c.server))
        })
        .take(limit)
        .map(|c| &c.json)
        .collect();
    ok(&json!({ "channels": list }))
}

pub(crate) async fn flows(
    State(app): State<Arc<App>>,
    q: Result<Query<ScopeFilter>, QueryRejection>,
) -> Answer {
    let f = query(q)?;
    let limit = f.limit.unwrap_or(DEFAULT_FLOWS).min(MAX_FLOWS);
    let view = app.shared.view();
    let hosts: Option<BTreeSet<HostName>> = match (f.botnest, f.address) {
        (Some(id), _) => Some(
            view.botnests
                .get(&id)
                .ok_or_else(|| ApiError::not_found(format!("no botnest {id}")))?
                .members
                .iter()
                .map(|(h, _)| h.clone())
                .filter(|h| f.address.is_none_or(|a| a == h.1))
                .collect(),
        ),
        (None, Some(a)) => {
            // An address alone: that address in any tenant, or in the one named.
            let tenant = f.tenant.clone();
            let r = app.shared.hosts();
            let list = app.shared.with_flows(|ring| {
                ring.newest_first()
                    .filter(|fl| fl.src == a || fl.dst == a)
                    .map(|fl| (r.tenant_name(r.host(r.tenant_of(fl), a).tenant), a))
                    .filter(|h| tenant.as_ref().is_none_or(|t| &h.0 == t))
                    .take(64)
                    .collect::<BTreeSet<_>>()
            });
            Some(list)
        }
        (None, None) => None,
    };
    let list = recent_flows(&app.shared, f.tenant.as_deref(), hosts.as_ref(), limit);
    ok(&json!({ "flows": list }))
}

pub(crate) fn exporters_json(c: &CollectorFigures) -> Value {
    let mut by_address: BTreeMap<IpAddr, Vec<&crate::state::DomainFigures>> = BTreeMap::new();
    for d in &c.domains {
        by_address
            .entry(d.session.exporter.ip())
            .or_default()
            .push(d);
    }
    let list: Vec<Value> = by_address
        .iter()
        .map(|(addr, domains)| {
            let sum = |f: fn(&botnest_collect::Counters) -> u64| -> u64 {
                domains.iter().map(|d| f(&d.counters)).sum()
            };
            let rate: f64 = domains
                .iter()
                .map(|d| c.rates.get(&(d.session.exporter, d.domain)).copied().unwrap_or(0.0))
                .sum();
            let mut interfaces = Vec::new();
            let doms: Vec<Value> = domains
                .iter()
                .map(|d| {
                    let ifs: Vec<Value> = d
                        .interfaces
                        .iter()
                        .map(|(i, n)| json!({"index": i, "name": &**n, "description": null, "domain": d.domain}))
                        .collect();
                    interfaces.extend(ifs.iter().cloned());
                    let k = &d.counters;
                    json!({
                        "domain": d.domain,
                        "transport": d.session.transport,
                        "exporter": d.session.exporter.to_string(),
                        "collector": d.session.collector.to_string(),
                        "packets": k.messages,
                        "records": k.records,
                        "options_records": k.options_records,
                        "records_per_second": json::round3(
                            c.rates.get(&(d.session.exporter, d.domain)).copied().unwrap_or(0.0)),
                        "lost_records": k.lost_records,
                        "lost_packets": k.lost_packets,
                        "errors": k.errors,
                        "templates": k.templates,
                        "out_of_order": k.out_of_order,
                        "interfaces": ifs,
                    })
                })
                .collect();
            json!({
                "address": addr.to_string(),
                "domains": doms,
                "packets": sum(|k| k.messages),
                "records": sum(|k| k.records),
                "records_per_second": json::round3(rate),
                "lost_records": sum(|k| k.lost_records),
                "errors": sum(|k| k.errors),
                "templates": sum(|k| k.templates),
                "interfaces": interfaces,
            })
        })
        .collect();
    json!({ "exporters": list })
}

pub(crate) async fn exporters(State(app): State<Arc<App>>) -> Answer {
    ok(&exporters_json(&app.shared.collector()))
}

/// Accused hosts per behaviour of their evidence.
fn behaviours(view: &View) -> BTreeMap<&'static str, usize> {
    let mut out: BTreeMap<&'static str, usize> = botnest_detect::Behaviour::ALL
        .iter()
        .map(|b| (b.name(), 0))
        .collect();
    for h in view.accused() {
        let kinds: BTreeSet<&str> = h.json["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        for k in kinds {
            if let Some(n) = out.get_mut(k) {
                *n += 1;
            }
        }
    }
    out
}

pub(crate) fn status_json(app: &App) -> Value {
    let shared = &app.shared;
    let e = shared.engine();
    let view = shared.view();
    let c = shared.collector();
    let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
    for b in view.botnests.values() {
        let name = match b.state {
            Lifecycle::New => "new",
            Lifecycle::Active => "active",
            Lifecycle::Dormant => "dormant",
            Lifecycle::Closed => "closed",
        };
        *states.entry(name).or_insert(0) += 1;
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": shared.uptime().as_secs(),
        "flows_per_second": json::round3(shared.flow_rate()),
        "engine": {
            "flows": e.flows, "late": e.late, "too_late": e.too_late, "windows": e.evaluations,
            "windows_skipped": e.windows_skipped,
            "hosts": e.hosts, "channels": e.channels, "verdicts": e.verdicts,
            "botnests": e.botnests, "hosts_refused": e.hosts_refused,
            "channels_refused": e.channels_refused,
        },
        "detectors": {
            "bot_threshold": e.bot_threshold,
            "accused": view.accused().count(),
            "behaviours": behaviours(&view),
            "botnests_by_state": states,
        },
        "collector": {
            "messages": c.totals.messages,
            "records": c.totals.records,
            "records_per_second": json::round3(c.rate),
            "errors": c.totals.errors,
            "lost_records": c.totals.lost_records,
            "queue_drops": c.queue_drops,
            "exporters": c.domains.iter().map(|d| d.session.exporter.ip()).collect::<BTreeSet<_>>().len(),
            "errors_by_reason": c.errors_by_reason,
        },
        "alerts": {
            "repeats": shared.alerts().repeats,
            "sinks": shared.alerts().sinks.iter().map(|(name, f)| (name.to_string(), json!({
                "sent": f.sent, "failed": f.failed, "dropped": f.dropped,
                "suppressed": f.suppressed,
            }))).collect::<serde_json::Map<String, Value>>(),
        },
        "watermark": e.newest(),
        "windows": {"length_s": e.window_seconds, "slide_s": e.slide_seconds},
        "recent_flows": shared.with_flows(|r| r.len()),
    })
}

pub(crate) async fn status(State(app): State<Arc<App>>) -> Answer {
    ok(&status_json(&app))
}

pub(crate) async fn session(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer {
    ok(&json!({
        "csrf": app.security.csrf(),
        "token_required": app.security.token_required(),
        "authenticated": app.security.authenticated(&headers),
    }))
}

/// The body of `POST /api/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    token: String,
}

pub(crate) async fn login(
    State(app): State<Arc<App>>,
    body: Result<Json<Login>, JsonRejection>,
) -> Answer {
    let Json(login) =
        body.map_err(|e| ApiError::bad_request(format!("bad login: {}", e.body_text())))?;
    if !app.security.token_required() {
        return ok(&json!({"authenticated": true}));
    }
    let Some(id) = app.security.login(&login.token) else {
        app.shared.count_unauthorized();
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token"));
    };
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"authenticated": true})),
    )
        .into_response())
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI).into_response()
}

pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
