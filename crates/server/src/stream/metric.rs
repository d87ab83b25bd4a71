//! Metric queries against the store: each range aggregation of the query
//! reads the entries that can count (its time range, with the selector's
//! level, labels and line-filter text pushed down so the store skips
//! blocks), and the query crate turns what it read into series.
//!
//! A range whose answer depends only on the level and time of its entries
//! (`sum by (level) (count_over_time({level=~"warn|error"}[5m]))`) is
//! counted from the blocks' summaries instead ([`Backend::histogram`]),
//! decoding only the blocks that straddle a bucket edge.
//!
//! A metric query is answered whole, then sent: its first number depends
//! on its last entry. The reading runs on the blocking pool, bounded like a
//! text filter by `max_query_scan_bytes`, and stops when the server shuts
//! down or when its caller goes away: a viewer that types a query drops the
//! evaluations it no longer wants, and they must not go on scanning.

use crate::error::ServeError;
use crate::stream::state::Shared;
#[cfg(doc)]
use logtap_core::Backend;
use logtap_query::logql::metric::{LabelSet, MetricExpr, Points, RangeEval, Series, Value};
use logtap_query::QueryError;
use std::sync::Arc;

/// How many entries are read between two looks at the shutdown and
/// abandon signals, at most.
const CHECK_EVERY: u32 = 4096;

/// How many message bytes are read between two looks, at most: a costly
/// line filter over big messages spends its time per byte, not per entry.
const CHECK_EVERY_BYTES: u64 = 1 << 20;

/// Evaluates `expr` at `points`.
pub(crate) async fn evaluate(
    shared: &Shared,
    expr: Arc<MetricExpr>,
    points: Points,
) -> Result<Value, ServeError> {
    let store = Arc::clone(&shared.store);
    let shutdown = shared.shutdown.clone();
    // Cancelled when this future is dropped (the client reset its stream or
    // closed its connection) as well as at shutdown, since it is a child.
    let abandon = shared.shutdown.child_token();
    let _abandon_on_drop = abandon.clone().drop_guard();
    let metrics = Arc::clone(&shared.metrics);
    let running = metrics.metric_query_started();
    let limit = shared.max_query_scan_bytes;
    tokio::task::spawn_blocking(move || {
        let _running = running;
        let before = store.last_cursor().saturating_add(1);
        let mut results: Vec<Vec<Series>> = Vec::new();
        let mut scanned: u64 = 0;
        let level_only = expr.ranges_by_level_only();
        for (range, level_only) in expr.ranges().into_iter().zip(level_only) {
            let mut eval = RangeEval::new(range, points).map_err(|reason| {
                ServeError::Query(QueryError::BadParameter {
                    name: "step".into(),
                    reason,
                })
            })?;
            if let Some(edges) = eval.histogram_edges(level_only) {
                // Counted by level from the blocks' summaries: only the
                // blocks that straddle an edge are decoded.
                let counts = store
                    .histogram(&eval.read_options(before), &edges)
                    .map_err(ServeError::Store)?;
                eval.add_histogram(&counts);
                results.push(eval.finish());
                continue;
            }
            let mut reader = store
                .reader(eval.read_options(before))
                .map_err(ServeError::Store)?;
            let mut since_check = 0;
            let mut check_at = scanned + CHECK_EVERY_BYTES;
            while let Some(entry) = reader.next_entry().map_err(ServeError::Store)? {
                scanned += entry.message.len() as u64;
                if limit != 0 && scanned > limit {
                    return Err(ServeError::QueryTooCostly { scanned, limit });
                }
                eval.add(&entry);
                since_check += 1;
                if since_check == CHECK_EVERY || scanned >= check_at {
                    since_check = 0;
                    check_at = scanned + CHECK_EVERY_BYTES;
                    if shutdown.is_cancelled() {
                        return Err(ServeError::ShuttingDown);
                    }
                    if abandon.is_cancelled() {
                        metrics.metric_queries_abandoned.inc();
                        // Nobody awaits this answer any more: the error
                        // only ends the task.
                        return Err(ServeError::Internal(
                            "the metric query's caller went away".into(),
                        ));
                    }
                }
            }
            results.push(eval.finish());
        }
        Ok(expr.evaluate(points, &mut results.into_iter()))
    })
    .await
    .map_err(ServeError::join)?
}

/// One point of a metric stream: its time, and each series' value there.
pub(crate) type Step = (i64, Vec<(LabelSet, f64)>);

/// A value as the points of a metric stream: at each point, every series
/// with a value there (a plain number is one series without labels).
pub(crate) fn by_point(value: Value, points: Points) -> Vec<Step> {
    let mut steps: Vec<Step> = (0..points.count())
        .map(|k| (points.at(k), Vec::new()))
        .collect();
    match value {
        Value::Scalar(n) => {
            for (_, samples) in &mut steps {
                samples.push((Vec::new(), n));
            }
        }
        Value::Vector(series) => {
            for one in series {
                for (t, v) in one.points {
                    let k = ((t - points.start) / points.step) as usize;
                    if let Some((_, samples)) = steps.get_mut(k) {
                        samples.push((one.labels.clone(), v));
                    }
                }
            }
        }
    }
    steps
}
