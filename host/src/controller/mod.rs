//! One kube-runtime controller per plugin: it watches the reconciled kind (and the owned
//! kinds, mapped to their controlling owner), runs at most the plugin's share of reconciles at
//! once, and turns each plugin result into an `Action`. A hot reload swaps the plugin version
//! under a running controller, which keeps its queue and backoff.
//!
//! The watch on the reconciled kind passes only generation changes (controller-runtime's
//! `GenerationChangedPredicate`), so that the plugin's own status writes do not trigger it
//! again; changes to owned objects always requeue their owner. Objects are cached without
//! `managedFields`, which no plugin needs and which is often the larger part of an object.
//!
//! What keeps one plugin from hurting the rest: a requeue rate limit ([`throttle`]), a circuit
//! breaker ([`breaker`]) and per-object backoff ([`backoff`]). What keeps the host going
//! through an API server outage ([`watch`]): watches retry every few seconds at most and list
//! afresh after an outage, readiness reports the outage, and when a watch comes back every
//! object is reconciled again at once, with its backoff forgotten.

mod backoff;
mod breaker;
mod throttle;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use kube::api::PartialObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource as _, ResourceExt as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tracing::Instrument;

use crate::client::Impersonation;
use crate::kinds::DeclaredKinds;
use crate::metrics::{
    ControllerSeries, Ended, Limit, LimitLabels, Metrics, PluginLabels, ReconcileResult,
};
use crate::object::ReconciledObject;
use crate::plugin::{CallError, CallScope, LivePlugin, Outcome, ScopeParts};
use crate::recorder::{EventType, Recorder};
use crate::status::{HostStatus, Severity};
use backoff::Backoff;
use breaker::{Breaker, Gate, Tripped};
use throttle::RequeueThrottle;
use watch::{WatchBackoff, relisting_watcher};

/// How often readiness re-checks whether the reconciled kind's cache is synced.
const CACHE_SYNC_POLL: Duration = Duration::from_millis(200);
/// Requeues asked for sooner than this go through the requeue rate limit and per-object
/// backoff (controller-runtime's `Requeue: true`); later ones are kept as asked.
const FAST_REQUEUE: Duration = Duration::from_secs(1);
/// How often a failing watch is logged at warn.
const WATCH_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// The reason of the Warning Event the host records when a plugin call ends on a limit.
pub(crate) const RECONCILE_FAILED: &str = "ReconcileFailed";

/// Why a reconcile will be retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileFailure {
    /// The plugin reported a transient error.
    #[error("transient error: {0}")]
    Transient(String),
    /// The call itself failed (trap, CPU, memory or time limit).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The object could not be handed to the plugin.
    #[error("object could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The plugin is suspended by its circuit breaker.
    #[error("plugin suspended for another {0:?}")]
    Suspended(Duration),
}

/// Per-host settings every controller applies.
#[derive(Debug, Clone)]
pub(crate) struct ControllerSettings {
    /// API calls one reconcile may make.
    pub(crate) max_api_calls: u32,
    /// Make the plugin's API calls as its own ServiceAccount.
    pub(crate) impersonate: Option<Impersonation>,
    /// Reconciles one controller runs at once: the plugin's slots when the controller
    /// starts. kube-runtime fixes it for the controller's life, so a plugin whose share
    /// later shrinks (another plugin added) has its extra reconciles wait for its slots, and
    /// one whose share grows (another removed) keeps the smaller number until its controller
    /// restarts. A larger bound lets reconciles pile up in flight behind the plugin's slots,
    /// which costs CPU (a third more in the fleet benchmark with the host's slots).
    pub(crate) concurrency: u32,
}

/// Everything one plugin's reconciles share.
pub(crate) struct PluginController {
    plugin: Arc<LivePlugin>,
    kinds: Arc<DeclaredKinds>,
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    status: HostStatus,
    settings: ControllerSettings,
    backoff: Backoff<ObjectRef<DynamicObject>>,
    throttle: RequeueThrottle,
    breaker: Breaker,
    counters: PluginCounters,
}

/// The plugin's own series of the per-plugin metrics, looked up once rather than per
/// reconcile.
struct PluginCounters {
    api_calls_refused: Counter,
    requeues_throttled: Counter,
    suspensions: Counter,
    suspended: Gauge,
    /// controller-runtime's names for the same reconciles.
    controller_runtime: ControllerSeries,
}

impl PluginCounters {
    fn of(metrics: &Metrics, plugin: &str) -> Self {
        let labels = PluginLabels::of(plugin);
        let families = &metrics.plugin;
        Self {
            api_calls_refused: families.api_calls_refused.get_or_create(&labels).clone(),
            requeues_throttled: families.requeues_throttled.get_or_create(&labels).clone(),
            suspensions: families.suspensions.get_or_create(&labels).clone(),
            suspended: families.suspended.get_or_create(&labels).clone(),
            controller_runtime: metrics.controller_runtime.of(plugin),
        }
    }
}

impl PluginController {
    pub(crate) fn new(
        plugin: Arc<LivePlugin>,
        kinds: Arc<DeclaredKinds>,
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        status: HostStatus,
        settings: ControllerSettings,
    ) -> Self {
        let counters = PluginCounters::of(&metrics, plugin.name());
        Self {
            counters,
            plugin,
            kinds,
            client,
            recorder,
            metrics,
            status,
            settings,
            backoff: Backoff::default(),
            throttle: RequeueThrottle::default(),
            breaker: Breaker::default(),
        }
    }

    fn check_name(&self, what: &str) -> String {
        format!("plugin/{}/{what}", self.plugin.name())
    }

    /// Runs the controller until `shutdown` completes, then lets running reconciles finish.
    /// Readiness holds back until the cache of the reconciled kind holds the initial list.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
        let reconciled = self.kinds.reconciles.resource.clone();
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &reconciled);
        let writer = reflector::store::Writer::new(reconciled.clone());
        let reader = writer.as_reader();
        let cache = reader.clone();
        let sync_check = self.check_name("cache");
        self.status
            .fail(&sync_check, Severity::Unready, "watch cache not synced yet");
        let status = self.status.clone();
        tokio::spawn(async move {
            // The store's readiness keeps only the waker of its latest waiter, and the
            // controller waits on it too: poll again now and then, or this wait may never wake.
            loop {
                let wait = tokio::time::timeout(CACHE_SYNC_POLL, cache.wait_until_ready());
                match wait.await {
                    Ok(Ok(())) => {
                        status.pass(&sync_check);
                        return;
                    }
                    // The watch ended before syncing (shutdown): never ready.
                    Ok(Err(_)) => return,
                    Err(_) => {}
                }
            }
        });

        let (recovered, reconcile_all) = mpsc::unbounded();
        let this = Arc::new(self);
        let health = Arc::new(WatchHealth {
            controller: this.clone(),
            check: this.check_name("watch"),
            failing: AtomicBool::new(false),
            last_logged: std::sync::Mutex::new(None),
            recovered,
        });
        let observed = health.clone();
        let trigger = relisting_watcher(api, watcher::Config::default())
            .backoff(WatchBackoff::default())
            .inspect(move |event| observed.observe(event.as_ref().err()))
            .modify(|object| object.managed_fields_mut().clear())
            .reflect(writer)
            .applied_objects()
            .predicate_filter(predicates::generation, Default::default());

        // A new version reconciles every object again, as a restart onto it would.
        let swapped = {
            let this = this.clone();
            futures::stream::unfold(this.plugin.swaps(), |mut swaps| async move {
                swaps.changed().await.ok()?;
                Some(((), swaps))
            })
            .map(move |()| this.version_swapped())
        };
        let concurrency = u16::try_from(this.settings.concurrency).unwrap_or(u16::MAX);
        let mut controller = Controller::for_stream_with(trigger, reader, reconciled)
            .with_config(Config::default().concurrency(concurrency))
            .reconcile_all_on(futures::stream::select(reconcile_all, swapped));
        for owned in &this.kinds.owns {
            // Only the owner references matter: watch metadata, not whole objects.
            let owned_api = Api::<PartialObjectMeta<DynamicObject>>::all_with(
                this.client.clone(),
                &owned.resource,
            );
            let observed = health.clone();
            let stream = relisting_watcher(owned_api, watcher::Config::default())
                .backoff(WatchBackoff::default())
                .inspect(move |event| observed.observe(event.as_ref().err()))
                .touched_objects();
            controller = controller.owns_stream_with(stream, owned.resource.clone());
        }
        drop(health);
        let plugin = this.plugin.name().clone();
        controller
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, this)
            .for_each(|result| {
                if let Err(error) = result {
                    tracing::debug!(plugin = %plugin, %error, "reconcile did not complete");
                }
                std::future::ready(())
            })
            .await;
    }

    /// The delay for a requeue the plugin asked for: as asked, unless it is a fast one, which
    /// goes through the per-object backoff and the plugin's requeue rate limit.
    fn requeue_delay(&self, key: &ObjectRef<DynamicObject>, asked: Duration) -> Duration {
        if asked >= FAST_REQUEUE {
            self.backoff.reset(key);
            return asked;
        }
        let delay = asked
            .max(self.backoff.next_delay(key.clone()))
            .max(self.throttle.reserve(Instant::now()));
        if delay > asked {
            self.counters.requeues_throttled.inc();
        }
        delay
    }

    /// Takes a call that ended on a limit or a trap into account: metrics, the breaker, and a
    /// Warning Event on the object (rate limited by the recorder's spam filter).
    async fn call_failed(&self, object: &Arc<ReconciledObject>, error: &CallError) {
        let plugin = self.plugin.name();
        self.metrics
            .plugin
            .limit_failures
            .get_or_create(&LimitLabels {
                plugin: plugin.to_string(),
                limit: limit_of(error),
            })
            .inc();
        if let Tripped::For(cool_down) = self.breaker.failed(Instant::now()) {
            tracing::error!(?cool_down, error = %error, "plugin suspended: its calls keep ending on limits or traps");
            self.counters.suspensions.inc();
            self.counters.suspended.set(1);
            self.status.fail(
                &self.check_name("breaker"),
                Severity::Info,
                format!(
                    "suspended for {cool_down:?}: {} calls in a row ended on a limit or a trap; last: {error}",
                    breaker::TRIP_AFTER
                ),
            );
        }
        let _ = self
            .recorder
            .record(
                plugin,
                object,
                EventType::Warning,
                RECONCILE_FAILED.to_owned(),
                format!("the host stopped the reconcile: {error}"),
                Vec::new(),
            )
            .await;
    }

    /// A new version of the plugin serves from now on: it gets a fresh start from the circuit
    /// breaker (a fix must not wait out the cool-down of the version it fixes).
    fn version_swapped(&self) {
        tracing::info!(plugin = %self.plugin.name(), "new plugin version; reconciling every object again");
        self.call_completed();
    }

    fn call_completed(&self) {
        self.breaker.succeeded();
        if self.counters.suspended.get() != 0 {
            self.counters.suspended.set(0);
            self.status.remove(&self.check_name("breaker"));
            tracing::info!("plugin resumed after its cool-down");
        }
    }
}

fn limit_of(error: &CallError) -> Limit {
    match error {
        CallError::Trap { .. } => Limit::trap,
        CallError::CpuLimit(_) => Limit::cpu,
        CallError::Timeout(_) => Limit::timeout,
        CallError::MemoryLimit { .. } => Limit::memory,
        CallError::PluginMemory { .. } => Limit::plugin_memory,
        CallError::TooMuchData { .. } => Limit::data,
        CallError::Instantiate(_) => Limit::instantiate,
    }
}

/// Watches the watch streams of one controller: readiness and a log line while they fail, and
/// when they recover, a reconcile of everything with backoff forgotten.
struct WatchHealth {
    controller: Arc<PluginController>,
    check: String,
    failing: AtomicBool,
    last_logged: std::sync::Mutex<Option<Instant>>,
    recovered: mpsc::UnboundedSender<()>,
}

impl WatchHealth {
    fn observe(&self, error: Option<&watcher::Error>) {
        let controller = &self.controller;
        match error {
            Some(error) => {
                let was_failing = self.failing.swap(true, Ordering::AcqRel);
                if !was_failing {
                    controller.status.fail(
                        &self.check,
                        Severity::Unready,
                        format!("watch failing: {error}"),
                    );
                }
                let mut last = self
                    .last_logged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                if last.is_none_or(|at| now.duration_since(at) >= WATCH_ERROR_LOG_INTERVAL) {
                    *last = Some(now);
                    tracing::warn!(plugin = %controller.plugin.name(), %error, "watch failed; retrying (logged at most every {WATCH_ERROR_LOG_INTERVAL:?})");
                }
            }
            None => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(plugin = %controller.plugin.name(), "watch recovered; reconciling every object again");
                    controller.status.pass(&self.check);
                    controller.backoff.clear();
                    let _ = self.recovered.unbounded_send(());
                }
            }
        }
    }
}

async fn reconcile(
    object: Arc<DynamicObject>,
    controller: Arc<PluginController>,
) -> Result<Action, ReconcileFailure> {
    let resource = &controller.kinds.reconciles.resource;
    let Some(reconciled) = ReconciledObject::from_dynamic(&object, resource) else {
        return Ok(Action::await_change());
    };
    let span = tracing::info_span!(
        "reconcile",
        plugin = %controller.plugin.name(),
        kind = %reconciled.kind,
        namespace = reconciled.namespace.as_deref().unwrap_or(""),
        name = %reconciled.name,
    );
    let key = ObjectRef::from_obj_with(object.as_ref(), resource.clone());
    async move {
        if object.meta().deletion_timestamp.is_some() {
            // Without a finalizer there is nothing left to do: owned objects are
            // garbage-collected through their owner references.
            tracing::debug!("object is being deleted; not reconciled");
            return Ok(Action::await_change());
        }
        if let Gate::Open(left) = controller.breaker.gate(Instant::now()) {
            tracing::debug!(?left, "plugin suspended; not reconciled");
            return Err(ReconcileFailure::Suspended(left));
        }
        // This version serves the whole reconcile, even if a newer one is swapped in meanwhile.
        let plugin = controller.plugin.current();
        let regarding = Arc::new(reconciled.clone());
        let scope = CallScope::new(
            reconciled,
            &ScopeParts {
                plugin: controller.plugin.name(),
                kinds: &controller.kinds,
                client: &controller.client,
                recorder: &controller.recorder,
                max_api_calls: controller.settings.max_api_calls,
                api_calls_refused: controller.counters.api_calls_refused.clone(),
                payload_bytes: &plugin.limits().payload_bytes,
                impersonate: controller.settings.impersonate.as_ref(),
            },
        );
        let object_json = serde_json::to_string(object.as_ref())?;
        let _worker = controller.counters.controller_runtime.worker();
        let started = std::time::Instant::now();
        let outcome = plugin.reconcile(scope, object_json).await;
        let elapsed = started.elapsed();
        let result = match &outcome {
            Ok(Outcome::Done { .. }) => ReconcileResult::success,
            Ok(Outcome::Terminal(_)) => ReconcileResult::terminal_error,
            Ok(Outcome::Transient(_)) => ReconcileResult::transient_error,
            Err(_) => ReconcileResult::failed,
        };
        controller
            .metrics
            .reconciled(controller.plugin.name(), result, elapsed);
        let ended = match &outcome {
            Ok(Outcome::Done {
                requeue_after: None,
            }) => Ended::Success,
            Ok(Outcome::Done {
                requeue_after: Some(after),
            }) if after.is_zero() => Ended::Requeue,
            Ok(Outcome::Done { .. }) => Ended::RequeueAfter,
            Ok(Outcome::Terminal(_)) => Ended::TerminalError,
            Ok(Outcome::Transient(_)) => Ended::Error,
            Err(CallError::Trap { .. }) => Ended::Panic,
            Err(_) => Ended::Error,
        };
        controller
            .counters
            .controller_runtime
            .reconciled(ended, elapsed);
        if outcome.is_ok() {
            controller.call_completed();
        }
        match outcome {
            Ok(Outcome::Done { requeue_after }) => {
                tracing::debug!(?elapsed, ?requeue_after, "reconciled");
                Ok(match requeue_after {
                    None => {
                        controller.backoff.reset(&key);
                        Action::await_change()
                    }
                    Some(asked) => Action::requeue(controller.requeue_delay(&key, asked)),
                })
            }
            Ok(Outcome::Terminal(message)) => {
                controller.backoff.reset(&key);
                tracing::warn!(?elapsed, error = %message, "terminal error; waiting for a change");
                Ok(Action::await_change())
            }
            Ok(Outcome::Transient(message)) => {
                tracing::warn!(?elapsed, error = %message, "transient error; will retry");
                Err(ReconcileFailure::Transient(message))
            }
            Err(error) => {
                match &error {
                    CallError::Trap {
                        backtrace, stderr, ..
                    } => {
                        tracing::error!(?elapsed, error = %error, %backtrace, %stderr, "plugin call failed; will retry");
                    }
                    _ => tracing::error!(?elapsed, error = %error, "plugin call failed; will retry"),
                }
                controller.call_failed(&regarding, &error).await;
                Err(ReconcileFailure::Call(error))
            }
        }
    }
    .instrument(span)
    .await
}

fn error_policy(
    object: Arc<DynamicObject>,
    failure: &ReconcileFailure,
    controller: Arc<PluginController>,
) -> Action {
    let key = ObjectRef::from_obj_with(
        object.as_ref(),
        controller.kinds.reconciles.resource.clone(),
    );
    if let ReconcileFailure::Suspended(left) = failure {
        return Action::requeue(*left);
    }
    // controller-runtime's default: the larger of per-object backoff and the plugin's bucket.
    let delay = controller
        .backoff
        .next_delay(key)
        .max(controller.throttle.reserve(Instant::now()));
    match controller.breaker.gate(Instant::now()) {
        Gate::Open(left) => Action::requeue(delay.max(left)),
        Gate::Closed => Action::requeue(delay),
    }
}
