//! Entry points for the benchmarks in `host/benches/` and the isolation tests: not a stable
//! API.
//!
//! Benchmarks need to run one reconcile without discovery or a controller around it; this
//! module wires a loaded plugin to a given client with the kinds taken as declared.

use std::path::Path;
use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject};

use crate::kinds::{DeclaredKinds, ResolvedKind};
use crate::object::ReconciledObject;
use crate::plugin::{
    self, CallError, CallScope, LoadError, Outcome, Plugin, Sandbox, SandboxConfig, ScopeParts,
};
use crate::recorder::{Recorder, RecorderConfig, RecorderTask};

/// One loaded plugin, ready to reconcile objects against `client`.
pub struct ReconcileHarness {
    plugin: Plugin,
    kinds: Arc<DeclaredKinds>,
    client: kube::Client,
    recorder: Recorder,
    _recorder_task: RecorderTask,
}

impl ReconcileHarness {
    /// Loads the plugin at `path`; its kinds are taken as namespaced, with guessed plurals.
    ///
    /// # Errors
    ///
    /// Fails as [`crate::LoadError`] says.
    pub async fn load(path: &Path, client: kube::Client) -> Result<Self, LoadError> {
        Self::load_with(path, client, SandboxConfig::default()).await
    }

    /// Like [`ReconcileHarness::load`], with the given limits.
    ///
    /// # Errors
    ///
    /// Fails as [`crate::LoadError`] says.
    pub async fn load_with(
        path: &Path,
        client: kube::Client,
        sandbox: SandboxConfig,
    ) -> Result<Self, LoadError> {
        let sandbox = Sandbox::new(sandbox).map_err(|source| LoadError::Link {
            path: path.to_owned(),
            source,
        })?;
        let linker = plugin::linker(&sandbox).map_err(|source| LoadError::Link {
            path: path.to_owned(),
            source,
        })?;
        let compiler = plugin::Compiler::uncached(&sandbox);
        let mut plugin = Plugin::load(&sandbox, &linker, &compiler, path).await?;
        // The whole default budget for this one plugin, as a host running only it would give.
        let budget = crate::budget::Budget::new(
            crate::budget::DEFAULT_POD_LIMIT,
            crate::budget::BudgetSource::Default,
            16 << 20,
            sandbox.config.instance_slots(),
        )
        .map_err(|error| LoadError::Link {
            path: path.to_owned(),
            source: wasmtime::Error::msg(error.to_string()),
        })?;
        plugin.set_limits(
            plugin::PluginLimits::new(budget.share(1)),
            Default::default(),
        );
        let resolve = |gvk: &kube::api::GroupVersionKind| ResolvedKind {
            gvk: gvk.clone(),
            resource: ApiResource::from_gvk(gvk),
            namespaced: true,
        };
        let metadata = plugin.metadata();
        let kinds = Arc::new(DeclaredKinds {
            reconciles: resolve(&metadata.reconciles),
            owns: metadata.owns.iter().map(resolve).collect(),
            reads: metadata.reads.iter().map(resolve).collect(),
            watches: metadata.watches.iter().map(|w| resolve(&w.kind)).collect(),
        });
        let (recorder, recorder_task) = Recorder::start(
            client.clone(),
            RecorderConfig::default(),
            crate::metrics::Metrics::new(),
        );
        Ok(Self {
            plugin,
            kinds,
            client,
            recorder,
            _recorder_task: recorder_task,
        })
    }

    /// Calls `metadata` in a fresh instance: the cost of an instance with the least work.
    ///
    /// # Errors
    ///
    /// Why the call failed, as text.
    pub async fn metadata_call(&self) -> Result<(), CallError> {
        self.plugin.call_metadata().await.map(drop)
    }

    /// Runs one reconcile of `object` in a fresh instance. The inner result is the plugin's
    /// own (its error message); the outer one says whether the call itself completed.
    ///
    /// # Errors
    ///
    /// Why the call failed: a trap, or a CPU, memory or time limit.
    ///
    /// # Panics
    ///
    /// If `object` has no name or uid, or cannot be serialized: the caller's mistake.
    pub async fn reconcile(&self, object: &DynamicObject) -> Result<Result<(), String>, CallError> {
        let reconciled =
            ReconciledObject::from_meta(&object.metadata, &self.kinds.reconciles.resource)
                .expect("the object has a name and a uid");
        let scope = CallScope::new(
            reconciled,
            &ScopeParts {
                plugin: self.plugin.name(),
                kinds: &self.kinds,
                client: &self.client,
                recorder: &self.recorder,
                max_api_calls: crate::manager::DEFAULT_MAX_API_CALLS,
                api_calls_refused: Default::default(),
                payload_bytes: &self.plugin.limits().payload_bytes,
                impersonate: None,
                // No caches: reads go to the (in-memory) API server.
                caches: &Arc::default(),
            },
        );
        let json = serde_json::to_string(object).expect("the object serializes");
        Ok(match self.plugin.reconcile(scope, json).await? {
            Outcome::Done { .. } => Ok(()),
            Outcome::Transient(message) | Outcome::Terminal(message) => Err(message),
        })
    }
}
