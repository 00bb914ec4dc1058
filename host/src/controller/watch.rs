//! Watches that come back quickly after an API server outage: retries at most a few seconds
//! apart, and a fresh list (rather than a watch resumed from the last resource version) once
//! a watch has failed for longer than a blip.
//!
//! Why the fresh list: a restarted kube-apiserver holds a watch resumed from an old resource
//! version until its watch cache is rebuilt, then answers `410 Gone` (measured here: 15 s
//! after it was ready again), and only then does the watcher list. Listing at once sees every
//! object as it is now, within a second of the server's return.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

/// A watch failing for longer than this is an outage: it starts over with a list.
const RELIST_AFTER: Duration = Duration::from_secs(3);
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(4);

type EventStream<K> = Pin<Box<dyn Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send>>;

/// [`watcher()`] that starts over (a new list, then a watch from it) when it has been failing
/// for [`RELIST_AFTER`]. The reflector downstream takes the new list as the whole truth.
pub(crate) fn relisting_watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    struct State<K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static> {
        api: Api<K>,
        config: watcher::Config,
        inner: EventStream<K>,
        failing_since: Option<Instant>,
    }
    let inner: EventStream<K> = watcher(api.clone(), config.clone()).boxed();
    let state = State {
        api,
        config,
        inner,
        failing_since: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.inner.next().await?;
        match &item {
            Ok(_) => state.failing_since = None,
            Err(_) => {
                let now = Instant::now();
                let since = *state.failing_since.get_or_insert(now);
                if now.duration_since(since) >= RELIST_AFTER {
                    tracing::debug!(failing_for = ?now.duration_since(since), "watch failing; starting over with a list");
                    state.inner = watcher(state.api.clone(), state.config.clone()).boxed();
                    state.failing_since = None;
                }
            }
        }
        Some((item, state))
    })
}

/// Watch retries: 250 ms doubling to 4 s, jittered, so that a watch comes back within a few
/// seconds of the API server (kube's default goes up to 30 s).
pub(crate) struct WatchBackoff {
    next: Duration,
    seed: u64,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: RETRY_FIRST,
            seed: u64::from(std::process::id()),
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(RETRY_MAX);
        // Up to a quarter more, so that many watches do not retry in step.
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let fraction = f64::from(u16::try_from(self.seed >> 48).unwrap_or(0)) / 65_536.0;
        Some(delay + delay.mul_f64(fraction / 4.0))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = RETRY_FIRST;
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::utils::Backoff as _;

    use super::*;

    #[test]
    fn watch_retries_stay_within_a_few_seconds() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<_> = backoff.by_ref().take(10).collect();
        assert!(delays[0] >= RETRY_FIRST && delays[0] < RETRY_FIRST * 2);
        assert!(delays.iter().all(|d| *d <= RETRY_MAX.mul_f64(1.25)));
        backoff.reset();
        assert!(backoff.next().is_some_and(|d| d < RETRY_FIRST * 2));
    }
}
