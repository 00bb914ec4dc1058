//! The per-plugin requeue rate limit: controller-runtime's overall token bucket (10 per
//! second, burst 100), so that a plugin asking for immediate requeues over and over cannot
//! spin the host or the API server. Per-object backoff ([`super::backoff`]) comes on top.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requeues per second after a burst.
pub(crate) const RATE: f64 = 10.0;
/// Requeues a plugin may make at once.
pub(crate) const BURST: f64 = 100.0;

/// A token bucket that hands out delays rather than refusals (Go's `rate.Limiter.Reserve`):
/// every requeue gets a slot, later ones further in the future.
#[derive(Debug)]
pub(crate) struct RequeueThrottle {
    bucket: Mutex<(f64, Instant)>,
    rate: f64,
    burst: f64,
}

impl Default for RequeueThrottle {
    fn default() -> Self {
        Self::new(RATE, BURST)
    }
}

impl RequeueThrottle {
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Self {
            bucket: Mutex::new((burst, Instant::now())),
            rate,
            burst,
        }
    }

    /// Takes a token at `now` and returns how long to wait for it (zero with tokens left).
    pub(crate) fn reserve(&self, now: Instant) -> Duration {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, updated) = &mut *bucket;
        let elapsed = now.saturating_duration_since(*updated).as_secs_f64();
        *updated = now;
        *tokens = (*tokens + elapsed * self.rate).min(self.burst) - 1.0;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requeues_are_spaced_at_the_rate() {
        let throttle = RequeueThrottle::default();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(throttle.reserve(now), Duration::ZERO);
        }
        assert_eq!(throttle.reserve(now), Duration::from_millis(100));
        assert_eq!(throttle.reserve(now), Duration::from_millis(200));
        // A second later ten tokens came back, and two of them were owed.
        let later = now + Duration::from_secs(1);
        assert_eq!(throttle.reserve(later), Duration::ZERO);
    }
}
