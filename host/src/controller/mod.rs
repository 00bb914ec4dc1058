//! One kube-runtime controller per plugin: it is triggered by the host's shared caches of the
//! reconciled kind, the owned kinds (mapped to their controlling owner) and the watched kinds
//! (mapped as the plugin declared), runs at most the plugin's concurrency of reconciles at
//! once, and turns each plugin result into an `Action`. A hot reload swaps the plugin version
//! under a running controller, which keeps its queue and backoff.
//!
//! Changes of the reconciled kind requeue an object only when its generation changes or its
//! deletion starts (controller-runtime's `GenerationChangedPredicate`), so that the plugin's
//! own status writes do not trigger it again; changes to owned and watched objects always
//! requeue what they map to. A plugin with a finalizer ([`finalizer`]) has it added before an
//! object's first reconcile, and `cleanup` called instead of `reconcile` once the object is
//! being deleted, or once it leaves the plugin's scope.
//!
//! What keeps one plugin from hurting the rest: a requeue rate limit ([`throttle`]), a circuit
//! breaker ([`breaker`]) and per-object backoff ([`backoff`]). What keeps the host going
//! through an API server outage ([`watch`]): watches retry every few seconds at most and list
//! afresh after an outage, readiness reports the outage, and when a watch comes back every
//! object is reconciled again at once, with its backoff forgotten.

mod backoff;
mod breaker;
mod finalizer;
mod throttle;
mod triggers;
mod watch;

pub(crate) use triggers::ControllerCaches;
pub(crate) use watch::{WatchBackoff, relisting_watcher};

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource as _, ResourceExt as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cache::{CachedObject, Change};
use crate::client::Impersonation;
use crate::kinds::DeclaredKinds;
use crate::metrics::{
    ControllerSeries, Ended, Limit, LimitLabels, Metrics, PluginLabels, ReconcileResult,
    ReconcileSeries,
};
use crate::object::ReconciledObject;
use crate::plugin::{CallError, CallScope, LivePlugin, Outcome, ScopeParts};
use crate::recorder::{EventType, Recorder};
use crate::status::{HostStatus, Severity};
use backoff::Backoff;
use breaker::{Breaker, Gate, Tripped};
use finalizer::{FinalizerWriter, has_finalizer};
use throttle::RequeueThrottle;
use triggers::{GenerationFilter, Requeue, next_change, requeue_mapped, requeue_owners};

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
    /// The plugin is suspended by its circuit breaker.
    #[error("plugin suspended for another {0:?}")]
    Suspended(Duration),
    /// Adding or removing the plugin's finalizer failed.
    #[error("could not {action} finalizer {finalizer}: {source}")]
    Finalizer {
        action: &'static str,
        finalizer: String,
        #[source]
        source: kube::Error,
    },
}

/// Per-host settings every controller applies.
#[derive(Debug, Clone)]
pub(crate) struct ControllerSettings {
    /// API calls one reconcile may make.
    pub(crate) max_api_calls: u32,
    /// Make the plugin's API calls as its own ServiceAccount.
    pub(crate) impersonate: Option<Impersonation>,
    /// Reconciles one controller runs at once: what the plugin asked for (a 0.1.0 plugin
    /// asks for nothing), at most the plugin's slots when the controller starts.
    /// kube-runtime fixes it for the controller's life, so a plugin whose share later shrinks
    /// (another plugin added) has its extra reconciles wait for its slots, and one whose
    /// share grows (another removed) keeps the smaller number until its controller restarts.
    /// A larger bound lets reconciles pile up in flight behind the plugin's slots, which
    /// costs CPU (a third more in the fleet benchmark with the host's slots).
    pub(crate) concurrency: u32,
}

/// What one of the plugin's calls does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Reconcile,
    Cleanup,
}

/// Everything one plugin's reconciles share.
pub(crate) struct PluginController {
    plugin: Arc<LivePlugin>,
    kinds: Arc<DeclaredKinds>,
    caches: ControllerCaches,
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    status: HostStatus,
    settings: ControllerSettings,
    /// The plugin's finalizer, with what writes it.
    finalizer: Option<(String, FinalizerWriter)>,
    backoff: Backoff<ObjectRef<CachedObject>>,
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
    /// The host's own reconcile counts and durations.
    reconciles: ReconcileSeries,
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
            reconciles: metrics.reconcile_series(plugin),
            controller_runtime: metrics.controller_runtime.of(plugin),
        }
    }
}

/// What a controller is made of besides its plugin.
pub(crate) struct ControllerParts {
    pub(crate) kinds: Arc<DeclaredKinds>,
    pub(crate) caches: ControllerCaches,
    pub(crate) client: kube::Client,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) status: HostStatus,
    pub(crate) settings: ControllerSettings,
}

impl PluginController {
    pub(crate) fn new(plugin: Arc<LivePlugin>, parts: ControllerParts) -> Self {
        let counters = PluginCounters::of(&parts.metrics, plugin.name());
        let finalizer = plugin.current().metadata().finalizer.clone().map(|name| {
            let writer = FinalizerWriter::new(
                parts.client.clone(),
                parts.kinds.reconciles.resource.clone(),
                parts.settings.impersonate.clone(),
            );
            (name, writer)
        });
        Self {
            counters,
            plugin,
            kinds: parts.kinds,
            caches: parts.caches,
            client: parts.client,
            recorder: parts.recorder,
            metrics: parts.metrics,
            status: parts.status,
            settings: parts.settings,
            finalizer,
            backoff: Backoff::default(),
            throttle: RequeueThrottle::default(),
            breaker: Breaker::default(),
        }
    }

    fn check_name(&self, what: &str) -> String {
        format!("plugin/{}/{what}", self.plugin.name())
    }

    /// Runs the controller until `shutdown` completes, then lets running reconciles finish.
    /// Readiness holds back until every cache the plugin uses holds its initial list.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
        let (objects, requeued) = mpsc::unbounded();
        let (all, reconcile_all) = mpsc::unbounded();
        let requeue = Requeue { objects, all };
        let (releases, released) = mpsc::unbounded();
        let this = Arc::new(self);
        let mut tasks = JoinSet::new();

        // Subscribe before anything else, so that no change after the first list is missed.
        tasks.spawn(this.clone().follow_reconciled(
            this.caches.reconciled.subscribe(),
            requeue.clone(),
            releases,
        ));
        for cache in &this.caches.owned {
            let (changes, requeue, this) = (cache.subscribe(), requeue.clone(), this.clone());
            tasks.spawn(async move {
                this.follow_other(changes, requeue, |object, requeue| {
                    let reconciled = &this.caches.reconciled;
                    requeue_owners(
                        object,
                        reconciled.resource(),
                        reconciled.namespaced(),
                        true,
                        requeue,
                    );
                })
                .await;
            });
        }
        for (cache, mapping) in &this.caches.watched {
            let (changes, requeue, this) = (cache.subscribe(), requeue.clone(), this.clone());
            let mapping = mapping.clone();
            tasks.spawn(async move {
                this.follow_other(changes, requeue, |object, requeue| {
                    requeue_mapped(object, &mapping, &this.caches.reconciled, requeue);
                })
                .await;
            });
        }
        tasks.spawn(this.clone().release_all(released));
        tasks.spawn(this.clone().watch_health(requeue.clone()));
        let sync_check = this.check_name("cache");
        this.status
            .fail(&sync_check, Severity::Unready, "watch cache not synced yet");
        {
            let (this, requeue) = (this.clone(), requeue.clone());
            tasks.spawn(async move {
                for cache in this.caches.all() {
                    cache.ready().await;
                }
                this.status.pass(&sync_check);
                // Every object once, whether this controller's caches were new or shared.
                requeue.everything();
            });
        }
        if let Some(every) = this.plugin.current().metadata().resync {
            let requeue = requeue.clone();
            tasks.spawn(async move {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    ticks.tick().await;
                    requeue.everything();
                }
            });
        }

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
        let reconciled = this.kinds.reconciles.resource.clone();
        let store = this.caches.reconciled.store().clone();
        // Every trigger comes through `reconcile_on`: the primary stream never yields.
        let controller = Controller::for_stream_with(
            futures::stream::pending::<Result<CachedObject, watcher::Error>>(),
            store,
            reconciled,
        )
        .with_config(Config::default().concurrency(concurrency))
        .reconcile_on(requeued)
        .reconcile_all_on(futures::stream::select(reconcile_all, swapped));
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
        tasks.abort_all();
    }

    /// Requeues reconciled objects as they change (within the generation filter), sends
    /// objects that left the plugin's scope with its finalizer on to be released.
    async fn follow_reconciled(
        self: Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<Change>,
        requeue: Requeue,
        releases: mpsc::UnboundedSender<Arc<CachedObject>>,
    ) {
        let resource = self.kinds.reconciles.resource.clone();
        let mut filter = GenerationFilter::default();
        while let Some(change) = next_change(&mut changes).await {
            match change {
                Change::Applied(object) => {
                    let key = ObjectRef::from_obj_with(object.as_ref(), resource.clone());
                    if filter.passes(&key, &object) {
                        requeue.object(key);
                    }
                }
                Change::Deleted(object) => {
                    let key = ObjectRef::from_obj_with(object.as_ref(), resource.clone());
                    filter.forget(&key);
                    if let Some((finalizer, _)) = &self.finalizer
                        && has_finalizer(&object, finalizer)
                    {
                        let _ = releases.unbounded_send(object);
                    }
                }
                Change::Relisted => requeue.everything(),
            }
        }
    }

    /// Requeues what each change of an owned or watched kind maps to.
    async fn follow_other(
        &self,
        mut changes: tokio::sync::broadcast::Receiver<Change>,
        requeue: Requeue,
        map: impl Fn(&CachedObject, &Requeue),
    ) {
        while let Some(change) = next_change(&mut changes).await {
            match change {
                Change::Applied(object) | Change::Deleted(object) => map(&object, &requeue),
                Change::Relisted => requeue.everything(),
            }
        }
    }

    /// Readiness and a log line while any of the plugin's watches fails; when they all
    /// recover, a reconcile of everything with backoff forgotten.
    async fn watch_health(self: Arc<Self>, requeue: Requeue) {
        let check = self.check_name("watch");
        let mut health: Vec<_> = self.caches.all().iter().map(|c| c.health()).collect();
        let mut failing = false;
        let mut last_logged: Option<Instant> = None;
        loop {
            let error = health.iter().find_map(|h| h.borrow().clone());
            match error {
                Some(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        self.status.fail(
                            &check,
                            Severity::Unready,
                            format!("watch failing: {error}"),
                        );
                    }
                    let now = Instant::now();
                    if last_logged
                        .is_none_or(|at| now.duration_since(at) >= WATCH_ERROR_LOG_INTERVAL)
                    {
                        last_logged = Some(now);
                        tracing::warn!(plugin = %self.plugin.name(), %error, "watch failed; retrying (logged at most every {WATCH_ERROR_LOG_INTERVAL:?})");
                    }
                }
                None => {
                    if std::mem::replace(&mut failing, false) {
                        tracing::info!(plugin = %self.plugin.name(), "watch recovered; reconciling every object again");
                        self.status.pass(&check);
                        self.backoff.clear();
                        requeue.everything();
                    }
                }
            }
            let changed =
                futures::future::select_all(health.iter_mut().map(|h| Box::pin(h.changed())));
            if changed.await.0.is_err() {
                return;
            }
        }
    }

    /// Releases objects that left the plugin's scope carrying its finalizer, each on its own.
    async fn release_all(
        self: Arc<Self>,
        mut released: mpsc::UnboundedReceiver<Arc<CachedObject>>,
    ) {
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                object = released.next() => match object {
                    Some(object) => {
                        running.spawn(self.clone().release(object));
                    }
                    None => return,
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
    }

    /// Runs `cleanup` on an object that left the plugin's scope (its labels stopped matching
    /// the selector) and removes the plugin's finalizer, retrying with the object's backoff,
    /// until the object is gone, released, or back in scope.
    async fn release(self: Arc<Self>, last_seen: Arc<CachedObject>) {
        let Some((finalizer, writer)) = self.finalizer.clone() else {
            return;
        };
        let finalizer = finalizer.as_str();
        let key =
            ObjectRef::from_obj_with(last_seen.as_ref(), self.kinds.reconciles.resource.clone());
        let span = tracing::info_span!(
            "release",
            plugin = %self.plugin.name(),
            kind = %key.dyntype.kind,
            namespace = key.namespace.as_deref().unwrap_or(""),
            name = %key.name,
        );
        async move {
            loop {
                if self.caches.reconciled.store().get(&key).is_some() {
                    tracing::debug!("back in scope; the controller takes it from here");
                    break;
                }
                let current = match writer.get_live(&last_seen).await {
                    Ok(Some(current)) if current.metadata.uid == last_seen.metadata.uid => current,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "could not read an object that left the plugin's scope; retrying");
                        self.wait(&key).await;
                        continue;
                    }
                };
                if !has_finalizer(&current, finalizer) {
                    break;
                }
                let current = Arc::new(current);
                match self.invoke(&current, Call::Cleanup).await {
                    Ok(Outcome::Done { .. }) => match writer.remove(&current, finalizer).await {
                        Ok(()) => {
                            tracing::info!("left the plugin's scope: cleaned up and finalizer removed");
                            self.backoff.reset(&key);
                            break;
                        }
                        Err(error) => tracing::warn!(%error, "could not remove the finalizer; retrying"),
                    },
                    Ok(Outcome::Terminal(message) | Outcome::Transient(message)) => {
                        tracing::warn!(error = %message, "cleanup of an object that left the plugin's scope failed; retrying");
                    }
                    Err(error) => tracing::warn!(%error, "cleanup of an object that left the plugin's scope failed; retrying"),
                }
                self.wait(&key).await;
            }
        }
        .instrument(span)
        .await;
    }

    /// Waits out the object's next backoff delay.
    async fn wait(&self, key: &ObjectRef<CachedObject>) {
        tokio::time::sleep(self.backoff.next_delay(key.clone())).await;
    }

    /// Calls the plugin on `object`, with the metrics, breaker and Warning Event of a call
    /// that ends on a limit.
    async fn invoke(
        &self,
        object: &Arc<CachedObject>,
        call: Call,
    ) -> Result<Outcome, ReconcileFailure> {
        let resource = &self.kinds.reconciles.resource;
        let Some(reconciled) = ReconciledObject::from_meta(&object.metadata, resource) else {
            return Ok(Outcome::Done {
                requeue_after: None,
            });
        };
        if let Gate::Open(left) = self.breaker.gate(Instant::now()) {
            tracing::debug!(?left, "plugin suspended; not called");
            return Err(ReconcileFailure::Suspended(left));
        }
        // This version serves the whole call, even if a newer one is swapped in meanwhile.
        let plugin = self.plugin.current();
        let regarding = Arc::new(reconciled.clone());
        let scope = CallScope::new(
            reconciled,
            &ScopeParts {
                plugin: self.plugin.name(),
                kinds: &self.kinds,
                client: &self.client,
                recorder: &self.recorder,
                max_api_calls: self.settings.max_api_calls,
                api_calls_refused: self.counters.api_calls_refused.clone(),
                payload_bytes: &plugin.limits().payload_bytes,
                impersonate: self.settings.impersonate.as_ref(),
                caches: &self.caches.reads,
            },
        );
        let object_json = object.json().to_owned();
        let _worker = self.counters.controller_runtime.worker();
        let started = std::time::Instant::now();
        let outcome = match call {
            Call::Reconcile => plugin.reconcile(scope, object_json).await,
            Call::Cleanup => plugin.cleanup(scope, object_json).await,
        };
        let elapsed = started.elapsed();
        let result = match &outcome {
            Ok(Outcome::Done { .. }) => ReconcileResult::success,
            Ok(Outcome::Terminal(_)) => ReconcileResult::terminal_error,
            Ok(Outcome::Transient(_)) => ReconcileResult::transient_error,
            Err(_) => ReconcileResult::failed,
        };
        self.counters.reconciles.reconciled(result, elapsed);
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
        self.counters.controller_runtime.reconciled(ended, elapsed);
        match outcome {
            Ok(outcome) => {
                self.call_completed();
                tracing::debug!(?elapsed, ?call, ?outcome, "plugin called");
                Ok(outcome)
            }
            Err(error) => {
                match &error {
                    CallError::Trap {
                        backtrace, stderr, ..
                    } => {
                        tracing::error!(?elapsed, ?call, error = %error, %backtrace, %stderr, "plugin call failed; will retry");
                    }
                    _ => {
                        tracing::error!(?elapsed, ?call, error = %error, "plugin call failed; will retry")
                    }
                }
                self.call_failed(&regarding, &error).await;
                Err(ReconcileFailure::Call(error))
            }
        }
    }

    /// The delay for a requeue the plugin asked for: as asked, unless it is a fast one, which
    /// goes through the per-object backoff and the plugin's requeue rate limit.
    fn requeue_delay(&self, key: &ObjectRef<CachedObject>, asked: Duration) -> Duration {
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

async fn reconcile(
    object: Arc<CachedObject>,
    controller: Arc<PluginController>,
) -> Result<Action, ReconcileFailure> {
    let resource = &controller.kinds.reconciles.resource;
    let span = tracing::info_span!(
        "reconcile",
        plugin = %controller.plugin.name(),
        kind = %resource.kind,
        namespace = object.namespace().as_deref().unwrap_or(""),
        name = %object.name_any(),
    );
    let key = ObjectRef::from_obj_with(object.as_ref(), resource.clone());
    async move {
        let deleting = object.meta().deletion_timestamp.is_some();
        let Some((finalizer, writer)) = &controller.finalizer else {
            if deleting {
                // Without a finalizer there is nothing left to do: owned objects are
                // garbage-collected through their owner references.
                tracing::debug!("object is being deleted; not reconciled");
                return Ok(Action::await_change());
            }
            return controller.reconcile_object(&object, &key).await;
        };
        if deleting {
            if !has_finalizer(&object, finalizer) {
                tracing::debug!("object is being deleted and cleaned up; nothing to do");
                return Ok(Action::await_change());
            }
            return match controller.invoke(&object, Call::Cleanup).await? {
                Outcome::Done { .. } => {
                    writer.remove(&object, finalizer).await.map_err(|source| {
                        ReconcileFailure::Finalizer {
                            action: "remove",
                            finalizer: finalizer.clone(),
                            source,
                        }
                    })?;
                    tracing::info!("cleaned up; finalizer removed");
                    controller.backoff.reset(&key);
                    Ok(Action::await_change())
                }
                Outcome::Terminal(message) => {
                    controller.backoff.reset(&key);
                    tracing::warn!(error = %message, "cleanup failed with a terminal error; waiting for a change");
                    Ok(Action::await_change())
                }
                Outcome::Transient(message) => {
                    tracing::warn!(error = %message, "cleanup failed; will retry");
                    Err(ReconcileFailure::Transient(message))
                }
            };
        }
        if has_finalizer(&object, finalizer) {
            return controller.reconcile_object(&object, &key).await;
        }
        // The finalizer goes on before the first reconcile; the object as stored then is what
        // the plugin sees.
        let stored = writer.add(&object, finalizer).await.map_err(|source| {
            ReconcileFailure::Finalizer {
                action: "add",
                finalizer: finalizer.clone(),
                source,
            }
        })?;
        tracing::debug!("finalizer added");
        controller.reconcile_object(&Arc::new(stored), &key).await
    }
    .instrument(span)
    .await
}

impl PluginController {
    /// Calls `reconcile` on `object` and turns what it says into what the queue does next.
    async fn reconcile_object(
        &self,
        object: &Arc<CachedObject>,
        key: &ObjectRef<CachedObject>,
    ) -> Result<Action, ReconcileFailure> {
        match self.invoke(object, Call::Reconcile).await? {
            Outcome::Done { requeue_after } => Ok(match requeue_after {
                None => {
                    self.backoff.reset(key);
                    Action::await_change()
                }
                Some(asked) => Action::requeue(self.requeue_delay(key, asked)),
            }),
            Outcome::Terminal(message) => {
                self.backoff.reset(key);
                tracing::warn!(error = %message, "terminal error; waiting for a change");
                Ok(Action::await_change())
            }
            Outcome::Transient(message) => {
                tracing::warn!(error = %message, "transient error; will retry");
                Err(ReconcileFailure::Transient(message))
            }
        }
    }
}

fn error_policy(
    object: Arc<CachedObject>,
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
