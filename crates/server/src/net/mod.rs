//! Connections: the threads they are served on ([`threads`]), their writes
//! gathered into fewer syscalls ([`coalesce`]), the watchdog for clients
//! that accept nothing ([`idle`]), idle connections with a large stream
//! table sent away ([`stream_table`]), memory given back after a burst
//! ([`memory`]), a deadline on a connection's first bytes ([`sniff`]), the
//! open-file limit ([`descriptors`]), stream slots shared per connection
//! and per client address ([`quota`]), the budget of unfinished request
//! bytes and the stall watch ([`request_body`]), and TLS ([`tls`]).
//!
//! This folder knows sockets and HTTP/2 connections, never a request: what
//! a request means is decided above it.

pub(crate) mod coalesce;
pub(crate) mod descriptors;
pub(crate) mod idle;
pub(crate) mod memory;
pub(crate) mod quota;
pub(crate) mod request_body;
pub(crate) mod sniff;
pub(crate) mod stream_table;
pub(crate) mod threads;
pub(crate) mod tls;
