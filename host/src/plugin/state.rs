//! What one plugin instance's store holds: its WASI context (empty: no files, sockets or
//! environment), its limits, and the scope of the current reconcile.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::MemoryPool;
use super::log::GuestLog;
use crate::client::{CallAllowance, ScopedClient};
use crate::object::ReconciledObject;
use crate::recorder::Recorder;

/// How much a guest may write to stderr (Rust panic messages land there). Writing more traps.
pub(crate) const STDERR_CAPACITY: usize = 64 * 1024;
/// Entries in a store's WASI resource table (streams, pollables): a reconcile needs a handful.
pub(crate) const RESOURCE_TABLE_CAPACITY: usize = 1024;
/// Largest `wasi:random` request; a Rust guest asks for 16-32 bytes to seed its hash maps.
pub(crate) const MAX_RANDOM_BYTES: u64 = 64 * 1024;
/// Most entries in one table a guest may grow to (function references).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The capabilities of one reconcile call. Absent while the host asks for metadata.
pub(crate) struct CallScope {
    pub(crate) object: Arc<ReconciledObject>,
    pub(crate) client: ScopedClient,
    pub(crate) recorder: Recorder,
}

/// What a [`CallScope`] is made of besides the object.
pub(crate) struct ScopeParts<'a> {
    pub(crate) plugin: &'a Arc<str>,
    pub(crate) kinds: &'a Arc<crate::kinds::DeclaredKinds>,
    pub(crate) client: &'a kube::Client,
    pub(crate) recorder: &'a Recorder,
    pub(crate) max_api_calls: u32,
    /// Counts the plugin's calls refused for want of allowance.
    pub(crate) api_calls_refused: prometheus_client::metrics::counter::Counter,
    pub(crate) payload_bytes: &'a Arc<super::limits::Quota>,
    pub(crate) impersonate: Option<&'a crate::client::Impersonation>,
    /// The caches reads are served from (none: live reads).
    pub(crate) caches: &'a Arc<crate::cache::PluginCaches>,
}

impl CallScope {
    /// What a plugin may use while reconciling `object`: a client scoped to its declared
    /// kinds, the object's namespace and a number of calls, and the recorder for events about
    /// the object.
    pub(crate) fn new(object: ReconciledObject, parts: &ScopeParts<'_>) -> Self {
        let object = Arc::new(object);
        Self {
            client: ScopedClient::new(
                parts.client.clone(),
                parts.plugin.clone(),
                parts.kinds.clone(),
                object.clone(),
                CallAllowance::new(parts.max_api_calls, parts.api_calls_refused.clone()),
                parts.payload_bytes.clone(),
                parts.impersonate.cloned(),
                parts.caches.clone(),
            ),
            object,
            recorder: parts.recorder.clone(),
        }
    }
}

/// Data of one store: one plugin instance, used for one call.
pub(crate) struct GuestState {
    pub(crate) plugin: Arc<str>,
    pub(crate) scope: Option<CallScope>,
    pub(crate) limits: MemoryLimiter,
    /// Epoch ticks of guest CPU time left before the call is interrupted.
    pub(crate) cpu_ticks_left: u64,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) log: Arc<GuestLog>,
    pub(crate) cpu: GuestClock,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl GuestState {
    pub(crate) fn new(
        plugin: Arc<str>,
        scope: Option<CallScope>,
        limits: MemoryLimiter,
        cpu_ticks: u64,
        log: Arc<GuestLog>,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // Deliberately nothing inherited: no environment, arguments, files, network or stdin.
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(RESOURCE_TABLE_CAPACITY);
        Self {
            plugin,
            scope,
            limits,
            cpu_ticks_left: cpu_ticks,
            stderr,
            log,
            cpu: GuestClock::new(std::time::Instant::now()),
            wasi,
            table,
        }
    }

    /// What the guest wrote to stderr, lossily decoded, control characters escaped.
    pub(crate) fn stderr_text(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        super::log::escape(text.trim(), STDERR_CAPACITY).into_owned()
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Tells guest time from time in host imports, between two epoch ticks.
pub(crate) struct GuestClock {
    last_tick: std::time::Instant,
    in_imports: std::time::Duration,
}

impl GuestClock {
    fn new(now: std::time::Instant) -> Self {
        Self {
            last_tick: now,
            in_imports: std::time::Duration::ZERO,
        }
    }

    /// Adds time spent in a host import.
    pub(crate) fn add_import_time(&mut self, spent: std::time::Duration) {
        self.in_imports += spent;
    }

    /// Whether the guest, rather than host imports, used most of the time since the last
    /// tick; starts the next interval.
    pub(crate) fn tick_was_guest_time(&mut self, now: std::time::Instant) -> bool {
        let interval = now.saturating_duration_since(self.last_tick);
        let in_imports = std::mem::take(&mut self.in_imports);
        self.last_tick = now;
        in_imports * 2 < interval
    }
}

/// Which memory limit refused a growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryRefusal {
    /// The instance would outgrow its own limit.
    Instance,
    /// The plugin's instances together would outgrow the plugin's share of the host budget.
    PluginShare,
}

/// Bounds linear memory per instance and, through the plugin's [`MemoryPool`], per plugin;
/// remembers what it refused, so that the trap that usually follows is reported as what it
/// is. What the store took from the pool goes back when the store is dropped.
pub(crate) struct MemoryLimiter {
    limit: usize,
    pool: Arc<MemoryPool>,
    held: u64,
    pub(crate) refused: Option<MemoryRefusal>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize, pool: Arc<MemoryPool>) -> Self {
        Self {
            limit,
            pool,
            held: 0,
            refused: None,
        }
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.pool.give_back(self.held);
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(MemoryRefusal::Instance);
            return Ok(false);
        }
        let more = u64::try_from(desired.saturating_sub(current)).unwrap_or(u64::MAX);
        if !self.pool.try_take(more) {
            self.refused = Some(MemoryRefusal::PluginShare);
            return Ok(false);
        }
        self.held += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_tick_spent_in_imports_is_not_guest_time() {
        let start = Instant::now();
        let mut clock = GuestClock::new(start);
        clock.add_import_time(Duration::from_millis(8));
        assert!(!clock.tick_was_guest_time(start + Duration::from_millis(10)));
        clock.add_import_time(Duration::from_millis(2));
        assert!(clock.tick_was_guest_time(start + Duration::from_millis(20)));
        assert!(clock.tick_was_guest_time(start + Duration::from_millis(30)));
    }

    #[test]
    fn growth_draws_on_the_plugins_pool_and_the_store_gives_it_back() {
        let pool = MemoryPool::new(10 << 20);
        let mut first = MemoryLimiter::new(8 << 20, pool.clone());
        assert!(first.memory_growing(0, 6 << 20, None).unwrap());
        let mut second = MemoryLimiter::new(8 << 20, pool.clone());
        assert!(!second.memory_growing(0, 6 << 20, None).unwrap());
        assert_eq!(second.refused, Some(MemoryRefusal::PluginShare));
        assert!(!first.memory_growing(6 << 20, 9 << 20, None).unwrap());
        assert_eq!(first.refused, Some(MemoryRefusal::Instance));
        drop(first);
        assert_eq!(pool.used(), 0);
        let mut third = MemoryLimiter::new(8 << 20, pool.clone());
        assert!(third.memory_growing(0, 6 << 20, None).unwrap());
    }
}
