//! Kubernetes Events recorded by plugins: validated at the call, correlated in memory (series,
//! aggregation, spam filter: see [`correlator`]), and written to the API server by a background
//! task with up to [`RecorderConfig::concurrent_writes`] writes in flight, so a guest never
//! waits on the API server, except when new Events pile up faster than the server takes them:
//! then recording a new Event waits for room (back-pressure) rather than dropping it.
//!
//! Behaviour and numbers for users are in `docs/events.md`.
//!
//! ## RBAC
//!
//! The host's service account needs, for the default `events.k8s.io/v1` mode:
//!
//! ```yaml
//! - apiGroups: ["events.k8s.io"]
//!   resources: ["events"]
//!   verbs: ["create", "patch"]
//! ```
//!
//! and `apiGroups: [""]` instead for [`EventsApi::CoreV1`].

mod correlator;
mod validate;
mod writer;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::{EventOutcome, Metrics};
use crate::object::ReconciledObject;
use correlator::{Correlator, CorrelatorConfig, Observed, Occurrence, WriteOutcome};
pub(crate) use validate::{
    InvalidEvent, is_dns1123_label, is_dns1123_subdomain, is_qualified_name_part,
};
pub use writer::EventsApi;
use writer::Writer;

/// How often the writer looks for due writes when nothing new arrives: the resolution of the
/// one-write-per-second rule and of retries.
const WRITER_TICK: Duration = Duration::from_millis(200);
/// How often a dropped-Event warning may be logged.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Event severity, as in `corev1.EventTypeNormal` / `corev1.EventTypeWarning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The event itself is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
}

/// Event recorder settings. The defaults are client-go's numbers.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    correlator: CorrelatorConfig,
    api: EventsApi,
    host_name: String,
    concurrent_writes: usize,
    max_wait: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            correlator: CorrelatorConfig::default(),
            api: EventsApi::default(),
            host_name: default_host_name(),
            concurrent_writes: 16,
            max_wait: Duration::from_secs(10),
        }
    }
}

impl RecorderConfig {
    /// How many new Events may wait for their first write (default 4096). Past it, recording
    /// a new Event waits for room, up to [`RecorderConfig::max_wait`]; repeats of waiting
    /// ones never wait, they only raise a count.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.correlator.max_pending_creates = capacity.max(1);
        self
    }

    /// Event writes in flight at once (default 16).
    #[must_use]
    pub fn concurrent_writes(mut self, writes: usize) -> Self {
        self.concurrent_writes = writes.max(1);
        self
    }

    /// How long recording a new Event may wait for room in a full queue without any new Event
    /// being written meanwhile, before it is dropped and counted
    /// (`outcome="dropped_queue_full"`; default 10 s). While Events are being written, however
    /// slowly, waiting goes on, in turn; once the writes have stalled for this long, the queue
    /// counts as overloaded and new Events are dropped without waiting until a write lands.
    /// The wait counts against the reconcile's wall-clock timeout, not its CPU limit.
    #[must_use]
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Bytes the recorder's series may hold in memory (default 16 MiB). Past it, least
    /// recently used series with nothing left to write are forgotten first; when all owe a
    /// write, new Events wait as for a full queue.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.correlator.max_bytes = bytes.max(1 << 20);
        self
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        u64::try_from(self.correlator.max_bytes).unwrap_or(u64::MAX)
    }

    /// Entries in each of the recorder's caches: series, aggregates and spam buckets
    /// (default 4096). The least recently used entry goes first; what it had to write is
    /// written.
    #[must_use]
    pub fn cache_size(mut self, entries: usize) -> Self {
        self.correlator.cache_size = NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN);
        self
    }

    /// The spam filter: new Event objects per (plugin, object, type), as a token bucket of
    /// `burst` tokens with one back every `refill` (default 25 and 300 s).
    #[must_use]
    pub fn spam_filter(mut self, burst: u32, refill: Duration) -> Self {
        self.correlator.spam_burst = burst;
        self.correlator.spam_refill = refill;
        self
    }

    /// Which Events API to write (default `events.k8s.io/v1`).
    #[must_use]
    pub fn events_api(mut self, api: EventsApi) -> Self {
        self.api = api;
        self
    }

    /// The host's name in `reportingInstance` (default: `POD_NAME`, `HOSTNAME`, or the kernel's
    /// host name).
    #[must_use]
    pub fn host_name(mut self, name: impl Into<String>) -> Self {
        self.host_name = name.into();
        self
    }
}

fn default_host_name() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "wasm-reconciler".to_owned())
}

/// State shared by every [`Recorder`] handle and the writer task.
struct Shared {
    correlator: Mutex<Correlator>,
    wake: Notify,
    /// Notified when new Events have been written (or given up): room was made.
    room: Notify,
    /// Recordings waiting for room take turns, first come first served: one at a time looks
    /// for room, so a waiter is never starved by later ones.
    turn: tokio::sync::Semaphore,
    /// Recordings waiting for room (or for their turn). While there are any, new Events of
    /// other recordings queue behind them instead of taking the room first.
    waiting: AtomicUsize,
    /// Set when a waiter saw no new Event written for `max_wait`: the queue is overloaded,
    /// and new Events are dropped without waiting until a write lands again.
    stalled: AtomicBool,
    closing: AtomicBool,
    metrics: Arc<Metrics>,
    max_wait: Duration,
    /// Rate limit of the "events dropped" warning: when it was last logged (ms since start).
    last_drop_log: AtomicU64,
    started: Instant,
}

impl Shared {
    /// Logs a drop at most once per [`DROP_LOG_INTERVAL`].
    fn log_drop(&self, what: &str, plugin: &str, reason: &str, lost: u32) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_drop_log.load(Ordering::Relaxed);
        let due = last == 0
            || now.saturating_sub(last)
                >= u64::try_from(DROP_LOG_INTERVAL.as_millis()).unwrap_or(0);
        if due
            && self
                .last_drop_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%plugin, %reason, lost, "{what} (logged at most every {DROP_LOG_INTERVAL:?}; see wasm_reconciler_events_total)");
        }
    }
}

impl Shared {
    fn correlator(&self) -> std::sync::MutexGuard<'_, Correlator> {
        self.correlator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle that records events. Cheap to clone; recording never waits on the API server.
#[derive(Clone)]
pub(crate) struct Recorder {
    shared: Arc<Shared>,
}

impl Recorder {
    /// Starts the writer task and returns the handle plus the task to flush on shutdown.
    pub(crate) fn start(
        client: kube::Client,
        config: RecorderConfig,
        metrics: Arc<Metrics>,
    ) -> (Self, RecorderTask) {
        let shared = Arc::new(Shared {
            correlator: Mutex::new(Correlator::new(config.correlator)),
            wake: Notify::new(),
            room: Notify::new(),
            turn: tokio::sync::Semaphore::new(1),
            waiting: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            metrics,
            max_wait: config.max_wait,
            last_drop_log: AtomicU64::new(0),
            started: Instant::now(),
        });
        let writer = Arc::new(Writer::new(client, config.api, config.host_name));
        let task = tokio::spawn(run_writer(shared.clone(), writer, config.concurrent_writes));
        (
            Self {
                shared: shared.clone(),
            },
            RecorderTask { shared, task },
        )
    }

    /// Validates an event about `regarding` and takes it into account; waits for room when
    /// new Events are queued faster than they are written.
    pub(crate) async fn record(
        &self,
        plugin: &Arc<str>,
        regarding: &Arc<ReconciledObject>,
        event_type: EventType,
        reason: String,
        message: String,
        annotations: Vec<(String, String)>,
    ) -> Result<(), RecordError> {
        let metrics = &self.shared.metrics;
        let checked = validate::validate_reason(&reason)
            .and_then(|()| validate::validate_annotations(annotations));
        let annotations = match checked {
            Ok(annotations) => annotations,
            Err(invalid) => {
                // Never the guest's text as a label value: one fixed label for all refusals.
                metrics.events(
                    plugin,
                    crate::metrics::INVALID_REASON,
                    EventOutcome::invalid,
                    1,
                );
                return Err(invalid.into());
            }
        };
        let occurrence = Occurrence {
            plugin: plugin.clone(),
            regarding: regarding.clone(),
            event_type,
            reason,
            message: validate::truncate_message(message),
            annotations,
            time: Timestamp::now(),
        };
        let reason = occurrence.reason.clone();
        let shared = &self.shared;
        // Repeats never need room; a new Event takes room at once only if nobody is waiting.
        let queue_free = shared.waiting.load(Ordering::Acquire) == 0;
        let mut observed =
            shared
                .correlator()
                .observe(occurrence.clone(), Instant::now(), queue_free);
        if observed == Observed::QueueFull && !shared.closing.load(Ordering::Relaxed) {
            metrics
                .plugin
                .event_waits
                .get_or_create(&crate::metrics::PluginLabels::of(plugin))
                .inc();
            let _waiting = Waiting::count(&shared.waiting);
            observed = self.wait_for_room(occurrence).await;
        }
        match observed {
            Observed::New | Observed::Repeat => {}
            Observed::Aggregated => metrics.events(plugin, &reason, EventOutcome::aggregated, 1),
            Observed::Filtered => {
                metrics.events(plugin, &reason, EventOutcome::filtered, 1);
                tracing::debug!(%reason, "event filtered as spam");
            }
            Observed::QueueFull => {
                metrics.events(plugin, &reason, EventOutcome::dropped_queue_full, 1);
                self.shared.log_drop(
                    "event queue full and no Event written for the longest wait; event dropped",
                    plugin,
                    &reason,
                    1,
                );
            }
        }
        if matches!(observed, Observed::New | Observed::Aggregated) {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Waits for its turn, then for room for `occurrence` while new Events are being written;
    /// gives up (`QueueFull`) once none was written for `max_wait`, or at once while the queue
    /// is overloaded.
    async fn wait_for_room(&self, mut occurrence: Occurrence) -> Observed {
        let shared = &self.shared;
        // Never closed, so never an error; without a permit the wait is simply not ordered.
        let _turn = shared.turn.acquire().await.ok();
        loop {
            // Register for room before looking, so that a write finishing in between is seen.
            let mut room = std::pin::pin!(shared.room.notified());
            room.as_mut().enable();
            occurrence.time = Timestamp::now();
            let observed = shared
                .correlator()
                .observe(occurrence.clone(), Instant::now(), true);
            if observed != Observed::QueueFull
                || shared.closing.load(Ordering::Relaxed)
                || shared.stalled.load(Ordering::Acquire)
            {
                return observed;
            }
            shared.wake.notify_one();
            if tokio::time::timeout(shared.max_wait, room).await.is_err() {
                // Nothing written for max_wait: overloaded, not merely busy.
                shared.stalled.store(true, Ordering::Release);
                return Observed::QueueFull;
            }
        }
    }
}

/// Counts one waiting recording for as long as it lives (a reconcile that times out drops it
/// mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The writer task. [`RecorderTask::flush`] stops it after writing what is pending.
pub(crate) struct RecorderTask {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl RecorderTask {
    /// Writes everything pending, ignoring the one-write-per-second rule, and stops; gives up
    /// after `grace`, counting what was left as dropped.
    pub(crate) async fn flush(self, grace: Duration) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!(?grace, "events not all written within the grace period");
            abort.abort();
        }
    }
}

async fn run_writer(shared: Arc<Shared>, writer: Arc<Writer>, concurrency: usize) {
    let mut tick = tokio::time::interval(WRITER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight: JoinSet<(correlator::Write, correlator::WriteResult)> = JoinSet::new();
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        let room = concurrency.saturating_sub(in_flight.len());
        if room > 0 {
            let writes = shared
                .correlator()
                .due_writes(Instant::now(), closing, room);
            for write in writes {
                let writer = writer.clone();
                in_flight.spawn(async move {
                    let result = writer.write(&write).await;
                    (write, result)
                });
            }
        }
        let (series, aggregates, spam, pending, bytes, creates, lost) = {
            let mut correlator = shared.correlator();
            let (series, aggregates, spam) = correlator.cache_sizes();
            (
                series,
                aggregates,
                spam,
                correlator.has_pending(),
                correlator.bytes(),
                correlator.pending_creates(),
                correlator.take_lost(),
            )
        };
        for (plugin, reason, lost) in lost {
            shared
                .metrics
                .events(&plugin, &reason, EventOutcome::dropped_delivery, lost);
            shared.log_drop(
                "finished event series evicted before its last write",
                &plugin,
                &reason,
                lost,
            );
        }
        shared
            .metrics
            .event_caches(series, aggregates, spam, pending, bytes, creates);
        if closing && !pending && in_flight.is_empty() {
            return;
        }
        tokio::select! {
            () = shared.wake.notified(), if !closing => {}
            _ = tick.tick() => {}
            Some(done) = in_flight.join_next() => {
                let pending_before = shared.correlator().pending_creates();
                if let Ok((write, result)) = done {
                    finish(&shared, &write, result);
                }
                // Drain whatever else has finished, then look for more work.
                while let Some(done) = in_flight.try_join_next() {
                    if let Ok((write, result)) = done {
                        finish(&shared, &write, result);
                    }
                }
                // Room is made only when new Events left the queue (written or given up):
                // failed writes that will be retried make none.
                if shared.correlator().pending_creates() < pending_before {
                    shared.stalled.store(false, Ordering::Release);
                    shared.room.notify_waiters();
                }
            }
        }
    }
}

/// Takes a finished write into account and counts what it means.
fn finish(shared: &Shared, write: &correlator::Write, result: correlator::WriteResult) {
    let outcome = shared
        .correlator()
        .write_done(write, result, Instant::now());
    let (plugin, reason) = (&write.first.plugin, &write.first.reason);
    match outcome {
        WriteOutcome::Created => shared
            .metrics
            .events(plugin, reason, EventOutcome::created, 1),
        WriteOutcome::Patched => shared
            .metrics
            .events(plugin, reason, EventOutcome::patched, 1),
        WriteOutcome::Retrying => {}
        WriteOutcome::Dropped(lost) => {
            shared
                .metrics
                .events(plugin, reason, EventOutcome::dropped_delivery, lost);
            tracing::error!(event = %write.name, %reason, lost, "event writes given up");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder whose writes all fail (nothing listens on its API server's port).
    fn recorder_without_api_server(config: RecorderConfig) -> (Recorder, RecorderTask) {
        let url: http::Uri = "http://127.0.0.1:9".parse().unwrap_or_default();
        let client = kube::Client::try_from(kube::Config::new(url))
            .unwrap_or_else(|error| panic!("client: {error}"));
        Recorder::start(client, config, Metrics::new())
    }

    async fn record(recorder: &Recorder, reason: &str) {
        let plugin: Arc<str> = Arc::from("p");
        let object = Arc::new(ReconciledObject::test_config_map());
        let recorded = recorder
            .record(
                &plugin,
                &object,
                EventType::Normal,
                reason.into(),
                "m".into(),
                Vec::new(),
            )
            .await;
        assert!(recorded.is_ok(), "{recorded:?}");
    }

    fn dropped(recorder: &Recorder) -> f64 {
        let text = recorder.shared.metrics.encode();
        text.lines()
            .filter(|line| line.contains(r#"outcome="dropped_queue_full""#))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    #[tokio::test]
    async fn once_writes_stall_for_the_longest_wait_new_events_are_dropped_without_waiting() {
        let wait = Duration::from_millis(500);
        let (recorder, _task) =
            recorder_without_api_server(RecorderConfig::default().queue_capacity(1).max_wait(wait));
        // Takes the one place in the queue; its write fails and is retried later.
        record(&recorder, "First").await;
        // Waits the longest wait for a write that never lands, then is dropped.
        let started = Instant::now();
        record(&recorder, "Second").await;
        assert!(started.elapsed() >= wait, "it waited for room first");
        assert_eq!(dropped(&recorder), 1.0);
        // The queue is now known to be stalled: the next is dropped at once.
        let started = Instant::now();
        record(&recorder, "Third").await;
        assert!(
            started.elapsed() < wait,
            "no second wait while stalled: {:?}",
            started.elapsed()
        );
        assert_eq!(dropped(&recorder), 2.0);
        // A repeat of a queued Event never needs room.
        record(&recorder, "First").await;
        assert_eq!(dropped(&recorder), 2.0);
    }
}
