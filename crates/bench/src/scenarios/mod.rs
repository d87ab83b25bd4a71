//! One module per scenario. Each starts the servers it needs, runs a
//! warm-up, then the measured runs, interleaving logtap and the peer (or
//! the variants it compares) inside every run so that the noise of a
//! shared machine hits both alike, and adds its figures to the report.

pub mod cancel_storm;
pub mod cluster;
pub mod fan_out;
pub mod first_error;
pub mod ingest;
pub mod ingest_protocols;
pub mod loki_query_range;
pub mod open;
pub mod query;
pub mod seal;
pub mod search;
pub mod slow_reader;
pub mod storage;
pub mod store_size;
pub mod stream;
pub mod viewer;
