//! The Prometheus registry behind `/metrics`.
//!
//! prometheus-client appends `_total` to counter names itself, so counters
//! are registered without it and exposed as `logtap_entries_stored_total` and
//! so on.

use crate::error::ServeError;
use logtap_core::StoreStats;
use logtap_store::RecoveryReport;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every metric the server exposes, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    /// Renders every metric below in the text exposition format.
    registry: Registry,
    /// Reading streams open now, on every transport. Moved only by
    /// `GaugeUnit`, so it cannot drift when a stream ends in an odd way.
    pub active_streams: Gauge,
    /// Client connections open now (HTTP/1.1 and HTTP/2, TLS or not), from
    /// accept to close. Moved only by `GaugeUnit`.
    pub open_connections: Gauge,
    /// Bytes of unfinished request messages held now, every request
    /// together: the server-wide budget in use (`net::request_body`), which
    /// charges and releases it with atomic updates so it never reads over
    /// the budget.
    pub request_buffered_bytes: Gauge,
    /// Request bodies in progress (a Push stream, a request whose message
    /// has not all arrived), every transport: they count against
    /// `max_streams` with the reading streams, but are not reading streams,
    /// so they are not in `active_streams`. Moved only by `GaugeUnit`.
    pub request_streams: Gauge,
    /// Metric query evaluations running now on the blocking pool. Moved
    /// only by `GaugeUnit`, so an evaluation counts until its reading has
    /// really stopped, not until its caller left.
    pub metric_queries_running: Gauge,
    /// Metric query evaluations stopped before their end because their
    /// caller went away: work the server did not finish for nobody.
    pub metric_queries_abandoned: Counter,
    /// Entries made durable by pushes, on every transport.
    pub entries_stored: Counter,
    /// Entries handed to a transport by reading streams.
    pub entries_sent: Counter,
    /// Of those, entries sent in runs encoded once for every live tail
    /// (see `logtap_core::Run`): how much of the live traffic is shared.
    pub entries_sent_in_runs: Counter,
    /// Reading streams dropped before they ended themselves: the client
    /// cancelled or vanished, or the idle timeout reset them.
    pub streams_cancelled: Counter,
    /// Entries made durable, by the protocol they came by
    /// (`ops::protocol::Protocol`): which shipper sends what.
    ingest_entries: Family<[(&'static str, &'static str); 1], Counter>,
    /// Refusals, by protocol and reason (`ServeError::refusal_reason`): a
    /// request refused whole counts one, as does a record refused alone
    /// (OTLP's partial success, a bulk item) and a syslog message dropped.
    /// Syslog has no acknowledgement to refuse with, so its drops show only
    /// here.
    ingest_refused: Family<[(&'static str, &'static str); 2], Counter>,
    /// Bytes of segment files, refreshed at every scrape.
    store_bytes: Gauge,
    /// Segment files, refreshed at every scrape.
    store_segments: Gauge,
    /// Segment files still record logs (the one being written, and any
    /// closed one the sealer has not compressed yet), refreshed at every
    /// scrape: above one, sealing is behind the writer.
    store_unsealed_segments: Gauge,
    /// Entries held, refreshed at every scrape.
    store_entries: Gauge,
    /// The newest visible cursor, refreshed at every scrape.
    store_last_cursor: Gauge,
    /// The oldest cursor still held, refreshed at every scrape.
    store_oldest_cursor: Gauge,
    /// Bytes of the newest records the store keeps in memory for live
    /// readers, refreshed at every scrape: the fixed memory cost of
    /// sparing every live tail a file read.
    store_recent_bytes: Gauge,
    /// Bytes readers have read from segment files, refreshed at every
    /// scrape: with live tails taking new entries from memory, this grows
    /// with history reads, not with the number of followers.
    store_file_read_bytes: Counter,
    /// Torn tails cut and corrupt stretches skipped when the store was
    /// opened: an operator alerting on this learns of damage that only a log
    /// line would otherwise tell.
    recovery_events: Gauge,
    /// Bytes those recovery events cut or skipped.
    recovery_bytes_skipped: Gauge,
    /// Requests refused or streams ended because a limit was reached, by
    /// limit (see [`Limit`]), so an operator can tell a limit set too low
    /// from clients misbehaving.
    limit_rejections: Family<[(&'static str, &'static str); 1], Counter>,
}

/// The limits counted in `logtap_limit_rejections_total{limit="..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_streams`: reading streams open at once, every transport.
    Streams,
    /// `max_message_bytes`: a gRPC message over the size limit.
    MessageSize,
    /// `idle_timeout`: a response whose client accepted nothing, reset.
    IdleTimeout,
    /// The disk (or quota) is full: an append was refused.
    DiskFull,
    /// `max_query_scan_bytes`: a stream whose text filter looked at too
    /// many bytes, ended.
    QueryScanBytes,
    /// `max_connections`: a connection closed as soon as it was accepted.
    Connections,
    /// `max_streams_per_connection`: streams open at once on one connection.
    StreamsPerConnection,
    /// `max_streams_per_peer`: streams open at once from one client address.
    StreamsPerPeer,
    /// `max_buffered_request_bytes` (or its per-connection share): a request
    /// whose unfinished message would go over the budget, cut.
    RequestBuffer,
    /// `request_stall_timeout`: a request that sent nothing for that long
    /// in the middle of a message, cut.
    RequestStall,
}

impl Limit {
    /// Every limit, so each shows in /metrics at 0 before it is first hit.
    pub const ALL: [Limit; 10] = [
        Limit::Streams,
        Limit::MessageSize,
        Limit::IdleTimeout,
        Limit::DiskFull,
        Limit::QueryScanBytes,
        Limit::Connections,
        Limit::StreamsPerConnection,
        Limit::StreamsPerPeer,
        Limit::RequestBuffer,
        Limit::RequestStall,
    ];

    /// The value of the `limit` label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Streams => "streams",
            Limit::MessageSize => "message_size",
            Limit::IdleTimeout => "idle_timeout",
            Limit::DiskFull => "disk_full",
            Limit::QueryScanBytes => "query_scan_bytes",
            Limit::Connections => "connections",
            Limit::StreamsPerConnection => "streams_per_connection",
            Limit::StreamsPerPeer => "streams_per_peer",
            Limit::RequestBuffer => "request_buffer",
            Limit::RequestStall => "request_stall",
        }
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            active_streams: Gauge::default(),
            open_connections: Gauge::default(),
            request_buffered_bytes: Gauge::default(),
            request_streams: Gauge::default(),
            metric_queries_running: Gauge::default(),
            metric_queries_abandoned: Counter::default(),
            entries_stored: Counter::default(),
            entries_sent: Counter::default(),
            entries_sent_in_runs: Counter::default(),
            streams_cancelled: Counter::default(),
            ingest_entries: Family::default(),
            ingest_refused: Family::default(),
            store_bytes: Gauge::default(),
            store_segments: Gauge::default(),
            store_unsealed_segments: Gauge::default(),
            store_entries: Gauge::default(),
            store_last_cursor: Gauge::default(),
            store_oldest_cursor: Gauge::default(),
            store_recent_bytes: Gauge::default(),
            store_file_read_bytes: Counter::default(),
            recovery_events: Gauge::default(),
            recovery_bytes_skipped: Gauge::default(),
            limit_rejections: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "logtap_active_streams",
            "Reading streams open now, on every transport",
            metrics.active_streams.clone(),
        );
        registry.register(
            "logtap_metric_queries_running",
            "Metric query evaluations reading the store now",
            metrics.metric_queries_running.clone(),
        );
        registry.register(
            "logtap_metric_queries_abandoned",
            "Metric query evaluations stopped early because their caller went away",
            metrics.metric_queries_abandoned.clone(),
        );
        registry.register(
            "logtap_open_connections",
            "Client connections open now",
            metrics.open_connections.clone(),
        );
        registry.register(
            "logtap_request_buffered_bytes",
            "Bytes of unfinished request messages held now, every request together",
            metrics.request_buffered_bytes.clone(),
        );
        registry.register(
            "logtap_request_streams",
            "Request bodies in progress, counted against max_streams with the reading streams",
            metrics.request_streams.clone(),
        );
        registry.register(
            "logtap_entries_stored",
            "Entries made durable by pushes",
            metrics.entries_stored.clone(),
        );
        registry.register(
            "logtap_entries_sent",
            "Entries sent by reading streams",
            metrics.entries_sent.clone(),
        );
        registry.register(
            "logtap_entries_sent_in_runs",
            "Entries sent in runs of the newest entries encoded once for every live tail",
            metrics.entries_sent_in_runs.clone(),
        );
        registry.register(
            "logtap_ingest_entries",
            "Entries made durable, by the protocol they came by",
            metrics.ingest_entries.clone(),
        );
        registry.register(
            "logtap_ingest_refusals",
            "Pushes refused whole, records refused alone and syslog messages dropped, by protocol and reason",
            metrics.ingest_refused.clone(),
        );
        registry.register(
            "logtap_streams_cancelled",
            "Reading streams dropped before they ended themselves",
            metrics.streams_cancelled.clone(),
        );
        registry.register(
            "logtap_store_bytes",
            "Bytes of segment files",
            metrics.store_bytes.clone(),
        );
        registry.register(
            "logtap_store_segments",
            "Segment files",
            metrics.store_segments.clone(),
        );
        registry.register(
            "logtap_store_unsealed_segments",
            "Segment files not sealed yet, the one being written included",
            metrics.store_unsealed_segments.clone(),
        );
        registry.register(
            "logtap_store_entries",
            "Entries held by the store",
            metrics.store_entries.clone(),
        );
        registry.register(
            "logtap_store_last_cursor",
            "The newest visible cursor",
            metrics.store_last_cursor.clone(),
        );
        registry.register(
            "logtap_store_oldest_cursor",
            "The oldest cursor still held",
            metrics.store_oldest_cursor.clone(),
        );
        registry.register(
            "logtap_store_recent_bytes",
            "Bytes of the newest records held in memory for live readers",
            metrics.store_recent_bytes.clone(),
        );
        registry.register(
            "logtap_store_file_read_bytes",
            "Bytes readers have read from segment files",
            metrics.store_file_read_bytes.clone(),
        );
        registry.register(
            "logtap_recovery_events",
            "Torn tails cut and corrupt stretches skipped when the store was opened",
            metrics.recovery_events.clone(),
        );
        registry.register(
            "logtap_recovery_bytes_skipped",
            "Bytes cut or skipped by recovery when the store was opened",
            metrics.recovery_bytes_skipped.clone(),
        );
        registry.register(
            "logtap_limit_rejections",
            "Requests refused or streams ended because a limit was reached",
            metrics.limit_rejections.clone(),
        );
        for protocol in super::protocol::Protocol::ALL {
            let _ = metrics
                .ingest_entries
                .get_or_create(&[("protocol", protocol.label())]);
        }
        // Touch every label, so each limit shows at 0 before it is hit.
        for limit in Limit::ALL {
            let _ = metrics
                .limit_rejections
                .get_or_create(&[("limit", limit.label())]);
        }
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A registry with every metric at zero but the recovery gauges, which
    /// say what opening the store cut or skipped.
    pub fn after_recovery(report: &RecoveryReport) -> Metrics {
        let metrics = Metrics::new();
        metrics.record_recovery(report);
        metrics
    }

    /// Counts `count` entries of `protocol` made durable.
    pub fn ingested(&self, protocol: super::protocol::Protocol, count: u64) {
        self.ingest_entries
            .get_or_create(&[("protocol", protocol.label())])
            .inc_by(count);
    }

    /// Counts `count` refusals of `protocol` for `reason`.
    pub fn ingest_refused(
        &self,
        protocol: super::protocol::Protocol,
        reason: &'static str,
        count: u64,
    ) {
        self.ingest_refused
            .get_or_create(&[("protocol", protocol.label()), ("reason", reason)])
            .inc_by(count);
    }

    /// Counts a new reading stream, or refuses it when `limit` streams
    /// (reading streams and request bodies in progress) are open.
    pub fn open_stream(&self, limit: usize) -> Result<GaugeUnit, ServeError> {
        self.open_one(&self.active_streams, &self.request_streams, limit)
    }

    /// Counts a request body in progress, or refuses it when `limit`
    /// streams (reading streams and request bodies) are open.
    pub fn open_request_stream(&self, limit: usize) -> Result<GaugeUnit, ServeError> {
        self.open_one(&self.request_streams, &self.active_streams, limit)
    }

    /// One more of `gauge`, unless it and `other` hold `limit` together.
    fn open_one(
        &self,
        gauge: &Gauge,
        other: &Gauge,
        limit: usize,
    ) -> Result<GaugeUnit, ServeError> {
        let before = gauge.inc().saturating_add(other.get());
        let guard = GaugeUnit {
            gauge: gauge.clone(),
        };
        if usize::try_from(before).unwrap_or(usize::MAX) >= limit {
            // Dropping the guard takes the count back down.
            drop(guard);
            self.limit_hit(Limit::Streams);
            return Err(ServeError::TooManyStreams { limit });
        }
        Ok(guard)
    }

    /// Counts a metric query evaluation until the unit is dropped.
    pub fn metric_query_started(&self) -> GaugeUnit {
        self.metric_queries_running.inc();
        GaugeUnit {
            gauge: self.metric_queries_running.clone(),
        }
    }

    /// Counts an accepted connection, until the unit is dropped, or
    /// refuses it (`None`, counted) when `limit` are open.
    pub fn open_connection(&self, limit: usize) -> Option<GaugeUnit> {
        let before = self.open_connections.inc();
        let guard = GaugeUnit {
            gauge: self.open_connections.clone(),
        };
        if usize::try_from(before).unwrap_or(usize::MAX) >= limit {
            drop(guard);
            self.limit_hit(Limit::Connections);
            return None;
        }
        Some(guard)
    }

    /// Counts one refusal (or reset) because `limit` was reached.
    pub fn limit_hit(&self, limit: Limit) {
        self.limit_rejections
            .get_or_create(&[("limit", limit.label())])
            .inc();
    }

    /// Counts `error` under its limit, if it is a limit being reached;
    /// other errors are not counted here.
    pub fn count_refusal(&self, error: &ServeError) {
        let limit = match error {
            ServeError::PushFailed { cause, .. } => return self.count_refusal(cause),
            // Only tonic's refusal of an over-large message: a body the
            // server cut (`BodyCut`) reaches a handler as RESOURCE_EXHAUSTED
            // too, and was counted under its own limit where it was cut.
            ServeError::Inbound(status) if crate::error::is_message_too_large(status) => {
                Limit::MessageSize
            }
            ServeError::Store(store) if store.is_disk_full() => Limit::DiskFull,
            // Counted where the limit is checked, in `open_stream`.
            ServeError::TooManyStreams { .. } => return,
            _ => return,
        };
        self.limit_hit(limit);
    }

    /// Records what recovery cut or skipped when the store was opened.
    pub fn record_recovery(&self, report: &RecoveryReport) {
        let clamp = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.recovery_events.set(clamp(report.events.len() as u64));
        self.recovery_bytes_skipped.set(clamp(report.bytes_lost()));
    }

    /// The text exposition, with the store's sizes as of now.
    pub fn render(&self, stats: StoreStats) -> String {
        let clamp = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.store_bytes.set(clamp(stats.bytes));
        self.store_segments.set(clamp(stats.segments));
        self.store_unsealed_segments
            .set(clamp(stats.unsealed_segments));
        self.store_entries.set(clamp(stats.entries));
        self.store_last_cursor.set(clamp(stats.last_cursor));
        self.store_oldest_cursor.set(clamp(stats.oldest_cursor));
        self.store_recent_bytes.set(clamp(stats.recent_bytes));
        // The store counts; the counter follows. `fetch_max`, so that two
        // scrapes at once can never move it backwards.
        self.store_file_read_bytes
            .inner()
            .fetch_max(stats.file_read_bytes, std::sync::atomic::Ordering::Relaxed);
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            // Writing into a String cannot fail; if the library ever says
            // otherwise, a partial page is still better than none.
            tracing::error!(error = %error, "Could not encode the metrics.");
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Holds one unit of a gauge (`logtap_active_streams`,
/// `logtap_open_connections`) for as long as what it counts lives.
#[derive(Debug)]
pub struct GaugeUnit {
    /// The gauge to take back down on drop.
    gauge: Gauge,
}

impl Drop for GaugeUnit {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_exactly_the_contract_names() {
        let metrics = Metrics::new();
        let guard = metrics.open_stream(10).expect("under the limit");
        metrics.entries_stored.inc_by(3);
        let text = metrics.render(StoreStats::default());
        for line in [
            "logtap_active_streams 1",
            "logtap_entries_stored_total 3",
            "logtap_entries_sent_total 0",
            "logtap_streams_cancelled_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
        drop(guard);
        assert!(metrics
            .render(StoreStats::default())
            .contains("logtap_active_streams 0"));
    }

    #[test]
    fn the_stream_limit_refuses_one_more_and_leaves_the_gauge_alone() {
        let metrics = Metrics::new();
        let first = metrics.open_stream(1).expect("first");
        assert!(matches!(
            metrics.open_stream(1),
            Err(ServeError::TooManyStreams { limit: 1 })
        ));
        assert_eq!(metrics.active_streams.get(), 1);
        drop(first);
        assert_eq!(metrics.active_streams.get(), 0);
        let text = metrics.render(StoreStats::default());
        assert!(
            text.lines()
                .any(|l| l == r#"logtap_limit_rejections_total{limit="streams"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn every_limit_and_the_recovery_gauges_show_before_anything_happens() {
        let metrics = Metrics::after_recovery(&RecoveryReport {
            events: vec![logtap_store::RecoveryEvent::TruncatedTail {
                path: "/data/00000000000000000001.seg".into(),
                offset: 100,
                bytes: 17,
            }],
        });
        let text = metrics.render(StoreStats::default());
        for line in [
            "logtap_recovery_events 1",
            "logtap_recovery_bytes_skipped 17",
            r#"logtap_limit_rejections_total{limit="streams"} 0"#,
            r#"logtap_limit_rejections_total{limit="message_size"} 0"#,
            r#"logtap_limit_rejections_total{limit="idle_timeout"} 0"#,
            r#"logtap_limit_rejections_total{limit="disk_full"} 0"#,
            r#"logtap_limit_rejections_total{limit="connections"} 0"#,
            r#"logtap_limit_rejections_total{limit="streams_per_connection"} 0"#,
            r#"logtap_limit_rejections_total{limit="streams_per_peer"} 0"#,
            r#"logtap_limit_rejections_total{limit="request_buffer"} 0"#,
            r#"logtap_limit_rejections_total{limit="request_stall"} 0"#,
            "logtap_request_buffered_bytes 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
    }
}
