//! The per-plugin circuit breaker: a plugin whose calls keep ending on a limit or a trap is
//! suspended for a cool-down that doubles each time it trips again, so that a broken or
//! hostile plugin stops costing the host CPU, slots and API calls.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls in a row that end on a limit or a trap before the plugin is suspended.
pub(crate) const TRIP_AFTER: u32 = 5;
/// The first cool-down; each trip after it doubles, up to [`MAX_COOL_DOWN`].
pub(crate) const FIRST_COOL_DOWN: Duration = Duration::from_secs(10);
/// The longest cool-down.
pub(crate) const MAX_COOL_DOWN: Duration = Duration::from_secs(300);

/// What the breaker says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Call the plugin.
    Closed,
    /// Do not call it; try again after this long.
    Open(Duration),
}

/// What a failure did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    No,
    /// The plugin is now suspended for this long.
    For(Duration),
}

#[derive(Debug)]
struct State {
    failures_in_a_row: u32,
    open_until: Option<Instant>,
    next_cool_down: Duration,
}

/// One plugin's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                failures_in_a_row: 0,
                open_until: None,
                next_cool_down: FIRST_COOL_DOWN,
            }),
        }
    }
}

impl Breaker {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go ahead at `now`.
    pub(crate) fn gate(&self, now: Instant) -> Gate {
        match self.state().open_until {
            Some(until) if now < until => Gate::Open(until - now),
            _ => Gate::Closed,
        }
    }

    /// A call completed (whatever the plugin answered): the plugin works.
    pub(crate) fn succeeded(&self) {
        let mut state = self.state();
        state.failures_in_a_row = 0;
        state.open_until = None;
        state.next_cool_down = FIRST_COOL_DOWN;
    }

    /// A call ended on a limit or a trap at `now`.
    pub(crate) fn failed(&self, now: Instant) -> Tripped {
        let mut state = self.state();
        if state.open_until.is_some_and(|until| now < until) {
            // A call that started before the trip: already counted.
            return Tripped::No;
        }
        state.failures_in_a_row += 1;
        // After a cool-down one more failure is enough: the plugin had its chance.
        let reopening = state.open_until.is_some();
        if state.failures_in_a_row < TRIP_AFTER && !reopening {
            return Tripped::No;
        }
        let cool_down = state.next_cool_down;
        state.open_until = Some(now + cool_down);
        state.next_cool_down = (cool_down * 2).min(MAX_COOL_DOWN);
        state.failures_in_a_row = 0;
        Tripped::For(cool_down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_a_row_suspend_the_plugin_and_a_success_resets_it() {
        let breaker = Breaker::default();
        let now = Instant::now();
        for _ in 1..TRIP_AFTER {
            assert_eq!(breaker.failed(now), Tripped::No);
        }
        assert_eq!(breaker.failed(now), Tripped::For(FIRST_COOL_DOWN));
        assert_eq!(breaker.gate(now), Gate::Open(FIRST_COOL_DOWN));
        let after = now + FIRST_COOL_DOWN;
        assert_eq!(breaker.gate(after), Gate::Closed);
        // One failure after the cool-down trips it again, for twice as long.
        assert_eq!(breaker.failed(after), Tripped::For(FIRST_COOL_DOWN * 2));
        breaker.succeeded();
        assert_eq!(breaker.gate(after), Gate::Closed);
        assert_eq!(breaker.failed(after), Tripped::No);
    }

    #[test]
    fn the_cool_down_stops_growing_at_five_minutes() {
        let breaker = Breaker::default();
        let mut now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            for _ in 0..TRIP_AFTER {
                if let Tripped::For(cool_down) = breaker.failed(now) {
                    last = cool_down;
                    break;
                }
            }
            now += last;
        }
        assert_eq!(last, MAX_COOL_DOWN);
    }

    #[test]
    fn failures_interleaved_with_successes_never_trip() {
        let breaker = Breaker::default();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(breaker.failed(now), Tripped::No);
            breaker.succeeded();
        }
    }
}
