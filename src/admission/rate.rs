//! The rate of sends per organisation: a token bucket of `burst` documents,
//! refilled at `per_minute`. A send over it is refused before its body is
//! read, with the seconds until the next one would be taken.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::directory::OrgCode;

pub struct SendRate {
    /// Tokens per second; `None`: no limit.
    refill: Option<f64>,
    burst: f64,
    buckets: Mutex<HashMap<Option<OrgCode>, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl SendRate {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32, burst: u32) -> SendRate {
        SendRate {
            refill: (per_minute > 0).then(|| f64::from(per_minute) / 60.0),
            // A burst below one would refuse every send.
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one send for `org`, or says how long until one is free.
    pub fn take(&self, org: Option<OrgCode>) -> Result<(), Duration> {
        self.take_at(org, Instant::now())
    }

    fn take_at(&self, org: Option<OrgCode>, now: Instant) -> Result<(), Duration> {
        let Some(refill) = self.refill else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(org).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * refill;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / refill))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_organisation() {
        let rate = SendRate::new(60, 2);
        let a = OrgCode::parse("000.02.09.H37");
        let start = Instant::now();
        assert!(rate.take_at(a, start).is_ok());
        assert!(rate.take_at(a, start).is_ok());
        assert_eq!(rate.take_at(a, start), Err(Duration::from_secs(1)));
        // Others are not held back by it.
        assert!(rate.take_at(None, start).is_ok());
        let later = start + Duration::from_millis(1500);
        assert!(rate.take_at(a, later).is_ok());
        assert_eq!(rate.take_at(a, later), Err(Duration::from_millis(500)));
        assert!(SendRate::new(0, 0).take_at(a, start).is_ok());
    }
}
