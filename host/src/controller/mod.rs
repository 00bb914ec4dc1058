//! One kube-runtime controller per plugin: it watches the reconciled kind (and the owned
//! kinds, mapped to their controlling owner), and turns each plugin result into an `Action`.
//!
//! The watch on the reconciled kind passes only generation changes (controller-runtime's
//! `GenerationChangedPredicate`), so that the plugin's own status writes do not trigger it
//! again; changes to owned objects always requeue their owner.

mod backoff;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use tracing::Instrument;

use crate::kinds::DeclaredKinds;
use crate::metrics::{Metrics, ReconcileResult};
use crate::object::ReconciledObject;
use crate::plugin::{CallError, CallScope, Outcome, Plugin};
use crate::recorder::Recorder;
use backoff::Backoff;

/// How often readiness re-checks whether the reconciled kind's cache is synced.
const CACHE_SYNC_POLL: Duration = Duration::from_millis(200);

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
}

/// Everything one plugin's reconciles share.
pub(crate) struct PluginController {
    plugin: Arc<Plugin>,
    kinds: Arc<DeclaredKinds>,
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    backoff: Backoff<ObjectRef<DynamicObject>>,
}

impl PluginController {
    pub(crate) fn new(
        plugin: Arc<Plugin>,
        kinds: Arc<DeclaredKinds>,
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            plugin,
            kinds,
            client,
            recorder,
            metrics,
            backoff: Backoff::default(),
        }
    }

    /// Runs the controller until `shutdown` completes, then lets running reconciles finish.
    /// `synced` is sent once the cache of the reconciled kind holds the initial list.
    pub(crate) async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
        synced: tokio::sync::oneshot::Sender<()>,
    ) {
        let reconciled = self.kinds.reconciles.resource.clone();
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &reconciled);
        let writer = reflector::store::Writer::new(reconciled.clone());
        let reader = writer.as_reader();
        let cache = reader.clone();
        tokio::spawn(async move {
            // The store's readiness keeps only the waker of its latest waiter, and the
            // controller waits on it too: poll again now and then, or this wait may never wake.
            loop {
                let wait = tokio::time::timeout(CACHE_SYNC_POLL, cache.wait_until_ready());
                match wait.await {
                    Ok(Ok(())) => {
                        let _ = synced.send(());
                        return;
                    }
                    // The watch ended before syncing (shutdown): never ready.
                    Ok(Err(_)) => return,
                    Err(_) => {}
                }
            }
        });
        let trigger = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .predicate_filter(predicates::generation, Default::default());

        let mut controller = Controller::for_stream_with(trigger, reader, reconciled);
        for owned in &self.kinds.owns {
            let owned_api = Api::<DynamicObject>::all_with(self.client.clone(), &owned.resource);
            controller = controller.owns_with(
                owned_api,
                owned.resource.clone(),
                watcher::Config::default(),
            );
        }
        let plugin = self.plugin.name().clone();
        controller
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, Arc::new(self))
            .for_each(|result| {
                if let Err(error) = result {
                    tracing::debug!(plugin = %plugin, %error, "reconcile did not complete");
                }
                std::future::ready(())
            })
            .await;
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
        if object.metadata.deletion_timestamp.is_some() {
            // Without a finalizer there is nothing left to do: owned objects are
            // garbage-collected through their owner references.
            tracing::debug!("object is being deleted; not reconciled");
            return Ok(Action::await_change());
        }
        let scope = CallScope::new(
            reconciled,
            controller.plugin.name(),
            &controller.kinds,
            &controller.client,
            &controller.recorder,
        );
        let object_json = serde_json::to_string(object.as_ref())?;
        let started = std::time::Instant::now();
        let outcome = controller.plugin.reconcile(scope, object_json).await;
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
        match outcome {
            Ok(Outcome::Done { requeue_after }) => {
                controller.backoff.reset(&key);
                tracing::info!(?elapsed, ?requeue_after, "reconciled");
                Ok(requeue_after.map_or_else(Action::await_change, Action::requeue))
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
                tracing::error!(?elapsed, error = %error, "plugin call failed; will retry");
                Err(ReconcileFailure::Call(error))
            }
        }
    }
    .instrument(span)
    .await
}

fn error_policy(
    object: Arc<DynamicObject>,
    _failure: &ReconcileFailure,
    controller: Arc<PluginController>,
) -> Action {
    let key = ObjectRef::from_obj_with(
        object.as_ref(),
        controller.kinds.reconciles.resource.clone(),
    );
    let delay: Duration = controller.backoff.next_delay(key);
    Action::requeue(delay)
}
