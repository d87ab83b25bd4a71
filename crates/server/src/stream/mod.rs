//! The per-request entry stream, transport-neutral: [`tail`] reads the
//! store a budgeted step at a time and ends with a summary for the
//! trailers, [`live`] wakes followers when the store commits, and
//! [`metadata`] names the headers and trailers every transport sends.
//!
//! Nothing here knows a wire format: a transport hands the stream an
//! encoder and turns its items into frames.

pub(crate) mod live;
pub(crate) mod metadata;
pub(crate) mod tail;
