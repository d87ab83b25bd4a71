//! Generated code for logtap's gRPC API (`logtap.v1`) and for the seed's
//! contract (`example`), which logtap serves unchanged on the same port.
//!
//! The generated items carry the `.proto` files' comments as their docs;
//! fields the `.proto` leaves undocumented would trip `missing_docs`, so
//! the lint is allowed inside the generated modules only.

#![deny(missing_docs)]

/// logtap's own API: filters, cursors, labels, push.
#[allow(missing_docs)]
pub mod v1 {
    tonic::include_proto!("logtap.v1");
}

/// The seed's contract (`example.LogService`), kept byte-for-byte.
#[allow(missing_docs)]
pub mod example {
    tonic::include_proto!("example");
}

/// The encoded `FileDescriptorSet` of both packages, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
