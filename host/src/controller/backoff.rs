//! Per-object exponential backoff for transient failures, with controller-runtime's numbers
//! (`ItemExponentialFailureRateLimiter(5ms, 1000s)`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

const BASE: Duration = Duration::from_millis(5);
const MAX: Duration = Duration::from_secs(1000);

/// Counts consecutive failures per key and turns them into a retry delay.
#[derive(Debug)]
pub(crate) struct Backoff<K> {
    failures: Mutex<HashMap<K, u32>>,
}

impl<K> Default for Backoff<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> Backoff<K> {
    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub(crate) fn next_delay(&self, key: K) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key).or_insert(0);
        let delay = delay_after(*count);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets every key's failures: what they waited for (the API server) is back.
    pub(crate) fn clear(&self) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Forgets the failures of `key`: it succeeded, or failed for good.
    pub(crate) fn reset(&self, key: &K) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

/// `BASE * 2^failures`, capped at `MAX`.
fn delay_after(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures).unwrap_or(u32::MAX);
    BASE.checked_mul(factor).map_or(MAX, |delay| delay.min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_five_milliseconds() {
        let backoff = Backoff::default();
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay("a")).collect();
        assert_eq!(delays, [5, 10, 20, 40].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn delay_is_capped_at_a_thousand_seconds() {
        assert_eq!(delay_after(40), MAX);
        assert_eq!(delay_after(u32::MAX), MAX);
    }

    #[test]
    fn keys_back_off_independently_and_reset_clears_one() {
        let backoff = Backoff::default();
        backoff.next_delay("a");
        backoff.next_delay("a");
        assert_eq!(backoff.next_delay("b"), BASE);
        backoff.reset(&"a");
        assert_eq!(backoff.next_delay("a"), BASE);
    }
}
