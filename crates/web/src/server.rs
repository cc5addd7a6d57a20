//! The HTTP server: routes, filters and the embedded console.

use crate::security::{self, Security};
use crate::state::{Action, Shared};
use crate::view::{BotnestEntry, ChannelEntry, HostEntry, HostName, View};
use crate::{api, WebConfig};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Everything a handler reaches.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    pub(crate) security: Security,
    pub(crate) config: WebConfig,
}

/// A running HTTP server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address is not loopback and no token is set.
    #[error(
        "refusing to serve HTTP on {0} without a token: set --token, [web] token or \
         BOTNEST_TOKEN, or listen on a loopback address"
    )]
    NoToken(SocketAddr),
    /// The socket could not be opened.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("cannot start the HTTP server: {0}")]
    Runtime(std::io::Error),
}

impl Server {
    /// Binds `config.listen` and serves on a thread of its own.
    pub fn start(config: WebConfig, shared: Arc<Shared>) -> Result<Server, StartError> {
        let addr = config.listen;
        if !addr.ip().is_loopback() && config.token.as_deref().is_none_or(str::is_empty) {
            return Err(StartError::NoToken(addr));
        }
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Bind { addr, source })?;
        // Two workers: one long answer (a large export) does not hold up the others.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let app = Arc::new(App {
            security: Security::new(config.token.clone(), addr, config.allowed_hosts.clone()),
            shared,
            config,
        });
        let router = router(app);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("http".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot serve HTTP");
                            return;
                        }
                    };
                    let serve = axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<SocketAddr>(),
                    );
                    tokio::select! {
                        r = serve => if let Err(e) = r {
                            tracing::error!(error = %e, "HTTP server failed");
                        },
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime closes every connection still open, live streams too.
            })
            .map_err(StartError::Runtime)?;
        tracing::info!(%addr, "serving HTTP");
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address served (with the port the system chose when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server's thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/botnests", get(api::botnests))
        .route("/api/botnests/{id}", get(api::botnest))
        .route("/api/botnests/{id}/acknowledge", post(api::acknowledge))
        .route("/api/hosts", get(api::hosts))
        .route("/api/hosts/{tenant}/{address}", get(api::host))
        .route("/api/hosts/{tenant}/{address}/allow", post(api::allow_host))
        .route("/api/channels", get(api::channels))
        .route("/api/flows", get(api::flows))
        .route("/api/exporters", get(api::exporters))
        .route("/api/status", get(api::status))
        .route("/api/session", get(api::session))
        .route("/api/login", post(api::login))
        .route("/api/events", get(crate::events::events))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/export/{format}", get(crate::export::export))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/api", get(api::not_found))
        .route("/api/{*rest}", get(api::not_found).post(api::not_found))
        .fallback(crate::assets::asset)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            security::guard,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), count))
        .layer(middleware::from_fn(headers))
        .with_state(app)
}

/// A known path asked with a method it does not take.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}

/// Counts each request by route and status.
async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api") {
                "/api/unknown".to_owned()
            } else {
                "/assets".to_owned()
            }
        });
    let response = next.run(req).await;
    app.shared.count_request(&route, response.status().as_u16());
    response
}

/// The headers every answer carries: no script but the console's own, no framing, no sniffing.
async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// A JSON error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.message,
            "status": self.status.as_u16(),
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Whether a host's tenant and address match the `tenant` and `address` filters.
pub(crate) fn host_matches(
    h: &HostName,
    tenant: Option<&str>,
    address: Option<std::net::IpAddr>,
) -> bool {
    tenant.is_none_or(|t| h.0 == t) && address.is_none_or(|a| a == h.1)
}

/// The channels of a botnest: each channel with a member at either end, once.
pub(crate) fn botnest_channels<'a>(view: &'a View, b: &BotnestEntry) -> Vec<&'a ChannelEntry> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (m, _) in &b.members {
        for &i in view.channels_by_host.get(m).into_iter().flatten() {
            if seen.insert(i) {
                out.push(&view.channels[i]);
            }
        }
    }
    out
}

/// Host entries of a botnest's members that have a verdict.
pub(crate) fn member_hosts<'a>(view: &'a View, b: &BotnestEntry) -> Vec<&'a HostEntry> {
    b.members
        .iter()
        .filter_map(|(m, _)| view.verdicts.get(m))
        .collect()
}

/// Queues an action, or says why not.
pub(crate) fn queue(app: &App, action: Action) -> Result<(), ApiError> {
    if app.shared.push_action(action) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests waiting for the detection thread",
        ))
    }
}
