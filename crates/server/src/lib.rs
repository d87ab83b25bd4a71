//! logtap's server: every answer is a stream.
//!
//! One TCP port carries gRPC (HTTP/2), gRPC-Web (HTTP/1.1 or HTTP/2) and
//! plain HTTP/1.1. Every protocol reads through the same transport-neutral
//! stream, which reads the store step by step and hands each match to the
//! transport as soon as it is found, so nothing is ever collected before it
//! is sent.
//!
//! The folders follow the data flow; dependencies point down this list,
//! never up (`tests/layout.rs` fails on a circle):
//!
//! - `server`: the composition root: binding, router assembly, the accept
//!   loop, ordered shutdown.
//! - `protocols`: one folder per wire protocol (logtap.v1, the seed's
//!   `example.LogService`, the HTTP API); the only code that knows a wire
//!   format.
//! - `grpc`: what every gRPC protocol shares: hand-wired methods, the
//!   streaming body, pre-encoded responses, health and reflection.
//! - `security`: what each route needs (declared by the protocols), bearer
//!   tokens and scopes, CORS.
//! - `ingest`: appending from async code.
//! - `stream`: the per-request entry stream, live wake-ups, header and
//!   trailer names, and `Shared`, the handles every request holds (with the
//!   stream, because the stream runs on them and they hold its commit
//!   watch).
//! - [`config`]: what the command line can change.
//! - `net`: connections: threads, write coalescing, the idle watchdog, the
//!   stream table, memory trim, TLS.
//! - `ops`: metrics, `/metrics` and `/healthz`, the embedded viewer.
//! - `error`: every error, and the one place errors become gRPC codes and
//!   HTTP statuses.
#![deny(missing_docs)]

pub mod config;
pub(crate) mod error;
pub(crate) mod grpc;
pub(crate) mod ingest;
pub(crate) mod net;
pub(crate) mod ops;
pub(crate) mod protocols;
pub(crate) mod security;
pub(crate) mod server;
pub(crate) mod stream;

/// The layers of the modules above, checked on the source text: no circle
/// between top-level modules.
#[cfg(test)]
mod layout_tests;

pub use config::ServerConfig;
pub use error::{ServeError, ServerError};
pub use net::tls::TlsFiles;
pub use protocols::syslog::SyslogAddrs;
pub use server::{LiveSettings, Server};

/// TLS settings, at the path the binary and the tests name them by.
pub mod tls {
    pub use crate::net::tls::TlsFiles;
}

/// Internals that tests under `tests/` need and that cannot move next to
/// the code: the HTTP parameter parser under the shared fuzz runner, the
/// stream table's timings (a real client must wait them out), and the
/// malloc-cache helper, whose test needs a process of its own. Not a
/// supported API: paths here follow the code.
#[doc(hidden)]
pub mod testing {
    pub use crate::net::memory::CachedChunks;
    pub use crate::net::stream_table::{IDLE_FOR, LARGE};
    pub use crate::protocols::http_api::{parse_params, Endpoint};
}
