//! The host's lifecycle: load every plugin in the plugins directory, resolve its kinds, run
//! one controller per plugin, and on shutdown let reconciles finish and flush events.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::budget::{Budget, BudgetError};
use crate::client::Impersonation;
use crate::controller::{ControllerSettings, PluginController};
use crate::health;
use crate::kinds::DeclaredKinds;
use crate::metrics::{Metrics, PluginLabels};
use crate::plugin::{
    self, CompileIn, Compiler, LoadError, Plugin, PluginLimits, Provenance, Sandbox, SandboxConfig,
};
use crate::recorder::{Recorder, RecorderConfig};
use crate::status::{HostStatus, Severity};

/// Discovery retries for a plugin whose kinds the API server does not serve (yet): from one
/// second, doubling, up to a minute.
const DISCOVERY_RETRY_FIRST: Duration = Duration::from_secs(1);
const DISCOVERY_RETRY_MAX: Duration = Duration::from_secs(60);
/// API calls one reconcile may make, by default.
pub(crate) const DEFAULT_MAX_API_CALLS: u32 = 256;

/// Why the host could not run.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The plugins directory could not be listed.
    #[error("failed to read the plugins directory {path}")]
    PluginsDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A health or metrics address could not be bound.
    #[error("failed to listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Wasm engine could not be set up.
    #[error("failed to set up the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    /// The memory budget cannot hold the host and its slots.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// No plugin could be started; each failure was logged.
    #[error("no plugin could be started from {path} ({failed} failed to load; see the log)")]
    NoPlugins {
        /// The directory.
        path: PathBuf,
        /// How many plugins failed.
        failed: usize,
    },
}

/// The host: what it runs and under which limits. Nothing runs until [`Host::run`].
#[derive(Debug, Clone)]
pub struct Host {
    plugins_dir: PathBuf,
    sandbox: SandboxConfig,
    recorder: RecorderConfig,
    shutdown_grace: Duration,
    metrics: Arc<Metrics>,
    health_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    memory_budget: Option<u64>,
    max_api_calls: u32,
    impersonate_namespace: Option<String>,
    cache_dir: Option<PathBuf>,
    compile_in: CompileIn,
}

impl Host {
    /// A host for the `.wasm` plugins in `plugins_dir`, with default limits.
    pub fn new(plugins_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugins_dir: plugins_dir.into(),
            sandbox: SandboxConfig::default(),
            recorder: RecorderConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            metrics: Metrics::new(),
            health_addr: None,
            metrics_addr: None,
            memory_budget: None,
            max_api_calls: DEFAULT_MAX_API_CALLS,
            impersonate_namespace: None,
            cache_dir: None,
            compile_in: CompileIn::Process,
        }
    }

    /// Keeps compiled plugins in `dir` (made private to this user), so that a restart loads
    /// them instead of compiling again. Without it, every start compiles every plugin.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Where plugins are compiled: in this process (the default), or in a child process
    /// running the host binary (`wasm-reconciler compile`), which keeps the compiler's memory
    /// out of the host.
    pub fn compile_in(mut self, compile_in: CompileIn) -> Self {
        self.compile_in = compile_in;
        self
    }

    /// Serve `/healthz` and `/readyz` (and `/metrics`) on this address (default: none).
    #[must_use]
    pub fn health_addr(mut self, address: SocketAddr) -> Self {
        self.health_addr = Some(address);
        self
    }

    /// Serve `/metrics` (and `/healthz`, `/readyz`) on this address (default: none).
    #[must_use]
    pub fn metrics_addr(mut self, address: SocketAddr) -> Self {
        self.metrics_addr = Some(address);
        self
    }

    /// The host's metrics, for serving or inspecting; they fill in once [`Host::run`] runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Limits for plugin instances.
    #[must_use]
    pub fn sandbox(mut self, sandbox: SandboxConfig) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Event recorder settings.
    #[must_use]
    pub fn recorder(mut self, recorder: RecorderConfig) -> Self {
        self.recorder = recorder;
        self
    }

    /// How long shutdown waits for running reconciles and queued events (default 10 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The memory the host may use, in bytes (default: 75 % of the cgroup's memory limit, or
    /// of the shipped pod's 512 MiB without one). The host's own needs, the event recorder and
    /// the instance slots come off it; the rest is shared equally among the plugins, as the
    /// linear memory their instances may hold together and the payloads they may have in
    /// flight. No plugin can use another's share.
    #[must_use]
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// API calls one reconcile may make (default 256); more fail with `api(429, ...)`.
    #[must_use]
    pub fn max_api_calls(mut self, calls: u32) -> Self {
        self.max_api_calls = calls.max(1);
        self
    }

    /// Make each plugin's API calls as the ServiceAccount named like the plugin in
    /// `namespace` (`Impersonate-User: system:serviceaccount:<namespace>:<plugin>`), so that
    /// the API server enforces per-plugin RBAC too. The host's own account needs the
    /// `impersonate` verb on those ServiceAccounts.
    #[must_use]
    pub fn impersonate_plugins(mut self, namespace: impl Into<String>) -> Self {
        self.impersonate_namespace = Some(namespace.into());
        self
    }

    /// Loads the plugins and runs their controllers until `shutdown` completes.
    ///
    /// Plugins load in parallel. A plugin that fails to load, or whose name another file
    /// claims too, is logged with the reason and skipped (every file claiming a name is
    /// skipped); readiness reports it. A plugin whose kinds the API server does not serve yet
    /// is retried with backoff until it does.
    ///
    /// # Errors
    ///
    /// Fails if the plugins directory cannot be read, the engine cannot be created, the
    /// memory budget cannot hold the host, or no plugin could be loaded.
    pub async fn run(
        self,
        client: kube::Client,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HostError> {
        // Probes answer from the start: live at once, ready once every check passes.
        let status = HostStatus::new();
        let (stop_serving, serving_stopped) = watch::channel(false);
        let mut servers = JoinSet::new();
        for listener in self.listeners().await? {
            let metrics = self.metrics.clone();
            let mut stopped = serving_stopped.clone();
            servers.spawn(health::serve(
                listener,
                status.subscribe(),
                Arc::new(move || metrics.encode()),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ));
        }

        let sandbox = Sandbox::new(self.sandbox.clone()).map_err(HostError::Engine)?;
        let linker = plugin::linker(&sandbox).map_err(HostError::Engine)?;
        let (total, source) = Budget::total_from(self.memory_budget);
        let budget = Budget::new(
            total,
            source,
            self.recorder.memory_bytes(),
            sandbox.config.instance_slots(),
        )?;
        let compiler = Compiler::new(
            &sandbox.engine,
            self.sandbox.clone(),
            self.compile_in.clone(),
            self.cache_dir.as_deref(),
        );
        let paths = plugin_files(&self.plugins_dir).await?;
        let (plugins, failed) = self
            .load_all(&sandbox, &linker, &compiler, paths, &status)
            .await;
        let in_use: Vec<PathBuf> = plugins
            .iter()
            .filter_map(|plugin| plugin.loaded().cache_entry.clone())
            .collect();
        compiler.prune(&in_use).await;
        if plugins.is_empty() {
            return Err(HostError::NoPlugins {
                path: self.plugins_dir,
                failed,
            });
        }

        let share = budget.share(plugins.len());
        tracing::info!(
            budget_mib = budget.total >> 20,
            source = ?budget.source,
            recorder_mib = budget.recorder >> 20,
            slots = budget.slots,
            plugins = plugins.len(),
            memory_per_plugin_mib = share.memory >> 20,
            payload_per_plugin_mib = share.payload >> 20,
            slots_per_plugin = share.slots,
            "memory budget"
        );
        let plugins: Vec<Arc<Plugin>> = plugins
            .into_iter()
            .map(|mut plugin| {
                let labels = PluginLabels::of(plugin.name());
                let limits = &self.metrics.plugin;
                limits
                    .memory_share_bytes
                    .get_or_create(&labels)
                    .set(i64::try_from(share.memory).unwrap_or(i64::MAX));
                limits
                    .slots
                    .get_or_create(&labels)
                    .set(i64::from(share.slots));
                let dropped = limits.log_lines_dropped.get_or_create(&labels).clone();
                plugin.set_limits(PluginLimits::new(share), dropped);
                Arc::new(plugin)
            })
            .collect();
        self.metrics.plugins_loaded(plugins.len());

        let (recorder, recorder_task) =
            Recorder::start(client.clone(), self.recorder.clone(), self.metrics.clone());
        let shutdown: Shared<BoxFuture<'static, ()>> = shutdown.boxed().shared();
        let mut controllers = JoinSet::new();
        let mut names = BTreeMap::new();
        for plugin in plugins {
            let name = plugin.name().to_string();
            status.fail(
                &format!("plugin/{name}/kinds"),
                Severity::Unready,
                "resolving its kinds",
            );
            let impersonate = self
                .impersonate_namespace
                .as_deref()
                .and_then(|namespace| Impersonation::service_account(namespace, &name));
            let supervisor = supervise(
                plugin,
                client.clone(),
                recorder.clone(),
                self.metrics.clone(),
                status.clone(),
                ControllerSettings {
                    max_api_calls: self.max_api_calls,
                    impersonate,
                },
                shutdown.clone(),
            );
            let handle = controllers.spawn(supervisor);
            names.insert(handle.id(), name);
        }
        drop(recorder);
        status.pass("host");

        let mut shutting_down = std::pin::pin!(shutdown.clone());
        loop {
            tokio::select! {
                // Controllers end with shutdown too: see it first.
                biased;
                () = &mut shutting_down => break,
                Some(ended) = controllers.join_next_with_id() => {
                    // A controller ends on its own only by a bug: fail liveness, so that the
                    // kubelet restarts the host rather than leave the plugin unserved.
                    let (id, why) = match ended {
                        Ok((id, ())) => (id, "its controller ended".to_owned()),
                        Err(error) => (error.id(), format!("its controller failed: {error}")),
                    };
                    let name = names.get(&id).cloned().unwrap_or_default();
                    tracing::error!(plugin = %name, %why, "controller stopped before shutdown; the host is no longer live");
                    status.fail(&format!("plugin/{name}/controller"), Severity::Dead, why);
                }
            }
        }
        // Not ready while draining (no new traffic is routed here), but still live.
        status.fail("host", Severity::Unready, "shutting down");
        tracing::info!(grace = ?self.shutdown_grace, "shutting down");
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while controllers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("reconciles still running after the grace period; aborted");
            controllers.shutdown().await;
        }
        recorder_task.flush(self.shutdown_grace).await;
        let _ = stop_serving.send(true);
        while servers.join_next().await.is_some() {}
        Ok(())
    }

    /// Loads every plugin file in parallel (as many at once as there are cores), and refuses
    /// every file of a name that more than one file claims. Returns the plugins and how many
    /// files failed.
    async fn load_all(
        &self,
        sandbox: &Sandbox,
        linker: &wasmtime::component::Linker<plugin::GuestState>,
        compiler: &Compiler,
        paths: Vec<PathBuf>,
        status: &HostStatus,
    ) -> (Vec<Plugin>, usize) {
        let parallel = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let results: Vec<(PathBuf, Result<Plugin, LoadError>)> = futures::stream::iter(paths)
            .map(|path| async move {
                let started = std::time::Instant::now();
                let loaded = Plugin::load(sandbox, linker, compiler, &path).await;
                if let Ok(plugin) = &loaded {
                    let how = plugin.loaded();
                    self.metrics.plugin_component(how.from.as_str());
                    let message = match how.from {
                        Provenance::Cache => "plugin loaded from the compile cache",
                        Provenance::Compiled => "plugin compiled",
                    };
                    tracing::info!(path = %path.display(), plugin = %plugin.name(), component = ?how.took, total = ?started.elapsed(), "{message}");
                }
                (path, loaded)
            })
            .buffer_unordered(parallel)
            .collect()
            .await;

        let mut failed = 0usize;
        let mut by_name: BTreeMap<Arc<str>, Vec<(PathBuf, Plugin)>> = BTreeMap::new();
        for (path, loaded) in results {
            match loaded {
                Ok(plugin) => by_name
                    .entry(plugin.name().clone())
                    .or_default()
                    .push((path, plugin)),
                Err(error) => {
                    failed += 1;
                    self.metrics.plugin_load_failed();
                    let file = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |name| name.to_string_lossy().into_owned(),
                    );
                    let why = error_chain(&error);
                    tracing::error!(error = %why, "plugin failed to load; skipped");
                    status.fail(&format!("file/{file}"), Severity::Unready, why);
                }
            }
        }
        let mut plugins = Vec::new();
        for (name, mut claims) in by_name {
            if claims.len() == 1 {
                if let Some((_, plugin)) = claims.pop() {
                    plugins.push(plugin);
                }
                continue;
            }
            // Which file is the real one cannot be told: none of them runs.
            let files: Vec<String> = claims
                .iter()
                .map(|(path, _)| path.display().to_string())
                .collect();
            for _ in &claims {
                failed += 1;
                self.metrics.plugin_load_failed();
            }
            tracing::error!(plugin = %name, files = ?files, "several plugin files claim this name; none of them is loaded");
            status.fail(
                &format!("plugin/{name}"),
                Severity::Unready,
                format!(
                    "the name is claimed by {}; none is loaded",
                    files.join(", ")
                ),
            );
        }
        (plugins, failed)
    }

    /// Binds the health and metrics addresses; one listener when they are the same.
    async fn listeners(&self) -> Result<Vec<TcpListener>, HostError> {
        let mut addresses: Vec<SocketAddr> = self
            .health_addr
            .into_iter()
            .chain(self.metrics_addr)
            .collect();
        addresses.dedup();
        let mut listeners = Vec::with_capacity(addresses.len());
        for address in addresses {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| HostError::Listen { address, source })?;
            listeners.push(listener);
        }
        Ok(listeners)
    }
}

/// Resolves a plugin's kinds (retrying with backoff while the API server does not serve them,
/// e.g. a CRD created after the host started), then runs its controller until `shutdown`.
async fn supervise(
    plugin: Arc<Plugin>,
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    status: HostStatus,
    settings: ControllerSettings,
    shutdown: Shared<BoxFuture<'static, ()>>,
) {
    let name = plugin.name().clone();
    let check = format!("plugin/{name}/kinds");
    let mut retry = DISCOVERY_RETRY_FIRST;
    let kinds = loop {
        let meta = plugin.metadata();
        match DeclaredKinds::resolve(&client, &meta.reconciles, &meta.owns, &meta.reads).await {
            Ok(kinds) => break kinds,
            Err(error) => {
                let why = error_chain(&error);
                tracing::warn!(plugin = %name, error = %why, ?retry, "plugin's kinds not served; retrying");
                status.fail(
                    &check,
                    Severity::Unready,
                    format!("{why} (retrying every {retry:?})"),
                );
                tokio::select! {
                    () = shutdown.clone() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(DISCOVERY_RETRY_MAX);
            }
        }
    };
    tracing::info!(
        plugin = %name,
        reconciles = %kinds.reconciles.gvk.kind,
        impersonating = settings.impersonate.as_ref().map(Impersonation::user),
        "plugin started"
    );
    status.pass(&check);
    let controller = PluginController::new(
        plugin,
        Arc::new(kinds),
        client,
        recorder,
        metrics,
        status,
        settings,
    );
    // Returning before shutdown tells the manager the controller ended by a bug.
    controller.run(shutdown).await;
}

/// The `.wasm` files directly in `dir`, sorted so that load order (and which of two plugins
/// with the same name wins) does not depend on the file system.
async fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, HostError> {
    let read_error = |source| HostError::PluginsDir {
        path: dir.to_owned(),
        source,
    };
    let mut entries = tokio::fs::read_dir(dir).await.map_err(read_error)?;
    let mut paths = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(read_error)? {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "wasm") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// An error and its sources, joined with `: `.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
