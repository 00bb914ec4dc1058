//! The shared Wasmtime engine and the limits every plugin instance runs under.
//!
//! One [`Engine`] serves every plugin. It uses the pooling allocator, so that creating a fresh
//! instance for each reconcile costs microseconds (wasmtime's `examples/fast_instantiation.rs`),
//! and epoch interruption, so that a guest that spins is stopped (wasmtime's
//! `examples/epochs.rs`). Epochs alone cannot bound memory (bulk memory operations check once),
//! so each store also carries a `ResourceLimiter` (`StoreLimits`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch ticker advances the engine's epoch: the granularity of CPU limits.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of a slot's linear memory kept resident between instances (only the pages
/// an instance touched, with `PAGEMAP_SCAN`): part of [`crate::budget::PER_SLOT`].
const KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables (function references: a plugin's are a few KiB).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// Bytes a guest may pass to one host call (wasmtime's "hostcall fuel"): the largest payload a
/// client call accepts plus room for the call's other arguments.
pub(crate) const HOSTCALL_FUEL: usize = crate::client::MAX_PAYLOAD_BYTES + (64 << 10);

/// Limits applied to every plugin instance.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    max_instances: u32,
    memory_limit: usize,
    cpu_limit: Duration,
    call_timeout: Duration,
    metadata_timeout: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            max_instances: 32,
            memory_limit: 64 << 20,
            cpu_limit: Duration::from_secs(2),
            call_timeout: Duration::from_secs(30),
            metadata_timeout: Duration::from_secs(5),
        }
    }
}

impl SandboxConfig {
    /// How many plugin instances may exist at once, across all plugins (default 32).
    ///
    /// This sizes the pooling allocator; a reconcile waits for a free slot when all are in use.
    /// Each slot reserves address space (not memory) for one linear memory.
    #[must_use]
    pub fn max_instances(mut self, count: u32) -> Self {
        self.max_instances = count.max(1);
        self
    }

    /// The most linear memory one instance may grow to, in bytes (default 64 MiB).
    ///
    /// A guest that tries to grow past it sees the growth fail, which for Rust guests ends in
    /// an allocation-failure trap: an error for that reconcile only.
    #[must_use]
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The most CPU time one call may spend running guest code (default 2 s).
    ///
    /// Counted in epoch ticks of 10 ms while the guest runs: time spent waiting on host
    /// imports (the API server) or blocked does not count; see
    /// [`SandboxConfig::call_timeout`] for the wall-clock bound.
    #[must_use]
    pub fn cpu_limit(mut self, limit: Duration) -> Self {
        self.cpu_limit = limit;
        self
    }

    /// The most wall-clock time one call may take, host imports included (default 30 s).
    ///
    /// Counted from the moment the call has its slots: time spent waiting for its plugin's
    /// memory share, and time the guest spends blocked (sleeping, polling, waiting on an
    /// import), counts. It is the bound on how long one reconcile can hold one of its
    /// plugin's slots.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The most wall-clock time the `metadata` call at load may take (default 5 s, and never
    /// more than [`SandboxConfig::call_timeout`]). Plugins load in parallel, so a slow one
    /// delays only itself.
    #[must_use]
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// Instance slots across all plugins.
    pub(crate) fn instance_slots(&self) -> u32 {
        self.max_instances
    }

    pub(crate) fn metadata_timeout_duration(&self) -> Duration {
        self.metadata_timeout.min(self.call_timeout)
    }

    pub(crate) fn memory_limit_bytes(&self) -> usize {
        self.memory_limit
    }

    pub(crate) fn call_timeout_duration(&self) -> Duration {
        self.call_timeout
    }

    /// The CPU limit in epoch ticks, at least one.
    pub(crate) fn cpu_limit_ticks(&self) -> u64 {
        let ticks = self.cpu_limit.as_millis() / EPOCH_TICK.as_millis();
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// The engine plus what bounds its use: the instance slots and the epoch ticker.
#[derive(Clone)]
pub(crate) struct Sandbox {
    pub(crate) engine: Engine,
    pub(crate) config: SandboxConfig,
    /// One permit per pooling-allocator slot: back-pressure so that concurrent reconciles
    /// wait for a slot instead of failing to instantiate.
    pub(crate) slots: Arc<Semaphore>,
}

impl Sandbox {
    /// Builds the engine and starts its epoch ticker thread.
    pub(crate) fn new(config: SandboxConfig) -> wasmtime::Result<Self> {
        let engine = engine(&config)?;
        spawn_epoch_ticker(&engine)?;
        let permits = usize::try_from(config.max_instances).unwrap_or(usize::MAX);
        Ok(Self {
            engine,
            slots: Arc::new(Semaphore::new(permits)),
            config,
        })
    }
}

/// An engine with the settings `sandbox` implies, without the epoch ticker: what compiles for
/// (or in place of) a [`Sandbox`] with the same config.
pub(crate) fn engine(sandbox: &SandboxConfig) -> wasmtime::Result<Engine> {
    Engine::new(&engine_config(sandbox))
}

fn engine_config(sandbox: &SandboxConfig) -> Config {
    let n = sandbox.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A Rust wasm32-wasip2 component holds one main module and a few small shim modules
    // (indirect lowering), with one memory; a componentize-py one holds 14 core instances
    // (CPython and its libraries), so every slot has room for 16.
    pool.total_component_instances(n)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(32)
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(sandbox.memory_limit);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // Reset only the pages an instance dirtied, with `memset`, and keep them: the next
        // instance in the slot takes no page faults for them. Without the ioctl (Linux before
        // 6.7, or a seccomp profile that refuses it) wasmtime would `memset` the whole kept
        // range every time, so the default (`madvise`) stays.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .wasm_component_model(true);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives.
///
/// A thread of its own, not a task: spinning guests occupy the async runtime's workers until
/// an epoch passes, so a ticker on those workers could be starved by the very guests it is
/// there to stop.
fn spawn_epoch_ticker(engine: &Engine) -> wasmtime::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}
