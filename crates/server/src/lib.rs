//! logtap's server: every answer is a stream.
//!
//! One TCP port carries gRPC (HTTP/2), gRPC-Web (HTTP/1.1 or HTTP/2) and
//! plain HTTP/1.1. The gRPC side serves logtap's own API (`logtap.v1`) and
//! the seed's contract (`example`) from the same core: a [`tail`] stream that
//! reads the store step by step and hands each match to the transport as
//! soon as it is found, so nothing is ever collected before it is sent.
//!
//! The layout follows tokio's mini-redis: one file per concept.
//!
//! - [`config`]: what the command line can change.
//! - [`error`]: every error, and the one place that maps them to gRPC codes
//!   and HTTP statuses.
//! - [`query`]: turns a request into store read options and a predicate.
//! - [`tail`]: the per-request entry stream, transport-neutral.
//! - [`ingest`]: appending from async code.
//! - [`live`]: wakes following streams when the store commits.
//! - [`idle`]: ends responses whose client accepts nothing for too long.
//! - [`metadata`]: header and trailer names, request ids, the CRC.
//! - [`metrics`]: the Prometheus registry.
//! - [`state`]: what every request handler shares.
//! - [`grpc`], [`seed`]: the two gRPC services.
//! - [`http`]: plain HTTP routes (`/metrics`, `/healthz`).
//! - [`fallback`]: the HTTP fallbacks (`/api/v1/logs` NDJSON, `/api/v1/poll`,
//!   `/api/v1/sse`, `POST /api/v1/push`) over the same query core.
//! - [`viewer`]: the browser viewer at `/`, embedded in the binary.
//! - [`server`]: binding, the accept loop, shutdown.
//! - [`threads`]: the threads connections are served on, one each.
//! - [`coalesce`]: gathers a connection's small writes into fewer syscalls.
//! - [`auth`], [`tls`], [`cors`]: bearer tokens and scopes, TLS, and which
//!   browser origins may call.

pub mod auth;
pub mod coalesce;
pub mod config;
pub mod cors;
pub mod error;
pub mod fallback;
pub mod grpc;
pub mod grpc_body;
pub mod http;
pub mod idle;
pub mod ingest;
pub mod live;
pub mod memory;
pub mod metadata;
pub mod method;
pub mod metrics;
pub mod query;
pub mod seed;
pub mod server;
pub mod state;
pub mod stream_table;
pub mod tail;
pub mod threads;
pub mod tls;
pub mod viewer;
pub mod wire;

pub use config::ServerConfig;
pub use error::{ServeError, ServerError};
pub use server::Server;
pub use state::Shared;
