//! What each route needs: every protocol declares its routes in a table of
//! [`Route`]s (path or path prefix, methods, [`Access`]), `protocols/mod.rs`
//! assembles the tables into [`Routes`], and the token check looks each
//! request up there. A request that matches no declared route is refused
//! (see `auth.rs`), so a route mounted without a declaration cannot be
//! reached with tokens on: the default is closed, whatever the method.

use http::Method;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone may ask.
    Open,
    /// A token with scope `read`.
    Read,
    /// A token with scope `write`.
    Write,
}

/// Which HTTP methods a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    /// GET, and HEAD, which axum answers on every GET route.
    Get,
    /// POST only.
    Post,
    /// GET, HEAD or POST (Loki's query routes take their parameters in a
    /// query string or a form body).
    GetPost,
    /// POST or PUT (Elasticsearch's bulk API takes both, and clients use
    /// both).
    PostPut,
    /// Any method (gRPC is always POST; health and the viewer have always
    /// been open whatever the method, the router answering 405).
    Any,
}

impl Methods {
    /// Whether `method` is one of these.
    fn allow(self, method: &Method) -> bool {
        match self {
            Methods::Get => method == Method::GET || method == Method::HEAD,
            Methods::Post => method == Method::POST,
            Methods::GetPost => {
                method == Method::GET || method == Method::HEAD || method == Method::POST
            }
            Methods::PostPut => method == Method::POST || method == Method::PUT,
            Methods::Any => true,
        }
    }
}

/// One declared route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path, or with `prefix` the start of every path it covers
    /// (ending in `/`). In a path that is not a prefix, a segment written
    /// `{name}` (as axum writes a capture) stands for any one non-empty
    /// segment: `/{index}/_bulk`.
    pub path: &'static str,
    /// Whether `path` is a prefix.
    pub prefix: bool,
    /// The methods it answers.
    pub methods: Methods,
    /// What a request needs.
    pub access: Access,
    /// Whether the token may also come as `?access_token=` (for browsers'
    /// `EventSource`, which cannot set headers); URLs end up in logs, so
    /// only where nothing else works.
    pub query_token: bool,
}

impl Route {
    /// A route on exactly `path`.
    pub const fn exact(path: &'static str, methods: Methods, access: Access) -> Route {
        Route {
            path,
            prefix: false,
            methods,
            access,
            query_token: false,
        }
    }

    /// A route on every path starting with `prefix`.
    pub const fn prefix(prefix: &'static str, methods: Methods, access: Access) -> Route {
        Route {
            path: prefix,
            prefix: true,
            methods,
            access,
            query_token: false,
        }
    }

    /// The same route, taking its token from the query string too.
    pub const fn with_query_token(self) -> Route {
        Route {
            query_token: true,
            ..self
        }
    }

    /// Whether a request for `path` with `method` is on this route.
    fn covers(&self, method: &Method, path: &str) -> bool {
        self.methods.allow(method)
            && if self.prefix {
                path.starts_with(self.path)
            } else if self.has_capture() {
                let mut wanted = self.path.split('/');
                let mut given = path.split('/');
                loop {
                    match (wanted.next(), given.next()) {
                        (None, None) => break true,
                        (Some(wanted), Some(given))
                            if wanted == given || (is_capture(wanted) && !given.is_empty()) => {}
                        _ => break false,
                    }
                }
            } else {
                path == self.path
            }
    }

    /// Whether the path has a `{name}` segment.
    fn has_capture(&self) -> bool {
        !self.prefix && self.path.split('/').any(is_capture)
    }
}

/// Whether a path segment is a `{name}` capture.
fn is_capture(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// Every declared route of the server.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// In no particular order: a lookup takes the most specific match.
    routes: Vec<Route>,
}

impl Routes {
    /// Adds a protocol's table.
    pub fn extend(&mut self, table: impl IntoIterator<Item = Route>) {
        self.routes.extend(table);
    }

    /// The route a request is on: an exact path before one with a capture,
    /// either before any prefix, a longer prefix before a shorter one (as
    /// the router prefers them). `None` when no route declares it.
    pub fn lookup(&self, method: &Method, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|route| route.covers(method, path))
            .max_by_key(|route| (!route.prefix, !route.has_capture(), route.path.len()))
    }

    /// Every declared route.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_match_one_segment_and_exact_paths_come_first() {
        let mut routes = Routes::default();
        routes.extend([
            Route::exact("/{index}/_bulk", Methods::PostPut, Access::Write),
            Route::exact("/logs/_bulk", Methods::Get, Access::Open),
            Route::prefix("/assets/", Methods::Any, Access::Open),
        ]);
        let need = |method: &Method, path: &str| routes.lookup(method, path).map(|r| r.access);
        assert_eq!(need(&Method::POST, "/web/_bulk"), Some(Access::Write));
        assert_eq!(need(&Method::PUT, "/web/_bulk"), Some(Access::Write));
        assert_eq!(need(&Method::GET, "/web/_bulk"), None);
        assert_eq!(need(&Method::GET, "/logs/_bulk"), Some(Access::Open));
        assert_eq!(need(&Method::POST, "/assets/_bulk"), Some(Access::Write));
        for other in [
            "//_bulk",
            "/a/b/_bulk",
            "/_bulk",
            "/web/_bulk/",
            "/web/_bulkx",
        ] {
            assert_eq!(need(&Method::POST, other), None, "{other}");
        }
    }
}
