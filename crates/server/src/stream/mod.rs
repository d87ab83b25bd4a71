//! The per-request entry stream, transport-neutral: [`tail`] reads the
//! store a budgeted step at a time and ends with a summary for the
//! trailers, [`live`] wakes followers when the store commits, and
//! [`metadata`] names the headers and trailers every transport sends and
//! the summary they report. [`matching`] runs costly text matching
//! (regular expressions) off the connection threads. [`state`] holds `Shared`, the handles every
//! request runs on; it lives here because it holds the commit watch and the
//! stream reads through it, so a folder of its own would import this one
//! and be imported by it.
//!
//! Nothing here knows a wire format: a transport hands the stream an
//! encoder and turns its items into frames.

pub(crate) mod live;
pub(crate) mod matching;
pub(crate) mod metadata;
pub(crate) mod metric;
pub(crate) mod state;
pub(crate) mod tail;

/// The tap, not the bucket: a stream hands each match over before it scans
/// on. Next to the code, since it drives a `TailStream` without a transport.
#[cfg(test)]
mod tap_tests;
