//! CORS for browsers on other origins (`--cors-origin`, repeatable).
//!
//! Without the option the server sends no CORS headers at all: only the
//! viewer it serves itself (same origin) can call the API from a browser.
//! With it, exactly the listed origins may, over gRPC-Web and the HTTP
//! fallbacks: preflights are answered for them, and responses let their
//! scripts read the gRPC-Web status and logtap's headers and trailers.
//! `*` allows any origin; tokens still apply. Credentials (cookies) are
//! never allowed: logtap authenticates with a bearer header, which needs
//! none, and allowing them would let any allowed origin ride a browser's
//! session.
//!
//! The layer sits outside the token check, so a preflight (which carries
//! no token) is answered, and a 401 still carries CORS headers for the
//! page to read it.

use crate::error::CorsError;
use axum::Router;
use http::{HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers an allowed page may send.
pub const ALLOWED_HEADERS: [&str; 9] = [
    "x-grpc-web",
    "content-type",
    "authorization",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
    "last-event-id",
    "connect-protocol-version",
    "connect-timeout-ms",
];

/// Response headers an allowed page may read: the gRPC-Web status (which
/// gRPC-Web sends as headers on trailers-only answers) and logtap's
/// contract metadata.
pub const EXPOSED_HEADERS: [&str; 10] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
    "logtap-total-count",
    "logtap-sent",
    "logtap-next-cursor",
    "logtap-crc32c",
    "logtap-stored",
    "logtap-last-cursor",
];

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The origins a browser may call from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`).
    Any,
    /// These, in the form browsers send (`https://host[:port]`).
    List(Vec<String>),
}

/// Checks and normalises the configured origins the way browsers write
/// the `Origin` header: lower case, no trailing slash, no default port.
/// `None` when there are none (same origin only).
pub fn parse_origins(origins: &[String]) -> Result<Option<Origins>, CorsError> {
    if origins.is_empty() {
        return Ok(None);
    }
    if origins.iter().any(|origin| origin.trim() == "*") {
        return Ok(Some(Origins::Any));
    }
    let mut list = Vec::new();
    for origin in origins {
        let normalized = normalize(origin)?;
        if !list.contains(&normalized) {
            list.push(normalized);
        }
    }
    Ok(Some(Origins::List(list)))
}

/// One origin in the browser's form.
fn normalize(origin: &str) -> Result<String, CorsError> {
    let error = |reason| CorsError {
        origin: origin.to_string(),
        reason,
    };
    let text = origin.trim().to_ascii_lowercase();
    let text = text.strip_suffix('/').unwrap_or(&text);
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| error("it has no scheme"))?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(error("the scheme must be http or https")),
    };
    if rest.is_empty() {
        return Err(error("it has no host"));
    }
    if rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
        return Err(error(
            "an origin has no path, query, user or spaces, only a host and port",
        ));
    }
    let uri: http::Uri = text.parse().map_err(|_| error("it is not a URL"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(error("it has no host"));
    }
    let rest = rest.strip_suffix(default_port).unwrap_or(rest);
    Ok(format!("{scheme}://{rest}"))
}

/// The CORS layer for `origins`.
pub fn layer(origins: &Origins) -> CorsLayer {
    let allow_origin = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::HEAD])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(PREFLIGHT_MAX_AGE)
}

/// `router` with CORS for `origins`; unchanged for same-origin only.
pub fn apply(router: Router, origins: Option<&Origins>) -> Router {
    match origins {
        Some(origins) => router.layer(layer(origins)),
        None => router,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Result<Option<Origins>, CorsError> {
        parse_origins(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        assert_eq!(origins(&[]).unwrap(), None);
        assert_eq!(
            origins(&[
                "https://Logs.Example.com/",
                "http://localhost:5173",
                "https://a.example:443",
                "http://b.example:80",
                "https://logs.example.com",
            ])
            .unwrap(),
            Some(Origins::List(vec![
                "https://logs.example.com".into(),
                "http://localhost:5173".into(),
                "https://a.example".into(),
                "http://b.example".into(),
            ]))
        );
        assert_eq!(
            origins(&["https://x.example", "*"]).unwrap(),
            Some(Origins::Any)
        );
    }

    #[test]
    fn things_that_are_not_origins_are_refused() {
        for bad in [
            "logs.example.com",
            "ftp://logs.example.com",
            "https://",
            "https://logs.example.com/viewer",
            "https://user@logs.example.com",
            "https://logs.example.com?x=1",
        ] {
            let error = origins(&[bad]).unwrap_err().to_string();
            assert!(error.contains("is not an origin"), "{error}");
            assert!(error.contains(bad), "{error}");
        }
    }
}
