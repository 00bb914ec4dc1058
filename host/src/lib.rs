//! # wasm-reconciler
//!
//! A Kubernetes operator host that runs reconcile logic as sandboxed WebAssembly components.
//!
//! Read the modules in the order data flows through them:
//!
//! 1. `manager`: loads every plugin in the plugins directory and starts one controller each
//!    ([`Host`] is the entry point); `plugins_dir` and `fleet` follow the directory while the
//!    host runs (hot reload).
//! 2. `plugin`: compiles and pre-links a component, reads its metadata, and runs each
//!    reconcile in a fresh instance under CPU, memory and time limits.
//! 3. `kinds`: resolves the kinds a plugin declared against API discovery.
//! 4. `controller`: the kube-runtime controller per plugin: watch, cache, queue, and the
//!    mapping from a plugin result to requeue / backoff / wait.
//! 5. `client` and `recorder`: what a plugin may do while reconciling: scoped reads and
//!    writes, and Kubernetes Events about the reconciled object.
//!
//! Beside them, `check` and `offline` run plugins without a cluster: the first describes
//! them, the second runs one reconcile against an API server in memory.

#[doc(hidden)]
pub mod bench;
mod budget;
mod cache;
mod check;
mod cli;
mod client;
mod controller;
mod fleet;
mod health;
mod kinds;
mod leader;
mod manager;
mod metrics;
mod object;
mod offline;
mod plugin;
mod plugins_dir;
mod recorder;
mod selector;
mod status;

pub use budget::BudgetError;
pub use check::check;
pub use cli::{CallLimitArgs, CheckArgs, Cli, Command, CompileArgs, ReconcileArgs, RunArgs};
pub use leader::LeaderElection;
pub use manager::{Host, HostError};
pub use metrics::Metrics;
pub use offline::{
    CatalogError, ManifestError, OfflineError, OutputFormat, RenderError, reconcile,
};
pub use plugin::{CallError, CompileIn, LoadError, SandboxConfig, compile_stdin_to_stdout};
pub use recorder::{EventsApi, RecorderConfig};
