//! Figures: min / median / max over runs, targets, a table for people and
//! JSON lines for tracking over time.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What a figure should be.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The median must be at least this.
    AtLeast(f64),
    /// The median must be at most this.
    AtMost(f64),
    /// Reported for context; nothing to meet.
    None,
}

impl Target {
    fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::AtLeast(limit) => Some(value >= limit),
            Target::AtMost(limit) => Some(value <= limit),
            Target::None => None,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(limit) => format!(">= {}", number(limit)),
            Target::AtMost(limit) => format!("<= {}", number(limit)),
            Target::None => String::new(),
        }
    }
}

/// One figure: the values of every measured run (warm-ups left out).
#[derive(Debug, Clone)]
pub struct Figure {
    pub scenario: String,
    /// What was measured: "logtap", "peer", "logtap/peer", ...
    pub subject: String,
    pub metric: String,
    pub unit: String,
    pub values: Vec<f64>,
    pub target: Target,
}

impl Figure {
    /// min, median, max. With an even count the median is the upper middle
    /// value, so it is always a value that was measured.
    pub fn summary(&self) -> (f64, f64, f64) {
        summary(&self.values)
    }

    /// Whether the median meets the target (None: no target).
    pub fn met(&self) -> Option<bool> {
        let (_, median, _) = self.summary();
        self.target.met(median)
    }
}

/// min, median, max of `values` (NaN for none).
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
    )
}

/// The median of `values`.
pub fn median(values: &[f64]) -> f64 {
    summary(values).1
}

/// Numbers as people read them: no pointless digits on large values.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_nan() {
        "-".to_string()
    } else if magnitude >= 100_000.0 {
        format!("{value:.0}")
    } else if magnitude >= 100.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

/// The machine the figures were taken on: they mean little without it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub nproc: usize,
    pub model: String,
    pub git: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let nproc = std::thread::available_parallelism().map_or(0, usize::from);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let git = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .current_dir(crate::server::workspace_root())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .unwrap_or_default();
        Machine { nproc, model, git }
    }
}

/// A figure made of one value per measured run: its metric, its unit, and
/// how a run's sample gives its value.
pub type PerSample<S> = (&'static str, &'static str, fn(&S) -> f64);

/// Collects figures, prints each as it comes, writes JSON lines, and prints
/// the whole table at the end.
pub struct Report {
    figures: Vec<Figure>,
    notes: Vec<String>,
    json: Option<BufWriter<File>>,
    machine: Machine,
    smoke: bool,
    started: u64,
}

impl Report {
    /// A report; JSON lines go to `json` (created or truncated) when given.
    pub fn new(json: Option<&Path>, smoke: bool) -> anyhow::Result<Report> {
        let json = match json {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        };
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        Ok(Report {
            figures: Vec::new(),
            notes: Vec::new(),
            json,
            machine: Machine::detect(),
            smoke,
            started,
        })
    }

    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Records one untargeted figure per [`PerSample`] of
    /// `figures`, each with its value in every one of `samples`.
    pub fn add_each<S>(
        &mut self,
        scenario: &str,
        subject: &str,
        samples: &[S],
        figures: &[PerSample<S>],
    ) -> anyhow::Result<()> {
        for (metric, unit, value) in figures {
            let values = samples.iter().map(value).collect();
            self.add(scenario, subject, metric, unit, values, Target::None)?;
        }
        Ok(())
    }

    /// Records a figure with its values over the measured runs.
    pub fn add(
        &mut self,
        scenario: &str,
        subject: &str,
        metric: &str,
        unit: &str,
        values: Vec<f64>,
        target: Target,
    ) -> anyhow::Result<()> {
        let figure = Figure {
            scenario: scenario.to_string(),
            subject: subject.to_string(),
            metric: metric.to_string(),
            unit: unit.to_string(),
            values,
            target,
        };
        eprintln!("  {}", row(&figure));
        let line = self.json_line(&figure);
        if let Some(json) = &mut self.json {
            writeln!(json, "{line}")?;
            json.flush()?;
        }
        self.figures.push(figure);
        Ok(())
    }

    /// A sentence printed under the table: what a figure means, or why the
    /// client may have set the pace.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    fn json_line(&self, figure: &Figure) -> serde_json::Value {
        let (min, median, max) = figure.summary();
        // NaN is not JSON; a figure with no value is null.
        let num = |v: f64| {
            if v.is_finite() {
                serde_json::json!(v)
            } else {
                serde_json::Value::Null
            }
        };
        serde_json::json!({
            "scenario": figure.scenario,
            "subject": figure.subject,
            "metric": figure.metric,
            "unit": figure.unit,
            "runs": figure.values.len(),
            "min": num(min),
            "median": num(median),
            "max": num(max),
            "values": figure.values.iter().map(|&v| num(v)).collect::<Vec<_>>(),
            "target": figure.target.text(),
            "met": figure.met(),
            "smoke": self.smoke,
            "time": self.started,
            "git": self.machine.git,
            "nproc": self.machine.nproc,
            "cpu": self.machine.model,
        })
    }

    /// The whole table, as Markdown, so it pastes into an issue or README.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "machine: {} cores, {}{}",
            self.machine.nproc,
            self.machine.model,
            if self.machine.git.is_empty() {
                String::new()
            } else {
                format!(", commit {}", self.machine.git)
            }
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| scenario | subject | metric | min | median | max | unit | runs | target | met |"
        );
        let _ = writeln!(out, "|---|---|---|--:|--:|--:|---|--:|---|---|");
        for figure in &self.figures {
            let (min, median, max) = figure.summary();
            let met = match figure.met() {
                Some(true) => "yes",
                Some(false) => "**NO**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                figure.scenario,
                figure.subject,
                figure.metric,
                number(min),
                number(median),
                number(max),
                figure.unit,
                figure.values.len(),
                figure.target.text(),
                met
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

/// One figure on one line, as it is measured.
fn row(figure: &Figure) -> String {
    let (min, median, max) = figure.summary();
    let met = match figure.met() {
        Some(true) => "  [target met]",
        Some(false) => "  [TARGET MISSED]",
        None => "",
    };
    format!(
        "{:<12} {:<14} {:<34} min {:>12}  median {:>12}  max {:>12}  {}{}{}",
        figure.scenario,
        figure.subject,
        figure.metric,
        number(min),
        number(median),
        number(max),
        figure.unit,
        if figure.target.text().is_empty() {
            String::new()
        } else {
            format!("  (target {})", figure.target.text())
        },
        met
    )
}

/// A latency histogram over microseconds with about 3% resolution: each
/// power of two is cut into 32 linear sub-buckets. Recording is one index
/// computation and an increment, cheap enough for every entry of 1,000
/// streams, and histograms of many streams merge by adding counts.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// Sub-buckets per power of two.
const SUB: u64 = 32;
/// Values up to 2^40 µs (12 days) are kept apart; larger ones share the
/// last bucket.
const BUCKETS: usize = (41 * SUB) as usize;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(value: u64) -> usize {
        if value < SUB {
            return value as usize;
        }
        let power = 63 - u64::from(value.leading_zeros()); // >= 5
        let sub = (value >> (power - 5)) - SUB; // 0..32
        (((power - 4) * SUB + sub) as usize).min(BUCKETS - 1)
    }

    /// The smallest value that falls in bucket `index`.
    fn lower(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB {
            return index;
        }
        let power = index / SUB + 4;
        let sub = index % SUB;
        (SUB + sub) << (power - 5)
    }

    pub fn record(&mut self, micros: u64) {
        self.counts[Self::index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (count, more) in self.counts.iter_mut().zip(&other.counts) {
            *count += more;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the upper edge of its bucket, so
    /// it never understates a latency.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let upper = if index + 1 < BUCKETS {
                    Self::lower(index + 1) - 1
                } else {
                    self.max
                };
                return upper.min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_min_median_max() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(summary(&[4.0, 1.0]), (1.0, 4.0, 4.0));
        assert!(summary(&[]).1.is_nan());
    }

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for value in [0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 20, u64::MAX] {
            let index = Histogram::index(value);
            assert!(index >= last, "{value}");
            assert!(Histogram::lower(index) <= value || index == BUCKETS - 1);
            last = index;
        }
    }

    #[test]
    fn quantiles_are_within_a_few_percent() {
        let mut histogram = Histogram::default();
        for value in 1..=10_000u64 {
            histogram.record(value);
        }
        let p50 = histogram.quantile(0.5) as f64;
        let p99 = histogram.quantile(0.99) as f64;
        assert!((p50 / 5000.0 - 1.0).abs() < 0.04, "{p50}");
        assert!((p99 / 9900.0 - 1.0).abs() < 0.04, "{p99}");
        assert_eq!(histogram.quantile(1.0), 10_000);
        let mut other = Histogram::default();
        other.record(50_000);
        histogram.merge(&other);
        assert_eq!(histogram.max(), 50_000);
        assert_eq!(histogram.count(), 10_001);
    }
}
