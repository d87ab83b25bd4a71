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
            Methods::Any => true,
        }
    }
}

/// One declared route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path, or with `prefix` the start of every path it covers
    /// (ending in `/`).
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
            } else {
                path == self.path
            }
    }
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

    /// The route a request is on: an exact path before any prefix, a longer
    /// prefix before a shorter one. `None` when no route declares it.
    pub fn lookup(&self, method: &Method, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|route| route.covers(method, path))
            .max_by_key(|route| (!route.prefix, route.path.len()))
    }

    /// Every declared route.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}
