//! Metric queries: numbers over time computed from the entries a log query
//! selects, `sum by (level) (count_over_time({service="api"}[5m]))`.
//!
//! A query is evaluated at the points `start, start + step, ... <= end`.
//! At a point `t`, a range aggregation looks at the entries of its log
//! query with `t - range < timestamp <= t`, one series per label set (the
//! entry's stored labels, `level`, and what parsers extracted); a point
//! with no entry in its window has no value, as in Loki. Vector
//! aggregations combine series at each point; arithmetic combines numbers
//! and series point by point.
//!
//! Entries are added one at a time ([`RangeEval::add`]), so the caller
//! reads them however it likes; each entry falls in one bucket of width
//! `gcd(step, range)`, and a window is the sum of its buckets, so the cost
//! is one bucket update per entry whatever the number of points.

use super::eval::Scratch;
use super::{is_level_label, LogQuery};
use logtap_core::{EntryRef, Filter, Level, ReadOptions, Search};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The most points one query may ask for (as Loki's 11,000 per series).
pub const MAX_POINTS: i64 = 11_000;

/// The most buckets a histogram of the store may be asked for: beyond,
/// the entries are read instead.
const MAX_HISTOGRAM_BUCKETS: i64 = 100_000;

/// The most buckets one range aggregation may keep per series: what a
/// small `gcd(step, range)` over a long time would otherwise make.
const MAX_BUCKETS: i64 = 1_000_000;

/// A range aggregation's function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeFunc {
    /// Entries in the window.
    CountOverTime,
    /// Entries per second over the window (or the unwrapped sum per second).
    Rate,
    /// Message bytes in the window.
    BytesOverTime,
    /// Message bytes per second.
    BytesRate,
    /// The unwrapped values' sum.
    SumOverTime,
    /// Their mean.
    AvgOverTime,
    /// Their least.
    MinOverTime,
    /// Their greatest.
    MaxOverTime,
    /// Their φ-quantile (the parameter).
    QuantileOverTime(f64),
}

impl RangeFunc {
    /// The function by name, without its parameter.
    pub(crate) fn by_name(name: &str) -> Option<RangeFunc> {
        Some(match name {
            "count_over_time" => RangeFunc::CountOverTime,
            "rate" => RangeFunc::Rate,
            "bytes_over_time" => RangeFunc::BytesOverTime,
            "bytes_rate" => RangeFunc::BytesRate,
            "sum_over_time" => RangeFunc::SumOverTime,
            "avg_over_time" => RangeFunc::AvgOverTime,
            "min_over_time" => RangeFunc::MinOverTime,
            "max_over_time" => RangeFunc::MaxOverTime,
            "quantile_over_time" => RangeFunc::QuantileOverTime(0.0),
            _ => return None,
        })
    }

    /// Whether it needs `| unwrap label` (and whether it may have one).
    pub(crate) fn unwraps(self) -> Option<bool> {
        match self {
            RangeFunc::CountOverTime | RangeFunc::BytesOverTime | RangeFunc::BytesRate => {
                Some(false)
            }
            RangeFunc::Rate => None,
            _ => Some(true),
        }
    }
}

/// How `| unwrap` reads a label's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrap {
    /// The label.
    pub label: String,
    /// How it is read: a number, `duration(...)` in seconds or `bytes(...)`.
    pub unit: super::Unit,
}

/// `sum`, `count`, … over series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggOp {
    /// The values' sum.
    Sum,
    /// How many series have a value.
    Count,
    /// Their mean.
    Avg,
    /// Their least.
    Min,
    /// Their greatest.
    Max,
    /// The k series with the greatest values, at each point.
    Topk(usize),
    /// The k series with the least values, at each point.
    Bottomk(usize),
}

/// Which labels a vector aggregation keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// `by (a, b)`: only these.
    By(Vec<String>),
    /// `without (a, b)`: all but these.
    Without(Vec<String>),
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
}

/// A metric expression.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    /// `func(log query [range])`.
    Range {
        /// The function.
        func: RangeFunc,
        /// The entries it counts.
        query: LogQuery,
        /// The window, in nanoseconds.
        range: i64,
        /// Where values come from, for the functions over values.
        unwrap: Option<Unwrap>,
    },
    /// `op by (labels) (expr)`.
    Aggregate {
        /// The operator.
        op: AggOp,
        /// The labels kept; `None` keeps none (one series).
        grouping: Option<Grouping>,
        /// What it aggregates.
        inner: Box<MetricExpr>,
    },
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinOp,
        /// The left side.
        left: Box<MetricExpr>,
        /// The right side.
        right: Box<MetricExpr>,
    },
    /// A number.
    Number(f64),
    /// `vector(n)`: one series without labels, `n` at every point.
    Vector(f64),
}

/// A label set, sorted by name.
pub type LabelSet = Vec<(String, String)>;

/// One series: its labels (sorted by name) and its points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The label set.
    pub labels: Vec<(String, String)>,
    /// `(time in ns, value)`, only where the series has a value.
    pub points: Vec<(i64, f64)>,
}

/// A metric expression's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, the same at every point.
    Scalar(f64),
    /// Series.
    Vector(Vec<Series>),
}

/// Where a query is evaluated: the points `start + k * step <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Points {
    /// The first point, ns.
    pub start: i64,
    /// The last point at most, ns.
    pub end: i64,
    /// Between points, ns (> 0).
    pub step: i64,
}

impl Points {
    /// The points, checked: at most [`MAX_POINTS`].
    pub fn new(start: i64, end: i64, step: i64) -> Result<Points, String> {
        if step <= 0 {
            return Err("step must be positive".into());
        }
        if end < start {
            return Err("end must not be before start".into());
        }
        let count = (end - start) / step + 1;
        if count > MAX_POINTS {
            return Err(format!(
                "{count} points of step {}s; at most {MAX_POINTS}: widen the step",
                step as f64 / 1e9
            ));
        }
        Ok(Points { start, end, step })
    }

    /// The points a request asks for, with its zeros filled in: `end`
    /// now, `start` an hour before `end`, `step` a hundredth of the range
    /// (at least a second).
    pub fn with_defaults(start: i64, end: i64, step: i64, now: i64) -> Result<Points, String> {
        const SECOND: i64 = 1_000_000_000;
        let end = if end == 0 { now } else { end };
        let start = if start == 0 {
            end.saturating_sub(3600 * SECOND)
        } else {
            start
        };
        let step = if step == 0 {
            ((end.saturating_sub(start)) / 100).max(SECOND)
        } else {
            step
        };
        Points::new(start, end, step)
    }

    /// How many.
    pub fn count(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }

    /// The k-th point's time.
    pub fn at(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }
}

impl MetricExpr {
    /// The range aggregations in it, in the order [`MetricExpr::evaluate`]
    /// takes their results: each reads its own entries.
    pub fn ranges(&self) -> Vec<&MetricExpr> {
        let mut out = Vec::new();
        self.collect_ranges(&mut out);
        out
    }

    /// For each of [`MetricExpr::ranges`], whether only its series' level
    /// matters to the result: it sits right inside a `sum` that keeps no
    /// label but `level`. Such a range may be counted by level alone (see
    /// [`RangeEval::histogram_edges`]).
    pub fn ranges_by_level_only(&self) -> Vec<bool> {
        let mut out = Vec::new();
        self.collect_level_only(false, &mut out);
        out
    }

    fn collect_level_only(&self, under_sum: bool, out: &mut Vec<bool>) {
        match self {
            MetricExpr::Range { .. } => out.push(under_sum),
            MetricExpr::Aggregate {
                op,
                grouping,
                inner,
            } => {
                let level_only = *op == AggOp::Sum
                    && match grouping {
                        None => true,
                        // `detected_level` is the level under Grafana's
                        // name (the volume histogram groups by both).
                        Some(Grouping::By(names)) => names.iter().all(|n| is_level_label(n)),
                        Some(Grouping::Without(_)) => false,
                    };
                inner.collect_level_only(level_only, out);
            }
            MetricExpr::Binary { left, right, .. } => {
                left.collect_level_only(false, out);
                right.collect_level_only(false, out);
            }
            MetricExpr::Number(_) | MetricExpr::Vector(_) => {}
        }
    }

    fn collect_ranges<'a>(&'a self, out: &mut Vec<&'a MetricExpr>) {
        match self {
            MetricExpr::Range { .. } => out.push(self),
            MetricExpr::Aggregate { inner, .. } => inner.collect_ranges(out),
            MetricExpr::Binary { left, right, .. } => {
                left.collect_ranges(out);
                right.collect_ranges(out);
            }
            MetricExpr::Number(_) | MetricExpr::Vector(_) => {}
        }
    }

    /// Combines the range aggregations' results (in [`MetricExpr::ranges`]
    /// order) into the expression's value.
    pub fn evaluate(&self, points: Points, ranges: &mut std::vec::IntoIter<Vec<Series>>) -> Value {
        match self {
            MetricExpr::Range { .. } => Value::Vector(ranges.next().unwrap_or_default()),
            MetricExpr::Number(n) => Value::Scalar(*n),
            MetricExpr::Vector(n) => Value::Vector(vec![Series {
                labels: Vec::new(),
                points: (0..points.count()).map(|k| (points.at(k), *n)).collect(),
            }]),
            MetricExpr::Aggregate {
                op,
                grouping,
                inner,
            } => match inner.evaluate(points, ranges) {
                Value::Scalar(n) => Value::Scalar(n),
                Value::Vector(series) => Value::Vector(aggregate(*op, grouping.as_ref(), series)),
            },
            MetricExpr::Binary { op, left, right } => {
                let left = left.evaluate(points, ranges);
                let right = right.evaluate(points, ranges);
                binary(*op, left, right)
            }
        }
    }
}

/// Applies `op` to two numbers.
fn apply(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
    }
}

/// Arithmetic: on numbers, on each point of series and a number, and on
/// points of series with the same labels at the same time.
fn binary(op: BinOp, left: Value, right: Value) -> Value {
    match (left, right) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(apply(op, a, b)),
        (Value::Vector(series), Value::Scalar(b)) => {
            Value::Vector(map_points(series, |v| apply(op, v, b)))
        }
        (Value::Scalar(a), Value::Vector(series)) => {
            Value::Vector(map_points(series, |v| apply(op, a, v)))
        }
        (Value::Vector(left), Value::Vector(right)) => {
            let by_labels: HashMap<&[(String, String)], &Series> =
                right.iter().map(|s| (s.labels.as_slice(), s)).collect();
            let mut out = Vec::new();
            for series in &left {
                let Some(other) = by_labels.get(series.labels.as_slice()) else {
                    continue;
                };
                let theirs: HashMap<i64, f64> = other.points.iter().copied().collect();
                let points: Vec<(i64, f64)> = series
                    .points
                    .iter()
                    .filter_map(|(t, v)| theirs.get(t).map(|w| (*t, apply(op, *v, *w))))
                    .collect();
                if !points.is_empty() {
                    out.push(Series {
                        labels: series.labels.clone(),
                        points,
                    });
                }
            }
            Value::Vector(out)
        }
    }
}

fn map_points(mut series: Vec<Series>, f: impl Fn(f64) -> f64) -> Vec<Series> {
    for one in &mut series {
        for point in &mut one.points {
            point.1 = f(point.1);
        }
    }
    series
}

/// The labels a grouping keeps of `labels`.
fn group_key(grouping: Option<&Grouping>, labels: &[(String, String)]) -> Vec<(String, String)> {
    match grouping {
        None => Vec::new(),
        Some(Grouping::By(names)) => labels
            .iter()
            .filter(|(name, _)| names.contains(name))
            .cloned()
            .collect(),
        Some(Grouping::Without(names)) => labels
            .iter()
            .filter(|(name, _)| !names.contains(name))
            .cloned()
            .collect(),
    }
}

/// A vector aggregation at each point.
fn aggregate(op: AggOp, grouping: Option<&Grouping>, series: Vec<Series>) -> Vec<Series> {
    if let AggOp::Topk(k) | AggOp::Bottomk(k) = op {
        // Each point keeps the k greatest (least) series of its group; a
        // series appears with the points where it was among them.
        let mut by_time: BTreeMap<(LabelSet, i64), Vec<(f64, usize)>> = BTreeMap::new();
        for (index, one) in series.iter().enumerate() {
            let key = group_key(grouping, &one.labels);
            for (t, v) in &one.points {
                by_time
                    .entry((key.clone(), *t))
                    .or_default()
                    .push((*v, index));
            }
        }
        let mut kept: Vec<Vec<(i64, f64)>> = vec![Vec::new(); series.len()];
        for ((_, t), mut values) in by_time {
            values.sort_by(|a, b| {
                let order = a.0.total_cmp(&b.0);
                if matches!(op, AggOp::Topk(_)) {
                    order.reverse()
                } else {
                    order
                }
            });
            for (v, index) in values.into_iter().take(k) {
                kept[index].push((t, v));
            }
        }
        return series
            .into_iter()
            .zip(kept)
            .filter(|(_, points)| !points.is_empty())
            .map(|(one, mut points)| {
                points.sort_by_key(|(t, _)| *t);
                Series {
                    labels: one.labels,
                    points,
                }
            })
            .collect();
    }
    let mut groups: BTreeMap<LabelSet, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for one in &series {
        let key = group_key(grouping, &one.labels);
        let group = groups.entry(key).or_default();
        for (t, v) in &one.points {
            group.entry(*t).or_default().push(*v);
        }
    }
    groups
        .into_iter()
        .map(|(labels, at)| Series {
            labels,
            points: at
                .into_iter()
                .map(|(t, values)| {
                    let value = match op {
                        AggOp::Sum => values.iter().sum(),
                        AggOp::Count => values.len() as f64,
                        AggOp::Avg => values.iter().sum::<f64>() / values.len() as f64,
                        AggOp::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                        AggOp::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        AggOp::Topk(_) | AggOp::Bottomk(_) => unreachable!("handled above"),
                    };
                    (t, value)
                })
                .collect(),
        })
        .collect()
}

/// What one bucket of one series holds.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Entries (with a value, when unwrapping).
    count: u64,
    /// Their message bytes, or their values' sum.
    sum: f64,
    /// The least value.
    min: f64,
    /// The greatest value.
    max: f64,
    /// Every value, for quantiles only.
    values: Vec<f64>,
}

/// One range aggregation being evaluated: entries go in one at a time.
#[derive(Debug)]
pub struct RangeEval<'q> {
    /// What is computed.
    func: RangeFunc,
    /// The entries that count.
    query: &'q LogQuery,
    /// The window, ns.
    range: i64,
    /// Where values come from.
    unwrap: Option<&'q Unwrap>,
    /// The points.
    points: Points,
    /// `start - range`: no entry at or before it counts.
    origin: i64,
    /// Bucket width: `gcd(step, range)`.
    width: i64,
    /// Each series' buckets, by bucket index.
    series: HashMap<Vec<(String, String)>, BTreeMap<i64, Bucket>>,
    /// What parsers extract, reused.
    scratch: Scratch,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl<'q> RangeEval<'q> {
    /// Starts evaluating `range_expr` (a [`MetricExpr::Range`]) at `points`.
    pub fn new(range_expr: &'q MetricExpr, points: Points) -> Result<RangeEval<'q>, String> {
        let MetricExpr::Range {
            func,
            query,
            range,
            unwrap,
        } = range_expr
        else {
            return Err("not a range aggregation".into());
        };
        // Buckets are as wide as every window's edges allow: at one point
        // the window is one bucket, whatever the step.
        let step = if points.start == points.end {
            *range
        } else {
            points.step
        };
        let width = gcd(step, *range).max(1);
        let buckets = (points.end - points.start + range) / width;
        if buckets > MAX_BUCKETS {
            return Err(format!(
                "the step and the range share no long enough unit ({}s): make the range a multiple of the step",
                width as f64 / 1e9
            ));
        }
        Ok(RangeEval {
            func: *func,
            query,
            range: *range,
            unwrap: unwrap.as_ref(),
            points,
            origin: points.start - range,
            width,
            series: HashMap::new(),
            scratch: Scratch::default(),
        })
    }

    /// The time range whose entries can count: `(since, until]` as a
    /// reader's `[since, until)` in ns.
    pub fn time_range(&self) -> (i64, i64) {
        (
            self.origin.saturating_add(1),
            self.points.end.saturating_add(1),
        )
    }

    /// The log query whose entries count.
    pub fn query(&self) -> &LogQuery {
        self.query
    }

    /// What a reader of the store needs to hand over every entry that can
    /// count, and skip the blocks none can be in: the time range, the
    /// selector's level and exact labels, the line filters' text. Newer
    /// entries than `before` (a cursor) are not read.
    pub fn read_options(&self, before: u64) -> ReadOptions {
        let pushdown = self.query.pushdown();
        let (since, until) = self.time_range();
        let search = Search {
            substrings: pushdown.substrings,
            ignore_case: false,
            labels: pushdown.labels,
        };
        ReadOptions {
            before: Some(before),
            filter: Filter {
                min_level: pushdown.min_level,
                since: Some(since),
                until: Some(until),
            },
            search: (!search.is_empty()).then(|| Arc::new(search)),
            ..ReadOptions::default()
        }
    }

    /// The edges of this evaluation's buckets, for
    /// [`logtap_core::Backend::histogram`], when counting entries by level
    /// and time gives the answer: the function counts entries
    /// (`count_over_time`, `rate` without `unwrap`), the selector looks at
    /// the level alone and there is no pipeline, and `level_only` (the
    /// caller's [`MetricExpr::ranges_by_level_only`]) says no other label
    /// matters. `None` otherwise, or when there would be too many buckets.
    pub fn histogram_edges(&self, level_only: bool) -> Option<Vec<i64>> {
        let counts = matches!(self.func, RangeFunc::CountOverTime | RangeFunc::Rate)
            && self.unwrap.is_none();
        let by_level = self.query.stages.iter().all(drops_only_errors)
            && self.query.selector.iter().all(|m| is_level_label(&m.name));
        let buckets = (self.points.end - self.origin) / self.width + 1;
        if !(level_only && counts && by_level) || buckets > MAX_HISTOGRAM_BUCKETS {
            return None;
        }
        Some(
            (0..=buckets)
                .map(|k| self.origin + 1 + k * self.width)
                .collect(),
        )
    }

    /// Takes the counts of a histogram over [`RangeEval::histogram_edges`]
    /// in place of entries: a series per level the selector keeps.
    pub fn add_histogram(&mut self, counts: &[[u64; Level::COUNT]]) {
        for (index, by_level) in counts.iter().enumerate() {
            for level in Level::ALL {
                let count = by_level[level as usize];
                let name = level.as_str();
                if count == 0 || !self.query.selector.iter().all(|m| m.matches(name)) {
                    continue;
                }
                let bucket = self
                    .series
                    .entry(vec![("level".to_string(), name.to_string())])
                    .or_default()
                    .entry(index as i64)
                    .or_default();
                bucket.count += count;
            }
        }
    }

    /// Adds one entry (any order; entries outside the time range are
    /// ignored).
    pub fn add(&mut self, entry: &EntryRef<'_>) {
        if entry.timestamp <= self.origin || entry.timestamp > self.points.end {
            return;
        }
        if !self.query.matches(entry, &mut self.scratch) {
            return;
        }
        let value = match self.unwrap {
            None => self.scratch.line(entry).len() as f64,
            Some(unwrap) => {
                let Some(text) = self.scratch.get(entry, &unwrap.label) else {
                    return;
                };
                let read = match unwrap.unit {
                    super::Unit::Number => text.trim().parse::<f64>().ok(),
                    super::Unit::Duration => super::parser::read_duration(text),
                    super::Unit::Bytes => super::parser::read_bytes(text),
                };
                let Some(value) = read else {
                    return;
                };
                value
            }
        };
        // The labels as the pipeline left them (extracted, renamed,
        // dropped), less the unwrapped one, plus the level.
        let mut labels: Vec<(String, String)> = self
            .scratch
            .visible(entry)
            .into_iter()
            .filter(|(name, _)| self.unwrap.is_none_or(|u| u.label != *name))
            .filter(|(name, _)| !is_level_label(name))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        labels.push(("level".to_string(), entry.level.as_str().to_string()));
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        let index = (entry.timestamp - self.origin - 1) / self.width;
        let bucket = self
            .series
            .entry(labels)
            .or_default()
            .entry(index)
            .or_insert_with(|| Bucket {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                ..Bucket::default()
            });
        bucket.count += 1;
        bucket.sum += value;
        bucket.min = bucket.min.min(value);
        bucket.max = bucket.max.max(value);
        if matches!(self.func, RangeFunc::QuantileOverTime(_)) {
            bucket.values.push(value);
        }
    }

    /// The series, each point from its window's buckets.
    pub fn finish(self) -> Vec<Series> {
        let per_window = self.range / self.width;
        let seconds = self.range as f64 / 1e9;
        let mut out: Vec<Series> = self
            .series
            .into_iter()
            .map(|(labels, buckets)| {
                let mut points = Vec::new();
                for k in 0..self.points.count() {
                    let first = k as i64 * self.points.step / self.width;
                    let window = buckets.range(first..first + per_window);
                    let mut count = 0;
                    let mut sum = 0.0;
                    let mut min = f64::INFINITY;
                    let mut max = f64::NEG_INFINITY;
                    let mut values = Vec::new();
                    for (_, bucket) in window {
                        count += bucket.count;
                        sum += bucket.sum;
                        min = min.min(bucket.min);
                        max = max.max(bucket.max);
                        values.extend_from_slice(&bucket.values);
                    }
                    if count == 0 {
                        continue;
                    }
                    let value = match self.func {
                        RangeFunc::CountOverTime => count as f64,
                        RangeFunc::Rate if self.unwrap.is_none() => count as f64 / seconds,
                        RangeFunc::Rate => sum / seconds,
                        RangeFunc::BytesOverTime | RangeFunc::SumOverTime => sum,
                        RangeFunc::BytesRate => sum / seconds,
                        RangeFunc::AvgOverTime => sum / count as f64,
                        RangeFunc::MinOverTime => min,
                        RangeFunc::MaxOverTime => max,
                        RangeFunc::QuantileOverTime(phi) => quantile(phi, &mut values),
                    };
                    points.push((self.points.at(k), value));
                }
                Series { labels, points }
            })
            .filter(|series| !series.points.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// Whether a stage of a pipeline without parsers leaves every entry and
/// its level as they are: `| drop __error__, __error_details__`, which
/// Grafana appends to the volume histogram's query, drops labels only a
/// parser sets.
fn drops_only_errors(stage: &super::Stage) -> bool {
    match stage {
        super::Stage::Format(super::format::Format::Drop(choices)) => choices.iter().all(|c| {
            matches!(c, super::format::LabelChoice::Name(name)
                if name == "__error__" || name == "__error_details__")
        }),
        _ => false,
    }
}

/// The φ-quantile of `values`, interpolated linearly between ranks as
/// Prometheus does; φ outside 0..=1 gives ±infinity.
fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let rank = phi * (values.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    values[lower] * (1.0 - weight) + values[upper] * weight
}
