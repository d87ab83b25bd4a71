//! At most one log line per interval for events a client can repeat at will
//! (refused connections, descriptors running out, HTTP/2 peers sent away),
//! so a flood of them cannot flood the log: the line that is written says
//! how many were left out since the last one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Decides which occurrences of one kind of event get a log line.
#[derive(Debug)]
pub struct LogThrottle {
    /// The least time between two lines.
    interval: Duration,
    /// When the last line was written; `None` before the first.
    last: Mutex<Option<Instant>>,
    /// Occurrences left out since the last line.
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// A throttle writing at most one line per `interval`.
    pub const fn new(interval: Duration) -> LogThrottle {
        LogThrottle {
            interval,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Records one occurrence. `Some(n)` when this one should be logged,
    /// `n` being how many were left out before it; `None` when it is to be
    /// left out.
    pub fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < self.interval => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let throttle = LogThrottle::new(Duration::from_millis(50));
        assert_eq!(throttle.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(throttle.allow(), None);
        }
        let open = LogThrottle::new(Duration::ZERO);
        assert_eq!(open.allow(), Some(0));
        assert_eq!(open.allow(), Some(0));
        // The count carries over to the next line written.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(throttle.allow(), Some(5));
    }
}
