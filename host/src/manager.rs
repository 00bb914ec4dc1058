//! The host's lifecycle: load every plugin in the plugins directory, run one controller per
//! plugin, follow the directory as plugins are added, upgraded and removed, and on shutdown
//! let reconciles finish and flush events.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, BudgetError};
use crate::fleet::{Fleet, FleetParts};
use crate::health;
use crate::leader::{Elector, LeaderElection};
use crate::metrics::Metrics;
use crate::plugin::{self, CompileIn, Compiler, Sandbox, SandboxConfig};
use crate::plugins_dir::{DirWatch, Scanner};
use crate::recorder::{Recorder, RecorderConfig};
use crate::status::{HostStatus, Severity};

/// How often the plugins directory is looked at even without a file system event.
const PLUGINS_RESCAN: Duration = Duration::from_secs(30);
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
    /// Another host took the Lease, or this one could not renew it: it stopped reconciling at
    /// once, and exits so that it starts again as a candidate.
    #[error("leadership lost ({why}); stopped reconciling")]
    LeadershipLost {
        /// Why.
        why: String,
    },
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
    plugins_rescan: Duration,
    leader_election: Option<LeaderElection>,
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
            plugins_rescan: PLUGINS_RESCAN,
            leader_election: None,
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

    /// How often the plugins directory is looked at besides when the file system reports a
    /// change in it (default 30 s): the bound on how late a change is seen where events are
    /// not delivered (some network file systems).
    #[must_use]
    pub fn plugins_rescan_interval(mut self, interval: Duration) -> Self {
        self.plugins_rescan = interval.max(Duration::from_millis(100));
        self
    }

    /// Take part in leader election: plugins load on every replica (ready to take over), but
    /// only the one holding the Lease reconciles and writes Events. Without it, the host
    /// reconciles from the start, as the only replica.
    #[must_use]
    pub fn leader_election(mut self, election: LeaderElection) -> Self {
        self.leader_election = Some(election);
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
    /// While it runs, the host follows the plugins directory: a new file starts a plugin, a
    /// new version of a file replaces the running one (only once it has loaded: a version
    /// that fails leaves the old one running), a removed file stops its plugin.
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
        tracing::info!(
            budget_mib = budget.total >> 20,
            source = ?budget.source,
            recorder_mib = budget.recorder >> 20,
            slots = budget.slots,
            plugins_mib = budget.plugins >> 20,
            "memory budget; the plugins' part is shared equally among the running plugins"
        );
        let compiler = Compiler::new(
            &sandbox.engine,
            self.sandbox.clone(),
            self.compile_in.clone(),
            self.cache_dir.as_deref(),
        );
        let mut scanner = Scanner::new(&self.plugins_dir);
        // Watch before the first look, so that nothing written meanwhile is missed.
        let mut dir_watch = DirWatch::new(&self.plugins_dir, self.plugins_rescan);
        let files = scanner.scan().map_err(|source| HostError::PluginsDir {
            path: self.plugins_dir.clone(),
            source,
        })?;
        let (recorder, recorder_task) =
            Recorder::start(client.clone(), self.recorder.clone(), self.metrics.clone());
        let shutdown_token = CancellationToken::new();
        let election_client = client.clone();
        let mut fleet = Fleet::new(FleetParts {
            sandbox,
            linker,
            compiler,
            budget,
            client,
            recorder,
            metrics: self.metrics.clone(),
            status: status.clone(),
            max_api_calls: self.max_api_calls,
            impersonate_namespace: self.impersonate_namespace.clone(),
            shutdown: shutdown_token.clone(),
            grace: self.shutdown_grace,
        });
        if self.leader_election.is_some() {
            fleet = fleet.follower();
        }
        let changes = fleet.load_changes(&files).await;
        fleet.apply(changes, true).await;
        if fleet.len() == 0 {
            drop(fleet);
            recorder_task.flush(self.shutdown_grace).await;
            return Err(HostError::NoPlugins {
                path: self.plugins_dir,
                failed: files.len(),
            });
        }
        status.pass("host");
        let mut election = self
            .leader_election
            .clone()
            .map(|config| Election::start(election_client.clone(), config, &self.metrics));

        let mut lost = None;
        let shutdown = async move {
            shutdown.await;
            shutdown_token.cancel();
        };
        let mut shutting_down = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                // Controllers end with shutdown too: see it first.
                biased;
                () = &mut shutting_down => break,
                Some(ended) = fleet.next_ended() => fleet.ended(ended),
                leadership = Election::changed(&mut election) => match leadership {
                    Leadership::Waiting => {}
                    Leadership::Leading => {
                        tracing::info!("leading: starting the controllers");
                        fleet.lead();
                    }
                    Leadership::Lost(why) => {
                        tracing::error!(%why, "leadership lost; stopping every reconcile at once and exiting");
                        fleet.abort_all();
                        lost = Some(why);
                        break;
                    }
                },
                () = dir_watch.changed() => {
                    let scanned = tokio::task::spawn_blocking(move || {
                        let files = scanner.scan();
                        (scanner, files)
                    })
                    .await;
                    let Ok((returned, files)) = scanned else {
                        tracing::error!("looking at the plugins directory panicked; the host stops watching it");
                        break;
                    };
                    scanner = returned;
                    let files = match files {
                        Ok(files) => files,
                        Err(error) => {
                            tracing::warn!(dir = %scanner.dir().display(), %error, "cannot list the plugins directory; running plugins keep running");
                            continue;
                        }
                    };
                    // Loading may take long (a compile): shutdown does not wait for it.
                    let changes = tokio::select! {
                        biased;
                        () = &mut shutting_down => break,
                        changes = fleet.load_changes(&files) => changes,
                    };
                    if !changes.is_empty() {
                        fleet.apply(changes, false).await;
                    }
                }
            }
        }
        // Not ready while draining (no new traffic is routed here), but still live.
        status.fail("host", Severity::Unready, "shutting down");
        if let Some(why) = lost {
            drop(fleet);
            // What was recorded is true whoever leads now: write what fits in a moment.
            recorder_task.flush(Duration::from_secs(1)).await;
            let _ = stop_serving.send(true);
            while servers.join_next().await.is_some() {}
            return Err(HostError::LeadershipLost { why });
        }
        tracing::info!(grace = ?self.shutdown_grace, "shutting down");
        fleet.shut_down().await;
        recorder_task.flush(self.shutdown_grace).await;
        if let Some(election) = election {
            // Only once nothing of this host reconciles any more: the next leader starts at
            // its next try instead of after the lease duration.
            election.release(election_client).await;
        }
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

/// Where this host stands in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leadership {
    Waiting,
    Leading,
    Lost(String),
}

/// The election running beside the host: takes the Lease, then holds it until it is lost.
struct Election {
    config: LeaderElection,
    state: watch::Receiver<Leadership>,
    task: tokio::task::JoinHandle<()>,
}

impl Election {
    fn start(client: kube::Client, config: LeaderElection, metrics: &Arc<Metrics>) -> Self {
        let (sender, state) = watch::channel(Leadership::Waiting);
        let mut elector = Elector::new(client, config.clone());
        let metrics = metrics.clone();
        metrics.leading(&config.name, false);
        tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "waiting to lead");
        let task = tokio::spawn(async move {
            elector.acquire().await;
            let name = elector.config().name.clone();
            tracing::info!(lease = %name, "this host leads");
            metrics.leading(&name, true);
            let _ = sender.send(Leadership::Leading);
            let why = elector.hold().await;
            metrics.leading(&name, false);
            let _ = sender.send(Leadership::Lost(why));
        });
        Self {
            config,
            state,
            task,
        }
    }

    /// The next change of leadership; never, without an election.
    async fn changed(election: &mut Option<Election>) -> Leadership {
        let Some(election) = election else {
            return std::future::pending().await;
        };
        if election.state.changed().await.is_err() {
            return std::future::pending().await;
        }
        election.state.borrow_and_update().clone()
    }

    /// Stops taking part, and gives the Lease up if this host holds it.
    async fn release(self, client: kube::Client) {
        self.task.abort();
        Elector::new(client, self.config).release().await;
    }
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
