//! The console's files, embedded at build time from `assets/`.

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

mod table {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Shown at `/` when the build embedded no `index.html`.
const NO_CONSOLE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>botnest</title></head><body><h1>botnest</h1><p>This build has no web console; the API \
is at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p></body></html>\n";

/// The content type of a file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if ["LICENSE", "COPYING", "NOTICE", "README"]
        .iter()
        .any(|n| name.starts_with(n))
        && !name.contains('.')
    {
        return "text/plain; charset=utf-8";
    }
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// An embedded file by its path under `assets/`.
pub fn file(path: &str) -> Option<&'static [u8]> {
    table::FILES
        .binary_search_by_key(&path, |(p, _)| p)
        .ok()
        .map(|i| table::FILES[i].1)
}

/// Serves `/`, `/index.html`, `/NAME` and `/assets/NAME` from the embedded files.
pub(crate) async fn asset(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response();
    }
    let path = uri.path();
    let rel = match path {
        "/" => "index.html",
        p => p
            .strip_prefix("/assets/")
            .unwrap_or_else(|| p.trim_start_matches('/')),
    };
    match file(rel) {
        Some(body) => {
            // The console's entry page may change with each build; the rest is cached briefly.
            let cache = if rel == "index.html" {
                "no-cache"
            } else {
                "public, max-age=300"
            };
            (
                [
                    (header::CONTENT_TYPE, content_type(rel)),
                    (header::CACHE_CONTROL, cache),
                ],
                body,
            )
                .into_response()
        }
        None if rel == "index.html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NO_CONSOLE,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_lookup() {
        assert!(table::FILES.windows(2).all(|w| w[0].0 < w[1].0));
        for (p, bytes) in table::FILES {
            assert_eq!(file(p), Some(*bytes));
        }
        assert_eq!(file("../Cargo.toml"), None);
    }

    #[test]
    fn types_follow_extensions() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("vendor/x.woff2"), "font/woff2");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(
            content_type("vendor/venn.js/LICENSE"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type("vendor/venn.js/venn.esm.js"),
            "text/javascript; charset=utf-8"
        );
    }
}
