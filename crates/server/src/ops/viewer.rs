//! The browser viewer: `GET /` serves `ui/dist/index.html` and
//! `GET /assets/...` the files beside it, all embedded in the binary at
//! build time (rust-embed, with `debug-embed` so debug builds embed too and
//! no request ever reads the file system).
//!
//! Only names that exist in the embedded set are served: a request path is
//! looked up in a table, never joined to a directory, and paths with `..`,
//! `\`, empty or hidden segments are refused before the lookup anyway, so
//! `/../Cargo.toml` or `/assets/..%2f..%2fCargo.toml` get 404.
//!
//! The built file names carry no content hash (`assets/app.js`), so every
//! answer says `Cache-Control: no-cache` with an `ETag` (the file's
//! SHA-256): browsers revalidate each load and get a cheap 304 while the
//! binary is the same, and never run a stale viewer after an upgrade.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::fmt::Write;

/// The built viewer. The folder is relative to this crate's manifest.
#[derive(rust_embed::Embed)]
#[folder = "../../ui/dist/"]
#[allow_missing = true]
struct Dist;

/// What `/` says when the binary was built without the viewer.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>logtap</title>\
<p>This logtap binary was built without its viewer: run <code>npm ci &amp;&amp; npm run build</code> \
in <code>ui/</code>, then rebuild. The APIs (gRPC, <code>/api/v1/logs</code>, \
<code>/api/v1/sse</code>, <code>/api/v1/poll</code>) work without it.</p>\n";

/// `/`, `/index.html` and `/assets/*`.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(asset))
}

/// The viewer's page.
async fn index(headers: HeaderMap) -> Response {
    match serve("index.html", &headers) {
        Some(response) => response,
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NOT_BUILT,
        )
            .into_response(),
    }
}

/// A built asset, by the request's path as written (not percent-decoded:
/// the built names need no escaping, so an escaped name is not one of
/// them).
async fn asset(request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    let found = is_safe(path)
        .then(|| serve(path, request.headers()))
        .flatten();
    found.unwrap_or_else(|| (StatusCode::NOT_FOUND, "not found").into_response())
}

/// Whether `path` (relative, `assets/app.js`) is a plain name: segments of
/// letters, digits, `-`, `_` and `.`, none empty, none starting with a dot.
fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// The embedded file at `path`, or a 304 when the client's copy is current.
fn serve(path: &str, request_headers: &HeaderMap) -> Option<Response> {
    let file = Dist::get(path)?;
    let mut etag = String::with_capacity(34);
    etag.push('"');
    for byte in &file.metadata.sha256_hash()[..16] {
        // Writing to a String cannot fail.
        let _ = write!(etag, "{byte:02x}");
    }
    etag.push('"');
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if matches_etag(request_headers, &etag) {
        return Some((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    if let Ok(value) = HeaderValue::from_str(&content_type(file.metadata.mimetype())) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    Some((headers, file.data.into_owned()).into_response())
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// The content type for a guessed MIME type: text types say UTF-8, which
/// is what the build writes.
fn content_type(mime: &str) -> String {
    let textual = mime.starts_with("text/")
        || mime == "application/javascript"
        || mime == "application/json"
        || mime == "image/svg+xml";
    if textual && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_looked_up() {
        assert!(is_safe("assets/app.js"));
        assert!(is_safe("index.html"));
        for path in [
            "",
            "../Cargo.toml",
            "assets/../../Cargo.toml",
            "assets/..%2f..%2fCargo.toml",
            "assets//app.js",
            "assets/.hidden",
            "assets\\..\\x",
            "/etc/passwd",
        ] {
            assert!(!is_safe(path), "{path:?}");
        }
    }

    #[test]
    fn text_types_say_utf8() {
        assert_eq!(content_type("text/css"), "text/css; charset=utf-8");
        assert_eq!(content_type("image/png"), "image/png");
    }
}
