//! The proptest runner every crate's `tests/fuzz.rs` shares, included with
//! `#[path = "../../../fuzz/harness.rs"] mod harness;` (each test binary
//! compiles its own copy; there is no crate to depend on for six lines of
//! setup). A target's failures are saved in `fuzz/regressions/<target>.txt`
//! and replayed on every run; `LOGTAP_FUZZ_CASES` sets how many new cases
//! each target runs.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The repository's fuzz directory: seed corpora and saved failures.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// How a crate's targets run when `LOGTAP_FUZZ_CASES` is not set.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// New cases per target.
    pub cases: u32,
    /// How far a failure is shrunk; targets whose cases are slow (they
    /// write files) stop earlier than proptest's default.
    pub max_shrink_iters: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cases: 512,
            max_shrink_iters: Config::default().max_shrink_iters,
        }
    }
}

/// Runs `check` on `strategy`'s cases for `target` and prints how many
/// inputs it ran (new cases, replayed failures and shrinking steps).
pub fn fuzz<S: Strategy>(
    target: &str,
    settings: Settings,
    strategy: &S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("LOGTAP_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(settings.cases);
    let regressions = fuzz_dir().join(format!("regressions/{target}.txt"));
    // proptest wants the path for the runner's whole life, as `&'static`.
    let regressions: &'static str = Box::leak(regressions.to_string_lossy().into_owned().into());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        max_shrink_iters: settings.max_shrink_iters,
        ..Config::default()
    });
    let executions = AtomicU64::new(0);
    runner
        .run(strategy, |value| {
            executions.fetch_add(1, Ordering::Relaxed);
            check(value)
        })
        .unwrap();
    eprintln!("{target}: {} executions", executions.into_inner());
}
