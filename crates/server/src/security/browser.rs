//! What web pages may do to a server without tokens.
//!
//! Without tokens the server trusts whoever can reach its port, and a
//! browser reaches loopback on behalf of any page it shows. Two rules keep
//! pages out, both only when tokens are off (a page cannot attach a bearer
//! token it does not have, so with tokens they would add nothing):
//!
//! - **Host names** (DNS rebinding): a page on `evil.example` that points
//!   its name at 127.0.0.1 becomes same-origin with the server and may read
//!   everything. What gives it away is the name: its requests say
//!   `Host: evil.example`. A loopback listener therefore answers only for
//!   loopback names (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`, any
//!   port) and the `--allowed-host` names (`*` for any); anything else gets
//!   403. A request without a `Host` (HTTP/1.0, or HTTP/2 without
//!   `:authority`) comes from no browser and passes.
//! - **Cross-site writes**: a page may send a form, multipart or
//!   `text/plain` POST to any origin without asking first, and the browser
//!   delivers it even though the page cannot read the answer. A request for
//!   a write route (`Access::Write`, as the protocols declare them) with an
//!   `Origin` that is neither this server's own (its `Host`) nor a
//!   `--cors-origin` (or `Origin: null`), or without an `Origin` but with
//!   `Sec-Fetch-Site: cross-site`, is refused with 403. Clients that are not
//!   browsers (curl, `logtap push`, gRPC) send neither header and pass. The
//!   push route also wants a JSON content type (`http_api/push.rs`).
//!
//! The layer sits outside CORS, so a rebinding page's preflight is refused
//! too; a preflight itself (OPTIONS) is on no write route and passes on to
//! CORS.

use crate::error::BrowserRefused;
use crate::security::access::{Access, Routes};
use crate::security::cors::Origins;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::HeaderMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The fetch metadata header that says where a request comes from.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// The two rules, as configured; shared by every connection.
#[derive(Debug, Clone)]
pub struct BrowserGuard {
    /// What each declared route needs: the write routes are the ones
    /// cross-site requests are refused on.
    routes: Arc<Routes>,
    /// Check `Host` names (a loopback listener).
    check_host: bool,
    /// `--allowed-host` names, lower case, without a trailing dot; `None`
    /// when `*` allows any.
    allowed_hosts: Option<Arc<Vec<String>>>,
    /// The `--cors-origin` origins, in the browser's form.
    cors_origins: Option<Origins>,
}

impl BrowserGuard {
    /// The guard for a server without tokens: `loopback` when it listens on
    /// loopback only (the `Host` rule applies), `allowed_hosts` from
    /// `--allowed-host`, `cors_origins` as `cors::parse_origins` made them.
    pub fn new(
        routes: Routes,
        loopback: bool,
        allowed_hosts: &[String],
        cors_origins: Option<Origins>,
    ) -> BrowserGuard {
        let any = allowed_hosts.iter().any(|host| host.trim() == "*");
        let names = allowed_hosts
            .iter()
            .map(|host| normalize_host(host.trim()))
            .collect();
        BrowserGuard {
            routes: Arc::new(routes),
            check_host: loopback,
            allowed_hosts: (!any).then(|| Arc::new(names)),
            cors_origins,
        }
    }

    /// Whether a request for `authority` (`host[:port]`) is for this server.
    fn host_allowed(&self, authority: &str) -> bool {
        if !self.check_host {
            return true;
        }
        let Some(allowed) = &self.allowed_hosts else {
            return true;
        };
        let host = normalize_host(strip_port(authority));
        is_loopback_name(&host) || allowed.contains(&host)
    }

    /// Whether a write with this `Origin` may pass: the server's own origin
    /// (same `Host`) or a CORS origin.
    fn origin_allowed(&self, origin: &str, authority: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let Some((scheme, rest)) = origin.split_once("://") else {
            // `null` (sandboxed frames, file: pages) and anything odd.
            return false;
        };
        match &self.cors_origins {
            Some(Origins::Any) => return true,
            Some(Origins::List(list)) if list.contains(&origin) => return true,
            _ => {}
        }
        let default_port = match scheme {
            "http" => ":80",
            "https" => ":443",
            _ => return false,
        };
        let own = rest.strip_suffix(default_port).unwrap_or(rest);
        authority.is_some_and(|authority| {
            let authority = authority.trim().to_ascii_lowercase();
            let authority = authority
                .strip_suffix(":80")
                .or_else(|| authority.strip_suffix(":443"))
                .unwrap_or(&authority);
            authority == own
        })
    }

    /// The refusal for `request`, if any.
    fn check(&self, request: &Request) -> Option<BrowserRefused> {
        let headers = request.headers();
        let authority = authority(request);
        if let Some(authority) = &authority {
            if !self.host_allowed(authority) {
                return Some(BrowserRefused::host(authority));
            }
        }
        let route = self.routes.lookup(request.method(), request.uri().path());
        if !route.is_some_and(|route| route.access == Access::Write) {
            return None;
        }
        match headers.get(ORIGIN) {
            Some(origin) => {
                let origin = String::from_utf8_lossy(origin.as_bytes());
                (!self.origin_allowed(&origin, authority.as_deref()))
                    .then(|| BrowserRefused::cross_site(&origin))
            }
            None => headers
                .get(SEC_FETCH_SITE)
                .filter(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
                .map(|_| BrowserRefused::cross_site("another site (Sec-Fetch-Site: cross-site)")),
        }
    }
}

/// The name a request is for: HTTP/2's `:authority` (in the URI), else
/// HTTP/1.1's `Host`. `None` when it names none.
fn authority(request: &Request) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_string());
    }
    request
        .headers()
        .get(HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
}

/// `host` without its port: `[::1]:80` → `[::1]`, `a:80` → `a`.
fn strip_port(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// A host name as compared: lower case, no trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    host.strip_suffix('.').map(str::to_string).unwrap_or(host)
}

/// `localhost`, a name under `.localhost` (browsers resolve both to
/// loopback themselves, RFC 6761), or a loopback address literal.
fn is_loopback_name(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    literal
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `router` behind the guard; unchanged when there is none (tokens on).
pub fn protect(router: Router, guard: Option<BrowserGuard>) -> Router {
    match guard {
        Some(guard) => router.layer(axum::middleware::from_fn_with_state(guard, check)),
        None => router,
    }
}

/// The middleware.
async fn check(State(guard): State<BrowserGuard>, request: Request, next: Next) -> Response {
    match guard.check(&request) {
        None => next.run(request).await,
        Some(refusal) => {
            tracing::debug!(
                path = request.uri().path(),
                reason = %refusal,
                "A request from a browser was refused."
            );
            refusal.to_response(is_grpc(request.headers()))
        }
    }
}

/// Whether the request speaks gRPC or gRPC-Web (still untranslated here,
/// outside tonic-web's layer).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allowed: &[&str], cors: Option<Origins>) -> BrowserGuard {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        BrowserGuard::new(Routes::default(), true, &allowed, cors)
    }

    #[test]
    fn loopback_names_and_allowed_hosts() {
        let any = guard(&["*"], None);
        let guard = guard(&["Logs.Internal."], None);
        for ok in [
            "localhost",
            "LOCALHOST:50051",
            "app.localhost:1",
            "127.0.0.1",
            "127.8.9.1:80",
            "[::1]:50051",
            "[::1]",
            "logs.internal:443",
            "logs.internal.",
        ] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:50051",
            "localhost.evil.example",
            "192.168.1.5",
            "[::2]",
            "",
        ] {
            assert!(!guard.host_allowed(bad), "{bad}");
        }
        assert!(any.host_allowed("evil.example"));
    }

    #[test]
    fn origins_that_may_write() {
        let guard = guard(&[], Some(Origins::List(vec!["https://app.example".into()])));
        assert!(guard.origin_allowed("http://localhost:50051", Some("localhost:50051")));
        assert!(guard.origin_allowed("http://127.0.0.1", Some("127.0.0.1:80")));
        assert!(guard.origin_allowed("https://app.example", Some("localhost:50051")));
        assert!(!guard.origin_allowed("https://evil.example", Some("localhost:50051")));
        assert!(!guard.origin_allowed("http://localhost:3000", Some("localhost:50051")));
        assert!(!guard.origin_allowed("null", Some("localhost:50051")));
        assert!(!guard.origin_allowed("http://localhost:50051", None));
    }
}
