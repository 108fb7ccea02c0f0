//! A warning in the log when a limit bites, at most one per limit every ten
//! seconds: a flood of refused connections must not become a flood of log
//! lines. The next warning counts those left out. Every bite also counts in
//! the metrics, when they are on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// At most one warning per limit this often.
const EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Warnings {
    /// By limit (the option that sets it): when one was last logged, and how
    /// many were left out since.
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
    metrics: Option<Arc<Metrics>>,
}

impl Warnings {
    /// Warnings that also count each bite in `metrics`.
    pub fn counted_in(metrics: Option<Arc<Metrics>>) -> Warnings {
        Warnings {
            metrics,
            ..Warnings::default()
        }
    }

    /// Logs `message()` as a warning that `limit` bit, unless one about the
    /// same limit was logged less than ten seconds ago.
    pub fn limit_bit(&self, limit: &'static str, message: impl FnOnce() -> String) {
        if let Some(metrics) = &self.metrics {
            metrics.admission_refused(limit);
        }
        let now = Instant::now();
        let left_out = {
            // A panic elsewhere while holding the lock leaves a usable map.
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            match last.get_mut(limit) {
                Some((at, left_out)) if now.duration_since(*at) < EVERY => {
                    *left_out += 1;
                    return;
                }
                Some(entry) => std::mem::replace(entry, (now, 0)).1,
                None => {
                    last.insert(limit, (now, 0));
                    0
                }
            }
        };
        if left_out == 0 {
            tracing::warn!(limit, "{}", message());
        } else {
            tracing::warn!(
                limit,
                left_out,
                "{} ({left_out} more like it not logged since the last one)",
                message()
            );
        }
    }
}
