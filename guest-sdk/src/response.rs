//! What a successful reconcile asks of the host next.

use std::time::Duration;

/// What to do after a successful reconcile, like kube-runtime's `Action` or
/// controller-runtime's `Result`.
///
/// ```
/// use std::time::Duration;
/// use wasm_reconciler_sdk::Response;
///
/// // Nothing to do until the object or one of its owned objects changes.
/// let done = Response::await_change();
/// assert_eq!(done.requeue_delay(), None);
///
/// // Look again in five minutes even if nothing changes, e.g. to poll something external.
/// let poll = Response::requeue_after(Duration::from_secs(300));
/// assert_eq!(poll.requeue_delay(), Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Response {
    requeue_after: Option<Duration>,
}

impl Response {
    /// Waits for the next change to the object or one of its owned objects
    /// (controller-runtime's `Result{}`).
    pub const fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// Reconciles the object again after `delay` even if nothing changes
    /// (`Result{RequeueAfter: delay}`). A change before then still reconciles at once.
    ///
    /// The host works in whole milliseconds: a delay is rounded up to the next one.
    pub const fn requeue_after(delay: Duration) -> Self {
        Self {
            requeue_after: Some(delay),
        }
    }

    /// The delay after which the host reconciles again, if any.
    pub const fn requeue_delay(&self) -> Option<Duration> {
        self.requeue_after
    }

    /// The delay as the WIT carries it: whole milliseconds, rounded up, saturating.
    pub(crate) fn requeue_after_ms(&self) -> Option<u64> {
        self.requeue_after.map(millis_rounded_up)
    }
}

/// A duration in whole milliseconds, rounded up and saturating, as the WIT carries delays.
pub(crate) fn millis_rounded_up(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

impl Default for Response {
    /// The same as [`Response::await_change`].
    fn default() -> Self {
        Self::await_change()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_rounded_up_to_whole_milliseconds() {
        let ms = |d| Response::requeue_after(d).requeue_after_ms();
        assert_eq!(ms(Duration::from_secs(2)), Some(2000));
        assert_eq!(ms(Duration::from_micros(1500)), Some(2));
        assert_eq!(ms(Duration::from_nanos(1)), Some(1));
        assert_eq!(ms(Duration::ZERO), Some(0));
        assert_eq!(ms(Duration::MAX), Some(u64::MAX));
        assert_eq!(Response::await_change().requeue_after_ms(), None);
    }
}
