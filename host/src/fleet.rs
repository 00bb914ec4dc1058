//! The running plugins, and how a change in the plugins directory reaches them: a new file
//! starts a controller; a new version of a file is swapped in under its running controller
//! (or, when it declares other kinds, replaces the controller); a removed file stops its
//! controller. The memory budget is shared out again after every change.
//!
//! A change never leaves an object reconciled by two versions at once: a swap keeps the one
//! controller (kube-runtime runs one reconcile per object at a time, each on the version
//! current when it started), and a replaced or stopped controller finishes its running
//! reconciles before another starts. A version that cannot be loaded changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use wasmtime::component::Linker;

use crate::budget::{Budget, PluginShare};
use crate::cache::Caches;
use crate::client::Impersonation;
use crate::controller::{ControllerCaches, ControllerParts, ControllerSettings, PluginController};
use crate::kinds::DeclaredKinds;
use crate::manager::error_chain;
use crate::metrics::{Metrics, PluginChange, PluginLabels, VersionLabels};
use crate::plugin::{
    Compiler, GuestState, HostLimits, LivePlugin, LoadError, Metadata, Plugin, PluginLimits,
    Provenance, Sandbox,
};
use crate::recorder::Recorder;
use crate::status::{HostStatus, Severity};

/// Discovery retries for a plugin whose kinds the API server does not serve (yet): from one
/// second, doubling, up to a minute.
const DISCOVERY_RETRY_FIRST: Duration = Duration::from_secs(1);
const DISCOVERY_RETRY_MAX: Duration = Duration::from_secs(60);

/// What every controller shares with the others.
struct Shared {
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    status: HostStatus,
    caches: Arc<Caches>,
}

/// What every plugin's controller is made with.
pub(crate) struct FleetParts {
    pub(crate) sandbox: Sandbox,
    pub(crate) linker: Linker<GuestState>,
    pub(crate) compiler: Compiler,
    pub(crate) budget: Budget,
    pub(crate) client: kube::Client,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) status: HostStatus,
    pub(crate) max_api_calls: u32,
    pub(crate) impersonate_namespace: Option<String>,
    /// Cancelled when the host shuts down: every controller's stop is a child of it.
    pub(crate) shutdown: CancellationToken,
    /// How long a stopping controller's reconciles may run before they are aborted.
    pub(crate) grace: Duration,
}

/// The running plugins and the files they came from.
pub(crate) struct Fleet {
    parts: FleetParts,
    /// The watches and caches every controller draws on.
    caches: Arc<Caches>,
    host_limits: HostLimits,
    running: BTreeMap<Arc<str>, Running>,
    files: BTreeMap<PathBuf, FileState>,
    controllers: JoinSet<()>,
    tasks: HashMap<tokio::task::Id, Task>,
    /// Whether controllers run: always without leader election, else once this host leads.
    leading: bool,
}

/// One running plugin: loaded, and reconciling while the host leads.
struct Running {
    path: PathBuf,
    sha256: String,
    metadata: Metadata,
    live: Arc<LivePlugin>,
    limits: PluginLimits,
    stop: CancellationToken,
    /// Its controller, while the host leads.
    task: Option<AbortHandle>,
}

/// A controller task: whose, and whether the fleet asked it to stop.
struct Task {
    plugin: Arc<str>,
    stopping: bool,
}

/// What the fleet knows of one plugin file.
struct FileState {
    /// The version last looked at, whether it loaded or not.
    sha256: String,
    /// The plugin running from this file, if any: this version, or an older one when this
    /// one could not be loaded.
    serving: Option<Arc<str>>,
    /// This version loaded but claims a name that was taken: it is loaded again whenever the
    /// directory changes, as the other claimant may be gone.
    name_taken: bool,
}

/// A new version of a plugin file, loaded or not.
pub(crate) struct NewVersion {
    path: PathBuf,
    sha256: String,
    plugin: Result<Plugin, LoadError>,
}

/// The changes a look at the directory found, with the new versions loaded.
pub(crate) struct Changes {
    removed: Vec<PathBuf>,
    loaded: Vec<NewVersion>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.loaded.is_empty()
    }
}

impl Fleet {
    pub(crate) fn new(parts: FleetParts) -> Self {
        // One plugin's share is the whole: what all of them draw on together.
        let whole = parts.budget.share(1);
        Self {
            host_limits: HostLimits::new(whole.memory, whole.payload),
            caches: Caches::new(parts.client.clone()),
            parts,
            running: BTreeMap::new(),
            files: BTreeMap::new(),
            controllers: JoinSet::new(),
            tasks: HashMap::new(),
            leading: true,
        }
    }

    /// Loads and follows plugins without running their controllers until [`Fleet::lead`].
    pub(crate) fn follower(mut self) -> Self {
        self.leading = false;
        self
    }

    /// This host leads from now on: starts every plugin's controller.
    pub(crate) fn lead(&mut self) {
        self.leading = true;
        self.spawn_controllers();
    }

    /// This host no longer leads: aborts every controller at once, running reconciles
    /// included, since another host may already be reconciling the same objects.
    pub(crate) fn abort_all(&mut self) {
        self.leading = false;
        self.parts.shutdown.cancel();
        self.controllers.abort_all();
    }

    /// How many plugins run.
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    /// Compares the directory's `files` (path to SHA-256) with what runs, and loads every new
    /// version, in parallel (as many at once as there are cores); when anything changed, also
    /// every version refused only for its name, as the other claimant may be gone. Nothing
    /// changes until
    /// [`Fleet::apply`]: this part may be abandoned (on shutdown) at any point.
    pub(crate) async fn load_changes(&self, files: &BTreeMap<PathBuf, String>) -> Changes {
        let removed: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| !files.contains_key(*path))
            .cloned()
            .collect();
        let is_new = |path: &PathBuf, sha256: &String| {
            self.files
                .get(path)
                .is_none_or(|known| &known.sha256 != sha256)
        };
        let mut changed: Vec<(PathBuf, String)> = files
            .iter()
            .filter(|(path, sha256)| is_new(path, sha256))
            .map(|(path, sha256)| (path.clone(), sha256.clone()))
            .collect();
        if !changed.is_empty() || !removed.is_empty() {
            changed.extend(
                files
                    .iter()
                    .filter(|(path, sha256)| {
                        !is_new(path, sha256) && self.files.get(*path).is_some_and(|f| f.name_taken)
                    })
                    .map(|(path, sha256)| (path.clone(), sha256.clone())),
            );
        }
        let parallel = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let parts = &self.parts;
        let mut loaded: Vec<NewVersion> = futures::stream::iter(changed)
            .map(|(path, sha256)| async move {
                let started = Instant::now();
                let plugin =
                    Plugin::load(&parts.sandbox, &parts.linker, &parts.compiler, &path).await;
                let sha256 = match &plugin {
                    Ok(plugin) => {
                        let how = plugin.loaded();
                        parts.metrics.plugin_component(how.from.as_str());
                        let message = match how.from {
                            Provenance::Cache => "plugin loaded from the compile cache",
                            Provenance::Compiled => "plugin compiled",
                        };
                        tracing::info!(path = %path.display(), plugin = %plugin.name(), sha256 = short(&how.sha256), component = ?how.took, total = ?started.elapsed(), "{message}");
                        // What was loaded, should the file have changed since it was listed.
                        how.sha256.clone()
                    }
                    Err(_) => sha256,
                };
                NewVersion {
                    path,
                    sha256,
                    plugin,
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        loaded.sort_by(|a, b| a.path.cmp(&b.path));
        Changes { removed, loaded }
    }

    /// Applies `changes`: stops what was removed, starts, swaps or replaces what changed, and
    /// shares the budget out again. At `startup` nothing runs yet, and the change counters
    /// are left alone.
    pub(crate) async fn apply(&mut self, changes: Changes, startup: bool) {
        for path in changes.removed {
            if let Some(state) = self.files.remove(&path) {
                self.parts.status.remove(&file_check(&path));
                if let Some(name) = state.serving {
                    tracing::info!(plugin = %name, path = %path.display(), "plugin file removed; stopping its controller once its running reconciles finish");
                    self.stop(&name);
                    self.parts.metrics.plugin_changed(PluginChange::removed);
                }
            }
        }

        // Which loaded versions claim each name: two new files claiming a name that nothing
        // runs cannot be told apart, so neither runs.
        let mut claims: BTreeMap<Arc<str>, Vec<PathBuf>> = BTreeMap::new();
        for loaded in &changes.loaded {
            if let Ok(plugin) = &loaded.plugin {
                claims
                    .entry(plugin.name().clone())
                    .or_default()
                    .push(loaded.path.clone());
            }
        }
        for NewVersion {
            path,
            sha256,
            plugin,
        } in changes.loaded
        {
            let plugin = match plugin {
                Ok(plugin) => plugin,
                Err(error) => {
                    self.refuse(&path, sha256, &error_chain(&error), false, startup);
                    continue;
                }
            };
            let name = plugin.name().clone();
            let owner = self.running.get(&name).map(|running| running.path.clone());
            match owner {
                Some(owner) if owner != path => {
                    let why = format!(
                        "it names itself {name:?}, which the plugin from {} already is",
                        owner.display()
                    );
                    self.refuse(&path, sha256, &why, true, startup);
                    continue;
                }
                None if claims.get(&name).is_some_and(|paths| paths.len() > 1) => {
                    let files: Vec<String> = claims[&name]
                        .iter()
                        .map(|path| path.display().to_string())
                        .collect();
                    let why = format!(
                        "the name {name:?} is claimed by {}; none is loaded",
                        files.join(", ")
                    );
                    self.refuse(&path, sha256, &why, true, startup);
                    continue;
                }
                _ => {}
            }
            let serving = self
                .files
                .get(&path)
                .and_then(|state| state.serving.clone());
            match serving {
                Some(previous) if previous == name => {
                    self.upgrade(&path, sha256, plugin).await;
                }
                Some(previous) => {
                    tracing::info!(path = %path.display(), from = %previous, to = %name, "plugin file now holds another plugin; stopping the old one");
                    self.stop(&previous);
                    self.parts.metrics.plugin_changed(PluginChange::removed);
                    self.start(&path, sha256, plugin, !startup);
                }
                None => self.start(&path, sha256, plugin, !startup),
            }
        }
        self.share_out();
        self.spawn_controllers();
        if startup {
            // What the directory no longer holds. Only at startup: while the host runs, the
            // versions it replaced stay cached, so that going back to one is instant.
            let in_use: Vec<PathBuf> = self
                .running
                .values()
                .filter_map(|running| running.live.current().loaded().cache_entry.clone())
                .collect();
            self.parts.compiler.prune(&in_use).await;
        }
        self.parts.metrics.plugins_loaded(self.running.len());
        if self.running.is_empty() {
            self.parts
                .status
                .fail("plugins", Severity::Unready, "no plugin is running");
        } else {
            self.parts.status.remove("plugins");
        }
    }

    /// Records that the version `sha256` of `path` cannot run, saying why (`name_taken`: it
    /// loaded, but another file holds its name). Whatever runs from the file keeps running.
    fn refuse(&mut self, path: &Path, sha256: String, why: &str, name_taken: bool, startup: bool) {
        self.parts.metrics.plugin_load_failed();
        if !startup {
            self.parts.metrics.plugin_changed(PluginChange::failed);
        }
        let state = self.files.entry(path.to_owned()).or_insert(FileState {
            sha256: String::new(),
            serving: None,
            name_taken,
        });
        state.sha256 = sha256.clone();
        state.name_taken = name_taken;
        let check = file_check(path);
        match &state.serving {
            Some(name) => {
                let running = self.running.get(name).map(|running| short(&running.sha256));
                tracing::error!(path = %path.display(), plugin = %name, sha256 = short(&sha256), running = running.unwrap_or_default(), error = %why, "new plugin version failed to load; the running version keeps running");
                self.parts
                    .metrics
                    .plugin_upgrade_failed
                    .get_or_create(&PluginLabels::of(name))
                    .set(1);
                // The plugin still serves: readiness is not held back.
                self.parts.status.fail(
                    &check,
                    Severity::Info,
                    format!(
                        "version {} failed to load, {} keeps running: {why}",
                        short(&sha256),
                        running.unwrap_or_default()
                    ),
                );
            }
            None => {
                tracing::error!(path = %path.display(), sha256 = short(&sha256), error = %why, "plugin failed to load; skipped");
                self.parts
                    .status
                    .fail(&check, Severity::Unready, why.to_owned());
            }
        }
    }

    /// Starts `plugin` from `path` with a controller of its own.
    fn start(&mut self, path: &Path, sha256: String, mut plugin: Plugin, added: bool) {
        let name = plugin.name().clone();
        let share = self.parts.budget.share(self.running.len() + 1);
        let limits = PluginLimits::within(share, Some(&self.host_limits));
        let labels = PluginLabels::of(&name);
        let dropped = self
            .parts
            .metrics
            .plugin
            .log_lines_dropped
            .get_or_create(&labels)
            .clone();
        plugin.set_limits(limits.clone(), dropped);
        let metadata = plugin.metadata().clone();
        let live = LivePlugin::new(Arc::new(plugin));
        let stop = self.parts.shutdown.child_token();
        self.set_version(&name, path, &sha256);
        self.parts.status.remove(&file_check(path));
        if added {
            tracing::info!(plugin = %name, path = %path.display(), sha256 = short(&sha256), "plugin added");
            self.parts.metrics.plugin_changed(PluginChange::added);
        }
        self.files.insert(
            path.to_owned(),
            FileState {
                sha256: sha256.clone(),
                serving: Some(name.clone()),
                name_taken: false,
            },
        );
        self.running.insert(
            name.clone(),
            Running {
                path: path.to_owned(),
                sha256,
                metadata,
                live,
                limits,
                stop,
                task: None,
            },
        );
    }

    /// Starts the controllers of the running plugins that have none, if this host leads:
    /// after the budget has been shared out, so that each starts with its final share.
    fn spawn_controllers(&mut self) {
        if !self.leading {
            return;
        }
        let idle: Vec<Arc<str>> = self
            .running
            .iter()
            .filter(|(_, running)| running.task.is_none())
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            self.spawn_controller(&name);
        }
    }

    /// Starts the controller of the running plugin `name`.
    fn spawn_controller(&mut self, name: &Arc<str>) {
        let Some(running) = self.running.get_mut(name) else {
            return;
        };
        if running.task.is_some() {
            return;
        }
        let settings = ControllerSettings {
            max_api_calls: self.parts.max_api_calls,
            impersonate: self
                .parts
                .impersonate_namespace
                .as_deref()
                .and_then(|namespace| Impersonation::service_account(namespace, name)),
            concurrency: concurrency(
                running.metadata.max_concurrent_reconciles,
                running.limits.slots.size(),
            ),
        };
        self.parts.status.fail(
            &format!("plugin/{name}/kinds"),
            Severity::Unready,
            "resolving its kinds",
        );
        let shared = Shared {
            client: self.parts.client.clone(),
            recorder: self.parts.recorder.clone(),
            metrics: self.parts.metrics.clone(),
            status: self.parts.status.clone(),
            caches: self.caches.clone(),
        };
        let supervisor = supervise(running.live.clone(), shared, settings, running.stop.clone());
        let task = self.controllers.spawn(supervisor);
        self.tasks.insert(
            task.id(),
            Task {
                plugin: name.clone(),
                stopping: false,
            },
        );
        running.task = Some(task);
    }

    /// Puts a new version of a running plugin in place: under its running controller when
    /// its kinds are the same, else with a new controller once the old one has stopped.
    async fn upgrade(&mut self, path: &Path, sha256: String, mut plugin: Plugin) {
        let name = plugin.name().clone();
        let Some(running) = self.running.get(&name) else {
            return;
        };
        let old = short(&running.sha256).to_owned();
        if plugin.metadata() != &running.metadata {
            tracing::info!(plugin = %name, from = %old, to = short(&sha256), "new plugin version declares other kinds; replacing its controller once its running reconciles finish");
            self.stop_and_wait(&name).await;
            self.start(path, sha256, plugin, false);
            self.parts.metrics.plugin_changed(PluginChange::restarted);
            return;
        }
        let dropped = self
            .parts
            .metrics
            .plugin
            .log_lines_dropped
            .get_or_create(&PluginLabels::of(&name))
            .clone();
        plugin.set_limits(running.limits.clone(), dropped);
        running.live.swap(Arc::new(plugin));
        self.set_version(&name, path, &sha256);
        if let Some(running) = self.running.get_mut(&name) {
            running.sha256 = sha256.clone();
        }
        if let Some(state) = self.files.get_mut(path) {
            state.sha256 = sha256.clone();
            state.name_taken = false;
        }
        self.parts.status.remove(&file_check(path));
        tracing::info!(plugin = %name, from = %old, to = short(&sha256), "plugin version swapped; running reconciles finish on the old version, queue and backoff carry over");
        self.parts.metrics.plugin_changed(PluginChange::swapped);
    }

    /// Asks `name`'s controller to stop: it takes no new reconcile, and is aborted if its
    /// running ones outlast the grace period. Its events are written by the shared recorder.
    /// Returns the controller's task, if it had one.
    fn stop(&mut self, name: &Arc<str>) -> Option<tokio::task::Id> {
        let running = self.running.remove(name)?;
        running.stop.cancel();
        let id = running.task.as_ref().map(AbortHandle::id);
        if let Some(task) = id.and_then(|id| self.tasks.get_mut(&id)) {
            task.stopping = true;
        }
        if let Some(task) = running.task {
            let grace = self.parts.grace;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                // A no-op once the controller has ended.
                task.abort();
            });
        }
        let metrics = &self.parts.metrics;
        metrics.plugin_versions.remove(&VersionLabels {
            plugin: name.to_string(),
            file: file_name(&running.path),
            sha256: running.sha256,
        });
        let labels = PluginLabels::of(name);
        metrics.plugin_upgrade_failed.remove(&labels);
        metrics.plugin.memory_share_bytes.remove(&labels);
        metrics.plugin.slots.remove(&labels);
        metrics.controller_runtime.forget(name);
        id
    }

    /// [`Fleet::stop`], then waits until the controller has ended.
    async fn stop_and_wait(&mut self, name: &Arc<str>) {
        let Some(id) = self.stop(name) else {
            return;
        };
        while let Some(ended) = self.controllers.join_next_with_id().await {
            let ended_id = match &ended {
                Ok((id, ())) => *id,
                Err(error) => error.id(),
            };
            self.ended(ended);
            if ended_id == id {
                return;
            }
        }
    }

    /// Waits for the next controller to end.
    pub(crate) async fn next_ended(
        &mut self,
    ) -> Option<Result<(tokio::task::Id, ()), tokio::task::JoinError>> {
        self.controllers.join_next_with_id().await
    }

    /// Takes the end of a controller into account: expected when the fleet stopped it, a bug
    /// otherwise, which fails liveness so that the kubelet restarts the host rather than leave
    /// the plugin unserved.
    pub(crate) fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (id, why) = match ended {
            Ok((id, ())) => (id, "its controller ended".to_owned()),
            Err(error) => (error.id(), format!("its controller failed: {error}")),
        };
        let Some(task) = self.tasks.remove(&id) else {
            return;
        };
        let name = task.plugin;
        if task.stopping {
            tracing::info!(plugin = %name, "plugin controller stopped");
            if !self.running.contains_key(&name) {
                self.parts.status.remove_prefix(&format!("plugin/{name}/"));
            }
            return;
        }
        if self.parts.shutdown.is_cancelled() {
            return;
        }
        tracing::error!(plugin = %name, %why, "controller stopped before shutdown; the host is no longer live");
        self.parts
            .status
            .fail(&format!("plugin/{name}/controller"), Severity::Dead, why);
    }

    /// Shares the budget out among the running plugins, equally.
    fn share_out(&self) {
        let share = self.parts.budget.share(self.running.len());
        for (name, running) in &self.running {
            running.limits.resize(share);
            self.publish_share(name, share);
        }
    }

    fn publish_share(&self, name: &str, share: PluginShare) {
        let labels = PluginLabels::of(name);
        let limits = &self.parts.metrics.plugin;
        limits
            .memory_share_bytes
            .get_or_create(&labels)
            .set(i64::try_from(share.memory).unwrap_or(i64::MAX));
        limits
            .slots
            .get_or_create(&labels)
            .set(i64::from(share.slots));
        self.parts
            .metrics
            .controller_runtime
            .set_max_concurrent(name, share.slots);
    }

    fn set_version(&self, name: &str, path: &Path, sha256: &str) {
        let versions = &self.parts.metrics.plugin_versions;
        if let Some(running) = self.running.get(name) {
            versions.remove(&VersionLabels {
                plugin: name.to_owned(),
                file: file_name(&running.path),
                sha256: running.sha256.clone(),
            });
        }
        versions
            .get_or_create(&VersionLabels {
                plugin: name.to_owned(),
                file: file_name(path),
                sha256: sha256.to_owned(),
            })
            .set(1);
        self.parts
            .metrics
            .plugin_upgrade_failed
            .get_or_create(&PluginLabels::of(name))
            .set(0);
    }

    /// Stops every controller, letting running reconciles finish within the grace period.
    pub(crate) async fn shut_down(mut self) {
        self.parts.shutdown.cancel();
        let controllers = &mut self.controllers;
        let drained = tokio::time::timeout(self.parts.grace, async {
            while controllers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("reconciles still running after the grace period; aborted");
            self.controllers.shutdown().await;
        }
    }
}

/// The readiness check of a plugin file.
fn file_check(path: &Path) -> String {
    format!("file/{}", file_name(path))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Reconciles a controller runs at once: what its plugin asked for, at most its slots (a
/// 0.1.0 plugin, which cannot ask, gets its slots).
fn concurrency(asked: Option<u32>, slots: usize) -> u32 {
    let slots = u32::try_from(slots).unwrap_or(u32::MAX).max(1);
    asked.map_or(slots, |asked| asked.min(slots))
}

/// The first 12 hex digits of a SHA-256: enough to tell versions apart in a log line.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// Resolves a plugin's kinds (retrying with backoff while the API server does not serve them,
/// e.g. a CRD created after the host started), then runs its controller until `stop`.
async fn supervise(
    plugin: Arc<LivePlugin>,
    shared: Shared,
    settings: ControllerSettings,
    stop: CancellationToken,
) {
    let Shared {
        client,
        recorder,
        metrics,
        status,
        caches,
    } = shared;
    let name = plugin.name().clone();
    let check = format!("plugin/{name}/kinds");
    let mut retry = DISCOVERY_RETRY_FIRST;
    let kinds = loop {
        let meta = plugin.current().metadata().clone();
        match DeclaredKinds::resolve(&client, &meta).await {
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
                    () = stop.cancelled() => return,
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
    let caches = ControllerCaches::open(
        &caches,
        &kinds,
        plugin.current().metadata(),
        settings.impersonate.is_some(),
    );
    let controller = PluginController::new(
        plugin,
        ControllerParts {
            kinds: Arc::new(kinds),
            caches,
            client,
            recorder,
            metrics,
            status,
            settings,
        },
    );
    // Returning before `stop` tells the fleet the controller ended by a bug.
    controller.run(stop.cancelled_owned()).await;
}
