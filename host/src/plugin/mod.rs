//! Reconciler plugins: load and validate a component, then run each reconcile in a fresh,
//! bounded instance.
//!
//! Loading compiles the component once and pre-links it against the host's imports
//! ([`InstancePre`](wasmtime::component::InstancePre)), so that a reconcile only has to
//! create a store and instantiate: microseconds with the pooling allocator. Nothing survives
//! between calls, and a trap, a timeout or a memory overrun ends that one call only.

mod bindings;
mod compiled;
mod imports;
mod limits;
mod live;
mod log;
mod metadata;
mod sandbox;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Store, UpdateDeadline};

use bindings::{v0_1, v0_2};
pub use compiled::{CompileIn, compile_stdin_to_stdout};
pub(crate) use compiled::{Compiler, Loaded, Provenance, sha256_hex};
pub(crate) use limits::{HostLimits, PluginLimits, Quota, QuotaPermit};
pub(crate) use live::LivePlugin;
use log::GuestLog;
pub(crate) use metadata::{Contract, Metadata, WatchMapping, selector_of_v0_2};
pub(crate) use sandbox::Sandbox;
pub use sandbox::SandboxConfig;
pub(crate) use state::GuestState;
pub(crate) use state::{CallScope, ScopeParts};
use state::{MemoryLimiter, MemoryRefusal};

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be compiled: not a valid WebAssembly component, or the compiler
    /// (process) failed.
    #[error("{path} could not be compiled as a WebAssembly component")]
    Compile {
        /// The plugin file.
        path: PathBuf,
        /// What the compiler said.
        #[source]
        source: wasmtime::Error,
    },
    /// The component does not fit a `reconciler` world this host serves.
    #[error(
        "{path} does not implement the `reconciler` world of wasm-reconciler:plugin@0.1.0 or @0.2.0 (built against another contract version, or imports something the host does not provide)"
    )]
    Link {
        /// The plugin file.
        path: PathBuf,
        /// The linker's error.
        #[source]
        source: wasmtime::Error,
    },
    /// Calling `metadata` failed.
    #[error("{path}: calling `metadata` failed")]
    Metadata {
        /// The plugin file.
        path: PathBuf,
        /// The call's error.
        #[source]
        source: CallError,
    },
    /// The metadata is not acceptable.
    #[error("{path}: invalid metadata: {reason}")]
    InvalidMetadata {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a call into a plugin did not produce a result. Each ends that call only.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a Rust panic, an `unreachable`, an out-of-bounds access...).
    #[error("plugin trapped: {message}{}", stderr_suffix(.stderr))]
    Trap {
        /// The trap itself, e.g. ``wasm trap: wasm `unreachable` instruction executed``.
        message: String,
        /// The trap with the guest's backtrace where known, for the log.
        backtrace: String,
        /// What the guest wrote to stderr (a Rust panic message, a Python traceback).
        stderr: String,
    },
    /// The guest used up its CPU budget.
    #[error("plugin exceeded its CPU limit of {0:?}")]
    CpuLimit(Duration),
    /// The call, host imports included, took longer than allowed.
    #[error("plugin call exceeded its timeout of {0:?}")]
    Timeout(Duration),
    /// The guest tried to grow its memory past its limit (and then trapped).
    #[error("plugin exceeded its memory limit of {limit} bytes{}", stderr_suffix(.stderr))]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
        /// What the guest wrote to stderr.
        stderr: String,
    },
    /// The plugin's instances together hold the plugin's whole share of the host's memory
    /// budget: this instance could not grow (and then trapped), or could not start.
    #[error("plugin's instances together hold its memory share of {share} bytes{}", stderr_suffix(.stderr))]
    PluginMemory {
        /// The plugin's share in bytes.
        share: u64,
        /// What the guest wrote to stderr.
        stderr: String,
    },
    /// The guest passed more data to one host call than the host accepts.
    #[error("plugin passed more than {limit} bytes to one host call")]
    TooMuchData {
        /// The limit in bytes.
        limit: usize,
    },
    /// The host could not create an instance.
    #[error("failed to instantiate the plugin: {0:#}")]
    Instantiate(wasmtime::Error),
}

/// Bytes of the guest's stderr an error's message carries: its end, where a panic message or
/// a traceback's exception is, so that an Event about the error (at most 1 KiB) shows it.
const STDERR_IN_MESSAGE: usize = 512;

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        return String::new();
    }
    if stderr.len() <= STDERR_IN_MESSAGE {
        return format!("; stderr: {stderr}");
    }
    let mut start = stderr.len() - STDERR_IN_MESSAGE;
    while !stderr.is_char_boundary(start) {
        start += 1;
    }
    format!("; stderr (its end): ...{}", &stderr[start..])
}

/// How often a call waiting for its plugin's memory share looks again, besides when one of
/// the plugin's instances gives memory back.
const INSTANTIATE_RETRY: Duration = Duration::from_millis(50);

/// What a reconcile asked the host to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; reconcile again after the delay, or on the next change.
    Done { requeue_after: Option<Duration> },
    /// Failed in a way that may pass: retry with backoff.
    Transient(String),
    /// Failed in a way only a change can fix: wait for one.
    Terminal(String),
}

/// A loaded plugin, ready to reconcile.
pub(crate) struct Plugin {
    metadata: Metadata,
    instances: Instances,
    loaded: Loaded,
}

/// A component pre-linked against the imports of the contract version it was built for.
enum Pre {
    V0_1(v0_1::ReconcilerPre<GuestState>),
    V0_2(v0_2::ReconcilerPre<GuestState>),
}

/// The exports of one instance, by contract version.
enum Exports {
    V0_1(v0_1::Reconciler),
    V0_2(v0_2::Reconciler),
}

impl Pre {
    /// Pre-links `component` against the version it names in its imports and exports, or,
    /// when it names none the host knows, against the newest.
    fn new(
        linker: &Linker<GuestState>,
        component: &wasmtime::component::Component,
        named: Option<&str>,
    ) -> wasmtime::Result<Self> {
        let instance_pre = linker.instantiate_pre(component)?;
        if named == Some(Contract::V0_1.package()) {
            return Ok(Pre::V0_1(v0_1::ReconcilerPre::new(instance_pre)?));
        }
        Ok(Pre::V0_2(v0_2::ReconcilerPre::new(instance_pre)?))
    }

    async fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Pre::V0_1(pre) => Exports::V0_1(pre.instantiate_async(store).await?),
            Pre::V0_2(pre) => Exports::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

/// Makes fresh, bounded instances of one pre-linked component.
struct Instances {
    pre: Pre,
    sandbox: Sandbox,
    limits: PluginLimits,
    log: Arc<GuestLog>,
}

/// The contract version `component` was built against (`wasm-reconciler:plugin@0.1.0`), from
/// the names of the contract's interfaces it imports or exports.
fn contract_of(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Option<String> {
    const PACKAGE: &str = "wasm-reconciler:plugin";
    let ty = component.component_type();
    ty.imports(engine)
        .chain(ty.exports(engine))
        .find_map(|(name, _)| {
            let interface = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
            let (_, version) = interface.split_once('@')?;
            Some(format!("{PACKAGE}@{version}"))
        })
}

/// The linker every plugin is pre-linked against: WASI (empty context) and the host imports
/// of every contract version the host serves (their interface names differ by version).
pub(crate) fn linker(sandbox: &Sandbox) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(&sandbox.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    v0_1::Reconciler::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| {
        state
    })?;
    v0_2::Reconciler::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| {
        state
    })?;
    Ok(linker)
}

impl Plugin {
    /// Reads the component at `path`, compiles it (or reads it from the compile cache) and
    /// pre-links it, then asks it for its metadata.
    pub(crate) async fn load(
        sandbox: &Sandbox,
        linker: &Linker<GuestState>,
        compiler: &Compiler,
        path: &Path,
    ) -> Result<Self, LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Read {
                path: path.to_owned(),
                source,
            })?;
        let compiled = compiler
            .component(&sandbox.engine, bytes, path)
            .await
            .map_err(|source| LoadError::Compile {
                path: path.to_owned(),
                source,
            })?;
        let component = compiled.component;
        let named = contract_of(&sandbox.engine, &component);
        let pre =
            Pre::new(linker, &component, named.as_deref()).map_err(|source| LoadError::Link {
                path: path.to_owned(),
                source,
            })?;
        // Until the host shares its budget out, one instance of the per-instance size.
        let limits = PluginLimits::new(crate::budget::PluginShare {
            memory: u64::try_from(sandbox.config.memory_limit_bytes()).unwrap_or(u64::MAX),
            payload: 0,
            slots: 1,
        });
        let instances = Instances {
            pre,
            sandbox: sandbox.clone(),
            limits,
            log: Arc::new(GuestLog::new(Default::default())),
        };
        // Until it has named itself, the plugin goes by its file name.
        let file_name: Arc<str> = Arc::from(path.file_stem().unwrap_or_default().to_string_lossy());
        let timeout = sandbox.config.metadata_timeout_duration();
        let metadata = instances
            .metadata(file_name, timeout)
            .await
            .map_err(|source| LoadError::Metadata {
                path: path.to_owned(),
                source,
            })?
            .map_err(|reason| LoadError::InvalidMetadata {
                path: path.to_owned(),
                reason,
            })?;
        Ok(Self {
            metadata,
            instances,
            loaded: compiled.loaded,
        })
    }

    /// The contract the component was built against, e.g. `wasm-reconciler:plugin@0.1.0`.
    pub(crate) fn contract(&self) -> &'static str {
        self.metadata.contract.package()
    }

    /// How its component was obtained.
    pub(crate) fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    pub(crate) fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub(crate) fn name(&self) -> &Arc<str> {
        &self.metadata.name
    }

    /// Gives the plugin its share of the host: from now on its calls run within `limits`,
    /// and the log lines it loses to its rate limit count on `log_dropped`.
    pub(crate) fn set_limits(
        &mut self,
        limits: PluginLimits,
        log_dropped: prometheus_client::metrics::counter::Counter,
    ) {
        self.instances.limits = limits;
        self.instances.log = Arc::new(GuestLog::new(log_dropped));
    }

    pub(crate) fn limits(&self) -> &PluginLimits {
        &self.instances.limits
    }

    /// Calls `metadata` in a fresh instance (for benchmarks: an instance with the least work).
    pub(crate) async fn call_metadata(&self) -> Result<(), CallError> {
        self.instances
            .metadata(
                self.metadata.name.clone(),
                self.instances.sandbox.config.call_timeout_duration(),
            )
            .await
            .map(drop)
    }

    /// Runs `reconcile` on `object_json` in a fresh instance.
    pub(crate) async fn reconcile(
        &self,
        scope: CallScope,
        object_json: String,
    ) -> Result<Outcome, CallError> {
        self.instances
            .run(
                self.metadata.name.clone(),
                Some(scope),
                async |exports, store| {
                    Ok(match exports {
                        Exports::V0_1(exports) => {
                            let request = v0_1::types::ReconcileRequest {
                                object: object_json,
                            };
                            let result = exports.call_reconcile(store, &request).await?;
                            Outcome::of(result.map(|response| response.requeue_after_ms))
                        }
                        Exports::V0_2(exports) => {
                            let request = v0_2::types::ReconcileRequest {
                                object: object_json,
                            };
                            let result = exports.call_reconcile(store, &request).await?;
                            Outcome::of(result.map(|response| response.requeue_after_ms))
                        }
                    })
                },
            )
            .await
    }

    /// Runs `cleanup` on `object_json` in a fresh instance: `Done` when the plugin is done
    /// with the object. A 0.1.0 plugin has no cleanup and is always done.
    pub(crate) async fn cleanup(
        &self,
        scope: CallScope,
        object_json: String,
    ) -> Result<Outcome, CallError> {
        self.instances
            .run(
                self.metadata.name.clone(),
                Some(scope),
                async |exports, store| {
                    Ok(match exports {
                        Exports::V0_1(_) => Outcome::Done {
                            requeue_after: None,
                        },
                        Exports::V0_2(exports) => {
                            let request = v0_2::types::ReconcileRequest {
                                object: object_json,
                            };
                            let result = exports.call_cleanup(store, &request).await?;
                            Outcome::of(result.map(|()| None))
                        }
                    })
                },
            )
            .await
    }
}

impl Outcome {
    /// What a plugin's answer means: done (with a requeue after so many milliseconds, if it
    /// asked for one), or its error, in either contract version's terms.
    fn of<E: Into<Outcome>>(result: Result<Option<u64>, E>) -> Self {
        match result {
            Ok(requeue_after_ms) => Outcome::Done {
                requeue_after: requeue_after_ms.map(Duration::from_millis),
            },
            Err(error) => error.into(),
        }
    }
}

impl From<v0_1::types::ReconcileError> for Outcome {
    fn from(error: v0_1::types::ReconcileError) -> Self {
        match error {
            v0_1::types::ReconcileError::Transient(message) => Outcome::Transient(message),
            v0_1::types::ReconcileError::Terminal(message) => Outcome::Terminal(message),
        }
    }
}

impl From<v0_2::types::ReconcileError> for Outcome {
    fn from(error: v0_2::types::ReconcileError) -> Self {
        match error {
            v0_2::types::ReconcileError::Transient(message) => Outcome::Transient(message),
            v0_2::types::ReconcileError::Terminal(message) => Outcome::Terminal(message),
        }
    }
}

impl Instances {
    /// Calls `metadata` in a fresh instance and checks what it says.
    async fn metadata(
        &self,
        plugin: Arc<str>,
        timeout: Duration,
    ) -> Result<Result<Metadata, String>, CallError> {
        self.run_within(plugin, None, timeout, async |exports, store| {
            Ok(match exports {
                Exports::V0_1(exports) => Metadata::from_v0_1(exports.call_metadata(store).await?),
                Exports::V0_2(exports) => Metadata::from_v0_2(exports.call_metadata(store).await?),
            })
        })
        .await
    }

    /// Creates a fresh store and instance, runs `call` on it under the sandbox's limits, and
    /// drops both.
    async fn run<R>(
        &self,
        plugin: Arc<str>,
        scope: Option<CallScope>,
        call: impl AsyncFnOnce(&Exports, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let timeout = self.sandbox.config.call_timeout_duration();
        self.run_within(plugin, scope, timeout, call).await
    }

    /// [`Instances::run`] with a wall-clock limit of `timeout`, from the moment the call has
    /// its slots: waiting for the plugin's memory share and time the guest spends blocked
    /// (sleeping, polling, waiting on imports) count.
    async fn run_within<R>(
        &self,
        plugin: Arc<str>,
        scope: Option<CallScope>,
        timeout: Duration,
        call: impl AsyncFnOnce(&Exports, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        // Back-pressure: wait for one of the plugin's own slots (so a plugin can only ever
        // hold its own), then for a pooling-allocator slot, rather than fail to instantiate.
        let closed = |e: tokio::sync::AcquireError| {
            CallError::Instantiate(wasmtime::Error::msg(e.to_string()))
        };
        let _plugin_slot = self.limits.slots.acquire().await.map_err(closed)?;
        let _slot = self.sandbox.slots.acquire().await.map_err(closed)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scope = scope;
        let (mut store, reconciler) = loop {
            // Woken by any instance of the plugin giving memory back; registered before this
            // attempt, so that a release during it is not missed.
            let mut released = self.limits.memory.released();
            let mut store = self.store(plugin.clone(), scope.take());
            let instantiated =
                tokio::time::timeout_at(deadline, self.pre.instantiate(&mut store)).await;
            let error = match instantiated {
                Err(_) => return Err(CallError::Timeout(timeout)),
                Ok(Ok(reconciler)) => break (store, reconciler),
                Ok(Err(error)) => error,
            };
            // Instantiating grows the memory to its initial size, which the plugin's other
            // instances may hold for now: wait for one of them to end (back-pressure, as for
            // slots), unless none holds anything and the share is simply too small.
            let refused = store.data().limits.refused;
            if refused == Some(MemoryRefusal::PluginShare) && self.limits.memory.used() > 0 {
                scope = store.into_data().scope;
                // Another plugin's release (of the host's part) does not wake this one: look
                // again now and then.
                let wait = tokio::time::timeout(INSTANTIATE_RETRY, released.changed());
                if tokio::time::timeout_at(deadline, wait).await.is_err() {
                    return Err(CallError::Timeout(timeout));
                }
                continue;
            }
            if refused.is_some() {
                return Err(self.classify(&store, error));
            }
            return Err(CallError::Instantiate(error));
        };
        match tokio::time::timeout_at(deadline, call(&reconciler, &mut store)).await {
            Ok(result) => result.map_err(|error| self.classify(&store, error)),
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    /// A fresh store for one call of `plugin`, under the sandbox's limits.
    fn store(&self, plugin: Arc<str>, scope: Option<CallScope>) -> Store<GuestState> {
        let config = &self.sandbox.config;
        let limiter = MemoryLimiter::new(config.memory_limit_bytes(), self.limits.memory.clone());
        let state = GuestState::new(
            plugin,
            scope,
            limiter,
            config.cpu_limit_ticks(),
            self.log.clone(),
        );
        let mut store = Store::new(&self.sandbox.engine, state);
        store.limiter(|state| &mut state.limits);
        // Strings and lists the guest passes to one import: enough for the largest object the
        // API server accepts, and no more (wasmtime's default is 128 MiB per call).
        store.set_hostcall_fuel(sandbox::HOSTCALL_FUEL);
        store.set_max_component_handles(state::RESOURCE_TABLE_CAPACITY);
        // Yield to the runtime on every tick, so that a spinning guest shares its thread,
        // and interrupt it once its CPU budget is spent.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| {
            let state = context.data_mut();
            // A tick spent mostly inside host imports (waiting on the API server) is not the
            // guest's CPU time: only the wall-clock timeout bounds that.
            if !state.cpu.tick_was_guest_time(std::time::Instant::now()) {
                return Ok(UpdateDeadline::Yield(1));
            }
            if state.cpu_ticks_left == 0 {
                return Ok(UpdateDeadline::Interrupt);
            }
            state.cpu_ticks_left -= 1;
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    fn classify(&self, store: &Store<GuestState>, error: wasmtime::Error) -> CallError {
        let state = store.data();
        let stderr = state.stderr_text();
        match state.limits.refused {
            Some(MemoryRefusal::Instance) => {
                return CallError::MemoryLimit {
                    limit: self.sandbox.config.memory_limit_bytes(),
                    stderr,
                };
            }
            Some(MemoryRefusal::PluginShare) => {
                return CallError::PluginMemory {
                    share: self.limits.memory.capacity(),
                    stderr,
                };
            }
            None => {}
        }
        // wasmtime's error type for this is private; its message is stable and specific.
        if format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted") {
            return CallError::TooMuchData {
                limit: sandbox::HOSTCALL_FUEL,
            };
        }
        if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
            return CallError::CpuLimit(
                sandbox::EPOCH_TICK
                    * u32::try_from(self.sandbox.config.cpu_limit_ticks()).unwrap_or(u32::MAX),
            );
        }
        CallError::Trap {
            message: error.root_cause().to_string(),
            backtrace: format!("{error:?}"),
            stderr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_message_carries_the_end_of_a_long_stderr() {
        let traceback = format!(
            "Traceback (most recent call last):\n{}ValueError: boom",
            "  File x\n".repeat(200)
        );
        let error = CallError::Trap {
            message: "wasm trap: wasm `unreachable` instruction executed".into(),
            backtrace: "a long backtrace".into(),
            stderr: traceback,
        };
        let text = error.to_string();
        assert!(text.ends_with("ValueError: boom"), "{text}");
        assert!(text.len() < 700, "{} bytes", text.len());
        assert!(!text.contains("a long backtrace"));
    }

    async fn load_bytes(bytes: &[u8]) -> Result<Plugin, LoadError> {
        let sandbox = Sandbox::new(SandboxConfig::default().max_instances(2)).expect("engine");
        let linker = linker(&sandbox).expect("linker");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plugin.wasm");
        std::fs::write(&path, bytes).expect("write plugin");
        Plugin::load(&sandbox, &linker, &Compiler::uncached(&sandbox), &path).await
    }

    #[tokio::test]
    async fn a_corrupt_file_is_reported_as_not_a_component() {
        let error = load_bytes(b"\0asm garbage")
            .await
            .err()
            .expect("load fails");
        assert!(matches!(error, LoadError::Compile { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_core_module_is_reported_as_not_a_component() {
        // The smallest valid core module: magic and version 1, no sections.
        let error = load_bytes(b"\0asm\x01\0\0\0")
            .await
            .err()
            .expect("load fails");
        assert!(matches!(error, LoadError::Compile { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_missing_file_is_a_read_error() {
        let sandbox = Sandbox::new(SandboxConfig::default().max_instances(1)).expect("engine");
        let linker = linker(&sandbox).expect("linker");
        let compiler = Compiler::uncached(&sandbox);
        let error = Plugin::load(
            &sandbox,
            &linker,
            &compiler,
            Path::new("/nonexistent/plugin.wasm"),
        )
        .await
        .err()
        .expect("load fails");
        assert!(matches!(error, LoadError::Read { .. }), "{error:?}");
    }
}
