//! The host's lifecycle: load every plugin in the plugins directory, resolve its kinds, run
//! one controller per plugin, and on shutdown let reconciles finish and flush events.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::controller::PluginController;
use crate::health;
use crate::kinds::DeclaredKinds;
use crate::metrics::Metrics;
use crate::plugin::{self, LoadError, Plugin, Sandbox, SandboxConfig};
use crate::recorder::{Recorder, RecorderConfig};

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
        }
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

    /// Loads the plugins and runs their controllers until `shutdown` completes.
    ///
    /// A plugin that fails to load, or whose kinds the API server does not serve, is logged
    /// with the reason and skipped; the others run.
    ///
    /// # Errors
    ///
    /// Fails if the plugins directory cannot be read, the engine cannot be created, or no
    /// plugin could be started.
    pub async fn run(
        self,
        client: kube::Client,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HostError> {
        // Probes answer from the start: live at once, ready once every cache is synced.
        let (ready, readiness) = watch::channel(false);
        let ready = Arc::new(ready);
        let (stop_serving, serving_stopped) = watch::channel(false);
        let mut servers = JoinSet::new();
        for listener in self.listeners().await? {
            let metrics = self.metrics.clone();
            let mut stopped = serving_stopped.clone();
            servers.spawn(health::serve(
                listener,
                readiness.clone(),
                Arc::new(move || metrics.encode()),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            ));
        }

        let sandbox = Sandbox::new(self.sandbox.clone()).map_err(HostError::Engine)?;
        let linker = plugin::linker(&sandbox).map_err(HostError::Engine)?;
        let paths = plugin_files(&self.plugins_dir).await?;
        let mut failed = 0usize;
        let mut loaded: Vec<(Arc<Plugin>, Arc<DeclaredKinds>)> = Vec::new();
        for path in paths {
            match Plugin::load(&sandbox, &linker, &path).await {
                Ok(plugin) => {
                    if loaded
                        .iter()
                        .any(|(other, _)| other.name() == plugin.name())
                    {
                        failed += 1;
                        tracing::error!(path = %path.display(), plugin = %plugin.name(), "another plugin already has this name; skipped");
                        continue;
                    }
                    let meta = plugin.metadata();
                    match DeclaredKinds::resolve(&client, &meta.reconciles, &meta.owns, &meta.reads)
                        .await
                    {
                        Ok(kinds) => {
                            tracing::info!(path = %path.display(), plugin = %plugin.name(), reconciles = %kinds.reconciles.gvk.kind, "plugin loaded");
                            loaded.push((Arc::new(plugin), Arc::new(kinds)));
                        }
                        Err(error) => {
                            failed += 1;
                            self.metrics.plugin_load_failed();
                            tracing::error!(path = %path.display(), plugin = %plugin.name(), error = %error_chain(&error), "plugin skipped");
                        }
                    }
                }
                Err(error) => {
                    failed += 1;
                    self.metrics.plugin_load_failed();
                    log_load_error(&error);
                }
            }
        }
        if loaded.is_empty() {
            return Err(HostError::NoPlugins {
                path: self.plugins_dir,
                failed,
            });
        }

        self.metrics.plugins_loaded(loaded.len());
        let (recorder, recorder_task) =
            Recorder::start(client.clone(), self.recorder.clone(), self.metrics.clone());
        let shutdown: Shared<BoxFuture<'static, ()>> = shutdown.boxed().shared();
        let mut controllers = JoinSet::new();
        let mut synced = Vec::new();
        for (plugin, kinds) in loaded {
            let controller = PluginController::new(
                plugin,
                kinds,
                client.clone(),
                recorder.clone(),
                self.metrics.clone(),
            );
            let (cache_synced, cache_synced_rx) = oneshot::channel();
            synced.push(cache_synced_rx);
            controllers.spawn(controller.run(shutdown.clone(), cache_synced));
        }
        drop(recorder);
        let ready_when_synced = ready.clone();
        tokio::spawn(async move {
            if futures::future::try_join_all(synced).await.is_ok() {
                tracing::info!("plugins loaded and caches synced: ready");
                let _ = ready_when_synced.send(true);
            }
        });

        shutdown.await;
        // Not ready while draining (no new traffic is routed here), but still live.
        let _ = ready.send(false);
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

fn log_load_error(error: &LoadError) {
    tracing::error!(error = %error_chain(error), "plugin failed to load; skipped");
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
