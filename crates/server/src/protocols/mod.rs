//! One folder per wire protocol: logtap.v1 ([`logtap`]), the seed's
//! `example.LogService` ([`seed`]), the plain HTTP API ([`http_api`]) and
//! Grafana Loki's push API ([`loki`]), OTLP logs ([`otlp`]), Elasticsearch's
//! bulk API ([`elasticsearch`]), journald's upload ([`journald`]), and
//! syslog over UDP and TCP ([`syslog`], its own listeners, not HTTP routes).
//!
//! Only `protocols/*` knows a wire format: a protocol turns its requests into
//! a `Query` or a batch of entries and its answers out of a `TailStream`,
//! using `grpc/`, `stream/` and `ingest/`, never another protocol. Adding a
//! protocol is one folder here and one line in the lists below; each
//! protocol declares its routes and what they need in a `ROUTES` table,
//! assembled in [`access`], and a route not declared there is refused.

pub(crate) mod elasticsearch;
pub(crate) mod http_api;
pub(crate) mod journald;
pub(crate) mod logtap;
pub(crate) mod loki;
pub(crate) mod otlp;
pub(crate) mod seed;
pub(crate) mod syslog;

use crate::config::ServerConfig;
use crate::grpc::method::Limits;
use crate::security::access::{Access, Methods, Route, Routes};
use crate::stream::state::Shared;
use axum::Router;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The gRPC services served here, by full name, for health checks.
pub(crate) const GRPC_SERVICES: [&str; 3] = [
    logtap::SERVICE_NAME,
    seed::SERVICE_NAME,
    otlp::grpc::SERVICE_NAME,
];

/// The gRPC services: logtap.v1, the seed's example service, health and
/// reflection. Returns the routes and the health reporter, which shutdown
/// uses to say NOT_SERVING.
pub(crate) async fn grpc_routes(
    shared: &Shared,
    config: &ServerConfig,
) -> (Router, HealthReporter) {
    let limits = Limits {
        decoding: config.max_message_bytes,
        encoding: config.max_encoded_message_bytes(),
    };
    let mut router = logtap::routes(Router::new(), shared, limits);
    router = seed::routes(router, shared, limits);
    router = otlp::grpc::routes(router, shared, limits);
    let (router, health) = crate::grpc::health_and_reflection(router);
    for name in GRPC_SERVICES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    (crate::grpc::remap_message_too_large(router, shared), health)
}

/// The plain HTTP routes of every protocol.
pub(crate) fn http_routes(shared: &Shared, config: &ServerConfig) -> Router {
    http_api::routes(shared.clone(), config)
        .merge(loki::routes(shared.clone(), config))
        .merge(otlp::routes(shared.clone(), config))
        .merge(journald::routes(shared.clone(), config))
        .merge(elasticsearch::routes(shared.clone(), config))
}

/// What every route needs: each protocol's table, gRPC health and
/// reflection, and ops' routes, declared here because ops sits below the
/// access types in the layers.
pub(crate) fn access(config: &ServerConfig) -> Routes {
    let metrics = if config.metrics_public {
        Access::Open
    } else {
        Access::Read
    };
    let mut routes = Routes::default();
    routes.extend(logtap::ROUTES);
    routes.extend(seed::ROUTES);
    routes.extend(http_api::ROUTES);
    routes.extend(loki::ROUTES);
    routes.extend(otlp::ROUTES);
    routes.extend(otlp::grpc::ROUTES);
    routes.extend(journald::ROUTES);
    routes.extend(elasticsearch::ROUTES);
    routes.extend(crate::grpc::ROUTES);
    routes.extend([
        Route::exact("/healthz", Methods::Any, Access::Open),
        Route::exact("/metrics", Methods::Any, metrics),
        // The viewer's page and assets hold no data; its API calls carry
        // the token.
        Route::exact("/", Methods::Any, Access::Open),
        Route::exact("/index.html", Methods::Any, Access::Open),
        Route::exact("/favicon.ico", Methods::Any, Access::Open),
        Route::prefix("/assets/", Methods::Any, Access::Open),
    ]);
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use std::path::Path;

    /// The string literal at the start of `text`, if it starts with one.
    fn literal(text: &str) -> Option<&str> {
        let text = text.strip_prefix('"')?;
        Some(&text[..text.find('"')?])
    }

    /// The request a mounted route would see: for `{*rest}` a path under
    /// it, for the gRPC services a POST.
    fn probe(path: &str) -> String {
        match path.find("{*") {
            Some(at) => format!("{}any/thing", &path[..at]),
            None => path.to_string(),
        }
    }

    /// Every route mounted under `src/`, as (method, path to ask for):
    /// each axum `.route("path", get(..))`, each gRPC method a
    /// `ServiceRoutes` mounts (`.method("Name", ..)` with the file's
    /// `SERVICE_NAME`) and the rest of its service, and the services
    /// `grpc::route` mounts (health, reflection), by name.
    fn mounted() -> Vec<(Method, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        for file in crate::layout_tests::rust_files(&src) {
            let source = std::fs::read_to_string(&file).expect("read a source file");
            // Unit tests mount what they test on routers of their own.
            let source = source.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = source
                .lines()
                .map(|line| line.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for (at, _) in code.match_indices(".route(") {
                // rustfmt puts a long call's arguments on lines of their own.
                let rest = code[at + ".route(".len()..].trim_start();
                let path = literal(rest).unwrap_or_else(|| {
                    panic!("{}: a route whose path is not a literal", file.display())
                });
                let after = rest[path.len() + 2..].trim_start_matches([',', ' ', '\n']);
                let method = match after.split('(').next().unwrap_or("") {
                    "get" => Method::GET,
                    "post" => Method::POST,
                    // `any` answers every method; GET stands for them.
                    "any" => Method::GET,
                    other => panic!("{}: a route for {other:?}", file.display()),
                };
                found.push((method, probe(path)));
            }
            if code.contains("ServiceRoutes::new(") {
                let service = code
                    .split("SERVICE_NAME: &str = ")
                    .nth(1)
                    .and_then(literal)
                    .unwrap_or_else(|| panic!("{}: no SERVICE_NAME", file.display()));
                for (at, _) in code.match_indices(".method(") {
                    let name = literal(&code[at + ".method(".len()..])
                        .unwrap_or_else(|| panic!("{}: a method name", file.display()));
                    found.push((Method::POST, format!("/{service}/{name}")));
                }
                found.push((Method::POST, probe(&format!("/{service}/{{*rest}}"))));
            }
            let relative = file.strip_prefix(&src).expect("under src");
            if code.contains(".route_service(") {
                assert!(
                    relative.starts_with("grpc"),
                    "{}: route_service outside grpc/, whose mounts this test reads",
                    relative.display()
                );
            }
        }
        let (_, _, names) = crate::grpc::health_and_reflection_named(Router::new());
        for name in names {
            found.push((Method::POST, format!("/{name}/Check")));
        }
        found
    }

    #[test]
    fn every_mounted_route_declares_its_access() {
        let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "unused");
        let routes = access(&config);
        let mounted = mounted();
        // The count keeps the reader honest: were it to find nothing, the
        // test would pass whatever was mounted.
        assert!(mounted.len() >= 15, "found only {mounted:?}");
        for (method, path) in &mounted {
            assert!(
                routes.lookup(method, path).is_some(),
                "{method} {path} is mounted but declares no access: add it to its protocol's ROUTES"
            );
        }
    }

    #[test]
    fn what_each_request_needs() {
        let routes = access(&ServerConfig::new("127.0.0.1:0".parse().unwrap(), "unused"));
        let need = |method: &Method, path: &str| routes.lookup(method, path).map(|r| r.access);
        let get = Method::GET;
        let post = Method::POST;
        for open in [
            "/healthz",
            "/",
            "/index.html",
            "/assets/app-1234.js",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(need(&get, open), Some(Access::Open), "{open}");
        }
        assert_eq!(need(&get, "/metrics"), Some(Access::Read));
        let mut public = ServerConfig::new("127.0.0.1:0".parse().unwrap(), "unused");
        public.metrics_public = true;
        assert_eq!(
            access(&public).lookup(&get, "/metrics").map(|r| r.access),
            Some(Access::Open)
        );
        for read in [
            "/logtap.v1.LogService/GetLogs",
            "/logtap.v1.LogService/StreamLogs",
            "/example.LogService/GetLogs",
            "/logtap.v1.LogService/QueryMetrics",
        ] {
            assert_eq!(need(&post, read), Some(Access::Read), "{read}");
        }
        for read in ["/api/v1/logs", "/api/v1/sse", "/api/v1/poll"] {
            assert_eq!(need(&get, read), Some(Access::Read), "{read}");
            assert_eq!(need(&Method::HEAD, read), Some(Access::Read), "{read}");
            // Not a route: refused like an unknown path.
            assert_eq!(need(&post, read), None, "{read}");
        }
        for write in [
            "/logtap.v1.LogService/Push",
            "/logtap.v1.LogService/Delete",
            "/example.LogService/Anything",
        ] {
            assert_eq!(need(&post, write), Some(Access::Write), "{write}");
        }
        assert_eq!(need(&post, "/api/v1/push"), Some(Access::Write));
        assert_eq!(need(&post, "/loki/api/v1/push"), Some(Access::Write));
        assert_eq!(need(&get, "/ready"), Some(Access::Open));
        // Grafana's Loki data source reads; the query routes take a POST
        // form too.
        for read in [
            "/loki/api/v1/query",
            "/loki/api/v1/query_range",
            "/loki/api/v1/labels",
            "/loki/api/v1/label/service/values",
            "/loki/api/v1/series",
            "/loki/api/v1/index/stats",
        ] {
            assert_eq!(need(&get, read), Some(Access::Read), "{read}");
            assert_eq!(need(&post, read), Some(Access::Read), "{read}");
        }
        for read in ["/loki/api/v1/tail", "/loki/api/v1/status/buildinfo"] {
            assert_eq!(need(&get, read), Some(Access::Read), "{read}");
            assert_eq!(need(&post, read), None, "{read}");
        }
        // What Grafana falls back from is no route: Loki's 404.
        for unknown in [
            "/loki/api/v1/detected_fields",
            "/loki/api/v1/patterns",
            "/loki/api/v2alpha/tail",
        ] {
            assert_eq!(need(&get, unknown), None, "{unknown}");
        }
        assert_eq!(need(&post, "/v1/logs"), Some(Access::Write));
        assert_eq!(need(&post, "/otlp/v1/logs"), Some(Access::Write));
        assert_eq!(need(&post, "/upload"), Some(Access::Write));
        // Not a route: refused like an unknown path.
        assert_eq!(need(&get, "/upload"), None);
        assert_eq!(need(&post, "/upload/more"), None);
        assert_eq!(
            need(
                &post,
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
            ),
            Some(Access::Write)
        );
        let put = Method::PUT;
        for bulk in ["/_bulk", "/logs/_bulk", "/filebeat-9.0.0/_bulk"] {
            assert_eq!(need(&post, bulk), Some(Access::Write), "{bulk}");
            assert_eq!(need(&put, bulk), Some(Access::Write), "{bulk}");
            assert_eq!(need(&get, bulk), None, "{bulk}");
        }
        for probe in [
            "/_license",
            "/_xpack",
            "/_cluster/health",
            "/_index_template/filebeat-9.0.0",
            "/_ilm/policy/filebeat",
            "/_cat/templates/x",
        ] {
            assert_eq!(need(&get, probe), Some(Access::Write), "{probe}");
        }
        assert_eq!(need(&put, "/_index_template/filebeat"), Some(Access::Write));
        assert_eq!(need(&Method::HEAD, "/_template/x"), Some(Access::Write));
        // `/` stays the viewer's, open (its Elasticsearch answer holds no data).
        assert_eq!(need(&Method::HEAD, "/"), Some(Access::Open));
        for unknown in ["/a/b/_bulk", "//_bulk", "/_bulkx", "/_search"] {
            assert_eq!(need(&post, unknown), None, "{unknown}");
        }
        for unknown in [
            "/nowhere",
            "/healthz/",
            "/api/v1/nothing-here",
            "/api/v2/push",
        ] {
            assert_eq!(need(&get, unknown), None, "{unknown}");
            assert_eq!(need(&post, unknown), None, "{unknown}");
        }
        let query_token = |method: &Method, path: &str| {
            routes.lookup(method, path).is_some_and(|r| r.query_token)
        };
        assert!(query_token(&get, "/api/v1/sse"));
        assert!(query_token(&get, "/api/v1/poll"));
        assert!(!query_token(&get, "/api/v1/logs"));
        assert!(!query_token(&post, "/api/v1/poll"));
        assert!(!query_token(&get, "/metrics"));
    }
}
