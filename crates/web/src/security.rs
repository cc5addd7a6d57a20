//! Who may ask what. With a token set, every `/api` and `/metrics` request carries it
//! (`Authorization: Bearer TOKEN`) or a session cookie obtained by logging in with it; the
//! comparison takes the same time wherever the strings differ. Without a token the server
//! listens on loopback only and answers only requests whose `Host` names the loopback, so a web
//! page elsewhere cannot reach it through DNS rebinding. Requests that change state also need
//! the CSRF token of `GET /api/session` in `X-Botnest-CSRF`, and an `Origin`, if sent, of this
//! server.

use crate::server::{ApiError, App};
use crate::state::lock;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-botnest-csrf";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "botnest_session";
/// Sessions kept; the oldest is forgotten past this.
const MAX_SESSIONS: usize = 1024;

/// Tokens and sessions.
#[derive(Debug)]
pub struct Security {
    token: Option<String>,
    csrf: String,
    sessions: Mutex<VecDeque<String>>,
    /// Extra `Host` names accepted without a token (a reverse proxy's name).
    allowed_hosts: Vec<String>,
    served: SocketAddr,
}

/// 32 random bytes in hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Without the system's random source no secret can be made; a fixed one would be
        // guessable, so the process stops instead.
        panic!("the system random source is unavailable");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Security {
    /// The policy of a server on `served`, with an optional token.
    pub fn new(token: Option<String>, served: SocketAddr, allowed_hosts: Vec<String>) -> Self {
        Security {
            token: token.filter(|t| !t.is_empty()),
            csrf: random_hex(),
            sessions: Mutex::new(VecDeque::new()),
            allowed_hosts,
            served,
        }
    }

    /// Whether a token is required.
    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// The CSRF token.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether the request is authenticated: no token is set, or it carries it or a session.
    pub fn authenticated(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        if let Some(given) = bearer(headers) {
            return same_secret(given, token);
        }
        match cookie(headers, SESSION_COOKIE) {
            Some(s) => {
                // Compared with each session held, in constant time each.
                lock(&self.sessions).iter().any(|k| same_secret(k, s))
            }
            None => false,
        }
    }

    /// Checks a token given at login; a new session id when right.
    pub fn login(&self, given: &str) -> Option<String> {
        let token = self.token.as_ref()?;
        if !same_secret(given, token) {
            return None;
        }
        let id = random_hex();
        let mut s = lock(&self.sessions);
        if s.len() >= MAX_SESSIONS {
            s.pop_front();
        }
        s.push_back(id.clone());
        Some(id)
    }

    /// Whether the `Host` header names this server acceptably. With a token any name is
    /// accepted (the token is what protects); without, only loopback names and those
    /// configured.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        if self.token.is_some() {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            // HTTP/1.0 without Host: only non-browser clients do that.
            return true;
        };
        let name = host_name(host);
        if self
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            return true;
        }
        if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.served.ip(),
            Err(_) => false,
        }
    }

    /// Whether a state-changing request comes from this server's own pages.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !given.is_some_and(|g| same_secret(g, &self.csrf)) {
            return false;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            Some(origin) => {
                let rest = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"));
                rest.is_some() && rest == host
            }
            // No Origin: a non-browser client, or an old browser; the CSRF token decides.
            None => true,
        }
    }
}

/// The host part of a `Host` header: without the port, brackets kept for IPv6.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A cookie's value.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Paths anyone may reach: the console's files, and what the login page needs.
fn public(path: &str, method: &Method) -> bool {
    let api = path == "/metrics" || path == "/api" || path.starts_with("/api/");
    !api || (path == "/api/session" && method == Method::GET) || path == "/api/login"
}

/// The middleware applying the policy.
pub(crate) async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let sec = &app.security;
    let headers = req.headers();
    if !sec.host_allowed(headers) {
        app.shared.http.forbidden.fetch_add(1, Relaxed);
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to loopback names without a token",
        )
        .into_response();
    }
    let path = req.uri().path();
    if !public(path, req.method()) && !sec.authenticated(headers) {
        app.shared.count_unauthorized();
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "a valid token is required").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"botnest\""),
        );
        return r;
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !sec.same_origin(headers) {
        app.shared.http.forbidden.fetch_add(1, Relaxed);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "state-changing requests need the X-Botnest-CSRF token of GET /api/session and \
             this server's origin",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn served() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn a_token_is_checked_whole() {
        let s = Security::new(Some("s3cret".into()), served(), vec![]);
        assert!(s.authenticated(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(s.authenticated(&headers(&[("authorization", "bearer s3cret")])));
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Bearer "] {
            assert!(
                !s.authenticated(&headers(&[("authorization", wrong)])),
                "{wrong}"
            );
        }
        assert!(!s.authenticated(&HeaderMap::new()));
    }

    #[test]
    fn a_session_from_login_authenticates() {
        let s = Security::new(Some("s3cret".into()), served(), vec![]);
        assert!(s.login("wrong").is_none());
        let id = s.login("s3cret").unwrap();
        let cookie = format!("theme=dark; {SESSION_COOKIE}={id}");
        assert!(s.authenticated(&headers(&[("cookie", &cookie)])));
        let forged = format!("{SESSION_COOKIE}={}", random_hex());
        assert!(!s.authenticated(&headers(&[("cookie", &forged)])));
    }

    #[test]
    fn without_a_token_only_loopback_names_are_answered() {
        let s = Security::new(None, served(), vec!["console.example".into()]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "console.example",
        ] {
            assert!(s.host_allowed(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in ["evil.example:8080", "evil.example", "10.0.0.1:8080"] {
            assert!(!s.host_allowed(&headers(&[("host", bad)])), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_header_text_is_judged_without_panic(v in "[ -~]{0,80}") {
            let s = Security::new(Some("s3cret".into()), served(), vec![]);
            let open = Security::new(None, served(), vec![]);
            let h = headers(&[("host", &v), ("cookie", &v), ("authorization", &v), ("origin", &v)]);
            proptest::prop_assert!(!s.authenticated(&h) || v.contains("s3cret"));
            let _ = open.host_allowed(&h);
            proptest::prop_assert!(!open.same_origin(&h));
            proptest::prop_assert!(v.starts_with(host_name(&v)));
        }
    }

    #[test]
    fn state_changes_need_the_csrf_token_and_our_origin() {
        let s = Security::new(None, served(), vec![]);
        let csrf = s.csrf().to_owned();
        let host = ("host", "127.0.0.1:8080");
        assert!(s.same_origin(&headers(&[host, (CSRF_HEADER, &csrf)])));
        assert!(s.same_origin(&headers(&[
            host,
            (CSRF_HEADER, &csrf),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!s.same_origin(&headers(&[host])));
        assert!(!s.same_origin(&headers(&[host, (CSRF_HEADER, "nope")])));
        assert!(!s.same_origin(&headers(&[
            host,
            (CSRF_HEADER, &csrf),
            ("origin", "http://evil.example")
        ])));
        assert!(!s.same_origin(&headers(&[host, (CSRF_HEADER, &csrf), ("origin", "null")])));
    }
}
