//! What one plugin instance's store holds: its WASI context (empty: no files, sockets or
//! environment), its limits, and the scope of the current reconcile.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::client::ScopedClient;
use crate::object::ReconciledObject;
use crate::recorder::Recorder;

/// How much a guest may write to stderr (Rust panic messages land there). Writing more traps.
pub(crate) const STDERR_CAPACITY: usize = 64 * 1024;

/// The capabilities of one reconcile call. Absent while the host asks for metadata.
pub(crate) struct CallScope {
    pub(crate) object: Arc<ReconciledObject>,
    pub(crate) client: ScopedClient,
    pub(crate) recorder: Recorder,
}

impl CallScope {
    /// What `plugin` may use while reconciling `object`: a client scoped to its declared
    /// kinds and the object's namespace, and the recorder for events about the object.
    pub(crate) fn new(
        object: ReconciledObject,
        plugin: &Arc<str>,
        kinds: &Arc<crate::kinds::DeclaredKinds>,
        client: &kube::Client,
        recorder: &Recorder,
    ) -> Self {
        let object = Arc::new(object);
        Self {
            client: ScopedClient::new(
                client.clone(),
                plugin.clone(),
                kinds.clone(),
                object.clone(),
            ),
            object,
            recorder: recorder.clone(),
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
    wasi: WasiCtx,
    table: ResourceTable,
}

impl GuestState {
    pub(crate) fn new(
        plugin: Arc<str>,
        scope: Option<CallScope>,
        memory_limit: usize,
        cpu_ticks: u64,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // Deliberately nothing inherited: no environment, arguments, files, network or stdin.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        Self {
            plugin,
            scope,
            limits: MemoryLimiter::new(memory_limit),
            cpu_ticks_left: cpu_ticks,
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// What the guest wrote to stderr, lossily decoded.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
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

/// Bounds linear memory and remembers whether it refused a growth, so that the trap that
/// usually follows is reported as what it is: the plugin ran out of its memory budget.
pub(crate) struct MemoryLimiter {
    limit: usize,
    pub(crate) refused_growth: bool,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            refused_growth: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.refused_growth |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real plugin.
        Ok(desired <= 1_000_000)
    }
}
