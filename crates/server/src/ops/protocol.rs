//! The protocols entries arrive by, as the `protocol` label of the ingest
//! metrics. Here, in `ops`, since the metrics count them and `ops` is the
//! layer below `ingest`; `ingest` re-exports it for the protocols.

/// The protocols entries arrive by: the `protocol` label of
/// `logtap_ingest_entries_total` and `logtap_ingest_refusals_total`, so an
/// operator sees which shipper sends what, and which one is refused why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// logtap.v1 `Push` (gRPC and gRPC-Web).
    Logtap,
    /// `POST /api/v1/push`, lines of text or JSON.
    Http,
    /// Grafana Loki's push API.
    Loki,
    /// OTLP logs, gRPC and HTTP.
    Otlp,
    /// Syslog over UDP and TCP.
    Syslog,
    /// Elasticsearch's bulk API.
    Elasticsearch,
    /// journald's export format, as `systemd-journal-upload` sends it.
    Journald,
}

impl Protocol {
    /// Every protocol, so each shows in /metrics at 0 before its first entry.
    pub const ALL: [Protocol; 7] = [
        Protocol::Logtap,
        Protocol::Http,
        Protocol::Loki,
        Protocol::Otlp,
        Protocol::Syslog,
        Protocol::Elasticsearch,
        Protocol::Journald,
    ];

    /// The value of the `protocol` label.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Logtap => "logtap",
            Protocol::Http => "http",
            Protocol::Loki => "loki",
            Protocol::Otlp => "otlp",
            Protocol::Syslog => "syslog",
            Protocol::Elasticsearch => "elasticsearch",
            Protocol::Journald => "journald",
        }
    }
}
