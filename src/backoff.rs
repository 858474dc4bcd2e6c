//! Per-object exponential backoff with jitter (kube-runtime has none of its own).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Backoff settings.
#[derive(Clone, Copy, Debug)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// Delay before retry number `attempt` (0-based), given a jitter draw in `[0, 1)`.
    /// Full exponential growth capped at `max`, then "equal jitter": between half and all of it.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let factor = 2u64.saturating_pow(attempt.min(30));
        let raw = self
            .base
            .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX));
        let capped = raw.min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        capped.mul_f64(0.5 + 0.5 * jitter)
    }
}

/// Failure counts per object key.
#[derive(Debug, Default)]
pub struct Backoffs {
    policy: BackoffPolicy,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoffs {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            attempts: Mutex::default(),
        }
    }

    /// Record a failure of `key` and return how long to wait before retrying it.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let n = attempts.entry(key.to_string()).or_insert(0);
        let delay = self.policy.delay(*n, fastrand::f64());
        *n = n.saturating_add(1);
        delay
    }

    /// Forget the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Failures recorded for `key` since its last success.
    pub fn failures(&self, key: &str) -> u32 {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_and_caps() {
        let p = BackoffPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        assert_eq!(p.delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(p.delay(10, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(40, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn per_object_counts_and_reset() {
        let b = Backoffs::new(BackoffPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        });
        let first = b.next_delay("ns/a");
        let second = b.next_delay("ns/a");
        assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(50));
        assert!(second >= Duration::from_millis(100));
        assert_eq!(b.failures("ns/a"), 2);
        assert_eq!(b.failures("ns/b"), 0);
        b.reset("ns/a");
        assert_eq!(b.failures("ns/a"), 0);
    }
}
