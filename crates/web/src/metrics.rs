//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the collector, the engine, the
//! alert sinks and this server.

use crate::server::App;
use crate::state::lock;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use botnest_detect::Lifecycle;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Escapes a label value: backslash, double quote and newline.
pub fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes metric families one at a time.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// The whole exposition.
pub(crate) fn render(app: &App) -> String {
    let shared = &app.shared;
    let mut x = Exposition { out: String::new() };
    x.family("botnest_build_info", "gauge", "Version of botnest.");
    x.sample(
        "botnest_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    x.single(
        "botnest_uptime_seconds",
        "gauge",
        "Seconds since botnest started.",
        shared.uptime().as_secs_f64(),
    );

    let c = shared.collector();
    type Pick = fn(&botnest_collect::Counters) -> u64;
    let per_domain: [(&str, &str, Pick); 6] = [
        (
            "messages",
            "Export messages (IPFIX) or packets (NetFlow) received.",
            |k| k.messages,
        ),
        ("records", "Flow data records decoded.", |k| k.records),
        ("options_records", "Options data records decoded.", |k| {
            k.options_records
        }),
        ("errors", "Decoding errors.", |k| k.errors),
        (
            "lost_records",
            "Records the exporter sent that never arrived.",
            |k| k.lost_records,
        ),
        ("templates", "Template records received.", |k| k.templates),
    ];
    for (what, help, pick) in per_domain {
        let name = format!("botnest_collector_{what}_total");
        x.family(&name, "counter", help);
        for d in &c.domains {
            let exporter = d.session.exporter.ip().to_string();
            let domain = d.domain.to_string();
            x.sample(
                &name,
                &[("exporter", &exporter), ("domain", &domain)],
                pick(&d.counters) as f64,
            );
        }
    }
    x.family(
        "botnest_collector_decode_errors_total",
        "counter",
        "Decoding errors by reason, over every exporter.",
    );
    for (reason, n) in &c.errors_by_reason {
        x.sample(
            "botnest_collector_decode_errors_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    x.single(
        "botnest_collector_records_all_total",
        "counter",
        "Flow data records decoded from every exporter, closed sessions included.",
        c.totals.records as f64,
    );
    x.single(
        "botnest_collector_lost_records_all_total",
        "counter",
        "Records lost in transit from every exporter, closed sessions included.",
        c.totals.lost_records as f64,
    );
    type SockPick = fn(&crate::state::SocketFigures) -> u64;
    let per_socket: [(&str, &str, SockPick); 3] = [
        (
            "socket_messages",
            "Datagrams or messages received per socket.",
            |s| s.messages,
        ),
        (
            "kernel_drops",
            "Datagrams the kernel dropped for a full receive buffer.",
            |s| s.kernel_drops,
        ),
        (
            "not_allowed",
            "Messages from exporters outside the allow list.",
            |s| s.not_allowed,
        ),
    ];
    for (what, help, pick) in per_socket {
        let name = format!("botnest_collector_{what}_total");
        x.family(&name, "counter", help);
        for s in &c.sockets {
            x.sample(&name, &[("endpoint", &s.endpoint)], pick(s) as f64);
        }
    }
    x.single(
        "botnest_collector_queue_drops_total",
        "counter",
        "Records dropped because the detection queue was full.",
        c.queue_drops as f64,
    );

    let e = shared.engine();
    for (what, help, v) in [
        ("flows", "Flow records observed by the engine.", e.flows),
        (
            "late",
            "Records behind the watermark still applied.",
            e.late,
        ),
        (
            "too_late",
            "Records too late for any open window, dropped.",
            e.too_late,
        ),
        ("evaluations", "Windows evaluated.", e.evaluations),
        (
            "windows_skipped",
            "Windows passed over after a jump of event time.",
            e.windows_skipped,
        ),
        (
            "hosts_refused",
            "Hosts refused at the graph's limit.",
            e.hosts_refused,
        ),
        (
            "channels_refused",
            "Channels refused at the graph's limit.",
            e.channels_refused,
        ),
    ] {
        x.single(
            &format!("botnest_engine_{what}_total"),
            "counter",
            help,
            v as f64,
        );
    }
    for (what, help, v) in [
        ("hosts", "Hosts in the property graph.", e.hosts),
        ("channels", "Channels in the property graph.", e.channels),
        ("verdicts", "Hosts with a verdict.", e.verdicts),
    ] {
        x.single(&format!("botnest_engine_{what}"), "gauge", help, v as f64);
    }
    x.single(
        "botnest_engine_overlay_history",
        "gauge",
        "Peer-to-peer overlay observations kept.",
        e.overlay_history as f64,
    );
    x.single(
        "botnest_engine_watermark_seconds",
        "gauge",
        "Newest event time seen, seconds since 1970.",
        e.newest.as_unix_nanos() as f64 / 1e9,
    );
    x.single(
        "botnest_recent_flows",
        "gauge",
        "Flow records kept for the API.",
        shared.with_flows(|r| r.len()) as f64,
    );

    let view = shared.view();
    let mut by: BTreeMap<(&'static str, &str), u64> = BTreeMap::new();
    for b in view.botnests.values() {
        let state = match b.state {
            Lifecycle::New => "new",
            Lifecycle::Active => "active",
            Lifecycle::Dormant => "dormant",
            Lifecycle::Closed => "closed",
        };
        for t in &b.tenants {
            *by.entry((state, t.as_str())).or_insert(0) += 1;
        }
    }
    x.family(
        "botnest_botnests",
        "gauge",
        "Botnests by state and tenant of their members.",
    );
    for ((state, tenant), n) in &by {
        x.sample(
            "botnest_botnests",
            &[("state", state), ("tenant", tenant)],
            *n as f64,
        );
    }
    x.single(
        "botnest_accused_hosts",
        "gauge",
        "Hosts reported as bots or C2 endpoints.",
        view.accused().count() as f64,
    );

    let a = shared.alerts();
    x.single(
        "botnest_alerts_repeats_total",
        "counter",
        "Identical alerts not sent again.",
        a.repeats as f64,
    );
    type AlertPick = fn(&crate::state::SinkFigures) -> u64;
    let per_sink: [(&str, &str, AlertPick); 4] = [
        ("sent", "Alerts and notices delivered.", |s| s.sent),
        ("failed", "Deliveries that failed.", |s| s.failed),
        ("dropped", "Alerts dropped at a full sink queue.", |s| {
            s.dropped
        }),
        ("suppressed", "Alerts held back by the rate limit.", |s| {
            s.suppressed
        }),
    ];
    for (what, help, pick) in per_sink {
        let name = format!("botnest_alerts_{what}_total");
        x.family(&name, "counter", help);
        for (sink, s) in &a.sinks {
            x.sample(&name, &[("sink", sink)], pick(s) as f64);
        }
    }

    x.family(
        "botnest_http_requests_total",
        "counter",
        "HTTP requests by route and status.",
    );
    for ((route, status), n) in lock(&shared.http.requests).iter() {
        x.sample(
            "botnest_http_requests_total",
            &[("route", route), ("status", &status.to_string())],
            *n as f64,
        );
    }
    let h = &shared.http;
    x.single(
        "botnest_http_unauthorized_total",
        "counter",
        "Requests refused for a missing or wrong token.",
        h.unauthorized.load(Relaxed) as f64,
    );
    x.single(
        "botnest_http_forbidden_total",
        "counter",
        "Requests refused by the host, origin or CSRF check.",
        h.forbidden.load(Relaxed) as f64,
    );
    x.single(
        "botnest_http_event_clients",
        "gauge",
        "Clients connected to the live events.",
        h.events_clients.load(Relaxed) as f64,
    );
    x.single(
        "botnest_http_events_lagged_total",
        "counter",
        "Live events missed by clients that fell behind.",
        h.events_lagged.load(Relaxed) as f64,
    );
    x.out
}

pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&app),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
