//! Kubernetes Events recorded by plugins: validated at the call, correlated in memory (series,
//! aggregation, spam filter: see [`correlator`]), and written to the API server by one
//! background task, so a guest never waits on the API server.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::metrics::{EventOutcome, Metrics};
use crate::object::ReconciledObject;
use correlator::{Correlator, CorrelatorConfig, Observed, Occurrence, WriteOutcome};
pub(crate) use validate::{InvalidEvent, is_dns1123_label};
pub use writer::EventsApi;
use writer::Writer;

/// How often the writer looks for due writes when nothing new arrives: the resolution of the
/// one-write-per-second rule and of retries.
const WRITER_TICK: Duration = Duration::from_millis(200);

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
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            correlator: CorrelatorConfig::default(),
            api: EventsApi::default(),
            host_name: default_host_name(),
        }
    }
}

impl RecorderConfig {
    /// How many new Events may wait to be written (default 1000). Past it, new events are
    /// dropped and counted (`outcome="dropped_queue_full"`); repeats of waiting ones still
    /// count.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.correlator.max_pending_creates = capacity.max(1);
        self
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
    closing: AtomicBool,
    metrics: Arc<Metrics>,
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
            closing: AtomicBool::new(false),
            metrics,
        });
        let writer = Writer::new(client, config.api, config.host_name);
        let task = tokio::spawn(run_writer(shared.clone(), writer));
        (
            Self {
                shared: shared.clone(),
            },
            RecorderTask { shared, task },
        )
    }

    /// Validates an event about `regarding` and takes it into account.
    pub(crate) fn record(
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
                metrics.events(plugin, &reason, EventOutcome::invalid, 1);
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
        let observed = self.shared.correlator().observe(occurrence, Instant::now());
        match observed {
            Observed::New | Observed::Repeat => {}
            Observed::Aggregated => metrics.events(plugin, &reason, EventOutcome::aggregated, 1),
            Observed::Filtered => {
                metrics.events(plugin, &reason, EventOutcome::filtered, 1);
                tracing::debug!(%reason, "event filtered as spam");
            }
            Observed::QueueFull => {
                metrics.events(plugin, &reason, EventOutcome::dropped_queue_full, 1);
                tracing::warn!(%reason, "event queue full; event dropped");
            }
        }
        if matches!(observed, Observed::New | Observed::Aggregated) {
            self.shared.wake.notify_one();
        }
        Ok(())
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

async fn run_writer(shared: Arc<Shared>, writer: Writer) {
    let mut tick = tokio::time::interval(WRITER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        let writes = shared.correlator().due_writes(Instant::now(), closing);
        for write in &writes {
            let result = writer.write(write).await;
            let outcome = shared
                .correlator()
                .write_done(write, result, Instant::now());
            let (plugin, reason) = (&write.first.plugin, &write.first.reason);
            match outcome {
                WriteOutcome::Created => {
                    shared
                        .metrics
                        .events(plugin, reason, EventOutcome::created, 1)
                }
                WriteOutcome::Patched => {
                    shared
                        .metrics
                        .events(plugin, reason, EventOutcome::patched, 1)
                }
                WriteOutcome::Retrying => {}
                WriteOutcome::Dropped(lost) => {
                    shared
                        .metrics
                        .events(plugin, reason, EventOutcome::dropped_delivery, lost);
                    tracing::error!(event = %write.name, %reason, lost, "event writes given up");
                }
            }
        }
        let (series, aggregates, spam, pending) = {
            let correlator = shared.correlator();
            let (series, aggregates, spam) = correlator.cache_sizes();
            (series, aggregates, spam, correlator.has_pending())
        };
        shared
            .metrics
            .event_caches(series, aggregates, spam, pending);
        if closing && !pending {
            return;
        }
        if closing && writes.is_empty() {
            // Only retries are left, and they are not due yet: wait for them.
            tick.tick().await;
            continue;
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            _ = tick.tick() => {}
        }
    }
}
